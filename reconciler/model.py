"""The typed objects of the reconciler and the comparable form both sides reduce to.

Desired state comes from manifests (`SocketSpec`, `PolicySpec`, gathered in `Desired`); actual
state comes from the API (`LiveSocket`, `LivePolicy`, gathered in `Actual`). Both sides are
reduced to the same *comparable* form (`socket_fields`, `policy_fields`), so the planner compares
like with like and never sees API defaults or server-set fields (ids, dnsname, ports, times).

Secret values travel as `Secret` objects (`reconciler.secrets`): their repr and str are
``(sensitive)``, so no diff, log line or exception can carry the value itself. border0 does not
read passwords back: a live socket's secrets are the fingerprints the reconciler stored in its
reserved tags (`Fingerprint`), which compare equal to the manifest's `Secret` when they match,
except a value border0 does answer (the upstream username), compared as answered.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from reconciler import upstream
from reconciler.connector_model import (
    DETAILS_TAG,
    LEGACY_UPSTREAM_FIELDS,
    details_digest,
    live_typed_fields,
    typed_fields,
)
from reconciler.ownership import Ownership
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
    "LABELS_TAG",
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
    "kept_legacy_upstream",
    "labels_after",
    "live_policy_fields",
    "live_socket_fields",
    "normalize_policy_data",
    "ownership_tags",
    "policy_fields",
    "socket_fields",
    "socket_settings",
    "tag_rules_matching",
    "tags_after",
    "with_defaults",
    "written_label_keys",
    "written_tags",
]

#: Socket types a manifest may name: the seed CLI's, then border0's newer ones (border0-go
#: types/service/configuration.go), which take a typed upstream. `https` is stored by border0
#: as socket_type `http` with upstream_type `https`.
SOCKET_TYPES = ("http", "https", "ssh", "tls", "database", "vnc", "rdp", "vpn", "kubernetes",
                "subnet_router", "exit_node", "snowflake", "elasticsearch", "aws_s3", "aws_access")
#: The tag that holds one fingerprint over every secret of a typed upstream.
UPSTREAM_SECRETS = "upstream_configuration"
#: The fingerprint tag of each secret field, worked out once (five lookups per live socket).
_FINGERPRINT_TAGS = {name: fingerprint_tag(name) for name in (*SECRET_FIELDS, UPSTREAM_SECRETS)}

#: Tags on every socket the reconciler creates; they are how it knows what it owns.
MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "border0-reconciler"
INSTANCE_TAG = "border0-reconciler/instance"
#: Copied from the `border0-reconciler/prune: "false"` annotation onto the live socket, so the
#: protection holds after the manifest is gone.
PRUNE_TAG = "border0-reconciler/prune"
#: Copied from the `border0-reconciler/confirm-delete: "true"` annotation onto the live socket
#: (policies: their marker), so a deletion after the manifest is gone waits for a confirmation.
CONFIRM_DELETE_TAG = "border0-reconciler/confirm-delete"
#: Label keys users may not set: the reconciler's own tags live here.
RESERVED_TAG_PREFIX = "border0-reconciler/"
#: The label keys the reconciler last wrote (comma-separated, sorted): a key that leaves the
#: manifest is removed from the socket; a tag it never wrote (the portal's
#: `border0_client_category`, a tag a policy's `tag_rules` selects on) is kept.
LABELS_TAG = "border0-reconciler/labels"

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


#: Not made yet (a digest may be None).
_UNSET: Any = object()


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
    #: border0-reconciler/labels: "authoritative" (or --labels authoritative): tags == labels.
    labels_authoritative: bool = False
    #: border0-reconciler/allow-replace: "true" (or --allow-replace): a replace may happen.
    allow_replace: bool = False
    confirm_delete: bool = False  # border0-reconciler/confirm-delete: "true"
    ignore_fields: tuple[str, ...] = ()  # spec.ignoreFields: JSON pointers (plan/ignore.py)
    source: Source | None = field(default=None, compare=False)
    #: The document it was built from: its file's content digest and its index there (the
    #: loader's). With its secrets and the command's options, it decides the spec, so a plan
    #: keys its verdict on it (plan/in_sync.py). None: not built from a file.
    document: str | None = field(default=None, compare=False, repr=False)
    #: What is derived from the typed upstream, made on first use (`_made`)
    _derived: Any = field(default=None, init=False, repr=False, compare=False)

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
        return (*found, *self.upstream_split[1].values())

    @property
    def upstream_split(self) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The typed upstream split once per spec (`upstream.strip_secrets`): (the config
        without its secret values, {dotted path: secret}); (None, {}) for a legacy upstream.
        The comparable form, the details digest and the fingerprint all read it (a plan of
        10,000 sockets split each upstream seven times before). Never to be mutated."""
        return self._made()[0]  # type: ignore[no-any-return]

    @property
    def upstream_secret(self) -> Secret | None:
        """One `Secret` over every secret of the typed upstream (its fingerprint tag's value)."""
        return self._made()[1]  # type: ignore[no-any-return]

    @property
    def typed(self) -> dict[str, Any]:
        """Its connector-model fields (`connector_model.typed_fields`)."""
        return typed_fields(self)

    @property
    def details_digest(self) -> str | None:
        """`connector_model.details_digest`, made once per spec."""
        made = self._made()
        if made[2] is _UNSET:
            made[2] = details_digest(self)
        return made[2]  # type: ignore[no-any-return]

    def warm(self) -> None:
        """Make the details digest (and the upstream split it reads) now: the load does it
        in its thread, while the listing waits on border0."""
        self.details_digest  # noqa: B018 (made and kept)

    def _made(self) -> list[Any]:
        """[upstream_split, upstream_secret, details_digest], made on first use and kept in
        one field that exists from the start (what is set on an instance later costs about
        1.5 KB a spec: 15 MB at 10,000 sockets)."""
        if self._derived is None:
            split = (upstream.strip_secrets(self.upstream_config)
                     if self.upstream_config is not None else (None, {}))
            object.__setattr__(self, "_derived",
                               [split, upstream.combined_secret(split[1]), _UNSET])
        return self._derived  # type: ignore[no-any-return]


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
    allow_replace: bool = False  # border0-reconciler/allow-replace: "true" (or --allow-replace)
    confirm_delete: bool = False  # border0-reconciler/confirm-delete: "true"
    ignore_fields: tuple[str, ...] = ()  # spec.ignoreFields: JSON pointers (plan/ignore.py)
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
    #: Secret fields border0 answered as set but masked: a write cannot send them back.
    masked_secrets: frozenset[str] = frozenset()
    #: Secret fields border0 answered in clear (a username; a password only where border0
    #: answers one), as `Secret`s: what a write sends back (`api_json.kept_secrets`) and what
    #: is compared (`secret_as_read`), rather than the fingerprint we recorded.
    answered_secrets: Mapping[str, Secret] = field(default_factory=dict)
    #: From GET /socket/{id}/connectors and /upstream_configurations; None: not read.
    connector_names: tuple[str, ...] | None = None
    upstream_configuration: Mapping[str, Any] | None = None
    end_to_end_encryption: bool = False
    connector_authentication: bool = False
    #: Whether border0 answered an upstream username (`""`: the socket has no login, the
    #: client's own is passed through); None when it did not answer one. The value is not kept.
    upstream_login: bool | None = None
    #: A digest of border0's answer this socket was read from, as answered (`api_json`); None
    #: when a part of it was read from elsewhere (its links or typed upstream: `fetch_details`).
    #: A plan keys its verdict on it (plan/in_sync.py).
    answer_digest: str | None = field(default=None, compare=False, repr=False)

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
        text = self.tags.get(_FINGERPRINT_TAGS.get(field_name) or fingerprint_tag(field_name))
        return Fingerprint(text) if text else None

    def secret_as_read(self, field_name: str) -> Secret | Fingerprint | None:
        """A secret field as compared: the value border0 answered, else our fingerprint (a
        change made elsewhere to a value border0 answers is seen; to one it hides is not)."""
        return self.answered_secrets.get(field_name) or self.fingerprint(field_name)

    @functools.cached_property
    def ownership(self) -> Ownership:
        """Read from the tags once: the planner asks three times per socket."""
        return Ownership(
            managed=self.tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE,
            instance=self.tags.get(INSTANCE_TAG),
            prune=self.tags.get(PRUNE_TAG, "true").lower() != "false",
            confirm_delete=self.tags.get(CONFIRM_DELETE_TAG, "").lower() == "true",
        )

    def with_details(self, connector_names: tuple[str, ...] | None,
                     upstream_configuration: Mapping[str, Any] | None) -> LiveSocket:
        """A copy with its links and typed upstream set (`inventory.as_written`, 10,000 times
        in a plan of 10,000 unchanged sockets): the fields copied as they are, without
        `replace`'s 21-field __init__; what is cached on it (`ownership`) stays true."""
        copied = object.__new__(LiveSocket)
        fields = copied.__dict__
        fields.update(self.__dict__)
        fields["connector_names"] = connector_names
        fields["upstream_configuration"] = upstream_configuration
        return copied

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
    #: Sockets it applies to by tag: any one rule whose every key=value the socket's tags hold
    #: (border0-go client/policy.go `TagRules []map[string]string`; the provider's docs:
    #: rules are OR'ed, a rule's pairs AND'ed). Not managed here: carried over as read.
    tag_rules: tuple[Mapping[str, str], ...] = ()

    def selects(self, tags: Mapping[str, str]) -> bool:
        """True when one of its tag_rules matches `tags`."""
        return any(rule and all(tags.get(k) == v for k, v in rule.items())
                   for rule in self.tag_rules)


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


