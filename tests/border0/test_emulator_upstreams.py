"""The twin is strict in both directions about upstream configurations.

It takes a body of every upstream type exactly as border0-go's structs encode it: the bodies
here are built from the SDK's field names and `omitempty` rules (read from the schema that
scripts/gen_upstream_schema.py sdk derives from border0-go types/service), the way Go's
encoding/json writes them: a field without omitempty is always sent, as its zero value when
unset (`""`, `0`, `false`, `null` for a nil pointer, slice or map). And it refuses what the
SDK's Validate refuses: a service type that is not the socket's, two blocks, a missing port,
an unknown sub-type, a connector that does not exist.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import REPO

SCHEMA = json.loads((REPO / "schemas" / "upstream-configuration.schema.json").read_text())
DEFS = SCHEMA["$defs"]
FROM_ENV = "from:env:SSH_KEY"  # resolved by the connector on its host (CLI lib/varsource)


def go_encode(struct: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` (JSON names of SDK fields that are set) as encoding/json writes the struct."""
    properties = DEFS[struct]["properties"]
    unknown = set(values) - set(properties)
    assert not unknown, f"{struct} has no field {unknown}: not the SDK's names"
    out: dict[str, Any] = {}
    for name, prop in properties.items():
        if name in values:
            out[name] = _encode(prop, values[name])
        elif not prop.get("x-omitempty"):
            out[name] = {"string": "", "integer": 0, "boolean": False}.get(prop.get("type"))
    return out


def _encode(prop: dict[str, Any], value: Any) -> Any:
    if "$ref" in prop:
        return go_encode(prop["$ref"].rsplit("/", 1)[1], value)
    if prop.get("type") == "array" and "$ref" in prop.get("items", {}):
        return [_encode(prop["items"], v) for v in value]
    return value


def config(service_type: str, block: dict[str, Any]) -> dict[str, Any]:
    return go_encode("Configuration", {"service_type": service_type,
                                       f"{service_type}_service_configuration": block})


HOST = {"hostname": "upstream.internal", "port": 8443}
AWS = {"aws_credentials": {"aws_profile": "prod"}}
USER_PW = {"username": "ops", "password": "pw"}

