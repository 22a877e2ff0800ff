"""Property-based tests: arbitrary YAML text and arbitrary manifest-shaped documents go through
`load` (what `validate`, `plan` and `run` read) and `make_plan` (against an empty and a seeded
border0). Whatever comes in, the answer is diagnostics or a valid result, never an exception;
a plan never deletes what is not ours, and no secret value reaches a rendering.

Bounded: a fixed number of examples each, no deadline (the machine is shared), derandomized so a
failure reproduces; a few examples also go through the real `validate` CLI.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from documents import ours
from helpers import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import Severity
from reconciler.manifests.loader import load
from reconciler.model import Actual, LivePolicy, LiveSocket, Ownership
from reconciler.plan.planner import make_plan
from reconciler.plan.types import Action
from reconciler.render import render

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECRET_VALUES = ("Prop-Env-S3cret-9d1e", "Prop-File-S3cret-47aa")
ENV = {"PROP_PW": SECRET_VALUES[0], "PROP_EMPTY": ""}
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# --- strategies ---------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers(), st.booleans()), inner,
                        max_size=4),
    ),
    max_leaves=12,
)



# A small pool so that names collide with each other and with the seeded border0 objects.
POOL = ["web", "db", "box", "ops", "mine", "theirs", "other", "keep"]
names = st.one_of(
    st.sampled_from(POOL), st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
)
good_secret = st.sampled_from([{"env": "PROP_PW"}, {"file": "secret.txt"}])
bad_secret = st.one_of(
    st.sampled_from([{"env": "PROP_EMPTY"}, {"env": "PROP_UNSET"}, {"file": "missing.txt"},
                     {"file": "empty.txt"}, {"file": "sub"}, {"file": "binary.bin"},
                     {"env": "1BAD"}, {"env": "A", "file": "b"}, {}]),
    st.text(max_size=12),
)
UPSTREAMS = {"http": ["http", "https"], "https": ["https"], "ssh": ["ssh", "aws-ssm"],
             "tls": [], "database": ["mysql", "postgres", "mssql"]}


@st.composite
def valid_socket(draw: Any) -> dict[str, Any]:
    """A socket manifest the schema accepts (policies may still be undeclared: a diagnostic)."""
    kind = draw(st.sampled_from(sorted(UPSTREAMS)))
    spec: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        spec["description"] = draw(st.text(max_size=30))
    upstream: dict[str, Any] = {}
    if UPSTREAMS[kind] and (kind == "database" or draw(st.booleans())):
        upstream["type"] = draw(st.sampled_from(UPSTREAMS[kind]))
    if kind == "database":
        upstream["username"] = draw(st.one_of(good_secret, st.just("app")))
        upstream["password"] = draw(good_secret)
    if kind in ("http", "https") and draw(st.booleans()):
        upstream["httpHostname"] = draw(st.from_regex(r"[a-z]{1,8}\.internal", fullmatch=True))
    if upstream:
        spec["upstream"] = upstream
    if kind in ("http", "https") and draw(st.booleans()):
        spec["protected"] = {"username": "viewer", "password": draw(good_secret)}
    if draw(st.booleans()):
        spec["policies"] = draw(st.lists(names, max_size=2, unique=True))
    if draw(st.booleans()):
        spec["externalPolicies"] = draw(st.lists(names, max_size=2, unique=True))
    if draw(st.booleans()):
        spec["connector"] = {"host": "127.0.0.1", "port": draw(st.integers(1, 65535))}
        if kind == "ssh" and draw(st.booleans()):
            spec["connector"] = {"sshserver": True}
    meta: dict[str, Any] = {"name": draw(names)}
    if draw(st.booleans()):
        meta["labels"] = draw(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                                              st.text(max_size=8), max_size=2))
    if draw(st.booleans()):
        meta["annotations"] = draw(annotations)
    return {"apiVersion": "border0-reconciler/v1", "kind": "Socket", "metadata": meta,
            "spec": spec}


@st.composite
def valid_policy(draw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"policyData": {
        "version": "v1",
        "action": draw(st.lists(st.sampled_from(["http", "ssh", "tls", "database"]),
                                min_size=1, max_size=4, unique=True)),
        "condition": {"who": {"email": draw(st.lists(st.emails(), max_size=2))}},
    }}
    if draw(st.booleans()):
        spec["description"] = draw(st.text(max_size=30))
    if draw(st.booleans()):
        spec["orgWide"] = draw(st.booleans())
    meta: dict[str, Any] = {"name": draw(names)}
    if draw(st.booleans()):
        meta["annotations"] = draw(annotations)
    return {"apiVersion": "border0-reconciler/v1", "kind": "Policy", "metadata": meta,
            "spec": spec}


annotations = st.dictionaries(
    st.sampled_from(["border0-reconciler/prune", "border0-reconciler/adopt",
                     "border0-reconciler/suspend", "example.com/x"]),
    st.sampled_from(["true", "false"]), max_size=3,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Any:
    """Every place in a document: () for the whole, then keys and indexes."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


