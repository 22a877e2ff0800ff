"""The manifest loader: examples into `Desired`, every problem with file:line:column."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import referencing
import yaml
from helpers import REPO
from tools import check_jsonschema

from reconciler.diagnostics import Severity
from reconciler.manifests.loader import EnvFileError, load, read_env_file, schema_path
from reconciler.manifests.yamlpos import Locator, document_starts, load_documents
from reconciler.secrets import Secret

EXAMPLES = REPO / "examples"
EXAMPLE_FILES = sorted((EXAMPLES / "sockets").glob("*.yaml")) + sorted(
    (EXAMPLES / "policies").glob("*.yaml")
)
DEMO_ENV = {
    "GRAFANA_BASIC_AUTH_PASSWORD": "grafana-pw-1",
    "ORDERS_DB_USER": "orders",
    "ORDERS_DB_PASSWORD": "orders-pw-2",
    "ANALYTICS_DB_USER": "analytics",
    "ANALYTICS_DB_PASSWORD": "analytics-pw-3",
}
HEADER = "apiVersion: border0-reconciler/v1\n"


def socket(name: str, body: str = "  type: http\n", extra_meta: str = "") -> str:
    return f"{HEADER}kind: Socket\nmetadata:\n  name: {name}\n{extra_meta}spec:\n{body}"


def policy(name: str) -> str:
    return (
        f"{HEADER}kind: Policy\nmetadata:\n  name: {name}\nspec:\n  policyData:\n"
        "    version: v1\n    action: [http]\n    condition:\n      who: {domain: [example.com]}\n"
    )


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


#: Warnings about the legacy model (tests/manifests/test_connector_manifests.py covers them).
LEGACY = ("legacy-model",)


def messages(result) -> list[str]:
    return [str(d) for d in result.diagnostics if d.code not in LEGACY]


# --- the examples ---------------------------------------------------------------------------


def test_examples_load_into_the_expected_desired_state():
    result = load([EXAMPLES], env=DEMO_ENV)
    assert result.ok, messages(result)
    assert messages(result) == []
    sockets, policies = result.desired.sockets, result.desired.policies
    assert sorted(sockets) == [
        "analytics-db", "bastion", "billing-db", "cache", "cluster", "docs", "grafana",
        "intranet", "jump", "lab-desktop", "mqtt", "orders-db", "portal", "web",
        "windows-admin",
    ]  # fmt: skip
    assert sorted(policies) == ["contractors", "db-by-ip", "engineers", "on-call"]
    assert sorted(result.desired.connectors) == ["edge", "edge-b"]
    assert policies["contractors"].policy_data["version"] == "v2"
    assert sockets["bastion"].recording is True and sockets["web"].recording is None
    assert {s.type for s in sockets.values()} == {
        "http", "https", "ssh", "tls", "database", "vnc", "rdp", "kubernetes"}
    typed = {n for n, s in sockets.items() if s.upstream_config is not None}
    assert typed == {"billing-db", "cache", "cluster", "intranet", "jump", "lab-desktop",
                     "windows-admin"}
    assert all(sockets[n].connectors for n in typed)
    assert sockets["billing-db"].connectors == ("edge", "edge-b")  # high availability

    orders = sockets["orders-db"]
    assert (orders.type, orders.upstream_type) == ("database", "mysql")
    assert orders.secret("upstream_password") == Secret("orders-pw-2")
    assert orders.secret("upstream_password").origin == "env:ORDERS_DB_PASSWORD"
    assert orders.secret("upstream_username").value == "orders"
    assert "orders-pw-2" not in repr(orders) and "(sensitive)" in repr(orders)
    assert orders.policies == ("db-by-ip", "on-call", "contractors")
    assert orders.connector.host == "127.0.0.1" and orders.connector.port == 3306
    assert orders.labels == {"team": "payments"}
    assert sockets["analytics-db"].upstream_type == "postgres"
    src = sockets["analytics-db"].source
    assert (Path(src.file).name, src.line, src.column) == ("databases.yaml", 21, 1)

    grafana = sockets["grafana"]
    assert grafana.protected and grafana.protected_username == "viewer"
    assert grafana.secret("protected_password").value == "grafana-pw-1"
    assert grafana.prune is False and grafana.adopt is False
    assert sockets["portal"].type == "https"
    assert sockets["portal"].upstream_http_hostname == "portal.internal"
    assert sockets["docs"].connector.httpserver is True
    assert sockets["bastion"].connector.sshserver is True
    assert sockets["web"].prune is True

    on_call = policies["on-call"]
    assert on_call.policy_data["condition"]["when"] == {
        "time_of_day_after": "07:00 UTC",
        "time_of_day_before": "19:00 UTC",
    }
    assert on_call.policy_data["condition"]["who"]["email"] == [
        "alice@example.com",
        "bob@example.com",
    ]
    assert policies["db-by-ip"].policy_data["action"] == ["database"]


def test_every_example_file_points_editors_at_the_schema():
    assert len(EXAMPLE_FILES) >= 9
    for file in EXAMPLE_FILES:
        first = file.read_text().splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), file
        assert (file.parent / first[len(prefix) :]).resolve() == schema_path("manifest")


def test_demo_env_covers_every_variable_the_examples_reference():
    env = read_env_file(EXAMPLES / "demo.env")
    result = load([EXAMPLES], env=env)
    assert result.ok, messages(result)
    assert set(env) == set(DEMO_ENV)


def test_without_resolving_secrets_only_their_shape_is_checked():
    result = load([EXAMPLES], env={}, resolve_secrets=False)
    assert result.ok, messages(result)
    password = result.desired.sockets["orders-db"].secret("upstream_password")
    assert password.origin == "env:ORDERS_DB_PASSWORD" and password.value == ""


# --- secrets --------------------------------------------------------------------------------


def test_a_missing_or_empty_env_var_is_an_error_naming_it_and_no_value(tmp_path):
    body = (
        "  type: database\n  upstream:\n    type: postgres\n"
        "    username: {env: DB_USER}\n    password: {env: DB_PASSWORD}\n"
    )
    write(tmp_path, {"db.yaml": socket("db", body)})
    result = load([tmp_path], env={"DB_USER": "", "OTHER": "leak-me"})
    assert not result.ok
    assert messages(result) == [
        (
            f"{tmp_path}/db.yaml:9:15: error: spec.upstream.username: environment variable "
            "DB_USER is empty"
        ),
        (
            f"{tmp_path}/db.yaml:10:15: error: spec.upstream.password: environment variable "
            "DB_PASSWORD is not set"
        ),
    ]
    assert "db" not in result.desired.sockets


def test_file_secrets_resolve_relative_to_the_manifest(tmp_path):
    body = "  type: http\n  protected:\n    username: ann\n    password: {file: secrets/pw}\n"
    write(tmp_path, {"app/web.yaml": socket("web", body), "app/secrets/pw": "s3cret\n"})
    result = load([tmp_path / "app"], env={})
    assert result.ok, messages(result)
    secret = result.desired.sockets["web"].secret("protected_password")
    assert secret.value == "s3cret" and secret.origin == "file:secrets/pw"

    (tmp_path / "app/secrets/pw").unlink()
    result = load([tmp_path / "app"], env={})
    [problem] = result.diagnostics
    assert problem.line == 9 and "cannot read secret file" in problem.message
    assert "secrets/pw: No such file or directory" in problem.message


def test_plaintext_passwords_warn_and_fail_with_strict(tmp_path):
    body = (
        "  type: database\n  upstream:\n    type: mysql\n    username: root\n"
        "    password: hunter2\n"
    )
    write(tmp_path, {"db.yaml": socket("db", body)})
    result = load([tmp_path])
    assert result.ok
    [warning] = [d for d in result.diagnostics if d.code not in LEGACY]
    assert warning.severity is Severity.WARNING and (warning.line, warning.column) == (10, 15)
    assert warning.message.startswith("spec.upstream.password is a plaintext secret")
    assert "hunter2" not in warning.message
    assert result.desired.sockets["db"].secret("upstream_password").origin == "literal"

    strict = load([tmp_path], strict=True)
    [error] = [d for d in strict.diagnostics if d.code not in LEGACY]
    assert not strict.ok and error.severity is Severity.ERROR


def test_a_mistyped_secret_is_reported_without_its_value(tmp_path):
    body = "  type: database\n  upstream: {type: mysql, username: 424242, password: 987654}\n"
    write(tmp_path, {"db.yaml": socket("db", body)})
    text = "\n".join(messages(load([tmp_path])))
    assert "spec.upstream.password: expected a string or a mapping, got a number" in text
    assert "spec.upstream.username: expected a string or a mapping, got a number" in text
    assert "424242" not in text and "987654" not in text



def _typed(service: str, block: dict) -> dict:
    title = "".join(part.title() for part in service.split("_"))
    return {"serviceType": service, f"{service[:1]}{title[1:]}ServiceConfiguration": block}


def _db(auth: dict, kind: str = "standard") -> dict:
    config = {"hostname": "db", "port": 5432, "protocol": "postgres", **auth}
    title = "".join(part.title() for part in kind.split("_"))
    return _typed("database", {"databaseServiceType": kind,
                               f"{kind[:1]}{title[1:]}DatabaseServiceConfiguration": config})


def _k8s(auth: dict) -> dict:
    return _typed("kubernetes", {"kubernetesServiceType": "standard",
                                 "standardKubernetesServiceConfiguration": {
                                     "server": "https://k8s:6443", **auth}})


def _s3(credentials: dict) -> dict:
    return _typed("aws_s3", {"awsCredentials": {"awsAccessKeyId": "AKIAEXAMPLE", **credentials}})


def _login(password: object) -> dict:
    return {"authenticationType": "username_and_password",
            "usernameAndPasswordAuthConfiguration": {"username": "app", "password": password}}


def _tls(key: object) -> dict:
    return {"authenticationType": "tls",
            "tlsAuthConfiguration": {"username": "app", "certificate": "CERT", "key": key}}


def _socket_doc(type_: str, upstream: dict) -> str:
    return HEADER + yaml.safe_dump({"kind": "Socket", "metadata": {"name": "s"},
                                    "spec": {"type": type_, "upstream": upstream}})


#: A secret leaf of each kind (password, key, token), typed or legacy, as (socket type,
#: upstream holding VALUE where the secret goes).
SECRET_LEAVES = {
    "typed password": ("database", lambda v: _db(_login(v))),
    "vnc password": ("vnc", lambda v: _typed("vnc", {"hostname": "h", "port": 5900,
                                                      "password": v})),
    "tls key": ("database", lambda v: _db(_tls(v))),
    "kubernetes token": ("kubernetes", lambda v: _k8s({"token": v})),
    "clientKeyData": ("kubernetes", lambda v: _k8s({"clientCertificateData": "CERT",
                                                    "clientKeyData": v})),
    "awsSecretAccessKey": ("aws_s3", lambda v: _s3({"awsSecretAccessKey": v})),
    "awsSessionToken": ("aws_s3", lambda v: _s3({"awsSecretAccessKey": {"env": "AK"},
                                                 "awsSessionToken": v})),
    "gcpCredentialsJson": ("database", lambda v: _db(
        {"cloudsqlConnectorConfiguration": {"username": "app", "instanceId": "p:r:i",
                                            "gcpCredentialsJson": v}}, "gcp_cloudsql")),
    "ssh privateKey": ("ssh", lambda v: _typed("ssh", {
        "sshServiceType": "standard", "standardSshServiceConfiguration": {
            "hostname": "h", "port": 22, "sshAuthenticationType": "private_key",
            "privateKeyAuthConfiguration": {"username": "u", "privateKey": v}}})),
    "legacy key": ("database", lambda v: {"type": "postgres", "username": "app",
                                          "password": {"env": "PW"}, "key": v}),
}


@pytest.mark.parametrize("leaf", SECRET_LEAVES)
def test_a_mistyped_secret_anywhere_is_reported_without_its_value(tmp_path, leaf):
    type_, upstream = SECRET_LEAVES[leaf]
    write(tmp_path, {"s.yaml": _socket_doc(type_, upstream(55554444333322))})
    text = "\n".join(messages(load([tmp_path], env={"PW": "pw", "AK": "ak"})))
    assert "expected a string or a mapping, got a number" in text
    assert "55554444333322" not in text


@pytest.mark.parametrize("leaf", SECRET_LEAVES)
def test_every_plaintext_secret_warns_and_fails_with_strict(tmp_path, leaf):
    type_, upstream = SECRET_LEAVES[leaf]
    write(tmp_path, {"s.yaml": _socket_doc(type_, upstream("Literal-Secret-4711"))})
    env = {"PW": "pw", "AK": "ak"}
    result = load([tmp_path], env=env)
    assert result.ok, messages(result)
    [warning] = [d for d in result.diagnostics if d.code not in LEGACY]
    assert warning.code == "plaintext-secret" and warning.severity is Severity.WARNING
    assert "is a plaintext secret" in warning.message
    assert "Literal-Secret-4711" not in warning.message
    strict = load([tmp_path], env=env, strict=True)
    [error] = [d for d in strict.diagnostics if d.code not in LEGACY]
    assert not strict.ok and error.severity is Severity.ERROR and error.code == "plaintext-secret"


def test_a_connector_reference_or_a_header_named_key_is_no_plaintext_secret(tmp_path):
    token = _socket_doc("kubernetes", _k8s({"token": "from:aws:ssm:/k8s/token"}))
    header = _socket_doc("http", _typed("http", {
        "httpServiceType": "standard", "standardHttpServiceConfiguration": {
            "hostname": "h", "port": 80, "scheme": "http", "hostHeader": "h",
            "headers": [{"key": "X-Team", "value": "ops"}]}}))
    write(tmp_path, {"token.yaml": token, "header.yaml": header.replace("name: s", "name: w")})
    result = load([tmp_path], env={}, strict=True)
    assert result.ok and not messages(result), messages(result)

# --- files and documents --------------------------------------------------------------------


def test_hidden_entries_are_skipped_and_both_suffixes_read(tmp_path):
    write(
        tmp_path,
        {
            "a.yaml": socket("a"),
            "sub/b.yml": socket("b"),
            "sub/notes.txt": "not yaml: [",
            ".git/c.yaml": "{{{ broken",
            "sub/.hidden.yaml": "{{{ broken",
            ".cache/d/e.yaml": socket("e"),
        },
    )
    result = load([tmp_path])
    assert result.ok, messages(result)
    assert sorted(result.desired.sockets) == ["a", "b"]
    assert [p.name for p in result.files] == ["a.yaml", "b.yml"]


def test_a_symlinked_root_is_followed_across_an_atomic_swap(tmp_path):
    write(tmp_path, {"rev1/web.yaml": socket("web-one"), "rev2/web.yaml": socket("web-two")})
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "rev1")
    assert list(load([link]).desired.sockets) == ["web-one"]
    tmp_link = tmp_path / "current.tmp"
    tmp_link.symlink_to(tmp_path / "rev2")
    os.replace(tmp_link, link)  # what git-sync does
    result = load([link])
    assert list(result.desired.sockets) == ["web-two"]
    assert result.files == [link / "web.yaml"]


def test_multi_document_files_with_empty_documents_and_comments(tmp_path):
    text = (
        "# leading comment\n---\n---\n" + socket("a") + "...\n---\n# only a comment\n---\n"
        + socket("b") + "---\n"
    )  # fmt: skip
    write(tmp_path, {"many.yaml": text})
    result = load([tmp_path])
    assert result.ok, messages(result)
    assert result.documents == 2
    assert result.desired.sockets["a"].source.line == 4
    assert result.desired.sockets["b"].source.line == 14


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_problems_in_later_documents_point_at_the_right_line(tmp_path, newline):
    plain = "  type: http\n  protected: {username: a, password: pw}\n"
    text = (
        "# header\n" + socket("one", plain) + "---\n# comment\n\n" + socket("two")
        + "---\n" + socket("three", "  type: htp\n")
    )  # fmt: skip
    (tmp_path / "m.yaml").write_bytes(text.replace("\n", newline).encode())
    result = load([tmp_path])
    assert [(d.line, d.column, d.severity.value) for d in result.diagnostics] == [
        (8, 38, "warning"),
        (24, 9, "error"),
    ]
    assert result.desired.sockets["two"].source.line == 12


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n",
        "# c\n\n  a: 1\n---\n--- b\n---\n# x\n- 1\n...\n---\nc: 3\n",
        "%YAML 1.1\n---\na: 1\n...\n---\nb: 2\n...\n# end\n",
        "---\n---\n",
        "key: |\n  --- not a marker\n  text\n",
        "---   a\n---\r\n\r\n  b: 2\r\n...\r\n",
        "a: 1\n---\n",
    ],
)
def test_the_quick_document_scan_agrees_with_the_yaml_composer(text):
    docs, error, _ = load_documents(text)
    assert error is None
    locator = Locator(text)
    starts = document_starts(text)
    assert len(starts) == len(docs)
    for index, data in enumerate(docs):
        if data is not None:
            assert starts[index] == locator.document(index)


def test_yaml_1_1_surprises_stay_strings():
    [doc], error, _ = load_documents("a: 18:00\nb: 2025-01-31\nc: 2025-01-31T08:00:00Z\nd: 0x1F\n")
    assert error is None
    assert doc == {"a": "18:00", "b": "2025-01-31", "c": "2025-01-31T08:00:00Z", "d": 31}


def test_other_tools_yaml_in_the_tree_is_skipped_but_our_typos_are_not(tmp_path):
    write(
        tmp_path,
        {
            "k8s.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "workflow.yml": "on: [push]\njobs: {}\n",
            "typo.yaml": "apiVersion: border0-reconciler/v2\nkind: Socket\n",
            "typo2.yaml": socket("x").replace("kind: Socket", "kind: Sockets"),
            "headless.yaml": "metadata: {name: y}\nspec: {type: http}\n",
        },
    )
    result = load([tmp_path])
    assert result.skipped == 2
    assert [(Path(d.file).name, d.line, d.column, d.message) for d in result.diagnostics] == [
        ("headless.yaml", 1, 1, "apiVersion is required (use border0-reconciler/v1)"),
        ("headless.yaml", 1, 1, "kind is required (Socket, Policy or Connector)"),
        ("typo.yaml", 1, 1, "metadata is required"),
        ("typo.yaml", 1, 1, "spec is required"),
        ("typo.yaml", 1, 13,
         "apiVersion: 'border0-reconciler/v2' is not supported (use border0-reconciler/v1)"),
        ("typo2.yaml", 2, 7, "kind: 'Sockets' is not one of Socket, Policy, Connector (did you mean Socket?)"),
    ]  # fmt: skip


def test_a_cut_or_half_written_document_is_an_error_never_another_tools_yaml(tmp_path):
    """Issue 12: a file truncated to `---\napi` (a scalar document) passed as "another tool's
    YAML", so the sockets of the missing half were pruned."""
    whole = "---\n".join(socket(f"s{i}") for i in range(4))
    cuts = {
        "scalar.yaml": whole[: whole.index("---\n", 200) + 7],  # ends in ---\napi
        "list.yaml": "- a\n- b\n",
        "only-version.yaml": socket("a") + "---\napiVersion: border0-reconciler/v1\n",
        "only-kind.yaml": "kind: Socket\n---\nkind: Deployment\n",
        "headless-next-to-ours.yaml": socket("b") + "---\nmetadata:\n  name: c\n",
    }
    for name, text in cuts.items():
        folder = tmp_path / name.removesuffix(".yaml")
        write(folder, {name: text})
        result = load([folder])
        assert not result.ok, name
        assert result.skipped == 0, name
        assert "kind" in {d.code for d in result.diagnostics}, (name, result.diagnostics)
    assert cuts["scalar.yaml"].endswith("---\napi")
    message = str(load([tmp_path / "scalar"]).diagnostics[0])
    assert message.endswith("not a plain value: put each object in its own document, separated "
                            "by ---; a cut or half-written file looks like this too")
    # another tool's documents stay skipped: both apiVersion and kind, or a headless file
    write(tmp_path / "others", {
        "k8s.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
        "ci.yml": "on: [push]\njobs: {}\n",
        "ours.yaml": socket("d"),
    })
    result = load([tmp_path / "others"])
    assert result.ok and result.skipped == 2 and list(result.desired.sockets) == ["d"]


