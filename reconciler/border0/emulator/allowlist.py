"""What border0's own tools send that the reference OpenAPI copy does not describe: the one list.

The reference (tests/reference/border0-openapi.json, extract in reference_requests.json) is a
third-party copy; border0's SDK (borderzero/border0-go), Terraform provider
(borderzero/terraform-provider-border0) and CLI (borderzero/border0-cli) send a few operations,
query parameters and body fields it lacks. border0 cannot refuse what its own tools send, so the
twin accepts exactly these, and nothing else beyond the reference. Every entry names the source
file that shows it. `effect` says what the twin does with a field: "stored" (kept and answered),
"ignored" (a server-set field the SDK echoes back; accepted, never applied) or "attaches".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ALLOWED_FIELDS", "ALLOWED_QUERY", "EXTRA_OPERATIONS", "POLICY_DATA_V2", "Allowed"]

SDK = "borderzero/border0-go"
TF = "borderzero/terraform-provider-border0"
CLI = "borderzero/border0-cli"

SOCKET = "/socket/{socket_id_or_name}"
POLICY = "/policy/{uuid}"
CONNECTOR = "/connector/{connector_id}"


@dataclass(frozen=True)
class Allowed:
    operation: str  # "METHOD /path/template" as the reference spells paths
    name: str  # body field or query parameter
    source: str  # repository and file that shows border0's own tool sending it
    effect: str = "stored"


_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_STRS: dict[str, Any] = {"type": "array", "items": _STR}
_ACTIONS: dict[str, Any] = {
    "type": "object", "required": ["actions"],
    "properties": {"actions": {"type": "array", "items": {
        "type": "object", "required": ["action", "id"],
        "properties": {"action": {"type": "string", "enum": ["add", "remove"]}, "id": _STR}}}},
}
#: SDK `Policy` struct (client/policy.go): every field without omitempty, so the SDK sends all
#: of them on POST /policies and PUT /policy/{id}; TF (border0/resource_policy.go) fills name,
#: version, description, org_wide, policy_data, tag_rules. `policy_data` is checked by version.
_POLICY_BODY: dict[str, Any] = {
    "type": "object", "required": ["name"],
    "properties": {
        "name": _STR, "version": {"type": "string", "enum": ["", "v1", "v2"]},
        "description": _STR, "org_wide": {"type": "boolean"}, "policy_data": {},
        "tag_rules": {"type": "array", "items": {"type": "object",
                                                 "additionalProperties": _STR}},
        "id": _STR, "org_id": _STR, "created_at": _STR, "socket_ids": _STRS,
        "deleted": {"type": "boolean"},
    },
}

_ANY: dict[str, Any] = {}
#: SDK `Connector` (client/connector.go): name always sent, `connector_id` always (no
#: omitempty; "" on create), description and built_in_ssh_service_enabled omitempty;
#: `built_in_ssh_service` and `tailscale_auth_key` are border0's answers, echoed back by TF's
#: create-then-update (border0/resource_connector.go) and ignored.
_CONNECTOR_BODY: dict[str, Any] = {
    "type": "object", "required": ["name"],
    "properties": {"name": _STR, "description": _STR, "connector_id": _STR,
                   "built_in_ssh_service_enabled": {"type": "boolean"},
                   "built_in_ssh_service": {"type": "object"},
                   "tailscale_auth_key": {"type": "object"}},
}
#: SDK `ConnectorToken`: every field is sent (FlexibleTime marshals as Unix seconds, 0 when
#: unset: client/flexible_time.go); the output fields (id, token, created_by, created_at) go
#: as zero values and are ignored. `expires_at` is a number from both of border0's clients (the
#: CLI's `ConnectorTokenRequest.ExpiresAt int64`, internal/api/models/connector.go): no client
#: of border0's sends it as text, so the twin refuses text.
_TOKEN_BODY: dict[str, Any] = {
    "type": "object", "required": ["connector_id", "name"],
    "properties": {"connector_id": _STR, "name": _STR, "expires_at": _INT, "id": _STR,
                   "token": _STR, "created_by": _STR, "created_at": _INT},
}
#: SDK `SocketKeyToSign` (client/socket.go SignSocketKey); the CLI sends the same key
#: (border0-cli internal/api/models/requests.go, internal/client/client.go).
_SIGNKEY_BODY: dict[str, Any] = {
    "type": "object", "required": ["ssh_public_key"], "properties": {"ssh_public_key": _STR},
}
_CONN_SDK = f"{SDK} client/connector.go"

#: Operations the reference lacks: (METHOD /path) -> body schema (None: no body).
EXTRA_OPERATIONS: dict[str, tuple[dict[str, Any] | None, str]] = {
    "GET /sockets": (None, f"{SDK} client/socket.go (SocketsPaginator)"),
    f"GET {SOCKET}/connectors": (None, f"{SDK} client/socket.go (SocketConnectors)"),
    f"GET {SOCKET}/upstream_configurations": (
        None, f"{SDK} client/socket.go (SocketUpstreamConfigs); {TF} border0/resource_socket.go"),
    # The reference has the operation without a body.
    f"POST {SOCKET}/signkey": (_SIGNKEY_BODY, f"{SDK} client/socket.go (SignSocketKey)"),
    "GET /connectors": (None, f"{_CONN_SDK} (Connectors)"),
    "POST /connector": (_CONNECTOR_BODY, f"{_CONN_SDK} (CreateConnector)"),
    "PUT /connector": (_CONNECTOR_BODY, f"{_CONN_SDK} (UpdateConnector: the id in the body)"),
    f"GET {CONNECTOR}": (None, f"{_CONN_SDK} (Connector)"),
    f"DELETE {CONNECTOR}": (None, f"{_CONN_SDK} (DeleteConnector)"),
    "POST /connector/token": (_TOKEN_BODY, f"{_CONN_SDK} (CreateConnectorToken)"),
    f"GET {CONNECTOR}/tokens": (None, f"{_CONN_SDK} (ConnectorTokens)"),
    f"GET {CONNECTOR}/token/{{token_id}}": (None, f"{_CONN_SDK} (ConnectorToken)"),
    f"DELETE {CONNECTOR}/token/{{token_id}}": (None, f"{_CONN_SDK} (DeleteConnectorToken)"),
    f"PUT {SOCKET}/policy": (_ACTIONS, f"{SDK} client/policy.go (AttachPoliciesToSocket)"),
    f"PUT {POLICY}/socket": (_ACTIONS, f"{SDK} client/policy.go (AttachPolicyToSocket)"),
    "GET /serverinfo": (None, f"{SDK} client/server_info.go; {TF} border0/provider.go"),
    # The reference documents POST /policies without a request body.
    "POST /policies": (_POLICY_BODY, f"{SDK} client/policy.go (CreatePolicy, Policy struct)"),
}

ALLOWED_QUERY = [
    Allowed(f"GET {SOCKET}", "activeOnly", f"{SDK} client/socket.go (Socket)"),
    Allowed("GET /policies", "socket_id",
            f"{CLI} internal/api/api.go (GetPoliciesBySocketID)"),
    # `policies/?org_wide=true` (org-wide only) and `&org_wide=true&socket_id=` (a socket's
    # policies and the org-wide ones): CLI cmd/socket.go (socket create), cmd/policy.go (ls).
    Allowed("GET /policies", "org_wide", f"{CLI} cmd/socket.go, cmd/policy.go"),
    *(Allowed("GET /sockets", q, f"{SDK} client/socket.go (SocketsPaginator)")
      for q in ("page", "page_size", "name", "search", "socket_type")),
]

_SOCKET_ECHOES = [  # SDK `Socket` struct (client/socket.go); update by read-modify-write:
    # examples/01-update-socket/main.go sends back the socket as read.
    ("socket_id", "ignored"), ("display_name", "stored"), ("policies", "ignored"),
    ("dnsname", "ignored"),
]
ALLOWED_FIELDS = [
    *(Allowed(f"{m} {p}", f, f"{SDK} client/socket.go (Socket struct)", e)
      for m, p in (("POST", "/socket"), ("PUT", SOCKET)) for f, e in _SOCKET_ECHOES),
    # The CLI creates sockets with these (internal/api/models/socket.go, cmd/socket.go); the
    # reference create schema spells the list `..._addresses`, the update schema and every
    # answer `..._addressses`: both are taken on create and stored as the latter.
    Allowed("POST /socket", "cloud_authentication_enabled",
            f"{CLI} internal/api/models/socket.go (Socket.CloudAuthEnabled)"),
    Allowed("POST /socket", "cloud_authentication_email_allowed_addressses",
            f"{CLI} internal/api/models/socket.go (Socket.AllowedEmailAddresses)"),
    # The CLI's Socket has policy_names and cloud_authentication_enabled (omitempty) and sends
    # the same struct on create and update (cmd/socket.go; internal/connector/core/core.go).
    # policy_names attaches the named policies (inference: the CLI never attaches otherwise).
    Allowed("POST /socket", "policy_names",
            f"{CLI} internal/api/models/socket.go (Socket.PolicyNames)", "attaches"),
    Allowed(f"PUT {SOCKET}", "cloud_authentication_enabled",
            f"{CLI} internal/api/models/socket.go (Socket.CloudAuthEnabled)"),
    # PUT /policy/{id}: the reference has name, description, policy_data; the SDK Policy struct
    # adds the rest. TF sends version and tag_rules on update (resource_policy.go) and never a
    # change of org_wide (HasChangesExcept("org_wide")) while the SDK always sends
    # "org_wide": false: border0 must ignore org_wide on PUT, and so does the twin.
    Allowed(f"PUT {POLICY}", "version", f"{TF} border0/resource_policy.go (update)"),
    Allowed(f"PUT {POLICY}", "tag_rules", f"{TF} border0/resource_policy.go (update)"),
    *(Allowed(f"PUT {POLICY}", f, f"{SDK} client/policy.go (Policy struct)", "ignored")
      for f in ("id", "org_id", "org_wide", "created_at", "socket_ids", "deleted")),
]

#: The schema of a field the reference lacks, for the allow-listed fields above.
FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "socket_id": _STR, "display_name": _STR, "dnsname": _STR,
    "policies": {"type": "array", "items": {"type": "object"}},
    "cloud_authentication_enabled": {"type": "boolean"}, "policy_names": _STRS,
    "cloud_authentication_email_allowed_addressses": _STRS,
    **{k: v for k, v in _POLICY_BODY["properties"].items() if k != "policy_data"},
}


def _obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


_EMPTY = _obj()
_RULES = lambda **p: _obj(rules={"type": "array", "items": _obj(**p)})

#: SDK `PolicyDataV2` (client/policy.go): what TF decodes a v2 policy's JSON into before it sends
#: it (border0/resource_policy.go), so nothing outside it reaches border0. No `version` key:
#: a v2 policy carries its version at the top level.
POLICY_DATA_V2: dict[str, Any] = {
    "type": "object",
    "properties": {
        "permissions": _obj(
            database=_obj(
                allowed_databases={"type": "array", "items": _obj(
                    database=_STR, allowed_query_types=_STRS)},
                max_session_duration_seconds=_INT),
            ssh=_obj(
                shell=_EMPTY, exec=_obj(commands=_STRS), sftp=_EMPTY,
                tcp_forwarding=_obj(allowed_connections={"type": "array", "items": _obj(
                    destination_address=_STR, destination_port=_STR)}),
                kubectl_exec=_obj(allowed_namespaces={"type": "array", "items": _obj(
                    namespace=_STR,
                    pod_selector={"type": "object", "additionalProperties": _STR})}),
                docker_exec=_obj(allowed_containers=_STRS),
                max_session_duration_seconds=_INT, allowed_usernames=_STRS),
            http=_EMPTY, tls=_EMPTY, vnc=_EMPTY, rdp=_EMPTY, vpn=_EMPTY, network=_EMPTY,
            kubernetes=_RULES(api_groups=_STRS, namespaces=_STRS, verbs=_STRS,
                              resources=_STRS, resource_names=_STRS),
            aws_s3=_RULES(buckets=_STRS, paths=_STRS, actions=_STRS),
            aws_access=_obj(aws_iam_role_arns={
                "type": "object",
                "additionalProperties": _obj(max_session_duration_seconds=_INT)}),
        ),
        "condition": _obj(
            who=_obj(email=_STRS, group=_STRS, service_account=_STRS),
            where=_obj(allowed_ip=_STRS, country=_STRS, country_not=_STRS),
            when=_obj(after=_STR, before=_STR, time_of_day_after=_STR,
                      time_of_day_before=_STR),
        ),
    },
}
