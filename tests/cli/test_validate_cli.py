"""`border0-reconciler validate` through the real CLI, as a child process."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from helpers import REPO, cli

EXAMPLES = REPO / "examples"
HEADER = "apiVersion: border0-reconciler/v1\n"

BROKEN = {
    # bad YAML: an unclosed flow sequence
    "bad-yaml.yaml": HEADER + "kind: Socket\nmetadata:\n  name: broken\nspec:\n  type: [http\n",
    # wrong types: a string port, a list description
    "wrong-types.yaml": HEADER
    + "kind: Socket\nmetadata:\n  name: typed\nspec:\n  type: tls\n  description: [a]\n"
    "  connector:\n    port: '22'\n",
    # an unknown field
    "unknown-field.yaml": HEADER
    + "kind: Socket\nmetadata:\n  name: unknown\nspec:\n  type: http\n  upstrem:\n    type: http\n",
    # duplicate names, across two files
    "dup-a.yaml": HEADER + "kind: Socket\nmetadata:\n  name: same\nspec:\n  type: http\n",
    "nested/dup-b.yml": HEADER + "kind: Socket\nmetadata:\n  name: same\nspec:\n  type: ssh\n",
    # a policy nobody declares
    "missing-policy.yaml": HEADER
    + "kind: Socket\nmetadata:\n  name: lonely\nspec:\n  type: http\n  policies: [ghost]\n",
    # a bad name
    "bad-name.yaml": HEADER + "kind: Socket\nmetadata:\n  name: -Bad_Name\nspec:\n  type: http\n",
    # an unknown kind
    "unknown-kind.yaml": HEADER + "kind: Sokcet\nmetadata:\n  name: k\nspec:\n  type: http\n",
    # a database without credentials
    "db.yaml": HEADER
    + "kind: Socket\nmetadata:\n  name: db\nspec:\n  type: database\n  upstream: {type: mysql}\n",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_examples_are_valid():
    code, out, err = cli(["validate", str(EXAMPLES)])
    assert code == 0, out + err
    # the legacy examples warn (one line each, docs/migration.md), the connector ones do not
    *warnings, summary = out.splitlines()
    assert summary.startswith("ok: 15 sockets, 4 policies and 2 connectors in ")
    assert f"({len(warnings)} warnings" in summary and err == ""
    assert len(warnings) == 8 and all("warning: legacy model: " in w for w in warnings)


def test_broken_manifests_list_every_problem_with_file_and_line(tmp_path):
    write(tmp_path / "broken", BROKEN)
    code, out, err = cli(["validate", "broken"], cwd=tmp_path)
    assert code == 1 and err == ""
    lines = out.splitlines()
    expected = [
        (
            "broken/bad-name.yaml:4:9: error: metadata.name: '-Bad_Name' is not valid: must be a DNS "
            "label: lowercase letters, digits and '-', starting and ending with a letter or digit, "
            "at most 63 characters (try 'bad-name')"
        ),
        (
            "broken/bad-yaml.yaml:7:1: error: YAML syntax error: did not find expected ',' or ']' "
            "(while parsing a flow sequence)"
        ),
        (
            "broken/db.yaml:7:3: error: spec.upstream.username is required (database sockets need "
            "upstream type, username and password)"
        ),
        (
            "broken/db.yaml:7:3: error: spec.upstream.password is required (database sockets need "
            "upstream type, username and password)"
        ),
        (
            "broken/missing-policy.yaml:7:14: error: spec.policies[0]: policy 'ghost' is not declared "
            "in these manifests (add a kind: Policy manifest, or list it in spec.externalPolicies if "
            "it is managed elsewhere)"
        ),
        (
            "broken/nested/dup-b.yml:4:9: error: duplicate Socket name 'same': also declared at "
            "broken/dup-a.yaml:4:9"
        ),
        (
            "broken/unknown-field.yaml:7:3: error: spec: unknown field 'upstrem' (did you mean "
            "'upstream'?)"
        ),
        (
            "broken/unknown-kind.yaml:2:7: error: kind: 'Sokcet' is not one of Socket, Policy, "
            "Connector (did "
            "you mean Socket?)"
        ),
        "broken/wrong-types.yaml:7:16: error: spec.description: expected a string, got a list",
        (
            "broken/wrong-types.yaml:9:11: error: spec.connector.port: expected an integer, got a "
            "string ('22')"
        ),
        "invalid: 10 errors, 0 warnings in 9 files",
    ]
    assert lines == expected


def test_json_format_lists_the_problems_for_tools(tmp_path):
    write(tmp_path, {k: BROKEN[k] for k in ("unknown-kind.yaml", "wrong-types.yaml")})
    code, out, _ = cli(["validate", "--format", "json", str(tmp_path)])
    assert code == 1
    problems = json.loads(out)
    assert [(Path(p["file"]).name, p["line"], p["column"], p["code"]) for p in problems] == [
        ("unknown-kind.yaml", 2, 7, "kind"),
        ("wrong-types.yaml", 7, 16, "schema"),
        ("wrong-types.yaml", 9, 11, "schema"),
    ]
    assert set(problems[0]) == {"severity", "message", "file", "line", "column", "code"}
    assert problems[0]["severity"] == "error"

    code, out, _ = cli(["validate", "--format", "json", str(EXAMPLES)])
    assert code == 0 and {p["code"] for p in json.loads(out)} == {"legacy-model"}


def test_plaintext_secrets_warn_and_fail_with_strict(tmp_path):
    socket = (
        HEADER + "kind: Socket\nmetadata:\n  name: web\nspec:\n  type: http\n"
        "  protected:\n    username: ann\n    password: hunter2\n"
    )
    write(tmp_path, {"web.yaml": socket})
    code, out, _ = cli(["validate", str(tmp_path)])
    assert code == 0
    assert out.splitlines() == [
        (
            f"{tmp_path}/web.yaml:9:15: warning: spec.protected.password is a plaintext secret in "
            "the manifest; use {env: NAME} or {file: PATH}"
        ),
        "ok: 1 socket, 0 policies in 1 file (1 warning)",
    ]
    code, out, _ = cli(["validate", "--strict", str(tmp_path)])
    assert code == 1
    assert f"{tmp_path}/web.yaml:9:15: error: spec.protected.password is a plaintext" in out
    assert "hunter2" not in out



def test_a_typed_upstreams_token_and_password_are_secrets_in_every_output(tmp_path):
    """A plaintext token is warned about (an error with --strict); an unquoted all-digit
    password (a number to YAML) is refused by the schema without its value, also in `plan`'s
    JSON: CI logs never hold either."""
    kubernetes = (
        HEADER + "kind: Socket\nmetadata:\n  name: k8s\nspec:\n  type: kubernetes\n  upstream:\n"
        "    serviceType: kubernetes\n    kubernetesServiceConfiguration:\n"
        "      kubernetesServiceType: standard\n      standardKubernetesServiceConfiguration:\n"
        "        server: https://k8s:6443\n        token: Literal-Token-4711\n"
    )
    write(tmp_path / "token", {"k8s.yaml": kubernetes})
    code, out, _ = cli(["validate", str(tmp_path / "token")])
    assert code == 0 and "(1 warning)" in out and "Literal-Token-4711" not in out
    code, out, _ = cli(["validate", "--strict", str(tmp_path / "token")])
    assert code == 1 and "Literal-Token-4711" not in out
    assert ("error: spec.upstream.kubernetesServiceConfiguration.standardKubernetesService"
            "Configuration.token is a plaintext secret in the manifest") in out

    vnc = (
        HEADER + "kind: Socket\nmetadata:\n  name: vnc\nspec:\n  type: vnc\n  upstream:\n"
        "    serviceType: vnc\n    vncServiceConfiguration:\n      hostname: h\n"
        "      port: 5900\n      password: 55554444333322\n"
    )
    write(tmp_path / "pin", {"vnc.yaml": vnc})
    for args in (["validate"], ["plan", "--api", "local", "-o", "json"]):
        code, out, err = cli([*args, str(tmp_path / "pin")])
        assert code == 1 and "password: expected a string or a mapping, got a number" in out
        assert "55554444333322" not in out + err, args

def test_env_file_resolves_secrets_and_a_missing_variable_names_no_value(tmp_path):
    write(tmp_path, {"e/x.env": "# demo\nGRAFANA_BASIC_AUTH_PASSWORD='pw-from-file'\n"})
    env_file = str(tmp_path / "e/x.env")
    leak = {"ORDERS_DB_PASSWORD": "very-secret-value-1"}
    code, out, err = cli(
        ["validate", str(EXAMPLES), "--env-file", env_file], env=leak, inherit_env=False
    )
    assert code == 1
    assert "very-secret-value-1" not in out + err and "pw-from-file" not in out + err
    assert "spec.upstream.username: environment variable ORDERS_DB_USER is not set" in out
    assert "ANALYTICS_DB_PASSWORD is not set" in out
    assert "GRAFANA_BASIC_AUTH_PASSWORD" not in out  # set by the env file
    assert "ORDERS_DB_PASSWORD" not in out  # set in the environment

    code, out, _ = cli(["validate", str(EXAMPLES), "--env-file", str(EXAMPLES / "demo.env")])
    assert code == 0, out

    write(tmp_path, {"bad.env": "A=1\nnot a line with secret\n"})
    code, out, err = cli(["validate", str(EXAMPLES), "--env-file", str(tmp_path / "bad.env")])
    assert (code, out) == (1, "")
    assert err == f"error: {tmp_path}/bad.env:2: expected KEY=VALUE\n"


def test_paths_that_hold_nothing_or_do_not_exist(tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, _ = cli(["validate", str(tmp_path / "empty")])
    assert code == 0
    assert out.splitlines() == [
        f"{tmp_path}/empty: warning: no manifest files (*.yaml, *.yml) in this directory",
        "ok: 0 sockets, 0 policies in 0 files (1 warning)",
    ]
    code, out, _ = cli(["validate", str(tmp_path / "nope")])
    assert code == 1
    assert out.splitlines()[0] == f"{tmp_path}/nope: error: no such file or directory"
    code, _, err = cli(["validate"])
    assert code == 1 and "Missing argument" in err  # 1, not click's 2: 2 means "changes"


def test_a_path_named_twice_is_read_once_without_a_warning(tmp_path):
    """A folder named twice, or a file and its folder: each file read once, silently; the
    "no manifest files" warning only for a folder that really holds none."""
    files = {
        "m/web.yaml": HEADER + "kind: Socket\nmetadata:\n  name: web\nspec:\n  type: http\n",
        "m/sub/ssh.yaml": HEADER + "kind: Socket\nmetadata:\n  name: box\nspec:\n  type: ssh\n",
    }
    write(tmp_path, files)
    (tmp_path / "empty").mkdir()
    once = "ok: 2 sockets, 0 policies in 2 files (0 warnings)"
    for paths in (["m", "m"], ["m/web.yaml", "m"], ["m", "m/sub/ssh.yaml"], ["m", "./m/"]):
        code, out, err = cli(["validate", *paths], cwd=tmp_path)
        assert (code, out, err) == (0, once + "\n", ""), paths
    code, out, err = cli(["validate", "-", "m/sub", "-"], cwd=tmp_path, input=files["m/web.yaml"])
    assert (code, out, err) == (0, once + "\n", ""), "stdin named twice"  # was a duplicate name
    code, out, _ = cli(["validate", "m", "empty", "m"], cwd=tmp_path)
    assert code == 0
    assert out.splitlines() == [
        "empty: warning: no manifest files (*.yaml, *.yml) in this directory",
        "ok: 2 sockets, 0 policies in 2 files (1 warning)",
    ]
    code, out, err = cli(["plan", "m", "m", "--api", "local", "--state", "local.db"],
                         cwd=tmp_path)
    assert code == 0, out + err
    assert "no manifest files" not in out + err and "+ socket web" in out


def test_no_traceback_on_hostile_input(tmp_path):
    os.mkfifo(tmp_path / "fifo.yaml")  # reading it would block forever
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "latin1.yml").write_bytes(b"kind: caf\xe9\n")
    deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    write(
        tmp_path,
        {
            "alias-loop.yaml": "a: &x\n  b: *x\n",
            "python-tag.yaml": "!!python/object/apply:os.system ['echo hi']\n",
            "deep.yaml": deep,
            "deep-ours.yaml": HEADER + "kind: Socket\nmetadata: {name: d}\nspec:\n  type: http\n"
            "  upstream: " + "{a: " * 400 + "1" + "}" * 400 + "\n",
            "list.yaml": "- " + HEADER.strip() + "\n  kind: Socket\n",
            "scalar.yaml": "just text\n",
            "null-key.yaml": HEADER
            + "kind: Socket\nmetadata:\n  ~: x\n  name: n\nspec: {type: tls}\n",
            "merge.yaml": HEADER
            + "kind: Socket\nbase: &b {type: tls}\nmetadata: {name: m}\nspec:\n  <<: *b\n",
        },
    )
    code, out, err = cli(["validate", str(tmp_path)])
    assert code == 1
    assert "Traceback" not in out + err and err == ""
    by_file = {line.split(":")[0].rsplit("/", 1)[-1] for line in out.splitlines()[:-1]}
    assert {
        "binary.yaml", "latin1.yml", "alias-loop.yaml", "python-tag.yaml", "list.yaml", "fifo.yaml",
        "deep-ours.yaml",
    } <= by_file  # fmt: skip
    assert out.splitlines()[-1].startswith("invalid: ")


def test_a_scalar_yaml_cannot_construct_fails_the_folder_and_applies_nothing(
    tmp_path: Path, emulator: Any
) -> None:
    """An integer of 5,000 digits (over Python's 4,300) or `!!bool maybe` in one file of a
    folder: before, `validate`, `plan` and `apply` stopped with "internal error (ValueError)"."""
    write(tmp_path, {
        "good.yaml": HEADER + "kind: Socket\nmetadata:\n  name: web\nspec:\n  type: http\n",
        "big.yaml": HEADER + "kind: Socket\nmetadata:\n  name: big\nspec:\n  type: http\n"
        "  description: 1" + "0" * 5000 + "\n",
        "tag.yaml": "kind: ConfigMap\napiVersion: v1\ndata: {on: !!bool maybe}\n",
    })
    code, out, err = cli(["validate", str(tmp_path)])
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        (f"{tmp_path / 'big.yaml'}:7:16: error: YAML syntax error: an integer of 5,001 "
         "digits, over the limit of 4,300 digits"),
        f"{tmp_path / 'tag.yaml'}:3:12: error: YAML syntax error: not a valid !!bool value",
        "invalid: 2 errors, 0 warnings in 3 files",
    ]
    requests = emulator.requests()
    code, out, err = cli(["apply", str(tmp_path), "--api", emulator.url, "--auto-approve"],
                         env={"BORDER0_ADMIN_TOKEN": emulator.token})
    assert code == 1, out + err
    assert "internal error" not in out + err and "Traceback" not in out + err
    assert "an integer of 5,001 digits" in out + err
    assert emulator.writes() == [] and not emulator.client().list_sockets()
    assert requests == [] or all(method == "GET" for method, _ in requests)
