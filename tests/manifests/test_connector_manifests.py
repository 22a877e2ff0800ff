"""The connector model in manifests: kind: Connector, spec.connectors, the typed upstream and
the legacy fields' warnings; `validate` refuses what border0 would, with file:line."""

from __future__ import annotations

from pathlib import Path

import yaml
from helpers import cli

from reconciler.manifests.loader import load
from reconciler.secrets import Secret

HEAD = {"apiVersion": "border0-reconciler/v1"}


def connector(name: str, **spec: object) -> dict:
    return {**HEAD, "kind": "Connector", "metadata": {"name": name}, "spec": spec}


def sock(name: str, type_: str, upstream: dict | None = None, **spec: object) -> dict:
    body: dict = {"type": type_, **spec}
    if upstream is not None:
        body["upstream"] = upstream
    return {**HEAD, "kind": "Socket", "metadata": {"name": name}, "spec": body}


def ssh_password(password: object) -> dict:
    return {"serviceType": "ssh", "sshServiceConfiguration": {
        "sshServiceType": "standard",
        "standardSshServiceConfiguration": {
            "hostname": "10.0.0.5", "port": 22,
            "sshAuthenticationType": "username_and_password",
            "usernameAndPasswordAuthConfiguration": {"username": "ops", "password": password},
        }}}


def postgres(**standard: object) -> dict:
    return {"serviceType": "database", "databaseServiceConfiguration": {
        "databaseServiceType": "standard",
        "standardDatabaseServiceConfiguration": {
            "hostname": "db.internal", "protocol": "postgres",
            "authenticationType": "username_and_password",
            "usernameAndPasswordAuthConfiguration": {"username": "app",
                                                     "password": "from:env:DB_PASSWORD"},
            **standard}}}