#: (socket type, the type's service configuration): every service and sub-type of the SDK.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("http", {"http_service_type": "standard", "standard_http_service_configuration": {
        **HOST, "scheme": "https", "host_header": "app.internal",
        "headers": [{"key": "X-Team", "value": "web"}]}}),
    ("http", {"http_service_type": "connector_file_server",
              "fileserver_http_service_configuration": {"top_level_directory": "/srv"}}),
    ("ssh", {"ssh_service_type": "standard", "standard_ssh_service_configuration": {
        **HOST, "ssh_authentication_type": "username_and_password",
        "username_and_password_auth_configuration": USER_PW}}),
    ("ssh", {"ssh_service_type": "standard", "standard_ssh_service_configuration": {
        **HOST, "ssh_authentication_type": "private_key",
        "private_key_auth_configuration": {"username": "ops", "private_key": FROM_ENV}}}),
    ("ssh", {"ssh_service_type": "standard", "standard_ssh_service_configuration": {
        **HOST, "ssh_authentication_type": "border0_certificate",
        "border0_certificate_auth_configuration": {"username_provider": "prompt_client"}}}),
    ("ssh", {"ssh_service_type": "aws_ssm", "aws_ssm_ssh_service_configuration": {
        "ssm_target_type": "ec2", "aws_ssm_ec2_target_configuration": {
            "ec2_instance_id": "i-0123456789abcdef0", "ec2_instance_region": "eu-west-1",
            **AWS}}}),
    ("ssh", {"ssh_service_type": "aws_ssm", "aws_ssm_ssh_service_configuration": {
        "ssm_target_type": "ecs", "aws_ssm_ecs_target_configuration": {
            "ecs_cluster_region": "eu-west-1", "ecs_cluster_name": "main",
            "ecs_service_name": "api"}}}),
    ("ssh", {"ssh_service_type": "aws_ec2_instance_connect",
             "aws_ec2ic_ssh_service_configuration": {
                 **HOST, "username": "ec2-user", "ec2_instance_id": "i-0123456789abcdef0",
                 "ec2_instance_region": "eu-west-1"}}),
    ("ssh", {"ssh_service_type": "kubectl_exec", "kubectl_exec_ssh_service_configuration": {
        "kubectl_exec_target_type": "standard", "namespace_allowlist": ["default"],
        "namespace_selectors_allowlist": {"default": {"app": ["web"]}},
        "standard_kubectl_exec_target_configuration": {"kubeconfig_path": "/k/config"}}}),
    ("ssh", {"ssh_service_type": "kubectl_exec", "kubectl_exec_ssh_service_configuration": {
        "kubectl_exec_target_type": "aws_eks", "aws_eks_kubectl_exec_target_configuration": {
            "eks_cluster_name": "prod", "eks_cluster_region": "us-east-1"}}}),
    ("ssh", {"ssh_service_type": "docker_exec", "docker_exec_ssh_service_configuration": {
        "container_name_allowlist": ["web-*"]}}),
    ("ssh", {"ssh_service_type": "connector_built_in_ssh_service",
             "built_in_ssh_service_configuration": {"username_provider": "use_connector_user"}}),
    ("database", {"database_service_type": "standard", "standard_database_service_configuration": {
        **HOST, "protocol": "mysql", "authentication_type": "username_and_password",
        "database_name": "shop", "username_and_password_auth_configuration": USER_PW}}),
    ("database", {"database_service_type": "standard", "standard_database_service_configuration": {
        **HOST, "protocol": "postgres", "authentication_type": "tls",
        "tls_auth_configuration": {**USER_PW, "ca_certificate": "", "certificate": "",
                                   "key": ""}}}),
    ("database", {"database_service_type": "standard", "standard_database_service_configuration": {
        **HOST, "protocol": "mongodb", "authentication_type": "no_auth"}}),
    ("database", {"database_service_type": "standard", "standard_database_service_configuration": {
        **HOST, "protocol": "mssql", "authentication_type": "kerberos",
        "kerberos_configuration": USER_PW}}),
    ("database", {"database_service_type": "aws_rds", "aws_rds_database_service_configuration": {
        **HOST, "protocol": "postgres", "authentication_type": "iam", "iam_auth_configuration": {
            "rds_instance_region": "eu-west-1", "username": "iam-user", **AWS}}}),
    ("database", {"database_service_type": "gcp_cloudsql",
                  "gcp_cloudsql_database_service_configuration": {
                      "protocol": "postgres", "cloudsql_connector_iam_configuration": {
                          "username": "sa", "instance_id": "p:r:i",
                          "gcp_credentials_json": "{}"}}}),
    ("database", {"database_service_type": "azure_sql",
                  "azure_sql_database_service_configuration": {
                      **HOST, "protocol": "mssql",
                      "azure_active_directory_integrated_configuration": {}}}),
    ("database", {"database_service_type": "aws_documentdb",
                  "aws_documentdb_database_service_configuration": {
                      **HOST, "protocol": "mongodb", "authentication_type": "username_and_password",
                      "username_and_password_auth_configuration": USER_PW}}),
    ("database", {"database_service_type": "mongodb_atlas",
                  "mongodb_atlas_database_service_configuration": {
                      "hostname": "cluster0.mongodb.net", "protocol": "mongodb",
                      "authentication_type": "iam",
                      "iam_auth_configuration": {"cluster_region": "us-east-1"}}}),
    ("tls", {"tls_service_type": "standard", "standard_tls_service_configuration": HOST}),
    ("tls", {"tls_service_type": "vpn", "vpn_tls_service_configuration": {
        "vpn_subnet": "10.42.0.0/24", "routes": ["10.0.0.0/8"]}}),
    ("tls", {"tls_service_type": "http_proxy", "http_proxy_tls_service_configuration": {
        "host_allowlist": ["*.internal"]}}),
    ("vnc", {**HOST, "password": "vnc-pw"}),
    ("rdp", {**HOST, **USER_PW, "domain": "CORP"}),
    ("vpn", {"dhcp_pool_subnet": "10.43.0.0/24", "advertised_routes": ["10.0.0.0/8"]}),
    ("kubernetes", {"kubernetes_service_type": "standard", "impersonation_enabled": True,
                    "standard_kubernetes_service_configuration": {
                        "server": "https://k8s.internal:6443", "token": "sa-token"}}),
    ("kubernetes", {"kubernetes_service_type": "aws_eks",
                    "aws_eks_kubernetes_service_configuration": {
                        "eks_cluster_name": "prod", "eks_cluster_region": "us-east-1"}}),
    ("subnet_router", {"ipv4_cidr_ranges": ["10.0.0.0/8"], "dns_patterns": ["*.internal"]}),
    ("exit_node", {}),
    ("elasticsearch", {"elasticsearch_service_type": "standard",
                       "standard_elasticsearch_service_configuration": {
                           **HOST, "protocol": "https", "authentication_type": "basic",
                           "basic_auth_configuration": USER_PW}}),
    ("snowflake", {"account": "acme-eu", **USER_PW}),
    ("aws_s3", {**AWS, "bucket_allowlist": ["logs"]}),
]
STRUCT = {"Configuration": "service_type", "HttpServiceConfiguration": "http_service_type",
          "SshServiceConfiguration": "ssh_service_type",
          "DatabaseServiceConfiguration": "database_service_type",
          "TlsServiceConfiguration": "tls_service_type",
          "KubernetesServiceConfiguration": "kubernetes_service_type"}