def test_duplicate_keys_are_errors_and_other_documents_still_load(tmp_path):
    text = socket("a", "  type: http\n  description: one\n  description: two\n") + "---\n"
    write(tmp_path, {"dup.yaml": text + socket("b")})
    result = load([tmp_path])
    assert [(d.line, d.column, d.code, d.message) for d in result.diagnostics] == [
        (
            8,
            3,
            "duplicate-key",
            "duplicate key 'description' (also on line 7; the last one would win)",
        )
    ]
    assert sorted(result.desired.sockets) == ["a", "b"] and not result.ok


# --- validation and cross-checks ------------------------------------------------------------


def test_schema_problems_name_the_field_and_what_is_allowed(tmp_path):
    body = (
        "  type: database\n"  # 6
        "  upstream:\n"  # 7
        "    type: mssqll\n"  # 8
        "    username: {env: U}\n"  # 9
        "    password: {vault: x}\n"  # 10
        "  connector:\n"  # 11
        "    port: 70000\n"  # 12
        "    sshserver: yes\n"  # 13
        "  policies: [Bad_Name]\n"  # 14
    )
    write(tmp_path, {"s.yaml": socket("ok-name", body, "  labels: {tier: 1, managed-by: me}\n")})
    result = load([tmp_path], env={"U": "u"})
    got = [(d.line, d.column, d.message) for d in result.diagnostics]
    assert got == [
        (5, 18, "metadata.labels.tier: expected a string, got a number (1)"),
        (5, 21, ("metadata.labels: key 'managed-by' is not allowed: label keys must be 1-128 "
         "characters and may not be managed-by or start with border0-reconciler/ (reserved for "
         "the reconciler's tags)")),
        (9, 11, ("spec.upstream.type: 'mssqll' is not one of mysql, postgres, mssql (database "
         "sockets take upstream type mysql, postgres or mssql)")),
        (11, 16, "spec.upstream.password: unknown field 'vault' (allowed: secret, env, file)"),
        (13, 11, "spec.connector.port: 70000 is out of range (1-65535)"),
        (14, 16, "spec.connector.sshserver: the built-in ssh server is for ssh sockets"),
        (15, 14, ("spec.policies[0]: 'Bad_Name' is not valid: must be a policy name: lowercase "
         "letters, digits and '-', starting and ending with a letter or digit")),
    ]  # fmt: skip
    assert result.desired.sockets == {}


