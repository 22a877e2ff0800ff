"""The one mapping between the model's objects and border0's API JSON, both ways.

Answers become `LiveSocket` / `LivePolicy`; specs become the request bodies border0's own
clients send (border0-go client/{socket,policy}.go, terraform-provider-border0
border0/resource_{socket,policy}.go; fields as tests/reference/border0-openapi.json has them).
Bodies hold secret values: they go to the client and nowhere else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from reconciler.connector_model import ConnectorKindSpec, LiveConnector, LiveToken
from reconciler.model import (
    UPSTREAM_SECRETS,
    LivePolicy,
    LiveSocket,
    PolicySpec,
    SocketSpec,
    kept_legacy_upstream,
    socket_settings,
    written_tags,
)
from reconciler.ownership import parse_policy_marker, policy_marker
from reconciler.secrets import (
    SECRET_FIELDS,
    SECRETS,
    Secret,
    fingerprint,
    fingerprint_tag,
    is_mask,
    secret_fields_in,
    verify,
)

__all__ = [
    "KEPT_ON_REPLACE",
    "KEPT_ON_UPDATE",
    "LINK_FIELDS",
    "connector_body",
    "connector_from_api",
    "kept_secrets",
    "policy_create_body",
    "policy_from_api",
    "policy_update_body",
    "socket_create_body",
    "socket_from_api",
    "socket_tags",
    "socket_update_body",
    "token_from_api",
    "with_links",
]

#: Fields of border0's updateSocketRequest (tests/reference/border0-openapi.json) the reconciler
#: does not manage: a PUT resets a field it is not sent, so an update sends these back as read.
#: `connector_ids` and `upstream_configuration` come from the socket's sub-resources, never from
#: the socket answer (`with_links`). Secret fields the manifest leaves out: `kept_secrets`.
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
#: (answer spelling -> create spelling). The e-mail allow-list is known in two spellings:
#: the reference's createSocketRequest has `..._addresses`, while its updateSocketRequest,
#: every answer and border0's own CLI (border0-cli internal/api/models/socket.go,
#: `AllowedEmailAddresses ... json:"cloud_authentication_email_allowed_addressses"`, which
#: `socket create` posts) have three s's. We send the CLI's spelling, the one border0's own
#: tools are known to get through on create.
KEPT_ON_REPLACE = {
    "display_name": "display_name",
    "recording_enabled": "recording_enabled",
    "connector_ids": "connector_ids",
    "upstream_configuration": "upstream_configuration",
    "cloud_authentication_email_allowed_addressses":
        "cloud_authentication_email_allowed_addressses",
    "cloud_authentication_email_allowed_domains": "cloud_authentication_email_allowed_domains",
    "connector_authentication_enabled": "connector_authentication_enabled",
    "org_custom_domain": "org_custom_domain",
    "upstream_ca": "upstream_ca",
    "upstream_cert": "upstream_cert",
}
#: The socket fields border0 answers only through sub-resources (OpenAPI serializer.Socket has
#: `connectors: [{connector_id, name}]` and no `connector_ids` or `upstream_configuration`).
LINK_FIELDS = ("connector_ids", "upstream_configuration")


def with_links(
    answer: Mapping[str, Any], connectors: Sequence[Mapping[str, Any]],
    configurations: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The socket as a write must start from: `answer` (GET /socket/{id}) with its connector
    links from GET /socket/{id}/connectors and its upstream configuration from
    GET /socket/{id}/upstream_configurations, as the Terraform provider reads them
    (border0/resource_socket.go, read; internal/schemautil/socket.go FromConnector takes every
    entry's connector_id; internal/schemautil/upstream_config.go FromUpstreamConfig the first
    entry's config). Whatever the answer itself says about them is not used."""
    current = {k: v for k, v in answer.items() if k not in LINK_FIELDS}
    ids = sorted({str(c["connector_id"]) for c in connectors if c.get("connector_id")})
    if ids:
        current["connector_ids"] = ids
    config = next((c.get("config") for c in configurations if c.get("config")), None)
    if config:
        current["upstream_configuration"] = config
    return current


#: The upstream's username, which border0 answers: empty, the socket has no login.
_LOGIN = next(f.name for f in SECRETS if f.section == "upstream" and f.read_back
              and not f.by_nature)


def kept_secrets(spec: SocketSpec, current: Mapping[str, Any]) -> dict[str, str]:
    """The credentials of the upstream the manifest leaves out, as border0 answered them: sent
    back so a write never clears what the manifest does not declare (border0 answers
    the upstream username; a password only when it answers it in clear, never a mask)."""
    out: dict[str, str] = {}
    for name in secret_fields_in("upstream"):
        value = current.get(name)
        if spec.secret(name) is None and isinstance(value, str) and value and not is_mask(value):
            out[name] = value
    return out


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
        policy_ids=tuple(str(p.get("id")) for p in policies if isinstance(p, (dict, Mapping))),
        policy_names=tuple(str(p.get("name")) for p in policies if isinstance(p, (dict, Mapping))),
        upstream_login=bool(data[_LOGIN]) if isinstance(data.get(_LOGIN), str) else None,
        answer_digest=answer_digest(data),
        **_answered_secrets(data),
    )