def http(emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.url + "/",
                        headers={"Authorization": f"Bearer {emulator.token}"})


def test_bodies_are_encoded_as_go_does():
    """omitempty fields unset are left out; the others are sent as their zero value."""
    assert go_encode("UsernameAndPasswordAuthConfiguration", {"username": "u"}) == {
        "username": "u", "password": ""}
    assert go_encode("SubnetRouterServiceConfiguration", {}) == {
        "ipv4_cidr_ranges": None, "ipv6_cidr_ranges": None, "dns_patterns": None}
    assert config("exit_node", {}) == {"service_type": "exit_node",
                                       "exit_node_service_configuration": {}}


def test_the_cases_cover_every_type_and_sub_type_of_the_sdk():
    """So a type the SDK gains shows up here (after regenerating the schema)."""
    bodies = [config(kind, block) for kind, block in CASES]
    seen = json.dumps(bodies)
    for struct, field in STRUCT.items():
        (enum,) = [r["properties"][field]["enum"] for r in DEFS[struct]["allOf"]
                   if "if" not in r and field in r.get("properties", {})]
        deprecated = {"subnet_routes", "aws_access"} if struct == "Configuration" else set()
        missing = [v for v in enum if f'"{field}": "{v}"' not in seen and v not in deprecated]
        assert not missing, f"{struct}.{field}: no case for {missing}"


@pytest.mark.parametrize(("kind", "block"), CASES,
                         ids=[f"{k}-{next(iter(b.values()), '') if b else ''}"[:40]
                              for k, b in CASES])
def test_every_upstream_type_is_taken_as_the_sdk_encodes_it(emulator, kind, block):
    body = config(kind, block)
    with http(emulator) as h:
        edge = h.post("connector", json={"name": "edge", "connector_id": ""}).json()
        made = h.post("socket", json={"name": f"s-{kind.replace('_', '-')}", "socket_type": kind,
                                      "connector_ids": [edge["connector_id"]],
                                      "upstream_configuration": body})
        assert made.status_code == 200, made.text
        (entry,) = h.get(f"socket/{made.json()['socket_id']}/upstream_configurations"
                         ).json()["list"]
        assert entry["config"] == body
        # and a PUT as the SDK sends it (the whole Socket again) is taken too
        again = h.put(f"socket/{made.json()['socket_id']}", json={
            "name": made.json()["name"], "socket_type": kind, "recording_enabled": False,
            "connector_ids": [edge["connector_id"]], "upstream_configuration": body})
        assert again.status_code == 200, again.text


SSH = config("ssh", CASES[2][1])


def _with(path: list[str], value: Any, base: dict[str, Any] = SSH) -> dict[str, Any]:
    body = copy.deepcopy(base)
    node = body
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return body


