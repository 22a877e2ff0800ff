"""The one mapping between the model's objects and border0's API JSON, both ways.

Answers become `LiveSocket` / `LivePolicy`; specs become the request bodies border0's own
clients send (border0-go client/{socket,policy}.go, terraform-provider-border0
border0/resource_{socket,policy}.go; fields as tests/reference/border0-openapi.json has them).
Bodies hold secret values: they go to the client and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.connector_model import ConnectorKindSpec, LiveConnector, LiveToken
from reconciler.model import (
    UPSTREAM_SECRETS,
    LivePolicy,
    LiveSocket,
    PolicySpec,
    SocketSpec,
    ownership_tags,
    parse_policy_marker,
    policy_marker,
    socket_settings,
)
from reconciler.secrets import (
    SECRET_FIELDS,
    Secret,
    fingerprint,
    fingerprint_tag,
    secret_fields_in,
    verify,
)

__all__ = [
    "KEPT_ON_REPLACE",
    "KEPT_ON_UPDATE",
    "connector_body",
    "connector_from_api",
    "policy_create_body",
    "policy_from_api",
    "policy_update_body",
    "socket_create_body",
    "socket_from_api",
    "socket_tags",
    "socket_update_body",
    "token_from_api",
]

#: Fields of border0's updateSocketRequest (tests/reference/border0-openapi.json) the reconciler
#: does not manage: a PUT resets a field it is not sent, so an update sends these back as read.
#: Secret fields (`secrets.SECRET_FIELDS`, and border0's upstream_key) are never copied from an
#: answer: border0 does not read them back, and what it answers may be a mask.
KEPT_ON_UPDATE = (
    "display_name",  # not in updateSocketRequest; border0-go's Socket struct sends it
    "recording_enabled",
    "connector_ids",
    "upstream_configuration",
    "cloud_authentication_email_allowed_addressses",
    "cloud_authentication_email_allowed_domains",
    "connector_authentication_enabled",
    "custom_domains",
    "org_custom_domain",
    "upstream_ca",
    "upstream_cert",
)
#: Fields of createSocketRequest a replaced socket carries over from the socket it replaces
#: (answer spelling -> create spelling: the reference's create schema has one s fewer).
KEPT_ON_REPLACE = {
    "display_name": "display_name",
    "recording_enabled": "recording_enabled",
    "connector_ids": "connector_ids",
    "upstream_configuration": "upstream_configuration",
    "cloud_authentication_email_allowed_addressses": "cloud_authentication_email_allowed_addresses",
    "cloud_authentication_email_allowed_domains": "cloud_authentication_email_allowed_domains",
    "connector_authentication_enabled": "connector_authentication_enabled",
    "org_custom_domain": "org_custom_domain",
    "upstream_ca": "upstream_ca",
    "upstream_cert": "upstream_cert",
}
# --- answers -> live objects ---------------------------------------------------------------


def socket_from_api(data: Mapping[str, Any]) -> LiveSocket:
    policies = data.get("policies") or []
    return LiveSocket(
        socket_id=str(data.get("socket_id") or ""),
        name=str(data.get("name") or ""),
        socket_type=str(data.get("socket_type") or ""),
        description=str(data.get("description") or ""),
        upstream_type=str(data.get("upstream_type") or ""),
        upstream_http_hostname=str(data.get("upstream_http_hostname") or ""),
        protected_username=str(data.get("protected_username") or ""),
        protected=bool(data.get("protected_socket")),
        recording_enabled=bool(data.get("recording_enabled")),
        tags=dict(data.get("tags") or {}),
        # serializer.Socket answers `connectors: [{connector_id, name}]`; GET
        # /socket/{id}/connectors (inventory.fetch_details) is read where it matters
        connector_names=_linked_names(data.get("connectors")),
        end_to_end_encryption=bool(data.get("end_to_end_encryption_enabled")),
        connector_authentication=bool(data.get("connector_authentication_enabled")),
        dnsname=str(data.get("dnsname") or ""),
        tcp_ports=tuple(int(p) for p in data.get("socket_tcp_ports") or ()),
        policy_ids=tuple(str(p.get("id")) for p in policies if isinstance(p, Mapping)),
        policy_names=tuple(str(p.get("name")) for p in policies if isinstance(p, Mapping)),
    )


def connector_from_api(data: Mapping[str, Any]) -> LiveConnector:
    """A connector answer (border0-go client/connector.go Connector); ownership is the
    description marker policies use (connectors carry no tags)."""
    description, ownership = parse_policy_marker(str(data.get("description") or ""))
    return LiveConnector(
        connector_id=str(data.get("connector_id") or ""),
        name=str(data.get("name") or ""),
        description=description,
        built_in_ssh=bool(data.get("built_in_ssh_service_enabled")),
        ownership=ownership,
    )


def token_from_api(data: Mapping[str, Any]) -> LiveToken:
    """A listed connector token: id, name, expiry; the value is never answered after creation."""
    return LiveToken(token_id=str(data.get("id") or ""), name=str(data.get("name") or ""),
                     expires_at=str(data.get("expires_at") or ""),
                     created_at=str(data.get("created_at") or ""))


def connector_body(spec: ConnectorKindSpec, instance: str) -> dict[str, Any]:
    """The body of POST/PUT /connector: the SDK's Connector fields, ownership marker in the
    description. (`tailscale_auth_key` is not managed: a PUT without it keeps border0's.)"""
    marker = policy_marker(instance, spec.prune)
    return {
        "name": spec.name,
        "description": f"{spec.description} {marker}" if spec.description else marker,
        "built_in_ssh_service_enabled": spec.built_in_ssh,
    }


def _linked_names(connectors: Any) -> tuple[str, ...] | None:
    if not isinstance(connectors, list):
        return None
    return tuple(str(c.get("name") or c.get("connector_name") or "")
                 for c in connectors if isinstance(c, Mapping))


def policy_from_api(data: Mapping[str, Any]) -> LivePolicy:
    description, ownership = parse_policy_marker(str(data.get("description") or ""))
    return LivePolicy(
        policy_id=str(data.get("id") or ""),
        name=str(data.get("name") or ""),
        description=description,
        org_wide=bool(data.get("org_wide")),
        policy_data=_policy_data_with_version(data),
        socket_ids=tuple(str(s) for s in data.get("socket_ids") or ()),
        ownership=ownership,
    )


def _policy_data_with_version(data: Mapping[str, Any]) -> dict[str, Any]:
    """policy_data in the manifest's shape: `version` inside, read from the top level.

    border0 keeps the version beside policy_data (border0-go client/policy.go `Policy.Version`,
    a string; v2's PolicyDataV2 has no version key); a manifest writes it inside policyData.
    """
    policy_data = dict(data.get("policy_data") or {})
    version = str(data.get("version") or policy_data.get("version") or "v1")
    return {"version": version, **{k: v for k, v in policy_data.items() if k != "version"}}


# --- specs -> request bodies ---------------------------------------------------------------


def socket_tags(
    spec: SocketSpec, instance: str, live_tags: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The socket's tags: labels, ownership, and a fingerprint per secret the spec sets.

    A fingerprint already on the socket (`live_tags`) that matches the secret is kept as is;
    otherwise a new one (new salt) is made for the value about to be written.
    """
    tags = ownership_tags(spec, instance)
    live_tags = live_tags or {}
    for name in SECRET_FIELDS:
        secret = spec.secret(name)
        if secret is None:
            continue
        key = fingerprint_tag(name)
        old = live_tags.get(key)
        tags[key] = old if old and verify(secret, old) else fingerprint(secret)
    combined = spec.upstream_secret
    if combined is not None:
        key = fingerprint_tag(UPSTREAM_SECRETS)
        old = live_tags.get(key)
        tags[key] = old if old and verify(combined, old) else fingerprint(combined)
    return tags


def _plain(value: Any) -> Any:
    """A typed upstream with its `Secret` leaves as their values (for a request body only)."""
    if isinstance(value, Secret):
        return value.value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _managed_body(spec: SocketSpec, instance: str, live_tags: Mapping[str, str] | None) -> dict:
    body = socket_settings(spec, instance)
    body["tags"] = socket_tags(spec, instance, live_tags)
    body.update(_secret_values(spec, "upstream"))
    if spec.upstream_config is not None:
        body["upstream_configuration"] = _plain(spec.upstream_config)
    if spec.end_to_end_encryption is not None:
        body["end_to_end_encryption_enabled"] = spec.end_to_end_encryption
    if spec.connector_authentication is not None:
        body["connector_authentication_enabled"] = spec.connector_authentication
    return body


def _secret_values(spec: SocketSpec, section: str) -> dict[str, str]:
    """The plain values of the secrets of one section that the spec sets (for a request body)."""
    values = ((name, spec.secret(name)) for name in secret_fields_in(section))
    return {name: secret.value for name, secret in values if secret is not None}


def socket_create_body(
    spec: SocketSpec, instance: str, replaced: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The body of POST /socket (createSocketRequest); holds secret values.

    `replaced`: the answer for the socket this one replaces, whose unmanaged fields carry over.
    """
    body: dict[str, Any] = {}
    for read_key, create_key in KEPT_ON_REPLACE.items():
        if replaced is not None and replaced.get(read_key) not in (None, "", [], {}):
            body[create_key] = replaced[read_key]
    body.update(_managed_body(spec, instance, None))
    if spec.protected:
        body["protected_socket"] = True
        body["protected_username"] = spec.protected_username or ""
        body.update(_secret_values(spec, "protected"))
    return body


def socket_update_body(
    spec: SocketSpec, instance: str, current: Mapping[str, Any]
) -> dict[str, Any]:
    """The body of PUT /socket/{id} (updateSocketRequest): read-modify-write.

    border0 resets an updatable field the PUT does not send, so the unmanaged fields go back
    as `current` (the socket as just read) has them, and the managed ones as the spec says.
    Secrets are sent from the manifest every time (they cannot be read back).
    """
    body = {k: current[k] for k in KEPT_ON_UPDATE if current.get(k) is not None}
    body.update(_managed_body(spec, instance, current.get("tags") or {}))
    return body


def policy_create_body(
    spec: PolicySpec, instance: str, replaced: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The body of POST /policies, ownership marker included.

    `version` at the top level (a string), as border0-go client/policy.go and the Terraform
    provider send it; v2 policy_data (the SDK's PolicyDataV2) has no version key. `replaced`:
    the policy this one replaces, whose `tag_rules` (not managed here) carry over.
    """
    marker = policy_marker(instance, spec.prune)
    description = f"{spec.description} {marker}" if spec.description else marker
    version = str(spec.policy_data.get("version") or "v1")
    policy_data = dict(spec.policy_data)
    if version != "v1":
        policy_data.pop("version", None)
    body = {
        "name": spec.name,
        "version": version,
        "description": description,
        "policy_data": policy_data,
        "org_wide": spec.org_wide,
    }
    if replaced is not None and replaced.get("tag_rules"):
        body["tag_rules"] = replaced["tag_rules"]
    return body


def policy_update_body(
    spec: PolicySpec, instance: str, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The body of PUT /policy/{id}: as a create without `org_wide`, which border0 does not
    change in place (the planner replaces the policy instead). A PUT resets `tag_rules` it is
    not sent, so they go back as `current` (the policy as just read) has them."""
    body = policy_create_body(spec, instance, current)
    body.pop("org_wide")
    return body