def test_empty_optional_lists_and_maps_may_be_left_blank(tmp_path):
    meta = "  labels:\n  annotations:\n"
    write(tmp_path, {"s.yaml": socket("web", "  type: http\n  policies:\n", meta)})
    result = load([tmp_path])
    assert result.ok, messages(result)
    web = result.desired.sockets["web"]
    assert (web.labels, web.policies, web.prune) == ({}, (), True)


def test_invalid_names_suggest_a_valid_one(tmp_path):
    write(tmp_path, {"s.yaml": socket("Orders_DB.prod")})
    [problem] = load([tmp_path]).diagnostics
    assert (problem.line, problem.column) == (4, 9)
    assert problem.message.startswith("metadata.name: 'Orders_DB.prod' is not valid: must be a DNS")
    assert problem.message.endswith("(try 'orders-db-prod')")


def test_duplicate_names_of_the_same_kind_name_both_places(tmp_path):
    write(
        tmp_path,
        {
            "a.yaml": socket("web") + "---\n" + policy("web"),
            "b/c.yaml": "# another\n" + socket("web"),
        },
    )
    result = load([tmp_path])
    assert messages(result) == [
        (
            f"{tmp_path}/b/c.yaml:5:9: error: duplicate Socket name 'web': also declared at "
            f"{tmp_path}/a.yaml:4:9"
        )
    ]


