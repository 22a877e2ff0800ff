"""The typed objects of the reconciler and the comparable form both sides reduce to.

Desired state comes from manifests (`SocketSpec`, `PolicySpec`, gathered in `Desired`); actual
state comes from the API (`LiveSocket`, `LivePolicy`, gathered in `Actual`). Both sides are
reduced to the same *comparable* form (`socket_fields`, `policy_fields`), so the planner compares
like with like and never sees API defaults or server-set fields (ids, dnsname, ports, times).

Secret values travel as `Secret` objects (`reconciler.secrets`): their repr and str are
``(sensitive)``, so no diff, log line or exception can carry the value itself. border0 does not
read secrets back: a live socket's secrets are the fingerprints the reconciler stored in its
reserved tags (`Fingerprint`), which compare equal to the manifest's `Secret` when they match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler import upstream
from reconciler.connector_model import live_typed_fields, typed_fields
from reconciler.ownership import Ownership, parse_policy_marker, policy_marker
from reconciler.secrets import (
    SECRET_FIELDS,
    Fingerprint,
    Secret,
    fingerprint_tag,
    insert_secret_fields,
    secret_fields_in,
)

if TYPE_CHECKING:  # the connector model's objects live in connector_model.py
    from reconciler.connector_model import ConnectorKindSpec, LiveConnector

__all__ = [
    "INSTANCE_TAG",
    "MANAGED_BY_TAG",
    "PRUNE_TAG",
    "RESERVED_TAG_PREFIX",
    "SOCKET_TYPES",
    "Actual",
    "ConnectorSpec",
    "Desired",
    "LivePolicy",
    "LiveSocket",
    "Ownership",
    "PolicySpec",
    "SocketSpec",
    "Source",
    "api_type",
    "live_policy_fields",
    "live_socket_fields",
    "ownership_tags",
    "parse_policy_marker",
    "policy_fields",
    "policy_marker",
    "socket_fields",
    "socket_settings",
]

#: Socket types a manifest may name: the seed CLI's, then border0's newer ones (border0-go
#: types/service/configuration.go), which take a typed upstream. `https` is stored by border0
#: as socket_type `http` with upstream_type `https`.
SOCKET_TYPES = ("http", "https", "ssh", "tls", "database", "vnc", "rdp", "vpn", "kubernetes",
                "subnet_router", "exit_node", "snowflake", "elasticsearch", "aws_s3", "aws_access")
#: The tag that holds one fingerprint over every secret of a typed upstream.
UPSTREAM_SECRETS = "upstream_configuration"

#: Tags on every socket the reconciler creates; they are how it knows what it owns.
MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "border0-reconciler"
INSTANCE_TAG = "border0-reconciler/instance"
#: Copied from the `border0-reconciler/prune: "false"` annotation onto the live socket, so the
#: protection holds after the manifest is gone.
PRUNE_TAG = "border0-reconciler/prune"
#: Label keys users may not set: the reconciler's own tags live here.
RESERVED_TAG_PREFIX = "border0-reconciler/"

#: border0's default upstream type for each manifest socket type when none is given.
DEFAULT_UPSTREAM_TYPE: dict[str, str] = {
    "http": "http",
    "https": "https",
    "ssh": "ssh",
    "tls": "tls",  # as the Terraform provider (schemautil/socket.go) and the strict twin
    "database": "mysql",
}


@dataclass(frozen=True)
class Source:
    """Where an object was declared: shown in diagnostics and plans as file:line:column."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class ConnectorSpec:
    """`spec.connector`: the `border0 socket connect` process the daemon keeps running."""

    enabled: bool = True
    host: str | None = None
    port: int | None = None
    httpserver: bool = False
    httpserver_dir: str | None = None
    sshserver: bool = False
    identity_file: str | None = None
    proxy: str | None = None


