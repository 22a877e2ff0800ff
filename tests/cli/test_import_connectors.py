"""`import` of the connector model: an organization with a connector and one socket of every
type border0's SDK has, bound to it with typed upstreams, imported with the real CLI, then
planned: empty. The imported typed upstreams are border0's upstream_configuration as the
twin's schema (generated from the SDK) accepts it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from helpers import REPO, cli

from reconciler.manifests.loader import load
from reconciler.reconcile import ReconcileOptions, reconcile
from reconciler.secrets import FINGERPRINT_KEY_ENV
from reconciler.upstream import SERVICE_TYPES

HEAD = {"apiVersion": "border0-reconciler/v1"}
SSH_PASSWORD = "pw-ssh-3e9a"


def std(block: str, sub: str, **fields: object) -> dict:
    return {"serviceType": block, f"{block}ServiceConfiguration": {
        f"{block}ServiceType": sub, f"standard{block[0].upper()}{block[1:]}ServiceConfiguration":
            fields}}


#: One upstream per socket type of border0-go types/service (configuration.go), vpn and
#: aws_access included; the test below checks none is missing.
UPSTREAMS: dict[str, tuple[str, dict]] = {
    "web": ("http", std("http", "standard", hostname="web.internal", port=8080, scheme="http",
                        hostHeader="web.internal")),
    "files": ("http", {"serviceType": "http", "httpServiceConfiguration": {
        "httpServiceType": "connector_file_server",
        "fileserverHttpServiceConfiguration": {"topLevelDirectory": "/srv/files"}}}),
    "shell": ("ssh", {"serviceType": "ssh", "sshServiceConfiguration": {
        "sshServiceType": "standard", "standardSshServiceConfiguration": {
            "hostname": "10.0.0.5", "port": 22, "sshAuthenticationType": "username_and_password",
            "usernameAndPasswordAuthConfiguration": {
                "usernameProvider": "defined", "username": "ops",
                "password": {"env": "SHELL_PASSWORD"}}}}}),
    "orders": ("database", {"serviceType": "database", "databaseServiceConfiguration": {
        "databaseServiceType": "standard", "standardDatabaseServiceConfiguration": {
            "hostname": "db.internal", "port": 5432, "protocol": "postgres",
            "authenticationType": "username_and_password", "databaseName": "orders",
            "usernameAndPasswordAuthConfiguration": {
                "username": "orders", "password": "from:env:ORDERS_PASSWORD"}}}}),
    "redis": ("tls", std("tls", "standard", hostname="redis.internal", port=6379)),
    "desk": ("vnc", {"serviceType": "vnc", "vncServiceConfiguration": {
        "hostname": "10.0.0.9", "port": 5900, "password": "from:file:/etc/vnc"}}),
    "windows": ("rdp", {"serviceType": "rdp", "rdpServiceConfiguration": {
        "hostname": "10.0.0.10", "port": 3389}}),
    "cluster": ("kubernetes", {"serviceType": "kubernetes", "kubernetesServiceConfiguration": {
        "kubernetesServiceType": "standard",
        "standardKubernetesServiceConfiguration": {"kubeconfigPath": "/etc/kube"}}}),
    "lan": ("subnet_router", {"serviceType": "subnet_router",
                              "subnetRouterServiceConfiguration": {
                                  "ipv4CidrRanges": ["10.0.0.0/8"]}}),
    "exit": ("exit_node", {"serviceType": "exit_node", "exitNodeServiceConfiguration": {}}),
    "warehouse": ("snowflake", {"serviceType": "snowflake", "snowflakeServiceConfiguration": {
        "account": "acme-1", "username": "etl", "password": "from:aws:ssm:/snowflake/etl"}}),
    "search": ("elasticsearch", {"serviceType": "elasticsearch",
                                 "elasticsearchServiceConfiguration": {
        "elasticsearchServiceType": "standard",
        "standardElasticsearchServiceConfiguration": {
            "hostname": "es.internal", "port": 9200, "protocol": "https",
            "authenticationType": "basic", "basicAuthConfiguration": {
                "username": "elastic", "password": "from:aws:secretsmanager:es"}}}}),
    "buckets": ("aws_s3", {"serviceType": "aws_s3", "awsS3ServiceConfiguration": {
        "bucketAllowlist": ["logs"]}}),
    "office-vpn": ("vpn", {"serviceType": "vpn", "vpnServiceConfiguration": {
        "dhcpPoolSubnet": "100.64.0.0/24", "advertisedRoutes": ["10.1.0.0/16"]}}),
    "aws": ("aws_access", {"serviceType": "aws_access", "awsAccessServiceConfiguration": {
        "awsAccounts": [{"awsAccountId": "123456789012", "awsIamRoles": [
            {"arn": "arn:aws:iam::123456789012:role/ReadOnly", "name": "read-only"}]}]}}),
}


def org_manifests(folder: Path) -> Path:
    docs = [{**HEAD, "kind": "Connector", "metadata": {"name": "edge"},
             "spec": {"description": "edge hosts", "builtInSsh": True}}]
    for name, (socket_type, upstream) in UPSTREAMS.items():
        docs.append({**HEAD, "kind": "Socket", "metadata": {"name": name}, "spec": {
            "type": socket_type, "connectors": ["edge"], "upstream": upstream}})
    folder.mkdir(parents=True)
    (folder / "org.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def test_import_then_plan_over_every_socket_type_is_empty(tmp_path, emulator, shared_key):
    assert {t for t, _ in UPSTREAMS.values()} == set(SERVICE_TYPES)
    env = {"SHELL_PASSWORD": SSH_PASSWORD}
    made = reconcile([org_manifests(tmp_path / "org")], emulator.client(),
                     ReconcileOptions(env=env))
    assert made.ok, (made.error, [str(d) for d in made.diagnostics])
    api = ["--api", emulator.url]
    token = {"BORDER0_ADMIN_TOKEN": emulator.token, FINGERPRINT_KEY_ENV: shared_key}
    out = tmp_path / "imported"
    code, stdout, err = cli(["import", str(out), *api], env=token)
    assert code == 0, err
    assert "1 connector (declare their tokens: tokens are never imported)" in stdout

    connector = yaml.safe_load((out / "connectors" / "edge.yaml").read_text())
    assert connector["spec"] == {"description": "edge hosts", "builtInSsh": True}
    shell = yaml.safe_load((out / "sockets" / "shell.yaml").read_text())["spec"]
    assert shell["connectors"] == ["edge"]
    auth = shell["upstream"]["sshServiceConfiguration"]["standardSshServiceConfiguration"][
        "usernameAndPasswordAuthConfiguration"]
    assert auth["username"] == "ops" and list(auth["password"]) == ["env"]
    for name, (_, upstream) in UPSTREAMS.items():
        written = yaml.safe_load((out / "sockets" / f"{name}.yaml").read_text())["spec"]
        assert written["upstream"]["serviceType"] == upstream["serviceType"], name
    assert SSH_PASSWORD not in "".join(p.read_text() for p in out.rglob("*.yaml"))

    # every imported upstream is one border0's own rules accept
    schema = json.loads((REPO / "schemas" / "upstream-configuration.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)  # one, not one (and a meta-check) a body
    loaded = load([out], env={auth["password"]["env"]: SSH_PASSWORD})
    assert loaded.ok, [str(d) for d in loaded.diagnostics]
    for spec in loaded.desired.sockets.values():
        body = json.loads(json.dumps(spec.upstream_config, default=lambda s: s.value))
        validator.validate(body)

    env_file = tmp_path / "imported.env"
    env_file.write_text(f"{auth['password']['env']}={SSH_PASSWORD}\n")
    code, stdout, err = cli(["plan", str(out), *api, "--env-file", str(env_file)], env=token)
    assert code == 0 and "No changes." in stdout, (stdout, err)


def test_import_names_the_tokens_of_our_connector_that_applying_it_would_revoke(
        tmp_path, emulator, shared_key):
    """Tokens are never imported (border0 gives back neither value nor destination), but a
    connector this instance owns names its tokens in its marker: the imported Connector, which
    declares none, would revoke them, and with them the running connector's token. The import
    lists each such token as left out and exits 1; a token made by hand is not ours, so not
    listed (nor revoked)."""
    folder = tmp_path / "org"
    folder.mkdir()
    (folder / "edge.yaml").write_text(yaml.safe_dump({**HEAD, "kind": "Connector",
        "metadata": {"name": "edge"}, "spec": {"tokens": [{"name": "edge-a", "expiresIn": "90d",
            "destination": {"file": str(tmp_path / "edge-a.token")}}]}}))
    client = emulator.client()
    made = reconcile([folder], client, ReconcileOptions())
    assert made.ok, made.error
    edge = client.find_connector("edge")["connector_id"]
    client.create_connector_token({"connector_id": edge, "name": "by-hand"})
    api = ["--api", emulator.url]
    token = {"BORDER0_ADMIN_TOKEN": emulator.token, FINGERPRINT_KEY_ENV: shared_key}
    out = tmp_path / "imported"

    code, stdout, err = cli(["import", str(out), *api], env=token)
    assert code == 1, stdout + err
    assert ("skipped token edge-a of connector edge: border0 never gives a token's value or "
            "destination back") in stdout
    assert "by-hand" not in stdout
    assert (f"note: instance default manages 1 of the objects left out (token edge/edge-a): "
            f"applying {out} would delete them") in stdout
    assert err.startswith("error: 1 object left out"), err
    code, stdout, err = cli(["import", str(tmp_path / "again"), *api, "-o", "json"], env=token)
    assert code == 1 and [line.split(":")[0] for line in json.loads(stdout)["undescribed"]] == [
        "token edge-a of connector edge"], stdout + err

    # what the import warns of is what a plan of the imported folder does
    code, stdout, err = cli(["plan", str(out), *api, "-o", "json"], env=token)
    assert code == 0, err
    assert [(c["kind"], c["name"], c["action"]) for c in json.loads(stdout)["changes"]
            if c["kind"] == "token"] == [("token", "edge/edge-a", "delete")]