def test_policy_references_must_be_declared_or_external(tmp_path):
    body = "  type: http\n  policies: [known, unknown, outside]\n  externalPolicies: [outside]\n"
    write(tmp_path, {"s.yaml": socket("web", body), "p.yaml": policy("known")})
    result = load([tmp_path])
    [problem] = result.diagnostics
    assert (problem.file, problem.line, problem.column) == (str(tmp_path / "s.yaml"), 7, 21)
    assert problem.message.startswith("spec.policies[1]: policy 'unknown' is not declared")
    assert problem.code == "missing-policy"


def test_policy_documents_v1_and_v2_are_checked_for_typos(tmp_path):
    v2 = (
        policy("v2-ok")
        .replace("version: v1", "version: v2")
        .replace(
            "    action: [http]\n",
            "    permissions:\n      ssh: {shell: {}, allowed_usernames: [root]}\n",
        )
        .replace("who: {domain: [example.com]}", "who: {email: [a@example.com]}")
    )
    v2_domain = (
        policy("v2-domain")
        .replace("version: v1", "version: v2")
        .replace("action: [http]", "permissions: {http: {}}")
    )
    v1_typo = policy("v1-typo").replace("who: {domain", "who: {domian")
    write(tmp_path, {"a.yaml": v2, "b.yaml": v2_domain, "c.yaml": v1_typo})
    result = load([tmp_path])
    assert "v2-ok" in result.desired.policies
    assert [(Path(d.file).name, d.message) for d in result.diagnostics] == [
        ("b.yaml", ("spec.policyData.condition.who: unknown field 'domain' "
                   "(allowed: email, group, service_account)")),
        ("c.yaml", "spec.policyData.condition.who: unknown field 'domian' (did you mean 'domain'?)"),
    ]  # fmt: skip


