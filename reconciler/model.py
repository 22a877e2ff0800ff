"""The typed objects of the reconciler and the one mapping between them and border0's API JSON.

Desired state comes from manifests (`SocketSpec`, `PolicySpec`, gathered in `Desired`); actual
state comes from the API (`LiveSocket`, `LivePolicy`, gathered in `Actual`). Both sides are
reduced to the same *comparable* form (`socket_fields`, `policy_fields`), so the planner compares
like with like and never sees API defaults or server-set fields (ids, dnsname, ports, times).

Secret values travel as `Secret` objects: their repr and str are ``(sensitive)``, and they are
compared by digest, so no diff, log line or exception can carry the value itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "INSTANCE_TAG",
    "MANAGED_BY_TAG",
    "PRUNE_TAG",
    "RESERVED_TAG_PREFIX",
    "SENSITIVE",
    "SOCKET_TYPES",
    "Actual",
    "ConnectorSpec",
    "Desired",
    "LivePolicy",
    "LiveSocket",
    "Ownership",
    "PolicySpec",
    "Secret",
    "SocketSpec",
    "Source",
    "api_type",
    "live_policy_fields",
    "live_socket_fields",
    "parse_policy_marker",
    "policy_fields",
    "policy_from_api",
    "policy_marker",
    "policy_to_api",
    "socket_fields",
    "socket_from_api",
    "socket_to_api",
]

SENSITIVE = "(sensitive)"

#: Socket types a manifest may name (those of the seed CLI). `https` is stored by border0 as
#: socket_type `http` with upstream_type `https`.
SOCKET_TYPES = ("http", "https", "ssh", "tls", "database")

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
    "tls": "",
    "database": "mysql",
}


@dataclass(frozen=True)
class Secret:
    """A resolved secret value. Shown as ``(sensitive)``; compared by SHA-256 digest."""

    value: str = field(repr=False)
    origin: str = "literal"  # "literal", "env:NAME" or "file:PATH": safe to show

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.value.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"Secret({SENSITIVE}, origin={self.origin!r})"

    def __str__(self) -> str:
        return SENSITIVE

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)


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
    upstream_username: Secret | None = None
    upstream_password: Secret | None = None
    protected_username: str | None = None
    protected_password: Secret | None = None
    policies: tuple[str, ...] = ()
    external_policies: tuple[str, ...] = ()
    connector: ConnectorSpec | None = None
    prune: bool = True  # False when annotated border0-reconciler/prune: "false"
    adopt: bool = False  # True when annotated border0-reconciler/adopt: "true"
    suspend: bool = False  # True when annotated border0-reconciler/suspend: "true": left alone
    source: Source | None = field(default=None, compare=False)

    @property
    def protected(self) -> bool:
        return self.protected_username is not None or self.protected_password is not None

    @property
    def all_policies(self) -> tuple[str, ...]:
        """Every policy name this socket should be attached to, declared or external."""
        return tuple(dict.fromkeys(self.policies + self.external_policies))

    def secrets(self) -> tuple[Secret, ...]:
        return tuple(
            s
            for s in (self.upstream_username, self.upstream_password, self.protected_password)
            if s is not None
        )


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

    def secrets(self) -> tuple[Secret, ...]:
        return tuple(s for spec in self.sockets.values() for s in spec.secrets())


@dataclass(frozen=True)
class Ownership:
    """Who owns a live object, read from its tags (sockets) or description marker (policies)."""

    managed: bool = False  # created by a border0-reconciler (any instance)
    instance: str | None = None
    prune: bool = True

    def owned_by(self, instance: str) -> bool:
        return self.managed and self.instance == instance


@dataclass(frozen=True)
class LiveSocket:
    """A socket as border0 reports it."""

    socket_id: str
    name: str
    socket_type: str  # the API's type: https shows as http here
    description: str = ""
    upstream_type: str = ""
    upstream_http_hostname: str = ""
    upstream_username: Secret | None = None
    upstream_password: Secret | None = None
    protected_username: str = ""
    protected_password: Secret | None = None
    protected: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    dnsname: str = ""
    tcp_ports: tuple[int, ...] = ()
    policy_ids: tuple[str, ...] = ()
    policy_names: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        """The manifest type: `https` for an http socket with an https upstream."""
        if self.socket_type == "http" and self.upstream_type == "https":
            return "https"
        return self.socket_type

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


# --- Policy ownership marker ---------------------------------------------------------------
# Policies carry no tags, so ownership is a marker at the end of the description:
#   "<user description> [managed-by=border0-reconciler instance=<id>]"
#   "<user description> [managed-by=border0-reconciler instance=<id> prune=false]"

_MARKER_RE = re.compile(
    r"\s*\[managed-by=border0-reconciler instance=(?P<instance>[A-Za-z0-9._-]+)"
    r"(?P<noprune> prune=false)?\]\s*$"
)


def policy_marker(instance: str, prune: bool = True) -> str:
    return f"[managed-by=border0-reconciler instance={instance}{'' if prune else ' prune=false'}]"


def parse_policy_marker(description: str) -> tuple[str, Ownership]:
    """Split a live policy description into the user's text and the ownership it records."""
    match = _MARKER_RE.search(description or "")
    if not match:
        return description or "", Ownership()
    return description[: match.start()], Ownership(
        managed=True, instance=match.group("instance"), prune=match.group("noprune") is None
    )


