"""Write the typed upstream (`$defs.typedUpstream`) into schemas/socket.schema.json.

    python scripts/gen_upstream_schema.py

The structure is border0-go `types/service` (configuration.go, {http,ssh,database,tls,vnc,rdp,
vpn,kubernetes,subnet_router,exit_node,snowflake,elasticsearch,aws_s3,aws_access}_service_
configuration.go, common.go, types/common/aws.go), written here with the SDK's snake_case JSON
names and turned into the manifest's camelCase by `reconciler.upstream.camel`, the same function
the reconciler converts with. Enums are the SDK's constants; `required` holds what each
`Validate()` refuses when missing (e.g. hostname and port of every standard type).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reconciler.upstream import camel

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "socket.schema.json"

STR = {"type": "string", "minLength": 1}
OPT_STR = {"type": "string"}
LIST = {"type": "array", "items": {"type": "string"}}
SECRET = {"$ref": "#/$defs/secret"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
BOOL = {"type": "boolean"}


def _described(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Every property says which SDK JSON field it is (editors show it; docs/connectors.md)."""
    if "description" in schema:
        return schema
    return {"description": f"border0's {key} (border0-go types/service).", **schema}


def obj(props: dict[str, Any], required: tuple[str, ...] = (), desc: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {camel(k): _described(k, v) for k, v in props.items()},
    }
    if required:
        out["required"] = [camel(k) for k in required]
    if desc:
        out["description"] = desc
    return out


def variants(
    discriminator: str, blocks: dict[str, tuple[str, dict[str, Any] | None]],
    extra: dict[str, Any] | None = None, required: tuple[str, ...] = (), desc: str = "",
) -> dict[str, Any]:
    """An SDK block with a sub-type field naming exactly one nested block (or none)."""
    props: dict[str, Any] = {discriminator: {"enum": list(blocks)}, **(extra or {})}
    for block_key, block in blocks.values():
        if block is not None:
            props[block_key] = block
    out = obj(props, (discriminator, *required), desc)
    rules = []
    keys = [k for k, b in blocks.values() if b is not None]
    for value, (block_key, block) in blocks.items():
        then: dict[str, Any] = {"properties": {
            camel(k): {"not": {}, "errorMessage": (
                f"not allowed when {camel(discriminator)} is {value}"
                + (f" (use {camel(block_key)})" if block is not None else ""))}
            for k in keys if k != block_key}}
        if block is not None:
            then["required"] = [camel(block_key)]
        rules.append({
            "if": {"properties": {camel(discriminator): {"const": value}},
                   "required": [camel(discriminator)]},
            "then": then,
        })
    out["allOf"] = rules
    return out


def exactly_one(blocks: dict[str, dict], extra: dict[str, Any],
                required: tuple[str, ...]) -> dict[str, Any]:
    """An SDK block whose nested blocks are alternatives without a sub-type field."""
    out = obj({**extra, **blocks}, required)
    out["oneOf"] = [{"required": [camel(k)]} for k in blocks]
    out["errorMessage"] = "exactly one of " + ", ".join(camel(k) for k in blocks)
    return out


def host_port(extra: dict[str, Any], required: tuple[str, ...] = (), desc: str = "") -> dict:
    return obj({"hostname": STR, "port": PORT, **extra}, ("hostname", "port", *required), desc)


AWS_CREDENTIALS = obj({
    "aws_access_key_id": OPT_STR, "aws_secret_access_key": SECRET,
    "aws_session_token": SECRET, "aws_profile": OPT_STR,
}, desc="AWS credentials (types/common/aws.go); left out, the connector's own are used.")
USERNAME_PROVIDER = {"enum": ["defined", "prompt_client", "use_connector_user"]}
USER = {"username_provider": USERNAME_PROVIDER, "username": OPT_STR}
TLS_CONFIG = {"ca_certificate": OPT_STR, "certificate": OPT_STR, "key": SECRET}


def http() -> dict:
    header = obj({"key": {"type": "string", "pattern": "^[A-Za-z0-9-]+$", "maxLength": 255},
                  "value": {"type": "string", "maxLength": 4096}}, ("key", "value"))
    return variants("http_service_type", {
        "standard": ("standard_http_service_configuration", host_port(
            {"scheme": {"enum": ["http", "https"]}, "host_header": STR,
             "headers": {"type": "array", "items": header}}, ("host_header",))),
        "connector_file_server": ("fileserver_http_service_configuration",
                                  obj({"top_level_directory": STR}, ("top_level_directory",))),
    })