def test_io_problems_are_diagnostics_not_exceptions(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "missing-target")
    (tmp_path / "loop.yaml").write_text("a: &x [*x]\n")
    result = load([tmp_path, tmp_path / "nope"])
    got = [(Path(d.file).name, d.message.split(" (")[0]) for d in result.diagnostics]
    assert got == [
        ("bin.yaml", "not a YAML text file"),
        ("dangling.yaml", "cannot read file: No such file or directory"),
        ("latin1.yaml", "not UTF-8 text"),
        ("loop.yaml", "YAML syntax error: recursive alias"),
        ("nope", "no such file or directory"),
    ]


# --- env files ------------------------------------------------------------------------------


def test_read_env_file(tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text(
        "# comment\n\nA=1\nexport B = two words # note\nC='single # kept'\n"
        'D="dq \\"x\\"\\n"\nE=\n'
    )
    assert read_env_file(env_file) == {
        "A": "1", "B": "two words", "C": "single # kept", "D": 'dq "x"\n', "E": "",
    }  # fmt: skip
    env_file.write_text("A=1\nTOKEN secret-value\n")
    with pytest.raises(EnvFileError) as info:
        read_env_file(env_file)
    assert str(info.value) == f"{env_file}:2: expected KEY=VALUE"
    env_file.write_text('PW="unterminated-secret\n')
    with pytest.raises(EnvFileError) as info:
        read_env_file(env_file)
    assert "unterminated-secret" not in str(info.value)
    with pytest.raises(EnvFileError, match="No such file"):
        read_env_file(tmp_path / "missing.env")
    env_file.write_text("".join(f"K{i}=value\n" for i in range(120_000)))  # 1.3 MB
    with pytest.raises(EnvFileError) as info:
        read_env_file(env_file)
    assert str(info.value) == f"cannot read env file {env_file}: over the limit of 1,048,576 bytes"


# --- the schemas themselves -----------------------------------------------------------------


def _schemas() -> dict[str, dict]:
    return {n: json.loads(schema_path(n).read_text()) for n in ("manifest", "socket", "policy")}


def test_every_property_has_a_description_for_editors():
    missing = []

    conditional = {"enum", "const", "errorMessage", "not", "properties", "required"}

    def walk(node, where):
        """Each property needs a description, except restatements inside if/then branches."""
        if isinstance(node, dict):
            in_branch = any(word in where for word in (".if", ".then", ".else", ".allOf"))
            for name, sub in (node.get("properties") or {}).items():
                if not isinstance(sub, dict) or "description" in sub or "$ref" in sub:
                    continue
                if not (in_branch and set(sub) <= conditional):
                    missing.append(f"{where}.{name}")
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    for name, schema in _schemas().items():
        jsonschema.Draft202012Validator.check_schema(schema)
        walk(schema, name)
    assert missing == []


def test_the_editor_schema_dispatches_on_kind():
    schemas = _schemas()
    registry = referencing.Registry().with_resources(
        (f"{n}.schema.json", referencing.Resource.from_contents(s)) for n, s in schemas.items()
    )
    validator = jsonschema.Draft202012Validator(schemas["manifest"], registry=registry)
    docs = []
    for file in EXAMPLE_FILES:
        docs += [d for d in load_documents(file.read_text())[0] if d]
    assert len(docs) == 12
    for doc in docs:
        assert list(validator.iter_errors(doc)) == []
    bad_kind = {**docs[0], "kind": "Sockett"}
    assert any(e.validator == "enum" for e in validator.iter_errors(bad_kind))
    bad_socket = json.loads(json.dumps(docs[0]))
    bad_socket["spec"]["typo"] = 1
    policy_doc = next(d for d in docs if d["kind"] == "Policy")
    assert not validator.is_valid(bad_socket if bad_socket["kind"] == "Socket" else policy_doc)


def test_the_fast_check_agrees_with_jsonschema(tmp_path):
    from reconciler.manifests.schema_check import _fast_check
    from reconciler.manifests.schema_check import schema_validator as _validator

    cases = [
        {"spec": {"type": "https", "upstream": {"type": "http"}}},
        {"spec": {"type": "tls", "upstream": {"httpHostname": "x"}}},
        {"spec": {"type": "ssh", "protected": {"username": "a", "password": "b"}}},
        {"spec": {"type": "http", "connector": {"host": "h"}}},
        {"spec": {"type": "http", "connector": {"httpserverDir": "/srv"}}},
        {"spec": {"type": "http", "connector": {"httpserver": True, "sshserver": True}}},
        {"spec": {"type": "http", "upstream": {"password": {}}}},
        {"spec": {"type": "http"}, "metadata": {"annotations": {"border0-reconciler/x": "1"}}},
        {"spec": {"type": "http"}, "metadata": {"labels": {"border0-reconciler/x": "1"}}},
        {"spec": {"type": "http", "connector": {"proxy": "ftp://x"}}},
    ]
    for case in cases:
        doc = {
            "apiVersion": "border0-reconciler/v1",
            "kind": "Socket",
            "metadata": {"name": "x", **case.get("metadata", {})},
            "spec": case["spec"],
        }
        assert _fast_check("Socket")(doc) is False, case
        assert not _validator("Socket").is_valid(doc), case
    for doc in (d for f in EXAMPLE_FILES for d in load_documents(f.read_text())[0]):
        assert _fast_check(doc["kind"])(doc) and _validator(doc["kind"]).is_valid(doc)


def test_a_thousand_sockets_load_quickly(tmp_path):
    docs = [
        socket(f"svc-{i}", f"  type: tls\n  connector: {{host: 127.0.0.1, port: {1000 + i}}}\n")
        for i in range(1000)
    ]
    write(tmp_path, {"many.yaml": "---\n".join(docs)})
    result = load([tmp_path])  # how fast: benchmarks/ (no test asserts on wall-clock time)
    assert result.ok and len(result.desired.sockets) == 1000


def test_a_third_party_validator_reads_the_schema_files_as_editors_do(tmp_path):
    """check-jsonschema resolves manifest.schema.json's relative $refs from the files."""
    single = [f for f in EXAMPLE_FILES if f.read_text().count("\n---") == 0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(socket("x", "  type: database\n  upstream: {type: mysql}\n"))
    command = ["--schemafile", str(schema_path("manifest"))]
    ok = check_jsonschema([*command, *map(str, single)])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    failed = check_jsonschema([*command, str(bad)])
    assert failed.returncode == 1
    assert "'username' is a required property" in failed.stdout