# --- API JSON -> live objects -------------------------------------------------------------


def _secret_or_none(value: Any) -> Secret | None:
    return Secret(str(value), origin="api") if value else None


def socket_from_api(data: Mapping[str, Any]) -> LiveSocket:
    policies = data.get("policies") or []
    return LiveSocket(
        socket_id=str(data.get("socket_id") or ""),
        name=str(data.get("name") or ""),
        socket_type=str(data.get("socket_type") or ""),
        description=str(data.get("description") or ""),
        upstream_type=str(data.get("upstream_type") or ""),
        upstream_http_hostname=str(data.get("upstream_http_hostname") or ""),
        upstream_username=_secret_or_none(data.get("upstream_username")),
        upstream_password=_secret_or_none(data.get("upstream_password")),
        protected_username=str(data.get("protected_username") or ""),
        protected_password=_secret_or_none(data.get("protected_password")),
        protected=bool(data.get("protected_socket")),
        tags=dict(data.get("tags") or {}),
        dnsname=str(data.get("dnsname") or ""),
        tcp_ports=tuple(int(p) for p in data.get("socket_tcp_ports") or ()),
        policy_ids=tuple(str(p.get("id")) for p in policies if isinstance(p, Mapping)),
        policy_names=tuple(str(p.get("name")) for p in policies if isinstance(p, Mapping)),
    )


def policy_from_api(data: Mapping[str, Any]) -> LivePolicy:
    description, ownership = parse_policy_marker(str(data.get("description") or ""))
    return LivePolicy(
        policy_id=str(data.get("id") or ""),
        name=str(data.get("name") or ""),
        description=description,
        org_wide=bool(data.get("org_wide")),
        policy_data=dict(data.get("policy_data") or {}),
        socket_ids=tuple(str(s) for s in data.get("socket_ids") or ()),
        ownership=ownership,
    )


# --- desired objects -> API JSON ----------------------------------------------------------


def api_type(spec: SocketSpec) -> tuple[str, str]:
    """(socket_type, upstream_type) as border0 stores them."""
    upstream = spec.upstream_type or DEFAULT_UPSTREAM_TYPE.get(spec.type, "")
    if spec.type == "https":
        return "http", "https"
    return spec.type, upstream


def socket_tags(spec: SocketSpec, instance: str) -> dict[str, str]:
    tags = dict(spec.labels)
    tags[MANAGED_BY_TAG] = MANAGED_BY_VALUE
    tags[INSTANCE_TAG] = instance
    if not spec.prune:
        tags[PRUNE_TAG] = "false"
    return tags


def socket_to_api(spec: SocketSpec, instance: str) -> dict[str, Any]:
    """The full desired-state body for POST /socket and PUT /socket/{id}; holds secret values."""
    socket_type, upstream_type = api_type(spec)
    body: dict[str, Any] = {
        "name": spec.name,
        "socket_type": socket_type,
        "description": spec.description,
        "upstream_type": upstream_type,
        "upstream_http_hostname": spec.upstream_http_hostname or "",
        "tags": socket_tags(spec, instance),
        "protected_socket": spec.protected,
    }
    if spec.upstream_username is not None:
        body["upstream_username"] = spec.upstream_username.value
    if spec.upstream_password is not None:
        body["upstream_password"] = spec.upstream_password.value
    if spec.protected:
        body["protected_username"] = spec.protected_username or ""
        if spec.protected_password is not None:
            body["protected_password"] = spec.protected_password.value
    return body


def policy_to_api(spec: PolicySpec, instance: str) -> dict[str, Any]:
    """The body for POST /policies and PUT /policy/{id}, ownership marker included."""
    marker = policy_marker(instance, spec.prune)
    description = f"{spec.description} {marker}" if spec.description else marker
    return {
        "name": spec.name,
        "description": description,
        "policy_data": dict(spec.policy_data),
        "org_wide": spec.org_wide,
    }


# --- the comparable form ------------------------------------------------------------------
# Both sides reduce to the same flat dict. Secrets stay `Secret` objects (compared by digest,
# rendered as (sensitive)); a secret the desired side leaves out is not compared.


def socket_fields(spec: SocketSpec) -> dict[str, Any]:
    _, upstream_type = api_type(spec)
    return {
        "type": spec.type,
        "description": spec.description,
        "upstream_type": upstream_type,
        "upstream_http_hostname": spec.upstream_http_hostname or "",
        "upstream_username": spec.upstream_username,
        "upstream_password": spec.upstream_password,
        "protected": spec.protected,
        "protected_username": spec.protected_username or "",
        "protected_password": spec.protected_password,
        "labels": dict(spec.labels),
        "prune": spec.prune,
    }


def live_socket_fields(live: LiveSocket) -> dict[str, Any]:
    return {
        "type": live.type,
        "description": live.description,
        "upstream_type": live.upstream_type,
        "upstream_http_hostname": live.upstream_http_hostname,
        "upstream_username": live.upstream_username,
        "upstream_password": live.upstream_password,
        "protected": live.protected,
        "protected_username": live.protected_username,
        "protected_password": live.protected_password,
        "labels": live.labels,
        "prune": live.ownership.prune,
    }


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
    """Drop empty values so `who: {email: []}` and an absent `email` compare equal."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            out = {k: clean(v) for k, v in value.items()}
            return {k: v for k, v in out.items() if v not in (None, "", [], {})}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return clean(data)