def answer_digest(data: Mapping[str, Any]) -> str | None:
    """A digest of a socket's answer as border0 gave it (its JSON, keys in the order answered:
    the same answer, the same digest); None for what JSON cannot hold. Every field counts,
    those no plan compares too (a changed answer is compared again, never taken as unchanged),
    but for the policies it lists, which count by id and name (`socket_from_api` reads no more
    of them; a plan's key holds both: plan/in_sync.py) and whose contents are the policies'
    own. Without them an answer is about 1 KB, under the size at which hashlib lets go of the
    interpreter lock: 16 page threads hashing 2 KB each made the listing 0.1 s slower."""
    import orjson  # the client's: imported by every command that reads border0

    try:
        own = orjson.dumps({k: v for k, v in data.items() if k != "policies"})
    except TypeError:  # orjson.JSONEncodeError: not a dict of JSON values
        return None
    return hashlib.sha256(own).hexdigest()[:32]


def _answered_secrets(data: Mapping[str, Any]) -> dict[str, Any]:
    """The secret fields of a socket answer: masked (set, not readable), and answered in
    clear (`Secret`s: the upstream username, which serializer.Socket answers)."""
    answered = {name: value for name in SECRET_FIELDS
                if isinstance(value := data.get(name), str) and value}
    if not answered:  # most sockets: nothing to build
        return {}
    masked = frozenset(name for name, value in answered.items() if is_mask(value))
    return {"masked_secrets": masked,
            "answered_secrets": {name: Secret(value, "border0") for name, value in
                                 answered.items() if name not in masked}}


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
                     expires_at=_rfc3339(data.get("expires_at")),
                     created_at=_rfc3339(data.get("created_at")))


def _rfc3339(value: Any) -> str:
    """A token's time as RFC 3339 text, "" when unset: border0 answers text (the CLI's
    `ConnectorToken.ExpiresAt string`), and its SDK reads Unix seconds too (FlexibleTime)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value:
            return ""
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or "")


def connector_body(spec: ConnectorKindSpec, instance: str,
                   revoking: Iterable[str] = ()) -> dict[str, Any]:
    """The body of POST/PUT /connector: the SDK's Connector fields, ownership marker in the
    description. (`tailscale_auth_key` is not managed: a PUT without it keeps border0's.)
    The marker names the declared tokens and `revoking`, the ones this apply has yet to revoke
    (apply/runner.py writes the final marker once they are)."""
    marker = policy_marker(instance, spec.prune,
                           tokens={*(t.name for t in spec.tokens), *revoking})
    return {
        "name": spec.name,
        "description": f"{spec.description} {marker}" if spec.description else marker,
        "built_in_ssh_service_enabled": spec.built_in_ssh,
    }


def _linked_names(connectors: Any) -> tuple[str, ...] | None:
    if not isinstance(connectors, list):
        return None
    return tuple(str(c.get("name") or c.get("connector_name") or "")
                 for c in connectors if isinstance(c, (dict, Mapping)))


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
        tag_rules=tuple(dict(r) for r in data.get("tag_rules") or () if isinstance(r, (dict, Mapping))),
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
    """The socket's tags: labels (and the tags set elsewhere, unless labels are authoritative),
    ownership and the digest of its links and typed upstream (`model.written_tags`), and a
    fingerprint per secret the spec sets.

    A fingerprint already on the socket (`live_tags`) that matches the secret is kept as is;
    otherwise a new one (new salt) is made for the value about to be written.
    """
    live_tags = live_tags or {}
    tags = written_tags(spec, instance, live_tags)
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
    if isinstance(value, (dict, Mapping)):
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

    `replaced`: the answer for the socket this one replaces, whose unmanaged fields carry over,
    and its tags set elsewhere (unless labels are authoritative: `socket_tags`), as an update
    keeps them: a policy whose tag_rules select them still applies to the new socket.
    """
    body: dict[str, Any] = {}
    for read_key, create_key in KEPT_ON_REPLACE.items():
        if replaced is not None and replaced.get(read_key) not in (None, "", [], {}):
            body[create_key] = replaced[read_key]
    if replaced is not None:
        body.update(kept_secrets(spec, replaced))
    body.update(_managed_body(spec, instance, replaced.get("tags") if replaced else None))
    if replaced is not None:
        body.update(kept_legacy_upstream(spec, replaced))
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
    as `current` (the socket as just read, links included: `with_links`) has them, and the
    managed ones as the spec says.
    Secrets are sent from the manifest every time (they cannot be read back).
    """
    body = {k: current[k] for k in KEPT_ON_UPDATE if current.get(k) is not None}
    body.update(kept_secrets(spec, current))
    body.update(_managed_body(spec, instance, current.get("tags") or {}))
    body.update(kept_legacy_upstream(spec, current))
    return body


def policy_create_body(
    spec: PolicySpec, instance: str, replaced: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The body of POST /policies, ownership marker included.

    `version` at the top level (a string), as border0-go client/policy.go and the Terraform
    provider send it; v2 policy_data (the SDK's PolicyDataV2) has no version key. `replaced`:
    the policy this one replaces, whose `tag_rules` (not managed here) carry over.
    """
    marker = policy_marker(instance, spec.prune, spec.confirm_delete)
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