STANDARD = ["ssh_service_configuration", "standard_ssh_service_configuration"]
REFUSED = {
    "service_type mismatch": ("http", SSH, "does not fit a http socket"),
    "two blocks": ("ssh", _with(["http_service_configuration"], CASES[0][1]),
                   "http_service_configuration must not be set"),
    "missing port": ("ssh", _with([*STANDARD, "port"], None), "'port' is a required"),
    "port 0": ("ssh", _with([*STANDARD, "port"], 0), "port: is required"),
    "unknown sub-type": ("ssh", _with(["ssh_service_configuration", "ssh_service_type"],
                                      "telnet"), "'telnet' is not one of"),
    "unknown auth type": ("ssh", _with([*STANDARD, "ssh_authentication_type"], "kerberos"),
                          "'kerberos' is not one of"),
    "auth block of another type": (
        "ssh", _with([*STANDARD, "private_key_auth_configuration"], {"private_key": FROM_ENV}),
        "private_key_auth_configuration must not be set"),
    "unknown field": ("ssh", _with([*STANDARD, "hostnme"], "x"), "'hostnme' was unexpected"),
    "database without port": ("database", config("database", {
        "database_service_type": "standard", "standard_database_service_configuration": {
            "hostname": "db", "protocol": "postgres", "authentication_type": "no_auth"}}),
        "port: is required"),  # Go sends an unset port as 0
    # common.go validateUsernameWithProvider: `defined` (or unset) needs a username; the
    # provider must be one the block allows, and then takes no username
    "no username": ("ssh", _with([*STANDARD, "username_and_password_auth_configuration"],
                                 {"password": "pw"}), "'username' is a required property"),
    "empty username": ("ssh", _with([*STANDARD, "username_and_password_auth_configuration"],
                                    {"username_provider": "defined", "username": "",
                                     "password": "pw"}), "username: is required (empty)"),
    "a provider the auth type does not take": (
        "ssh", _with([*STANDARD, "username_and_password_auth_configuration"],
                     {"username_provider": "prompt_client", "password": "pw"}),
        "'prompt_client' is not one of"),
    "a username beside prompt_client": ("ssh", config("ssh", {
        "ssh_service_type": "connector_built_in_ssh_service",
        "built_in_ssh_service_configuration": {"username_provider": "prompt_client",
                                               "username": "root"}}),
        "username: must be empty when username_provider"),
    "unknown protocol": ("database", config("database", {
        "database_service_type": "standard", "standard_database_service_configuration": {
            **HOST, "protocol": "oracle", "authentication_type": "no_auth"}}),
        "'oracle' is not one of"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_upstream_configuration_is_refused_and_nothing_is_made(emulator, case):
    kind, body, expected = REFUSED[case]
    with http(emulator) as h:
        refused = h.post("socket", json={"name": "web", "socket_type": kind,
                                         "upstream_configuration": body})
        assert refused.status_code == 400, refused.text
        assert expected in refused.json()["error_message"]
        assert h.get("sockets").json()["list"] == []
        h.post("socket", json={"name": "web", "socket_type": kind}).raise_for_status()
        put = h.put("socket/web", json={"upstream_configuration": body})
        assert put.status_code == 400 and expected in put.json()["error_message"]


def test_an_unknown_connector_is_refused(emulator):
    with http(emulator) as h:
        refused = h.post("socket", json={"name": "web", "socket_type": "ssh",
                                         "connector_ids": ["no-such-connector"],
                                         "upstream_configuration": SSH})
        assert refused.status_code == 400
        assert "no connector with id 'no-such-connector'" in refused.json()["error_message"]


@pytest.mark.slow
def test_the_committed_schema_is_what_the_script_makes_of_the_sdk(tmp_path: Path):
    """Runs where a border0-go checkout is at hand (BORDER0_GO or the mirror path)."""
    import os
    import subprocess
    import sys

    checkout = Path(os.environ.get("BORDER0_GO", "/work/.mirror/borderzero+border0-go/repo"))
    if not checkout.exists():
        pytest.skip("no border0-go checkout to regenerate the schema from")
    out = tmp_path / "schema.json"
    subprocess.run([sys.executable, str(REPO / "scripts" / "gen_upstream_schema.py"), "sdk",
                    str(checkout), str(out)], check=True, capture_output=True, timeout=60)
    assert json.loads(out.read_text())["$defs"] == DEFS