def write_docs(folder: Path, docs: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_validate_refuses_what_border0_would_with_file_and_line(tmp_path):
    """An ssh socket whose upstream says http, a database without a port and an unknown
    connector name: three errors, each at its line, exit 1."""
    http = {"serviceType": "http", "httpServiceConfiguration": {
        "httpServiceType": "standard", "standardHttpServiceConfiguration": {
            "hostname": "web", "port": 80, "hostHeader": "web"}}}
    folder = write_docs(tmp_path / "m", [
        connector("edge"),
        sock("shell", "ssh", http, connectors=["edge"]),
        sock("orders", "database", postgres(), connectors=["edgy"]),
    ])
    code, out, err = cli(["validate", str(folder)])
    file = folder / "all.yaml"
    assert code == 1, (out, err)
    assert f"{file}:{line_of(file, 'serviceType: http')}:" in out
    assert "spec.upstream.serviceType: a ssh socket takes serviceType ssh" in out
    assert (f"{file}:{line_of(file, 'standardDatabaseServiceConfiguration')}:" in out
            and "standardDatabaseServiceConfiguration.port is required" in out)
    assert (f"{file}:{line_of(file, '- edgy')}:" in out
            and "connector 'edgy' is not declared in these manifests (did you mean 'edge'?)"
            in out)
    assert "invalid: 3 errors" in out


def test_sub_types_and_blocks_are_checked_as_the_sdk_validates(tmp_path):
    """An unknown sub-type, a block that does not match its sub-type, and two blocks."""
    bad_auth = ssh_password({"env": "PW"})
    standard = bad_auth["sshServiceConfiguration"]["standardSshServiceConfiguration"]
    standard["sshAuthenticationType"] = "private_key"  # but the password block is given
    two_blocks = postgres()
    two_blocks["httpServiceConfiguration"] = {"httpServiceType": "standard"}
    folder = write_docs(tmp_path / "m", [
        sock("a", "ssh", {"serviceType": "ssh", "sshServiceConfiguration": {
            "sshServiceType": "telnet"}}),
        sock("b", "ssh", bad_auth),
        sock("c", "database", two_blocks),
    ])
    result = load([folder], env={"PW": "x"})
    text = "\n".join(str(d) for d in result.diagnostics)
    assert not result.ok
    assert "sshServiceType" in text and "telnet" in text
    assert "privateKeyAuthConfiguration is required" in text
    assert ("usernameAndPasswordAuthConfiguration: not allowed when sshAuthenticationType is "
            "private_key (use privateKeyAuthConfiguration)") in text
    assert ("httpServiceConfiguration: not allowed when serviceType is database (use "
            "databaseServiceConfiguration)") in text  # a second block
    assert "False schema" not in text and "'password'" not in text  # no values shown


def test_usernames_and_their_providers_are_checked_as_the_sdk_validates(tmp_path):
    """border0-go types/service/common.go validateUsernameWithProvider: `defined` (or none)
    needs a username; password and key logins take no other provider; certificate and
    ec2 instance connect logins may take `prompt_client`, the built-in server also
    `use_connector_user`, and then no username. These validated and applied to the twin;
    border0 refuses them."""
    def ssh(service_type: str, block: dict) -> dict:
        key = {"standard": "standardSshServiceConfiguration",
               "connector_built_in_ssh_service": "builtInSshServiceConfiguration"}[service_type]
        return {"serviceType": "ssh", "sshServiceConfiguration": {
            "sshServiceType": service_type, key: block}}

    def standard(auth: str, block: dict) -> dict:
        key = {"username_and_password": "usernameAndPasswordAuthConfiguration",
               "border0_certificate": "border0CertificateAuthConfiguration"}[auth]
        return ssh("standard", {"hostname": "10.0.0.5", "port": 22,
                                "sshAuthenticationType": auth, key: block})

    folder = write_docs(tmp_path / "m", [
        sock("no-user", "ssh", standard("username_and_password", {"password": "from:env:P"})),
        sock("prompted-pw", "ssh", standard("username_and_password", {
            "usernameProvider": "prompt_client", "password": "from:env:P"})),
        sock("cert-connector-user", "ssh", standard("border0_certificate", {
            "usernameProvider": "use_connector_user"})),
        sock("builtin-both", "ssh", ssh("connector_built_in_ssh_service", {
            "usernameProvider": "prompt_client", "username": "root"})),
        # what border0 takes
        sock("cert-prompted", "ssh", standard("border0_certificate", {
            "usernameProvider": "prompt_client"})),
        sock("cert-user", "ssh", standard("border0_certificate", {"username": "ops"})),
        sock("builtin", "ssh", ssh("connector_built_in_ssh_service", {
            "usernameProvider": "use_connector_user"})),
    ])
    code, out, err = cli(["validate", str(folder)])
    assert code == 1, (out, err)
    assert "usernameAndPasswordAuthConfiguration.username is required" in out
    assert "usernameProvider: 'prompt_client' is not one of defined" in out
    assert "usernameProvider: 'use_connector_user' is not one of defined, prompt_client" in out
    assert ("builtInSshServiceConfiguration.username: not allowed when usernameProvider is "
            "prompt_client or use_connector_user") in out
    assert "invalid: 4 errors" in out, out


def test_typed_upstream_becomes_border0s_configuration_with_secrets_resolved(tmp_path):
    """camelCase in, the SDK's snake_case out; {env} is resolved into a Secret, a from:
    reference stays text (border0's connector resolves it on its host)."""
    folder = write_docs(tmp_path / "m", [
        connector("edge"),
        sock("shell", "ssh", ssh_password({"env": "SSH_PW"}), connectors=["edge"],
             recording=True, endToEndEncryption=True),
        sock("orders", "database", postgres(port=5432, databaseName="orders"),
             connectors=["edge"]),
    ])
    result = load([folder], env={"SSH_PW": "pw-1"})
    assert result.ok, [str(d) for d in result.diagnostics]
    shell = result.desired.sockets["shell"]
    auth = shell.upstream_config["ssh_service_configuration"][
        "standard_ssh_service_configuration"]["username_and_password_auth_configuration"]
    assert auth == {"username": "ops", "password": Secret("pw-1")}
    assert shell.connectors == ("edge",) and shell.end_to_end_encryption is True
    orders = result.desired.sockets["orders"].upstream_config
    standard = orders["database_service_configuration"]["standard_database_service_configuration"]
    assert standard["database_name"] == "orders" and standard["port"] == 5432
    assert standard["username_and_password_auth_configuration"]["password"] == (
        "from:env:DB_PASSWORD")
    assert result.desired.sockets["orders"].secrets() == ()  # a reference is no secret


def test_connector_kind_with_tokens(tmp_path):
    folder = write_docs(tmp_path / "m", [connector(
        "edge", description="edge hosts", builtInSsh=True,
        tokens=[{"name": "edge-1", "expiresIn": "90d", "destination": {"file": "t/edge.token"}},
                {"name": "ci", "expiresAt": "2030-01-01T00:00:00Z",
                 "destination": {"file": "/var/lib/b0/ci.token"}}])])
    result = load([folder])
    assert result.ok, [str(d) for d in result.diagnostics]
    edge = result.desired.connectors["edge"]
    assert (edge.description, edge.built_in_ssh) == ("edge hosts", True)
    first, second = edge.tokens
    assert first.expires_in == 90 * 86400 and first.file == str(folder / "t" / "edge.token")
    assert not first.destination_present
    assert second.expires_at == "2030-01-01T00:00:00Z" and second.file == "/var/lib/b0/ci.token"


def test_a_token_with_both_expiries_or_a_bad_duration_is_refused(tmp_path):
    folder = write_docs(tmp_path / "m", [connector("edge", tokens=[
        {"name": "a", "expiresIn": "90d", "expiresAt": "2030-01-01T00:00:00Z",
         "destination": {"file": "a"}},
        {"name": "b", "expiresIn": "3 weeks", "destination": {"file": "b"}}])])
    code, out, _ = cli(["validate", str(folder)])
    assert code == 1
    assert "must be a number and a unit" in out
    assert out.count("error:") == 2


def test_legacy_fields_validate_with_a_warning_naming_the_new_form(tmp_path):
    folder = write_docs(tmp_path / "m", [
        sock("db", "database", {"type": "postgres", "username": "app",
                                "password": {"env": "PW"}},
             connector={"host": "127.0.0.1", "port": 5432})])
    code, out, _ = cli(["validate", str(folder)])
    assert code == 0, out
    file = folder / "all.yaml"
    assert out.splitlines()[0] == (
        f"{file}:1:1: warning: legacy model: spec.upstream's legacy fields (write serviceType "
        "and a <type>ServiceConfiguration block); spec.connector, one `border0 socket "
        "connect` per socket (declare a kind: Connector and list it in spec.connectors); see "
        "docs/migration.md (`border0-reconciler migrate` rewrites it)")
    assert "ok: 1 socket, 0 policies in 1 file (1 warning)" in out


def test_newer_socket_types_take_only_a_typed_upstream(tmp_path):
    folder = write_docs(tmp_path / "m", [
        sock("desk", "vnc", {"type": "ssh"}),
        sock("desk2", "vnc", {"serviceType": "vnc", "vncServiceConfiguration": {
            "hostname": "10.0.0.9", "port": 5900, "password": "from:aws:ssm:/vnc/pw"}}),
    ])
    result = load([folder])
    errors = [str(d) for d in result.diagnostics if d.severity.value == "error"]
    assert len(errors) == 1 and "this socket type takes a typed upstream" in errors[0]
    assert result.desired.sockets["desk2"].upstream_config["vnc_service_configuration"][
        "password"] == "from:aws:ssm:/vnc/pw"


def test_a_typed_socket_takes_basic_auth_and_declared_secrets_from_the_environment(tmp_path):
    """Beside a typed upstream, spec.protected's password is still a secret resolved from its
    reference (it was dropped, so a protected socket went without its password); a typed
    secret given as {env: NAME, secret: true} is resolved like {env: NAME} (it was sent to
    border0 as the mapping itself). A variable that is not set is an error either way."""
    database = postgres(port=5432)
    database["databaseServiceConfiguration"]["standardDatabaseServiceConfiguration"][
        "usernameAndPasswordAuthConfiguration"]["password"] = {"env": "DB_PW", "secret": True}
    http = {"serviceType": "http", "httpServiceConfiguration": {
        "httpServiceType": "standard", "standardHttpServiceConfiguration": {
            "hostname": "grafana.internal", "port": 3000, "scheme": "http",
            "hostHeader": "grafana.internal"}}}
    folder = write_docs(tmp_path / "m", [
        connector("edge"),
        sock("grafana", "http", http, connectors=["edge"],
             protected={"username": "admin", "password": {"env": "BASIC_PW"}}),
        sock("orders", "database", database, connectors=["edge"]),
    ])
    result = load([folder], env={"BASIC_PW": "basic-pw-1", "DB_PW": "db-pw-1"})
    assert result.ok, [str(d) for d in result.diagnostics]
    grafana, orders = result.desired.sockets["grafana"], result.desired.sockets["orders"]
    assert grafana.secret("protected_password") == Secret("basic-pw-1")
    assert grafana.protected_username == "admin"
    auth = orders.upstream_config["database_service_configuration"][
        "standard_database_service_configuration"]["username_and_password_auth_configuration"]
    assert auth["password"] == Secret("db-pw-1") and auth["password"].declared
    assert orders.secrets() == (Secret("db-pw-1"),)

    missing = load([folder], env={})
    assert sorted(d.message for d in missing.diagnostics) == [
        "spec.protected.password: environment variable BASIC_PW is not set",
        ("spec.upstream.databaseServiceConfiguration.standardDatabaseServiceConfiguration."
         "usernameAndPasswordAuthConfiguration.password: environment variable DB_PW is not set")]