@dataclass(frozen=True, eq=True)
class SocketSpec:
    """One `kind: Socket` manifest, validated and with its secrets resolved."""

    name: str
    type: str  # one of SOCKET_TYPES
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    upstream_type: str | None = None
    upstream_http_hostname: str | None = None
    protected_username: str | None = None
    #: The secrets the manifest sets, by field name (secrets.SECRET_FIELDS, their one list):
    #: `spec.secret(name)`. A field the manifest leaves out is absent.
    secrets_by_field: Mapping[str, Secret] = field(default_factory=dict)
    recording: bool | None = None  # None: border0's recording_enabled is left alone
    policies: tuple[str, ...] = ()
    external_policies: tuple[str, ...] = ()
    connector: ConnectorSpec | None = None
    #: `spec.connectors`: names of the connectors that serve it (None: links left alone).
    connectors: tuple[str, ...] | None = None
    #: The typed upstream as border0's upstream_configuration (secret leaves are `Secret`s);
    #: None for a legacy upstream.
    upstream_config: Mapping[str, Any] | None = None
    end_to_end_encryption: bool | None = None
    connector_authentication: bool | None = None
    prune: bool = True  # False when annotated border0-reconciler/prune: "false"
    adopt: bool = False  # True when annotated border0-reconciler/adopt: "true"
    suspend: bool = False  # True when annotated border0-reconciler/suspend: "true": left alone
    source: Source | None = field(default=None, compare=False)

    @property
    def protected(self) -> bool:
        return self.protected_username is not None or any(
            name in self.secrets_by_field for name in secret_fields_in("protected")
        )

    @property
    def all_policies(self) -> tuple[str, ...]:
        """Every policy name this socket should be attached to, declared or external."""
        return tuple(dict.fromkeys(self.policies + self.external_policies))

    def secret(self, name: str) -> Secret | None:
        """The secret in field `name` (one of secrets.SECRET_FIELDS), None when not set."""
        return self.secrets_by_field.get(name)

    def secrets(self) -> tuple[Secret, ...]:
        found = [s for name in SECRET_FIELDS if (s := self.secret(name)) is not None]
        if self.upstream_config is not None:
            found += upstream.strip_secrets(self.upstream_config)[1].values()
        return tuple(found)

    @property
    def upstream_secret(self) -> Secret | None:
        """One `Secret` over every secret of the typed upstream (its fingerprint tag's value)."""
        if self.upstream_config is None:
            return None
        return upstream.combined_secret(upstream.strip_secrets(self.upstream_config)[1])


@dataclass(frozen=True)
class PolicySpec:
    """One `kind: Policy` manifest."""

    name: str
    description: str = ""
    org_wide: bool = False
    policy_data: Mapping[str, Any] = field(default_factory=dict)
    prune: bool = True
    adopt: bool = False
    suspend: bool = False  # border0-reconciler/suspend: "true": plan and apply leave it alone
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Desired:
    """Everything the manifests declare, keyed by name."""

    sockets: Mapping[str, SocketSpec] = field(default_factory=dict)
    policies: Mapping[str, PolicySpec] = field(default_factory=dict)
    connectors: Mapping[str, ConnectorKindSpec] = field(default_factory=dict)
    #: False: policies are not managed (--no-policies): none read, none written.
    manage_policies: bool = True

    def secrets(self) -> tuple[Secret, ...]:
        return tuple(s for spec in self.sockets.values() for s in spec.secrets())


@dataclass(frozen=True)
class LiveSocket:
    """A socket as border0 reports it. Secrets are not read back: see `fingerprints`."""

    socket_id: str
    name: str
    socket_type: str  # the API's type: https shows as http here
    description: str = ""
    upstream_type: str = ""
    upstream_http_hostname: str = ""
    protected_username: str = ""
    protected: bool = False
    recording_enabled: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    dnsname: str = ""
    tcp_ports: tuple[int, ...] = ()
    policy_ids: tuple[str, ...] = ()
    policy_names: tuple[str, ...] = ()
    #: From GET /socket/{id}/connectors and /upstream_configurations; None: not read.
    connector_names: tuple[str, ...] | None = None
    upstream_configuration: Mapping[str, Any] | None = None
    end_to_end_encryption: bool = False
    connector_authentication: bool = False

    @property
    def type(self) -> str:
        """The manifest type: `https` for an http socket with an https upstream."""
        if self.socket_type == "http" and self.upstream_type == "https":
            return "https"
        return self.socket_type

    @property
    def upstream_type_or_default(self) -> str:
        """border0 fills an empty upstream_type with the type's default (tls -> tls)."""
        return self.upstream_type or DEFAULT_UPSTREAM_TYPE.get(self.type, "")

    def fingerprint(self, field_name: str) -> Fingerprint | None:
        """The fingerprint the reconciler recorded for a secret field, if any."""
        text = self.tags.get(fingerprint_tag(field_name))
        return Fingerprint(text) if text else None

    @property
    def ownership(self) -> Ownership:
        return Ownership(
            managed=self.tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE,
            instance=self.tags.get(INSTANCE_TAG),
            prune=self.tags.get(PRUNE_TAG, "true").lower() != "false",
        )

    @property
    def labels(self) -> dict[str, str]:
        """The user's tags: all tags but the reconciler's own."""
        return {
            k: v
            for k, v in self.tags.items()
            if k != MANAGED_BY_TAG and not k.startswith(RESERVED_TAG_PREFIX)
        }