def ssh() -> dict:
    auth = variants("ssh_authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration",
                                  obj({**USER, "password": SECRET}, ("password",))),
        "private_key": ("private_key_auth_configuration",
                        obj({**USER, "private_key": SECRET}, ("private_key",))),
        "border0_certificate": ("border0_certificate_auth_configuration", obj(USER)),
    }, {"hostname": STR, "port": PORT}, ("hostname", "port"))
    ec2 = obj({"ec2_instance_id": STR, "ec2_instance_region": STR,
               "aws_credentials": AWS_CREDENTIALS}, ("ec2_instance_id", "ec2_instance_region"))
    ecs = obj({"ecs_cluster_region": STR, "ecs_cluster_name": STR, "ecs_service_name": STR,
               "aws_credentials": AWS_CREDENTIALS},
              ("ecs_cluster_region", "ecs_cluster_name", "ecs_service_name"))
    ssm = variants("ssm_target_type", {
        "ec2": ("aws_ssm_ec2_target_configuration", ec2),
        "ecs": ("aws_ssm_ecs_target_configuration", ecs),
    })
    ec2ic = host_port({**USER, "ec2_instance_id": STR, "ec2_instance_region": STR,
                       "ec2_instance_connect_endpoint_id": {"type": "string",
                                                            "pattern": "^eice-[0-9a-f]{17}$"},
                       "aws_credentials": AWS_CREDENTIALS},
                      ("ec2_instance_id", "ec2_instance_region"))
    base_kubectl = {"namespace_allowlist": LIST,
                    "namespace_selectors_allowlist": {"type": "object"}}
    kubectl = variants("kubectl_exec_target_type", {
        "standard": ("standard_kubectl_exec_target_configuration",
                     obj({**base_kubectl, "master_url": OPT_STR, "kubeconfig_path": OPT_STR})),
        "aws_eks": ("aws_eks_kubectl_exec_target_configuration",
                    obj({**base_kubectl, "eks_cluster_name": STR, "eks_cluster_region": STR,
                         "aws_credentials": AWS_CREDENTIALS},
                        ("eks_cluster_name", "eks_cluster_region"))),
    })
    return variants("ssh_service_type", {
        "standard": ("standard_ssh_service_configuration", auth),
        "aws_ssm": ("aws_ssm_ssh_service_configuration", ssm),
        "aws_ec2_instance_connect": ("aws_ec2ic_ssh_service_configuration", ec2ic),
        "kubectl_exec": ("kubectl_exec_ssh_service_configuration", kubectl),
        "docker_exec": ("docker_exec_ssh_service_configuration",
                        obj({"container_name_allowlist": LIST})),
        "connector_built_in_ssh_service": ("built_in_ssh_service_configuration", obj(USER)),
    })


def database() -> dict:
    user_password = obj({"username": STR, "password": SECRET}, ("username", "password"))
    user_password_ca = obj({"username": STR, "password": SECRET, "ca_certificate": OPT_STR},
                           ("username", "password"))
    tls = obj({"username": OPT_STR, "password": SECRET, **TLS_CONFIG})
    kerberos = obj({"username": OPT_STR, "password": SECRET})
    sql_auth = obj({"username": STR, "password": SECRET}, ("username", "password"))
    iam = obj({"aws_credentials": AWS_CREDENTIALS, "rds_instance_region": STR, "username": STR,
               "ca_certificate": OPT_STR}, ("rds_instance_region", "username"))
    mongo_aws = obj({"aws_credentials": AWS_CREDENTIALS, "cluster_region": STR,
                     "ca_certificate": OPT_STR}, ("cluster_region",))
    protocols = ["mysql", "postgres", "mssql", "cockroachdb", "mongodb", "aerospike"]
    common = {"hostname": STR, "port": PORT, "protocol": {"enum": protocols},
              "database_name": OPT_STR}
    standard = variants("authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration", user_password),
        "tls": ("tls_auth_configuration", tls),
        "kerberos": ("kerberos_configuration", kerberos),
        "sql_authentication": ("sql_authentication_configuration", sql_auth),
        "no_auth": ("", None),
    }, common, ("hostname", "port", "protocol"))
    rds = variants("authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration", user_password_ca),
        "iam": ("iam_auth_configuration", iam),
    }, common, ("hostname", "port", "protocol"))
    cloudsql_conn = obj({"username": STR, "password": SECRET, "instance_id": STR,
                         "gcp_credentials_json": SECRET}, ("username", "instance_id"))
    cloudsql_iam = obj({"username": STR, "instance_id": STR, "gcp_credentials_json": SECRET},
                       ("username", "instance_id"))
    cloudsql = exactly_one({  # no authentication_type: the block present decides
        "username_and_password_auth_configuration": user_password,
        "tls_auth_configuration": tls,
        "cloudsql_connector_configuration": cloudsql_conn,
        "cloudsql_connector_iam_configuration": cloudsql_iam,
    }, {"hostname": OPT_STR, "port": {**PORT, "minimum": 0}, "protocol": {"enum": protocols}},
        ("protocol",))
    azure = exactly_one({
        "azure_active_directory_password_configuration": user_password,
        "azure_active_directory_integrated_configuration": obj({}),
        "kerberos_configuration": kerberos,
        "sql_authentication_configuration": sql_auth,
    }, {"hostname": STR, "port": PORT, "protocol": {"enum": protocols}},
        ("hostname", "port", "protocol"))
    mongo = {**common, "protocol": {"const": "mongodb"}}
    docdb = variants("authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration", user_password_ca),
        "iam": ("iam_auth_configuration", mongo_aws),
    }, mongo, ("hostname", "port", "protocol"))
    atlas = variants("authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration", user_password_ca),
        "iam": ("iam_auth_configuration", mongo_aws),
    }, {k: v for k, v in mongo.items() if k != "port"}, ("hostname", "protocol"))
    return variants("database_service_type", {
        "standard": ("standard_database_service_configuration", standard),
        "aws_rds": ("aws_rds_database_service_configuration", rds),
        "gcp_cloudsql": ("gcp_cloudsql_database_service_configuration", cloudsql),
        "azure_sql": ("azure_sql_database_service_configuration", azure),
        "aws_documentdb": ("aws_documentdb_database_service_configuration", docdb),
        "mongodb_atlas": ("mongodb_atlas_database_service_configuration", atlas),
    })


