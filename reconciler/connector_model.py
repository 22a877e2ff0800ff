"""The connector model's typed objects: a `kind: Connector` manifest with its tokens, and a
connector and its tokens as border0 lists them (border0-go client/connector.go). Re-exported by
`reconciler.model`, where the rest of the model lives."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler import upstream
from reconciler.ownership import Ownership
from reconciler.secrets import is_mask

if TYPE_CHECKING:
    from reconciler.model import LiveSocket, SocketSpec, Source

__all__ = [
    "DETAILS_TAG", "LEGACY_UPSTREAM_FIELDS", "ConnectorKindSpec", "LiveConnector", "LiveToken",
    "TokenSpec", "connector_fields", "details_digest", "live_connector_fields", "live_typed_fields",
    "typed_fields",
]

#: The socket tag that records which connector links and typed upstream the reconciler last
#: wrote (`details_digest`): while it matches the manifest, a plan reads neither sub-resource.
DETAILS_TAG = "border0-reconciler/details"
#: The socket's legacy upstream fields (API names), which a typed upstream replaces: beside one
#: they are neither compared (`typed_fields`) nor written as the manifest says; a write sends
#: them back as border0 answered them (`model.kept_legacy_upstream`), as the Terraform
#: provider's update carries `upstream_type` over from a fresh GET (border0/resource_socket.go).
LEGACY_UPSTREAM_FIELDS = ("upstream_type", "upstream_http_hostname")
_NOT_COMPARED = dict.fromkeys(LEGACY_UPSTREAM_FIELDS)


@dataclass(frozen=True)
class TokenSpec:
    """One entry of a Connector's `spec.tokens`: where its value goes, and when it expires."""

    name: str
    expires_in: int | None = None  # seconds
    expires_at: str | None = None  # RFC 3339
    #: destination: a 0600 file (absolute); for `agent_only`, the file in the agent token store
    file: str | None = None
    kubernetes_secret: str | None = None  # destination: a Kubernetes Secret the writer keeps
    kubernetes_key: str = "token"
    kubernetes_namespace: str | None = None  # None: the namespace of the Kubernetes config
    #: destination `{agent: true}`: only this product's connector agent reads it (from `file`,
    #: a 0600 file in the agent token store, manifests/specs.py `agent_token_path`)
    agent_only: bool = False
    #: Whether the destination held a value when the manifests were read (a lost one means a
    #: new token: its value exists only at creation).
    destination_present: bool = field(default=True, compare=False)
    #: The id of the token whose value the destination holds, from the record written with it
    #: (connectors/token_records.py); None: unknown (no record, or a value written elsewhere).
    held_token_id: str | None = field(default=None, compare=False)
    #: The destination could not be read (a Kubernetes API error): whether it still holds a
    #: token is unknown, so the plan leaves this token's live tokens as they are.
    destination_unknown: bool = field(default=False, compare=False)

    @property
    def destination(self) -> str:
        """Where the value goes, for plan reasons and errors (never the value)."""
        if self.kubernetes_secret is not None:
            where = f"{self.kubernetes_namespace}/" if self.kubernetes_namespace else ""
            return f"Kubernetes Secret {where}{self.kubernetes_secret} (key {self.kubernetes_key})"
        if self.agent_only:
            return f"the agent token store ({self.file})"
        return str(self.file)


@dataclass(frozen=True)
class ConnectorKindSpec:
    """One `kind: Connector` manifest: a border0 connector (border0-go client/connector.go).
    Not to be confused with `ConnectorSpec`, a legacy socket's `socket connect` process."""

    name: str
    description: str = ""
    built_in_ssh: bool = False
    tokens: tuple[TokenSpec, ...] = ()
    prune: bool = True
    adopt: bool = False
    suspend: bool = False
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LiveToken:
    """A connector token as border0 lists it (never its value: answered once, at creation)."""

    token_id: str
    name: str
    expires_at: str = ""  # RFC 3339, "" when it never expires
    created_at: str = ""