@dataclass(frozen=True)
class LivePolicy:
    """A policy as border0 reports it; `description` is without the ownership marker."""

    policy_id: str
    name: str
    description: str = ""
    org_wide: bool = False
    policy_data: Mapping[str, Any] = field(default_factory=dict)
    socket_ids: tuple[str, ...] = ()
    ownership: Ownership = field(default_factory=Ownership)


@dataclass(frozen=True)
class Actual:
    """Everything border0 holds that the planner looks at, keyed by name."""

    sockets: Mapping[str, LiveSocket] = field(default_factory=dict)
    policies: Mapping[str, LivePolicy] = field(default_factory=dict)
    connectors: Mapping[str, LiveConnector] = field(default_factory=dict)


# --- border0's socket types ---------------------------------------------------------------


def api_type(spec: SocketSpec) -> tuple[str, str]:
    """(socket_type, upstream_type) as border0 stores them."""
    upstream = spec.upstream_type or DEFAULT_UPSTREAM_TYPE.get(spec.type, "")
    if spec.type == "https":
        return "http", "https"
    return spec.type, upstream


def ownership_tags(spec: SocketSpec, instance: str) -> dict[str, str]:
    """The socket's labels and our ownership tags (api_json.socket_tags adds fingerprints)."""
    tags = dict(spec.labels)
    tags[MANAGED_BY_TAG] = MANAGED_BY_VALUE
    tags[INSTANCE_TAG] = instance
    if not spec.prune:
        tags[PRUNE_TAG] = "false"
    return tags


def socket_settings(spec: SocketSpec, instance: str) -> dict[str, Any]:
    """Managed non-secret fields in API names: where bodies and resource_changes start."""
    socket_type, upstream_type = api_type(spec)
    body: dict[str, Any] = {
        "name": spec.name,
        "socket_type": socket_type,
        "description": spec.description,
        "upstream_type": upstream_type,
        "upstream_http_hostname": spec.upstream_http_hostname or "",
        "tags": ownership_tags(spec, instance),
    }
    if spec.recording is not None:
        body["recording_enabled"] = spec.recording
    return body


# --- the comparable form ------------------------------------------------------------------
# Both sides reduce to the same flat dict. Desired secrets are `Secret`s, live ones the
# `Fingerprint`s of our tags (equal when they match; both render as (sensitive)). A secret, or
# `recording`, that the desired side leaves out is not compared (`diffs.comparable`).


def _manifest_type(socket_type: str, upstream_type: str) -> str:
    return "https" if socket_type == "http" and upstream_type == "https" else socket_type


def socket_fields(spec: SocketSpec) -> dict[str, Any]:
    socket_type, upstream_type = api_type(spec)
    plain = {
        "type": _manifest_type(socket_type, upstream_type),
        "description": spec.description,
        "upstream_type": upstream_type,
        "upstream_http_hostname": spec.upstream_http_hostname or "",
        "protected": spec.protected,
        "protected_username": spec.protected_username or "",
        "recording": spec.recording,
        "labels": dict(spec.labels),
        "prune": spec.prune,
        **typed_fields(spec),
    }
    return insert_secret_fields(plain, spec.secret)


def live_socket_fields(live: LiveSocket) -> dict[str, Any]:
    plain = {
        "type": live.type,
        "description": live.description,
        "upstream_type": live.upstream_type_or_default,
        "upstream_http_hostname": live.upstream_http_hostname,
        "protected": live.protected,
        "protected_username": live.protected_username,
        "recording": live.recording_enabled,
        "labels": live.labels,
        "prune": live.ownership.prune,
        **live_typed_fields(live, live.fingerprint(UPSTREAM_SECRETS)),
    }
    return insert_secret_fields(plain, live.fingerprint)


def policy_fields(spec: PolicySpec) -> dict[str, Any]:
    return {
        "description": spec.description,
        "org_wide": spec.org_wide,
        "policy_data": _normalize_policy_data(spec.policy_data),
        "prune": spec.prune,
    }


def live_policy_fields(live: LivePolicy) -> dict[str, Any]:
    return {
        "description": live.description,
        "org_wide": live.org_wide,
        "policy_data": _normalize_policy_data(live.policy_data),
        "prune": live.ownership.prune,
    }


def _normalize_policy_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty values so `who: {email: []}` and an absent `email` compare equal; no
    version is v1 (border0's default on create). v2 `permissions` stay as written: there an
    empty mapping (`http: {}`) grants access."""
    data = {"version": "v1", **dict(data)}
    permissions = data.pop("permissions", None)

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            out = {k: clean(v) for k, v in value.items()}
            return {k: v for k, v in out.items() if v not in (None, "", [], {})}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    cleaned = clean(data)
    if permissions is not None:
        cleaned["permissions"] = permissions
    return cleaned