def tls() -> dict:
    return variants("tls_service_type", {
        "standard": ("standard_tls_service_configuration", host_port({})),
        "vpn": ("vpn_tls_service_configuration",
                obj({"vpn_subnet": STR, "routes": LIST}, ("vpn_subnet",))),
        "http_proxy": ("http_proxy_tls_service_configuration", obj({"host_allowlist": LIST})),
    })


def kubernetes() -> dict:
    standard = obj({k: OPT_STR for k in (
        "kubeconfig_path", "context", "server", "certificate_authority",
        "certificate_authority_data", "client_certificate", "client_certificate_data",
        "client_key", "token_file")} | {"client_key_data": SECRET, "token": SECRET})
    eks = obj({"eks_cluster_name": STR, "eks_cluster_region": STR,
               "aws_credentials": AWS_CREDENTIALS}, ("eks_cluster_name", "eks_cluster_region"))
    return variants("kubernetes_service_type", {
        "standard": ("standard_kubernetes_service_configuration", standard),
        "aws_eks": ("aws_eks_kubernetes_service_configuration", eks),
    }, {"impersonation_enabled": BOOL})


def elasticsearch() -> dict:
    basic = obj({"username": STR, "password": SECRET}, ("username", "password"))
    standard = variants("authentication_type", {
        "basic": ("basic_auth_configuration", basic),
    }, {"hostname": STR, "port": PORT, "protocol": {"enum": ["http", "https"]},
        "host_header": OPT_STR}, ("hostname", "port", "protocol"))
    return variants("elasticsearch_service_type", {
        "standard": ("standard_elasticsearch_service_configuration", standard)})


def blocks() -> dict[str, dict]:
    role = obj({"arn": STR, "name": OPT_STR, "description": OPT_STR}, ("arn",))
    account = obj({"aws_account_alias": OPT_STR, "aws_account_id": STR,
                   "aws_iam_roles": {"type": "array", "items": role}},
                  ("aws_account_id", "aws_iam_roles"))
    return {
        "http": http(),
        "ssh": ssh(),
        "database": database(),
        "tls": tls(),
        "vnc": host_port({"password": SECRET}),
        "rdp": host_port({"username": OPT_STR, "password": SECRET, "domain": OPT_STR}),
        "vpn": obj({"dhcp_pool_subnet": STR, "advertised_routes": LIST}, ("dhcp_pool_subnet",)),
        "kubernetes": kubernetes(),
        "subnet_router": obj({"ipv4_cidr_ranges": LIST, "ipv6_cidr_ranges": LIST,
                              "dns_patterns": LIST}),
        "exit_node": obj({}),
        "snowflake": obj({"account": STR, "username": STR, "password": SECRET},
                         ("account", "username", "password")),
        "elasticsearch": elasticsearch(),
        "aws_s3": obj({"aws_credentials": AWS_CREDENTIALS, "bucket_allowlist": LIST}),
        "aws_access": obj({"aws_credentials": AWS_CREDENTIALS,
                           "aws_accounts": {"type": "array", "items": account}},
                          ("aws_accounts",)),
    }