@dataclass(frozen=True)
class LiveConnector:
    """A connector as border0 answers it; `description` without the ownership marker."""

    connector_id: str
    name: str
    description: str = ""
    built_in_ssh: bool = False
    ownership: Ownership = field(default_factory=Ownership)
    tokens: tuple[LiveToken, ...] | None = None  # None: not read


def connector_fields(spec: ConnectorKindSpec) -> dict[str, Any]:
    return {"description": spec.description, "built_in_ssh": spec.built_in_ssh,
            "prune": spec.prune}


def live_connector_fields(live: LiveConnector) -> dict[str, Any]:
    return {"description": live.description, "built_in_ssh": live.built_in_ssh,
            "prune": live.ownership.prune}


def typed_fields(spec: SocketSpec) -> dict[str, Any]:
    """The connector-model fields; None (not compared) where the manifest leaves them out.
    With a typed upstream the legacy upstream fields are not compared (LEGACY_UPSTREAM_FIELDS)."""
    typed = spec.upstream_config is not None
    return {
        "connectors": _compared_connectors(spec),
        "upstream_configuration": spec.upstream_split[0],
        "upstream_secrets": spec.upstream_secret,
        "end_to_end_encryption": spec.end_to_end_encryption,
        "connector_authentication": spec.connector_authentication,
        **(_NOT_COMPARED if typed else {}),
    }


def details_digest(spec: SocketSpec) -> str | None:
    """A digest of what a plan would otherwise read a socket's two sub-resources for (its
    connector names and typed upstream, secrets left out: they have their own fingerprint),
    written as DETAILS_TAG with every write of the socket; None when the manifest declares
    neither. The listing carries the tag, so an unchanged socket costs no request of its own
    (border0 answers neither sub-resource in a listing: docs/performance.md)."""
    if spec.connectors is None and spec.upstream_config is None:
        return None
    # the two fields of `typed_fields` it covers, without building the other five
    return "sha256:" + hashlib.sha256(_digest_json(
        [_compared_connectors(spec), spec.upstream_split[0]])).hexdigest()[:32]


def _compared_connectors(spec: SocketSpec) -> list[str] | None:
    """The connector names as compared and digested: sorted; None when not declared."""
    return sorted(spec.connectors) if spec.connectors is not None else None


def _digest_json(value: Any) -> bytes:
    """`value` as JSON with sorted keys: orjson's, four times the speed of json's (10,000
    digests in a plan); json's for what orjson does not write (a key that is not a string).
    orjson is imported here: `validate` never needs it, and it takes 20 ms to import."""
    import orjson

    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def live_typed_fields(live: LiveSocket, upstream_fingerprint: Any,
                      spec: SocketSpec | None = None) -> dict[str, Any]:
    """The connector-model fields of a live socket (links and upstream read by
    inventory.fetch_details; None when not read). An upstream taken as written
    (`inventory.as_written`: the spec's own split config) is already without secrets, and its
    secrets are our fingerprint tag's. One read from border0 holds its credentials (GET
    /socket/{id}/upstream_configurations answers them: the Terraform provider stores them from
    there), which are compared as answered: a password changed in the portal is seen. None
    answered, or one masked: the fingerprint, as before."""
    names = live.connector_names
    config = live.upstream_configuration
    secrets = upstream_fingerprint
    if spec is None or config is None or config is not spec.upstream_split[0]:
        config, answered = upstream.strip_secrets(config or {})
        if answered and not any(isinstance(v, str) and is_mask(v) for v in answered.values()):
            secrets = upstream.combined_secret(answered) or upstream_fingerprint
    return {
        "connectors": sorted(names) if names is not None else None,
        "upstream_configuration": config,
        "upstream_secrets": secrets,
        "end_to_end_encryption": live.end_to_end_encryption,
        "connector_authentication": live.connector_authentication,
    }
