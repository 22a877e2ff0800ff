"""The CLI's parse cache (reconciler/manifests/stored_cache.py): `plan` keeps the manifests'
parses in the state folder and a later plan of unchanged files reads them instead of the YAML.
A warm plan shows what a cold one shows; an edited file, a changed secret in the environment,
a corrupt or foreign cache file are all seen as they are; no secret value is ever in the file.
In this process (`cli`), against the embedded emulator (`--api local`), real files."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

from documents import policy_doc, socket_doc, write
from helpers import cli

from reconciler.manifests.loader import load
from reconciler.manifests.stored_cache import CACHE_ENV, CACHE_FILE, StoredParseCache
from reconciler.plan.in_sync import IN_SYNC_FILE
from reconciler.plan.memo import PLAN_MEMO_FILE
from reconciler.secrets import load_fingerprint_key, use_fingerprint_key

PASSWORD, NEW_PASSWORD = "cache-test-password-4f1c", "cache-test-password-9a2e"
LITERAL = "literal-password-in-the-manifest-77c3"


def _docs() -> list[dict]:
    return [policy_doc("ops")] + [
        socket_doc(f"web{i}", description=f"web {i}", policies=["ops"]) for i in range(3)
    ] + [socket_doc("db", "database", policies=["ops"], upstream={
        "type": "postgres", "username": "app", "password": {"env": "DB_PASS"}})]


def _plan(folder: Path, state: Path, password: str = PASSWORD,
          extra: dict[str, str] | None = None) -> tuple[int, dict, str]:
    # no memo of the last plan (plan/memo.py): it would show the plan without a load
    (state.parent / PLAN_MEMO_FILE).unlink(missing_ok=True)
    code, out, err = cli(["plan", str(folder), "--api", "local", "--state", str(state),
                          "-o", "json", "--detailed-exitcode"],
                         env={"DB_PASS": password, **(extra or {})}, cwd=state.parent)
    assert code in (0, 2), err
    return code, json.loads(out), err


def _applied(tmp_path: Path) -> tuple[Path, Path]:
    folder = write(tmp_path / "m", _docs())
    state = tmp_path / "state" / "local.db"
    code, _, err = cli(["apply", str(folder), "--api", "local", "--state", str(state),
                        "--auto-approve"], env={"DB_PASS": PASSWORD}, cwd=tmp_path)
    assert code == 0, err
    return folder, state


def _changes(plan: dict) -> list[tuple[str, str]]:
    return [(c["name"], c["action"]) for c in plan["changes"]]


def test_a_warm_plan_shows_what_a_cold_one_does_and_an_edit_is_read(tmp_path: Path) -> None:
    folder, state = _applied(tmp_path)
    cache = state.parent / CACHE_FILE
    cache.unlink(missing_ok=True)
    cold = _plan(folder, state, extra={CACHE_ENV: "off"})
    assert not cache.exists()  # turned off: neither read nor written
    first = _plan(folder, state)
    assert cache.exists() and oct(cache.stat().st_mode & 0o777) == "0o600"
    warm = _plan(folder, state)
    assert cold[:2] == first[:2] == warm[:2] and cold[0] == 0

    (folder / "socket-web1.yaml").write_text(
        (folder / "socket-web1.yaml").read_text().replace("web 1", "web one"))
    code, plan, _ = _plan(folder, state)
    assert code == 2 and _changes(plan) == [("web1", "update")]
    assert [d["after"] for d in plan["changes"][0]["diffs"]] == ["web one"]


def test_a_secret_from_the_environment_is_read_on_every_plan_and_never_kept(
        tmp_path: Path) -> None:
    folder, state = _applied(tmp_path)
    assert _plan(folder, state)[0] == 0  # writes the cache
    assert _plan(folder, state)[0] == 0  # warm
    code, plan, _ = _plan(folder, state, password=NEW_PASSWORD)  # warm: the new value is seen
    assert code == 2 and _changes(plan) == [("db", "update")]
    assert plan["changes"][0]["diffs"][0]["sensitive"]

    (folder / "socket-literal.yaml").write_text(
        (folder / "socket-web0.yaml").read_text().replace("web0", "literal")
        .replace("type: http", f"type: ssh\n  upstream:\n    username: u\n"
                               f"    password: {LITERAL}"))
    _plan(folder, state, password=NEW_PASSWORD)
    text = (state.parent / CACHE_FILE).read_bytes()
    assert b"web 0" in text  # the other files are in it
    for value in (PASSWORD, NEW_PASSWORD, LITERAL):
        assert value.encode() not in text


def test_a_corrupt_or_foreign_cache_file_is_ignored(tmp_path: Path) -> None:
    folder, state = _applied(tmp_path)
    cache = state.parent / CACHE_FILE
    expected = _plan(folder, state)[:2]
    good = cache.read_bytes()

    for broken in (b"", b"\x00\xff garbage", good[:len(good) // 2], good.replace(b"web", b"wib")):
        cache.write_bytes(broken)
        code, plan, err = _plan(folder, state)
        assert (code, plan) == expected and "Traceback" not in err
        assert cache.read_bytes() == good  # written again, whole

    # a cache file whose MAC holds, saying these very files declare something else: used
    # with this state's key (what shows that the cache is read at all), ignored when made with
    # another key (another machine's, or a file committed into the checkout)
    ours = load_fingerprint_key(state.parent, os.environ)
    try:
        for key, used in ((ours, True), (b"another key" * 3, False)):
            use_fingerprint_key(key)
            cache.unlink()
            forged = StoredParseCache(cache)
            load([folder], cache=forged, env={"DB_PASS": PASSWORD})  # what save writes
            entries = json.loads(forged._body or b"")
            for docs, _ in entries.values():
                docs[0]["spec"]["description"] = "forged"
            forged._body = json.dumps(entries).encode()
            forged.save()
            # the record of sockets in sync keys a document by its file's text, which a
            # forged parse leaves as it was: without the record, every socket is compared
            (state.parent / IN_SYNC_FILE).unlink(missing_ok=True)
            code, plan, _ = _plan(folder, state)
            assert (code == 2 and ("web2", "update") in _changes(plan)) if used else (
                (code, plan) == expected)
    finally:
        use_fingerprint_key(os.urandom(32))  # this process's own key again, as at its start


def test_the_parsed_documents_are_let_go_once_the_load_is_over(tmp_path: Path) -> None:
    """The stored cache settles what it will write when the load ends, so the documents (a
    quarter of a gigabyte at 100,000 sockets) are not held through the listing and the plan."""
    mark = f"let-go-{os.getpid()}-{id(tmp_path)}"  # this test's documents, not another's
    folder = write(tmp_path / "m", [socket_doc(f"web{i}", description=f"{mark} {i}")
                                    for i in range(3)])
    for run in ("cold", "warm"):
        cache = StoredParseCache(tmp_path / "state" / CACHE_FILE)
        loaded = load([folder], cache=cache)
        assert loaded.ok and len(loaded.desired.sockets) == 3
        gc.collect()
        held = [o for o in gc.get_objects() if isinstance(o, dict)
                and isinstance(o.get("spec"), dict) and str(o["spec"].get("description", "")).startswith(mark)]
        assert held == [], run
        cache.file.parent.mkdir(exist_ok=True)
        cache.save()
        assert cache.file.exists()


def _typed(service: str, block: dict) -> dict:
    title = service[:1].upper() + service[1:]
    return {"serviceType": service, f"{service}ServiceConfiguration": {
        f"{service}ServiceType": "standard", f"standard{title}ServiceConfiguration": block}}


def _secret_docs() -> list[dict]:
    """A socket for each place a secret sits: a typed upstream's password from the
    environment, another's private key from a file, a database password declared
    `secret: true` beside a `from:` reference, basic auth beside a typed upstream; and one
    with none."""
    ssh = _typed("ssh", {"hostname": "10.0.0.5", "port": 22,
                         "sshAuthenticationType": "username_and_password",
                         "usernameAndPasswordAuthConfiguration": {
                             "username": "ops", "password": {"env": "SSH_PW"}}})
    keyed = _typed("ssh", {"hostname": "10.0.0.6", "port": 22,
                           "sshAuthenticationType": "private_key",
                           "privateKeyAuthConfiguration": {
                               "username": "ops", "privateKey": {"file": "id.key"}}})
    database = _typed("database", {"hostname": "db.internal", "port": 5432,
                                   "protocol": "postgres",
                                   "authenticationType": "username_and_password",
                                   "usernameAndPasswordAuthConfiguration": {
                                       "username": "from:env:DB_USER",
                                       "password": {"env": "DB_PASS", "secret": True}}})
    return [policy_doc("ops"),
            socket_doc("shell", "ssh", upstream=ssh, policies=["ops"]),
            socket_doc("keyed", "ssh", upstream=keyed),
            socket_doc("orders", "database", upstream=database, policies=["ops"]),
            socket_doc("grafana", "http", upstream=_typed("http", {
                           "hostname": "grafana.internal", "port": 3000, "scheme": "http",
                           "hostHeader": "grafana.internal"}),
                       protected={"username": "admin", "password": {"env": "GRAFANA_PW"}}),
            socket_doc("plain", "tls", upstream=_typed("tls", {"hostname": "h", "port": 1}))]


def test_a_load_from_the_cache_makes_the_objects_a_load_without_it_does(
        tmp_path: Path) -> None:
    """A file's documents are stored without their secrets' values, which every load resolves
    again: every view of a socket a plan reads (its upstream as written, the split compared,
    the one fingerprinted secret, the details digest) is what a load without the cache gives,
    for each place a secret sits. A secret that no longer resolves, or no longer fits, is
    reported as a load without the cache reports it."""
    folder = write(tmp_path / "m", _secret_docs())
    (folder / "id.key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n")
    env = {"SSH_PW": "ssh-pw-1", "DB_PASS": "db-pw-1", "GRAFANA_PW": "basic-pw-1"}
    state = tmp_path / "state"
    state.mkdir()
    stored = StoredParseCache(state / CACHE_FILE)
    assert load([folder], cache=stored, env=env).ok
    stored.save()
    assert b"ssh-pw-1" not in stored.file.read_bytes()

    for changed in ({}, {"SSH_PW": "ssh-pw-2", "DB_PASS": "db-pw-2"}):
        now = {**env, **changed}
        cold = load([folder], env=now)
        warm_cache = StoredParseCache(state / CACHE_FILE)
        warm = load([folder], cache=warm_cache, env=now)
        assert warm_cache.hits == len(_secret_docs()) and warm.ok
        assert warm.desired == cold.desired
        for name, built in cold.desired.sockets.items():
            kept = warm.desired.sockets[name]
            assert kept.upstream_config == built.upstream_config, name
            assert kept.upstream_split == built.upstream_split, name
            assert kept.upstream_secret == built.upstream_secret, name
            assert kept.details_digest == built.details_digest, name
            assert kept.secrets() == built.secrets(), name
        first = load([folder], env=env).desired.sockets["shell"].upstream_secret
        assert (warm.desired.sockets["shell"].upstream_secret == first) == (not changed)

    for broken in ({k: v for k, v in env.items() if k != "DB_PASS"},
                   {**env, "GRAFANA_PW": "p" * 101}):
        cold = load([folder], env=broken)
        warm = load([folder], cache=StoredParseCache(state / CACHE_FILE), env=broken)
        assert [str(d) for d in warm.diagnostics] == [str(d) for d in cold.diagnostics]
        assert not warm.ok