def typed_upstream() -> dict:
    by_type = {t: (f"{t}_service_configuration", block) for t, block in blocks().items()}
    schema = variants("service_type", by_type, desc=(
        "border0's typed upstream_configuration (border0-go types/service) in camelCase: "
        "serviceType and exactly one <type>ServiceConfiguration block. Secrets (password, "
        "privateKey, awsSecretAccessKey, ...) take {env: NAME}, {file: PATH}, or a reference "
        "the connector resolves on its host: from:env:NAME, from:file:PATH, from:aws:ssm:NAME, "
        "from:aws:secretsmanager:NAME. See docs/connectors.md."))
    schema["properties"]["serviceType"]["description"] = (
        "The service type; must match the socket's spec.type (https sockets: http).")
    return schema


#: Socket types of the typed model only: they have no legacy upstream fields.
NEW_TYPES = ("vnc", "rdp", "vpn", "kubernetes", "subnet_router", "exit_node", "snowflake",
             "elasticsearch", "aws_s3", "aws_access")
LEGACY_TYPES = ("http", "https", "ssh", "tls", "database")
_TYPED = {"required": ["serviceType"]}


def socket_rules(spec: dict[str, Any]) -> None:
    """spec.type gains the SDK's types; the legacy rules apply to a legacy upstream only; a
    typed upstream's serviceType must match the socket type (configuration.go Validate)."""
    spec["properties"]["type"]["enum"] = [*LEGACY_TYPES, *NEW_TYPES]
    spec["properties"]["type"]["description"] = (
        "Socket type: http, https (an http socket whose upstream speaks https), ssh, tls (any "
        "TCP service), database, or one of border0's newer types (" + ", ".join(NEW_TYPES)
        + "), which take a typed upstream (serviceType). (border0 socket create --type)")
    rules = [r for r in spec["allOf"] if not r.get("$comment", "").startswith("typed:")]
    for rule in rules:  # the legacy rules: only when the upstream is not typed
        rule["if"].setdefault("properties", {})["upstream"] = {"not": _TYPED}
    for socket_type in (*LEGACY_TYPES, *NEW_TYPES):
        service = "http" if socket_type == "https" else socket_type
        rules.append({
            "$comment": f"typed: {socket_type}",
            "if": {"properties": {"type": {"const": socket_type}, "upstream": _TYPED},
                   "required": ["type", "upstream"]},
            "then": {"properties": {"upstream": {"properties": {"serviceType": {
                "const": service,
                "errorMessage": f"a {socket_type} socket takes serviceType {service}"}}}}},
        })
    rules.append({
        "$comment": "typed: the newer socket types have no legacy upstream",
        "if": {"properties": {"type": {"enum": list(NEW_TYPES)}}, "required": ["type"]},
        "then": {"properties": {"upstream": {
            **_TYPED, "errorMessage": "this socket type takes a typed upstream (serviceType)"}}},
    })
    spec["allOf"] = rules


def main() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    defs, spec = schema["$defs"], schema["properties"]["spec"]
    upstream = spec["properties"]["upstream"]
    if "legacyUpstream" not in defs:  # first run: the legacy form moves to $defs
        defs["legacyUpstream"] = upstream
    defs["typedUpstream"] = typed_upstream()
    spec["properties"]["upstream"] = {
        "description": (
            "What border0 connects to behind the socket. The typed form (serviceType and one "
            "<type>ServiceConfiguration block, border0's upstream_configuration) or the legacy "
            "fields (type, httpHostname, username, password; `migrate` rewrites them)."),
        "type": "object",
        "if": _TYPED,
        "then": {"$ref": "#/$defs/typedUpstream"},
        "else": {"$ref": "#/$defs/legacyUpstream"},
    }
    spec["properties"]["connectors"] = {
        "description": (
            "Names of the connectors (kind: Connector, or existing in border0) that serve this "
            "socket: border0's connector_ids. Several names: each serves it (high availability)."),
        "type": "array", "uniqueItems": True, "maxItems": 20,
        "items": {"$ref": "#/$defs/connectorName"},
    }
    spec["properties"]["externalConnectors"] = {
        "description": (
            "Names of connectors managed outside these manifests (portal, Terraform) that also "
            "serve this socket; they must exist in border0 at plan time and are never changed."),
        "type": "array", "uniqueItems": True, "maxItems": 20,
        "items": {"$ref": "#/$defs/connectorName"},
    }
    spec["properties"]["endToEndEncryption"] = {
        "description": "border0's end_to_end_encryption_enabled; left out, left alone.",
        "type": "boolean"}
    spec["properties"]["connectorAuthentication"] = {
        "description": "border0's connector_authentication_enabled; left out, left alone.",
        "type": "boolean"}
    defs["connectorName"] = {
        "description": "A connector name: letters, digits, '-', '_' and '.'.",
        "type": "string", "pattern": "^[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$",
        "errorMessage": "must be a connector name: letters, digits, '.', '_' and '-'"}
    socket_rules(spec)
    SCHEMA.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
