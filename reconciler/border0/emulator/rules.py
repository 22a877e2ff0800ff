"""border0's rules for socket and policy bodies, as pure functions (the store adds the database).

Each rule cites the border0 source it follows. Bodies reaching here have passed
`contract.check` (known fields, right types); these functions decide what is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from reconciler.border0.emulator import upstream

__all__ = [
    "SECRET_FIELDS", "SOCKET_TYPES", "Invalid", "Missing", "StoreError", "check_name",
    "check_socket_fields",
    "new_policy", "new_socket", "present_socket", "update_policy", "update_socket",
]

#: Socket types border0 knows (TF border0/resource_socket.go, socket_type description; vpn:
#: SDK client/enum/socket_type.go; aws_access: SDK types/service/configuration.go);
#: `https` is the CLI's spelling of http + upstream https (border0-cli cmd/socket.go).
SOCKET_TYPES = (
    "http", "ssh", "tls", "database", "vnc", "rdp", "kubernetes", "subnet_router", "exit_node",
    "snowflake", "elasticsearch", "aws_s3", "vpn", "aws_access",
)
#: upstream_type when none is sent: TF internal/schemautil/socket.go (ToSocket) uses the socket
#: type for http, ssh, tls, vnc, rdp (and vpn) and "mysql" for database. The notes
#: (border0-api.md) had tls -> "": the provider's source wins.
DEFAULT_UPSTREAM_TYPE = {
    "http": "http", "ssh": "ssh", "tls": "tls", "vnc": "vnc", "rdp": "rdp", "database": "mysql",
    "vpn": "vpn",
}
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
#: Never read back (see present_socket). The upstream's TLS client key is one: the reference's
#: serializer.Socket lists it beside upstream_password, and no client of border0's reads either.
SECRET_FIELDS = ("upstream_password", "upstream_key", "protected_password")
MASK = "********"

#: What PUT /socket/{id} replaces: updateSocketRequest's fields the twin stores. A field not
#: sent is reset to its zero value, the worst case the sources allow: every border0 tool writes
#: the whole object (SDK examples/01-update-socket reads, changes and writes back; the CLI's
#: internal/connector/core/core.go CheckAndUpdateSocket the same), and TF's ToSocket
#: (internal/schemautil/socket.go) leaves out zero values (omitempty in the SDK's Socket) yet
#: clears a description removed from the config, which only a replacing PUT does. TF also
#: carries upstream_type over from a fresh GET (border0/resource_socket.go, update), so an
#: unsent upstream_type is reset to the type's default here.
UPDATABLE: dict[str, Any] = {
    "display_name": "", "description": "", "upstream_http_hostname": "",
    "upstream_username": "", "upstream_password": "", "recording_enabled": False, "tags": {},
    # the upstream's TLS client certificate, CA and key: in createSocketRequest,
    # updateSocketRequest and serializer.Socket (the twin took and dropped them)
    "upstream_key": "", "upstream_cert": "", "upstream_ca": "",
    "connector_ids": [], "upstream_configuration": None,
    "cloud_authentication_email_allowed_addressses": [],
    "cloud_authentication_email_allowed_domains": [],
    "connector_authentication_enabled": False,
}
#: Only POST /socket sets these (absent from updateSocketRequest in the reference): kept by PUT.
CREATE_ONLY: dict[str, Any] = {
    "protected_socket": False, "protected_username": "", "protected_password": "",
    "cloud_authentication_enabled": False,
}

#: The order of fields in an answer (stable, so documented examples stay true).
_ORDER = (
    "display_name", "description", "upstream_type", "upstream_http_hostname",
    "upstream_username", "upstream_password", "upstream_key", "upstream_cert", "upstream_ca",
    "protected_socket", "protected_username",
    "protected_password", "recording_enabled", "tags", "connector_ids", "upstream_configuration",
    "cloud_authentication_enabled", "cloud_authentication_email_allowed_addressses",
    "cloud_authentication_email_allowed_domains", "connector_authentication_enabled",
)
#: Stored, written by clients, but not in border0's socket answer (serializer.Socket in the
#: reference): links are answered as `connectors` and by GET /socket/{id}/connectors, the
#: upstream configuration by GET /socket/{id}/upstream_configurations (TF
#: border0/resource_socket.go reads both there), `display_name` nowhere.
NOT_ANSWERED = ("connector_ids", "upstream_configuration", "display_name")
#: serializer.Socket fields the twin has nothing to say about but answers, as border0 does,
#: with their zero value: no connector of the twin's is ever alive; sockets are made by the
#: API, never by a (v1) connector; end-to-end encryption is not settable through the API.
ANSWER_ZEROES: dict[str, Any] = {
    "alive": False, "connector_managed": False, "end_to_end_encryption_enabled": False,
    "private_socket": False,
}
#: Credentials inside an upstream configuration, at any depth: the fields the generated schema
#: marks writeOnly (password, private_key, aws_secret_access_key, ...; TlsConfig.key, while
#: an http Header's `key` is no secret: see strip_nested_secrets).
NESTED_SECRETS = upstream.secret_fields()


class StoreError(Exception):
    """A request border0 refuses; the app answers it with `status`."""

    status = 400


class Invalid(StoreError):
    status = 400


class Missing(StoreError):
    status = 404


def check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise Invalid(f"{kind} name is required")
    if not NAME_RE.match(name):
        raise Invalid(
            f"invalid {kind} name {name!r}: use at most 63 lowercase letters, digits and dashes, "
            "starting and ending with a letter or digit"
        )
    return name


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value)) if isinstance(value, (dict, list)) else value


def check_socket_fields(socket: Mapping[str, Any]) -> None:
    """What the request contract cannot see: the merged socket's tags, description and
    upstream configuration (upstream.py: the SDK's Validate rules)."""
    if socket.get("upstream_configuration") is not None:
        problems = upstream.problems(socket["upstream_configuration"], socket["socket_type"])
        if problems:
            raise Invalid("invalid upstream_configuration: " + "; ".join(problems))
    tags = socket.get("tags")
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise Invalid("tags must map strings to strings")
    if len(socket.get("description") or "") > 200:
        raise Invalid("description is longer than 200 characters")


def socket_type(requested: Any, upstream_type: Any) -> tuple[str, str]:
    """border0's (socket_type, upstream_type) for a requested pair."""
    if not isinstance(requested, str) or not requested:
        raise Invalid("socket_type is required")
    if requested == "https":
        return "http", "https"
    if requested not in SOCKET_TYPES:
        raise Invalid(f"unknown socket_type {requested!r}")
    given = upstream_type if isinstance(upstream_type, str) and upstream_type else None
    return requested, given or DEFAULT_UPSTREAM_TYPE.get(requested, "")


def new_socket(body: Mapping[str, Any]) -> dict[str, Any]:
    """The stored fields of a socket created from a POST body (server fields added by the store)."""
    name = check_name("socket", body.get("name"))
    kind, upstream = socket_type(body.get("socket_type"), body.get("upstream_type"))
    fields: dict[str, Any] = {"name": name}
    for key in _ORDER:
        value = body.get(key)
        zero = UPDATABLE.get(key, CREATE_ONLY.get(key))
        fields[key] = _copy(zero if value is None else value)
    fields.update(upstream_type=upstream, socket_type=kind)
    # The reference create schema spells it `_addresses`; answers and PUT `_addressses`.
    if body.get("cloud_authentication_email_allowed_addresses") is not None:
        fields["cloud_authentication_email_allowed_addressses"] = list(
            body["cloud_authentication_email_allowed_addresses"])
    return fields


def update_socket(stored: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The socket after PUT `body`: a replacement of UPDATABLE (see there)."""
    socket = dict(stored)
    kind, upstream = socket_type(body.get("socket_type") or stored["socket_type"],
                                 body.get("upstream_type"))
    if kind != stored["socket_type"]:
        # TF marks socket_type ForceNew (border0/resource_socket.go): no in-place change.
        raise Invalid(f"socket_type cannot be changed ({stored['socket_type']} -> {kind})")
    socket["upstream_type"] = upstream
    name = body.get("name") or stored["name"]
    socket["name"] = check_name("socket", name)
    for key, zero in UPDATABLE.items():
        value = body.get(key)
        socket[key] = _copy(zero if value is None else value)
    if body.get("cloud_authentication_enabled") is not None:  # the CLI sends it (omitempty)
        socket["cloud_authentication_enabled"] = bool(body["cloud_authentication_enabled"])
    return socket


def present_socket(socket: dict[str, Any], secrets: str) -> dict[str, Any]:
    """A socket as GET answers it: border0's serializer.Socket (NOT_ANSWERED left out,
    ANSWER_ZEROES added). Secrets are never read back: neither border0's SDK
    (client/socket.go: its Socket has no password field) nor TF (border0/resource_socket.go
    reads credentials from /socket/{id}/upstream_configurations only) reads one, so no source
    shows border0 answering them. `secrets`: omit (default, the worst case for a client), mask
    (a fixed mask when set), clear (the stored value). omit and mask also reach credentials
    nested at any depth (strip_nested_secrets)."""
    connectors = socket.get("connectors", [])
    out: dict[str, Any] = {}
    for k, v in socket.items():  # in the stored order, policies last (as documented examples)
        if k == "socket_type":
            out.update(ANSWER_ZEROES, connectors=connectors)
        if k not in _NOT_SHOWN:
            out[k] = v
    if "connectors" not in out:
        for k, v in ANSWER_ZEROES.items():
            out.setdefault(k, v)
        out["connectors"] = connectors
    out["policies"] = socket.get("policies", [])
    if secrets == "clear":
        return out
    mask = secrets == "mask"
    for k, v in out.items():  # only containers can hold nested credentials (one pass, no copy
        # of scalars: this runs for every socket of every listing page)
        if v and type(v) in _CONTAINERS and k not in ("tags", "policies"):  # a tag may be called
            out[k] = strip_nested_secrets(v, mask=mask)  # `token`: tags hold no credentials
    for k in SECRET_FIELDS:
        out.pop(k, None)
        if mask:
            out[k] = MASK if socket.get(k) else ""
    return out


_NOT_SHOWN = frozenset((*NOT_ANSWERED, "connectors", "policies"))
_CONTAINERS = (dict, list)


def strip_nested_secrets(value: Any, *, mask: bool = False) -> Any:
    """`value` without NESTED_SECRETS at any depth (or with them masked when set). A `key`
    beside a `value` is an http header's name, not a secret (SDK http Header)."""
    if isinstance(value, list):
        return [strip_nested_secrets(v, mask=mask) if type(v) in _CONTAINERS else v
                for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if type(v) in _CONTAINERS:
            out[k] = strip_nested_secrets(v, mask=mask)
        elif k in NESTED_SECRETS and isinstance(v, str) and not (
                k == "key" and "value" in value):
            if mask:
                out[k] = MASK if v else ""
        else:
            out[k] = v
    return out


def _version(value: Any, default: str) -> str:
    """Policy versions are strings, "v1" or "v2" (SDK client/policy.go: Policy.Version string;
    TF border0/resource_policy.go validates v1/v2, default v2). The notes' integer was wrong."""
    return value if value in ("v1", "v2") else default


def new_policy(body: Mapping[str, Any]) -> dict[str, Any]:
    """The stored fields of a policy from a POST /policies body. A policy sent without a
    version is v1 (the SDK sends "" when its caller sets none; v1 predates versions)."""
    return {
        "name": check_name("policy", body.get("name")),
        "version": _version(body.get("version"), "v1"),
        "description": str(body.get("description") or ""),
        "org_wide": bool(body.get("org_wide") or False),
        "policy_data": _policy_data(body.get("policy_data")),
        "tag_rules": _copy(body.get("tag_rules") or []),
    }


def update_policy(stored: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """PUT /policy/{id}: name, description, policy_data, tag_rules and version replace; the SDK
    sends all of them every time (Policy struct without omitempty). org_wide is kept (TF
    border0/resource_policy.go never updates it; the SDK sends false regardless)."""
    policy = dict(stored)
    policy["name"] = check_name("policy", body.get("name") or stored["name"])
    policy["version"] = _version(body.get("version"), stored.get("version", "v1"))
    policy["description"] = str(body.get("description") or "")
    policy["policy_data"] = _policy_data(body.get("policy_data"))
    policy["tag_rules"] = _copy(body.get("tag_rules") or [])
    return policy


def _policy_data(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("policy_data is required and must be an object")
    return _copy(value)