def with_defaults(desired: Desired, *, labels_authoritative: bool = False,
                  allow_replace: bool = False) -> Desired:
    """`desired` with the command's global settings (--labels authoritative, --allow-replace)
    applied to every object; an annotation already set on an object is kept."""
    if not labels_authoritative and not allow_replace:
        return desired
    sockets = {n: replace(s, labels_authoritative=s.labels_authoritative or labels_authoritative,
                          allow_replace=s.allow_replace or allow_replace)
               for n, s in desired.sockets.items()}
    policies = {n: replace(p, allow_replace=p.allow_replace or allow_replace)
                for n, p in desired.policies.items()}
    return replace(desired, sockets=sockets, policies=policies)


def _user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items()
            if k != MANAGED_BY_TAG and not k.startswith(RESERVED_TAG_PREFIX)}


def _managed_label_keys(spec: SocketSpec, live_tags: Mapping[str, str]) -> set[str]:
    """The tag keys the manifest manages: every user tag when labels are authoritative; else
    the keys it declares and those it wrote last time (`LABELS_TAG`)."""
    if spec.labels_authoritative:
        return set(_user_tags(live_tags)) | set(spec.labels)
    return set(spec.labels) | written_label_keys(live_tags)


def written_label_keys(live_tags: Mapping[str, str]) -> set[str]:
    """The label keys the reconciler wrote last (`LABELS_TAG`): a socket's other user tags
    were set elsewhere (`import` leaves them out of the manifest of a socket it owns)."""
    return {k for k in str(live_tags.get(LABELS_TAG) or "").split(",") if k}