@st.composite
def mutated(draw: Any, base: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A valid document with one to three edits at random places: a value replaced by anything
    (or a bad secret), a key removed, or a key added. Edits a copy: strategies such as
    sampled_from hand out the same objects again, and editing those would change later draws."""
    doc = copy.deepcopy(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        if not path:
            return draw(anything)
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        how = draw(st.sampled_from(["replace", "secret", "remove", "add"]))
        if how == "replace":
            parent[path[-1]] = copy.deepcopy(draw(anything))
        elif how == "secret":
            parent[path[-1]] = copy.deepcopy(draw(bad_secret))
        elif how == "remove" and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = copy.deepcopy(draw(anything))
    return doc


documents = st.lists(
    st.one_of(valid_socket(), valid_policy(), mutated(valid_socket()), mutated(valid_policy()),
              anything),
    min_size=0, max_size=6,
)

yaml_tokens = st.sampled_from([
    "---", "...", "apiVersion: border0-reconciler/v1", "kind: Socket", "kind: Policy",
    "metadata:", "  name: web", "  name: Web_1", "spec:", "  type: http", "  type: [", "  - a",
    "- b", "&anchor", "*anchor", "<<: *anchor", "!!python/object:os.system", "!!binary AAAA",
    "? complex", ": value", "{a: 1, b: [2, 3]}", "'unterminated", '"\\x00"', "|", ">-", "\t",
    "%YAML 1.1", "%TAG ! tag:example.com,2000:", "#comment", "key: value", "key: value",
    "  password: {env: PROP_PW}", "  password: {file: secret.txt}", "2025-01-31", "18:00",
    "0x1F", ".inf", "~", "\ufeff", "\u2028", "\x85",
])
yaml_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.tuples(st.sampled_from(["", "  ", "    "]), yaml_tokens),
             max_size=25).map(lambda parts: "\n".join(i + t for i, t in parts)),
)

# --- the border0 the planner sees -----------------------------------------------------------


def _tags(instance: str | None, prune: bool = True) -> dict[str, str]:
    if instance is None:
        return {"team": "x"}
    return ours(instance, prune)


SEEDED = Actual(
    sockets={
        "web": LiveSocket("id-web", "web", "http", tags=_tags("default")),
        "mine": LiveSocket("id-mine", "mine", "ssh", tags=_tags("default")),
        "keep": LiveSocket("id-keep", "keep", "tls", tags=_tags("default", prune=False)),
        "theirs": LiveSocket("id-theirs", "theirs", "http", tags=_tags(None)),
        "other": LiveSocket("id-other", "other", "tls", tags=_tags("elsewhere")),
        "db": LiveSocket("id-db", "db", "database", upstream_type="postgres",
                         tags=_tags("default"), policy_ids=("pid-ops",), policy_names=("ops",)),
    },
    policies={
        "ops": LivePolicy("pid-ops", "ops", "ops", policy_data={"version": "v1"},
                          ownership=Ownership(True, "default")),
        "box": LivePolicy("pid-box", "box", "unmanaged"),
        "keep": LivePolicy("pid-keep", "keep", policy_data={},
                           ownership=Ownership(True, "default", prune=False)),
    },
)
NOT_OURS = {"theirs", "other", "box"}
PRUNE_FALSE = {"keep"}

# --- helpers --------------------------------------------------------------------------------


def _folder(root: Path) -> Path:
    """A manifests folder with the secret files the strategies refer to."""
    folder = root / "m"
    (folder / "sub").mkdir(parents=True)
    (folder / "secret.txt").write_text(SECRET_VALUES[1] + "\n")
    (folder / "empty.txt").write_text("")
    (folder / "binary.bin").write_bytes(b"\xff\xfe\x00\x01")
    return folder


def _check_load(folder: Path, *, resolve: bool, strict: bool) -> Any:
    result = load([folder], env=ENV, resolve_secrets=resolve, strict=strict)
    for d in result.diagnostics:
        assert isinstance(d.message, str) and d.message.strip(), d
        assert d.file, d
        assert "Traceback" not in d.message
        for secret in SECRET_VALUES:
            assert secret not in d.message, d.message
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert result.ok == (not errors)
    if result.ok:
        for spec in [*result.desired.sockets.values(), *result.desired.policies.values()]:
            assert NAME_RE.match(spec.name), spec.name
    return result


def _check_plan(result: Any) -> None:
    desired = result.desired
    empty = make_plan(desired, Actual())
    creates = [c for c in empty.changes if c.action is Action.CREATE]
    specs = [*desired.sockets.values(), *desired.policies.values()]
    assert len(creates) == sum(1 for spec in specs if not spec.suspend)  # suspended: left alone
    assert not any(c.action is Action.DELETE for c in empty.changes)
    for conflict in empty.conflicts:  # against an empty border0 only unknown policies conflict
        assert conflict.code == "unknown-policy", conflict
    seeded = make_plan(desired, SEEDED)
    adopted = {spec.name for spec in specs if spec.adopt}  # annotated: taken over, by design
    for change in seeded.changes:
        if change.action in (Action.DELETE, Action.UPDATE, Action.REPLACE):
            assert change.name not in NOT_OURS - adopted, change
        if change.action is Action.DELETE:
            assert change.name not in PRUNE_FALSE, change
            assert change.name not in (desired.sockets if change.kind == "socket"
                                       else desired.policies)
    for plan in (empty, seeded):
        data = plan.to_json()
        rendered = [json.dumps(data)] + [render(data, fmt) for fmt in ("text", "json", "markdown")]
        rendered.append(render(data, "text", color=True))
        for text in rendered:
            for secret in SECRET_VALUES:
                assert secret not in text


# --- the properties -------------------------------------------------------------------------


@SETTINGS
@given(text=yaml_texts, resolve=st.booleans())
def test_any_yaml_text_gives_diagnostics_or_a_result(text: str, resolve: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _folder(Path(tmp))
        (folder / "any.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        result = _check_load(folder, resolve=resolve, strict=False)
        if result.ok:
            _check_plan(result)


@SETTINGS
@given(text=st.binary(max_size=120))
def test_any_bytes_give_diagnostics_or_a_result(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _folder(Path(tmp))
        (folder / "any.yaml").write_bytes(text)
        _check_load(folder, resolve=True, strict=False)


@pytest.mark.slow  # in this process, but 300 examples take seconds: out of the quick loop
@settings(SETTINGS, max_examples=300)
@given(docs=documents, split=st.booleans(), resolve=st.booleans(), strict=st.booleans())
def test_manifest_shaped_documents_give_diagnostics_or_a_plan(
    docs: list[Any], split: bool, resolve: bool, strict: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _folder(Path(tmp))
        if split:  # one file per document, or all in one multi-document file
            for i, doc in enumerate(docs):
                (folder / f"d{i}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
        else:
            (folder / "all.yaml").write_text(yaml.safe_dump_all(docs, allow_unicode=True))
        result = _check_load(folder, resolve=resolve, strict=strict)
        if result.ok and resolve:
            _check_plan(result)


def test_a_known_good_document_is_accepted_and_planned(tmp_path: Path) -> None:
    """The strategies' valid branch really produces valid manifests (else the above is vacuous)."""
    folder = _folder(tmp_path)
    docs = [
        {"apiVersion": "border0-reconciler/v1", "kind": "Policy", "metadata": {"name": "ops"},
         "spec": {"policyData": {"version": "v1", "action": ["http"], "condition": {}}}},
        {"apiVersion": "border0-reconciler/v1", "kind": "Socket", "metadata": {"name": "db"},
         "spec": {"type": "database", "policies": ["ops"],
                  "upstream": {"type": "postgres", "username": {"env": "PROP_PW"},
                               "password": {"file": "secret.txt"}}}},
    ]
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    result = _check_load(folder, resolve=True, strict=True)
    assert result.ok and set(result.desired.sockets) == {"db"}
    assert result.desired.sockets["db"].secret("upstream_password").value == SECRET_VALUES[1]
    _check_plan(result)


@settings(SETTINGS, max_examples=6)
@given(docs=documents, text=yaml_texts)
def test_the_validate_cli_never_shows_a_traceback(docs: list[Any], text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _folder(Path(tmp))
        (folder / "docs.yaml").write_text(yaml.safe_dump_all(docs, allow_unicode=True))
        (folder / "text.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        code, out, err = cli(["validate", str(folder)], env=ENV)
        assert code in (0, 1), (code, out, err)
        assert "Traceback" not in out + err and "internal error" not in out + err, err
        if code == 1:
            assert "error" in out + err


def test_an_alias_bomb_is_refused_quickly_not_expanded(tmp_path: Path) -> None:
    """Nine aliases of nine aliases ... ("billion laughs"): 9^8 values from 400 bytes. Found by
    probing the loader with hostile YAML: it took minutes and gigabytes before one diagnostic."""
    levels = ["  x: &l0 [lol]"]
    for i in range(1, 9):
        levels.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    policy = (
        "apiVersion: border0-reconciler/v1\nkind: Policy\nmetadata:\n  name: bomb\nspec:\n"
        "  policyData:\n    version: v1\n    action: [http]\n    condition:\n"
        + "\n".join("    " + line for line in levels) + "\n"
    )
    (tmp_path / "bomb.yaml").write_text(policy)
    code, out, err = cli(["validate", str(tmp_path)], timeout=30)
    assert code == 1, (out, err)
    assert "expands to more than" in out + err and "aliases" in out + err
    # a few legitimate aliases are fine
    (tmp_path / "bomb.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: shared\n"
        "  labels: {team: &t web, owner: *t}\nspec:\n  type: http\n  description: *t\n"
    )
    result = load([tmp_path])
    assert result.ok, result.diagnostics
    assert result.desired.sockets["shared"].labels == {"team": "web", "owner": "web"}


def test_a_secret_file_that_never_ends_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """{file: /dev/zero} or a FIFO nobody writes to: reading it would never end (plan hung,
    growing without bound, before this was checked)."""
    os.mkfifo(tmp_path / "pipe")
    for target in ("/dev/zero", str(tmp_path / "pipe")):
        (tmp_path / "s.yaml").write_text(
            "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: web\nspec:\n"
            f"  type: http\n  protected:\n    username: u\n    password: {{file: {target}}}\n"
        )
        code, out, err = cli(["plan", str(tmp_path), "--api", "local", "--state",
                              str(tmp_path / "local.db")], timeout=30)
        assert code == 1, (out, err)
        reason = "is under /dev: secret files are never read" if target == "/dev/zero" else (
            "not a regular file")
        assert f"secret file {target} {reason}" in err or f"{target}: {reason}" in err, err