def labels_after(spec: SocketSpec, live_tags: Mapping[str, str] | None) -> dict[str, str]:
    """The socket's user tags once written: the manifest's labels, plus (unless labels are
    authoritative) the tags set elsewhere, which the reconciler leaves as they are."""
    live_tags = live_tags or {}
    managed = _managed_label_keys(spec, live_tags)
    kept = {k: v for k, v in _user_tags(live_tags).items() if k not in managed}
    return {**kept, **spec.labels}


def tag_rules_matching(
    policies: Mapping[str, LivePolicy], before: Mapping[str, str], after: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """(policies whose tag_rules `after` starts matching, those it stops matching)."""
    starts = [n for n, p in policies.items() if p.selects(after) and not p.selects(before)]
    stops = [n for n, p in policies.items() if p.selects(before) and not p.selects(after)]
    return sorted(starts), sorted(stops)


def ownership_tags(spec: SocketSpec, instance: str) -> dict[str, str]:
    """The socket's labels and our ownership tags (api_json.socket_tags adds fingerprints and
    the tags set elsewhere)."""
    tags = dict(spec.labels)
    if spec.labels:
        tags[LABELS_TAG] = ",".join(sorted(spec.labels))
    tags[MANAGED_BY_TAG] = MANAGED_BY_VALUE
    tags[INSTANCE_TAG] = instance
    if not spec.prune:
        tags[PRUNE_TAG] = "false"
    if spec.confirm_delete:
        tags[CONFIRM_DELETE_TAG] = "true"
    return tags


def tags_after(
    spec: SocketSpec, instance: str, live_tags: Mapping[str, str] | None
) -> dict[str, str]:
    """The socket's tags once written from `live_tags` (None: a create): `labels_after` and
    the ownership tags. `api_json.socket_tags` adds a fingerprint per secret and the details
    digest; what policies' `tag_rules` select on is this (border0 matches the socket's tags)."""
    tags = labels_after(spec, live_tags)
    tags.update(ownership_tags(spec, instance))
    return tags


def written_tags(
    spec: SocketSpec, instance: str, live_tags: Mapping[str, str] | None
) -> dict[str, str]:
    """The tags a write sends but the secrets' fingerprints: `tags_after` and the digest of
    the links and typed upstream it sends (DETAILS_TAG). `api_json.socket_tags` adds the
    fingerprints; a plan's `resource_changes` shows this (fingerprints are left out there)."""
    tags = tags_after(spec, instance, live_tags)
    digest = spec.details_digest
    if digest is not None:
        tags[DETAILS_TAG] = digest
    return tags


def kept_legacy_upstream(spec: SocketSpec, current: Mapping[str, Any]) -> dict[str, Any]:
    """Beside a typed upstream, the legacy upstream fields as `current` (the socket as read,
    API names) has them: not managed (LEGACY_UPSTREAM_FIELDS), so a write sends them back
    rather than the type's defaults. An http socket's upstream_type is kept only while it says
    the manifest's http or https: that part of it is the socket's type, which is managed.
    What `api_json` writes and what a plan's `resource_changes` shows as `after`."""
    if spec.upstream_config is None:
        return {}
    kept = {k: current[k] for k in LEGACY_UPSTREAM_FIELDS if isinstance(current.get(k), str)}
    socket_type, upstream_type = api_type(spec)
    given = kept.get("upstream_type")
    if not given or (socket_type == "http" and (given == "https") != (upstream_type == "https")):
        kept.pop("upstream_type", None)
    return kept


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
        **_confirm_delete(spec.confirm_delete),
        **spec.typed,
    }
    return insert_secret_fields(plain, spec.secret)


def live_socket_fields(live: LiveSocket, spec: SocketSpec | None = None) -> dict[str, Any]:
    """The live socket's comparable form; with `spec`, its labels are those the spec manages
    (`_managed_label_keys`): a tag set elsewhere is not a difference."""
    labels = live.labels
    if spec is not None:
        managed = _managed_label_keys(spec, live.tags)
        labels = {k: v for k, v in labels.items() if k in managed}
    plain = {
        "type": live.type,
        "description": live.description,
        "upstream_type": live.upstream_type_or_default,
        "upstream_http_hostname": live.upstream_http_hostname,
        "protected": live.protected,
        "protected_username": live.protected_username,
        "recording": live.recording_enabled,
        "labels": labels,
        "prune": live.ownership.prune,
        **_confirm_delete(live.ownership.confirm_delete),
        **live_typed_fields(live, live.fingerprint(UPSTREAM_SECRETS), spec),
    }
    return insert_secret_fields(plain, live.secret_as_read)


def policy_fields(spec: PolicySpec) -> dict[str, Any]:
    return {
        "description": spec.description,
        "org_wide": spec.org_wide,
        "policy_data": normalize_policy_data(spec.policy_data),
        "prune": spec.prune,
        **_confirm_delete(spec.confirm_delete),
    }


def live_policy_fields(live: LivePolicy) -> dict[str, Any]:
    return {
        "description": live.description,
        "org_wide": live.org_wide,
        "policy_data": normalize_policy_data(live.policy_data),
        "prune": live.ownership.prune,
        **_confirm_delete(live.ownership.confirm_delete),
    }


def _confirm_delete(on: bool) -> dict[str, bool]:
    """The confirm-delete mark as a compared field, only where set: objects without it compare
    as they always did."""
    return {"confirm_delete": True} if on else {}


def normalize_policy_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """policy_data as border0's Terraform provider compares it since ME-4888
    (border0/resource_policy.go suppressEquivalentPolicyDiffs: typed structs first, then
    pruneNullValues and border0-go lib/types/jsoneq AreEqual): `null`, `""` and `[]` are
    dropped at every depth, `permissions` included; under `permissions` `{}` is kept (an empty
    permission, `http: {}`, grants access: PolicyPermissions' fields are pointers), elsewhere
    an empty object is as absent (the condition's who/where/when are value structs). Arrays
    are compared without regard to order (sorted; lists of scalars as sets), maps (header maps
    too, ME-4859) by key. No version is v1 (border0's default on create)."""
    return _canonical({"version": "v1", **dict(data)}, keep_empty=False)


def _canonical(value: Any, keep_empty: bool) -> Any:
    if isinstance(value, Mapping):
        out = {str(k): _canonical(v, keep_empty or k == "permissions") for k, v in value.items()}
        return {k: v for k, v in out.items()
                if v is not None and v != "" and v != [] and (v != {} or keep_empty)}
    if isinstance(value, (list, tuple)):
        items = [_canonical(v, keep_empty) for v in value]
        if all(not isinstance(v, (Mapping, list)) for v in items):
            items = list({json.dumps(v): v for v in items}.values())  # a set of scalars
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value
