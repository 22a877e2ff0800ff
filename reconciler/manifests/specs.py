"""From a schema-valid manifest document to the model's objects; secret references to values.

Pure functions: the loader (`manifests.py`) feeds them validated data and turns the issues they
return into diagnostics with positions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import upstream as typed
from reconciler.connector_model import ConnectorKindSpec, TokenSpec
from reconciler.manifests.schema_messages import dotted
from reconciler.manifests.secret_files import SecretFileError, read_secret_file
from reconciler.model import ConnectorSpec, PolicySpec, SocketSpec, Source
from reconciler.secrets import SECRET_MANIFEST_PATHS, SECRETS, Secret, insert_secret_fields

__all__ = [
    "ADOPT_ANNOTATION",
    "AGENT_TOKENS_ENV",
    "ALLOW_REPLACE_ANNOTATION",
    "CONFIRM_DELETE_ANNOTATION",
    "CONNECTOR_MANIFEST_PATHS",
    "LABELS_ANNOTATION",
    "POLICY_MANIFEST_PATHS",
    "PRUNE_ANNOTATION",
    "SOCKET_MANIFEST_PATHS",
    "SUSPEND_ANNOTATION",
    "SecretIssue",
    "agent_token_path",
    "connector_spec",
    "policy_spec",
    "resolve_secret",
    "secret_references",
    "socket_spec",
]

PRUNE_ANNOTATION = "border0-reconciler/prune"
ADOPT_ANNOTATION = "border0-reconciler/adopt"
#: "true": plan, apply and the daemon leave the object (and its attachments, its connector) as
#: they are in border0. Read from the manifest only: removing the manifest removes suspension.
SUSPEND_ANNOTATION = "border0-reconciler/suspend"
#: "true": a change border0 cannot make in place may replace the object (new id; --allow-replace).
ALLOW_REPLACE_ANNOTATION = "border0-reconciler/allow-replace"
#: "authoritative": the socket's tags are exactly its labels (--labels authoritative).
LABELS_ANNOTATION = "border0-reconciler/labels"
CONFIRM_DELETE_ANNOTATION = "border0-reconciler/confirm-delete"
#: The socket fields whose plaintext value in a manifest is warned about (secrets.SECRETS:
#: `by_nature`, the passwords and the legacy upstream's key); see `_by_nature` for the rest.
_BY_NATURE = frozenset(f.manifest_path for f in SECRETS if f.by_nature)


#: Where a manifest holds each field of the model's comparable form (`model.socket_fields`,
#: `policy_fields`): the inverse of the readers below, which `import` writes manifests through.
#: Dotted paths; annotations hold flags as "true"/"false"; None: derived from other fields.
SOCKET_MANIFEST_PATHS: dict[str, str | None] = insert_secret_fields(
    {
        "type": "spec.type",
        "description": "spec.description",
        "upstream_type": "spec.upstream.type",
        "upstream_http_hostname": "spec.upstream.httpHostname",
        "protected": None,  # true when spec.protected is given
        "protected_username": "spec.protected.username",
        "recording": "spec.recording",
        "labels": "metadata.labels",
        "prune": f"metadata.annotations.{PRUNE_ANNOTATION}",
        "confirm_delete": f"metadata.annotations.{CONFIRM_DELETE_ANNOTATION}",
        "connectors": "spec.connectors",
        "upstream_configuration": "spec.upstream",  # typed: upstream.to_manifest
        "upstream_secrets": None,  # the secret leaves of spec.upstream
        "end_to_end_encryption": "spec.endToEndEncryption",
        "connector_authentication": "spec.connectorAuthentication",
    },
    lambda name: ".".join(SECRET_MANIFEST_PATHS[name]),
)
CONNECTOR_MANIFEST_PATHS: dict[str, str] = {
    "description": "spec.description",
    "built_in_ssh": "spec.builtInSsh",
    "prune": f"metadata.annotations.{PRUNE_ANNOTATION}",
}
POLICY_MANIFEST_PATHS: dict[str, str | None] = {
    "description": "spec.description",
    "org_wide": "spec.orgWide",
    "policy_data": "spec.policyData",
    "prune": f"metadata.annotations.{PRUNE_ANNOTATION}",
    "confirm_delete": f"metadata.annotations.{CONFIRM_DELETE_ANNOTATION}",
}


@dataclass(frozen=True)
class SecretIssue:
    """A problem with one secret reference; the message names a variable or file, never a value."""

    message: str
    code: str  # "plaintext-secret" or "secret"
    error: bool


def resolve_secret(
    value: Any,
    path: tuple[Any, ...],
    *,
    base_dir: Path,
    env: Mapping[str, str],
    resolve: bool,
    strict: bool,
    roots: Sequence[str] = (),
) -> tuple[Secret | None, SecretIssue | None]:
    """A string, {env: NAME} or {file: PATH} as a `Secret` (empty value when resolve=False).

    A secret file is read only under `roots` (see `secret_files`)."""
    if value is None:
        return None, None
    where = dotted(path)
    if isinstance(value, str):
        issue = None
        if _by_nature(path, value):
            issue = SecretIssue(
                f"{where} is a plaintext secret in the manifest; "
                + ("use {env: NAME}, {file: PATH} or a from:env:/from:file:/from:aws:ssm: "
                   "reference" if len(path) > 3 else "use {env: NAME} or {file: PATH}"),
                "plaintext-secret",
                strict,
            )
        return Secret(value, "literal"), issue
    declared = value.get("secret") is True
    if "env" in value:
        name = value["env"]
        if not resolve:
            return Secret("", f"env:{name}", declared), None
        resolved = env.get(name)
        if not resolved:
            state = "is not set" if resolved is None else "is empty"
            return None, SecretIssue(
                f"{where}: environment variable {name} {state}", "secret", True
            )
        return Secret(resolved, f"env:{name}", declared), None
    name = value["file"]
    if not resolve:
        return Secret("", f"file:{name}", declared), None
    target = Path(os.path.expanduser(name))
    if not target.is_absolute():
        target = base_dir / target
    try:
        content = read_secret_file(target, roots)
    except SecretFileError as exc:
        return None, SecretIssue(f"{where}: {exc}", "secret", True)
    content = content[:-2] if content.endswith("\r\n") else content.removesuffix("\n")
    if not content:
        return None, SecretIssue(f"{where}: secret file {target} is empty", "secret", True)
    return Secret(content, f"file:{name}", declared), None


def _by_nature(path: tuple[Any, ...], value: str) -> bool:
    """Whether a plaintext `value` at `path` is a secret by nature, warned about (an error with
    --strict): a field of `_BY_NATURE`, or any secret leaf of a typed upstream (a password, a
    key, a token: `upstream.is_secret_leaf`) unless it is a from: reference, which border0's
    connector resolves on its host and which is sent as written."""
    if tuple(path) in _BY_NATURE:
        return True
    return (len(path) > 3 and tuple(path[:2]) == ("spec", "upstream")
            and typed.is_secret_leaf(path[2:]) and not typed.is_reference(value))


def secret_references(data: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], Any]]:
    """(path, value) of each secret a Socket document may hold: `secrets.SECRETS`' manifest
    paths; with a typed upstream, its secret leaves (`upstream.secret_paths`) in place of the
    legacy upstream's, beside basic auth's (spec.protected)."""
    upstream = (data.get("spec") or {}).get("upstream") or {}
    paths: list[tuple[Any, ...]] = list(SECRET_MANIFEST_PATHS.values())
    if typed.is_typed(upstream):
        paths = [p for p in paths if p[1] != "upstream"] + [
            ("spec", "upstream", *p) for p in typed.secret_paths(upstream)]
    found = []
    for path in paths:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, (dict, Mapping)) else None
        found.append((path, value))
    return found


def socket_spec(
    data: Mapping[str, Any], source: Source, secrets: Mapping[tuple[Any, ...], Secret | None],
    document: str | None = None,
) -> SocketSpec:
    """A `SocketSpec` from a valid Socket document and its resolved secrets: `secrets.SECRETS`,
    and for a typed upstream its `upstream.secret_paths` (prefixed with spec.upstream);
    `document`: the document's identity (`Doc.identity`)."""
    meta, spec = data["metadata"], data["spec"]
    upstream = spec.get("upstream") or {}
    upstream_config = None
    if typed.is_typed(upstream):
        upstream_config = typed.to_api(upstream, {  # `secrets` holds the upstream's secret_paths
            path[2:]: secret for path, secret in secrets.items()
            if secret is not None and path[:2] == ("spec", "upstream")
        })
        upstream = {}
    protected = spec.get("protected")
    connector = spec.get("connector")
    return SocketSpec(
        name=meta["name"],
        type=spec["type"],
        description=spec.get("description", ""),
        labels=dict(meta.get("labels") or {}),
        upstream_type=upstream.get("type"),
        upstream_http_hostname=upstream.get("httpHostname"),
        protected_username=protected["username"] if protected else None,
        secrets_by_field={  # a protected secret only when spec.protected is given
            name: secret for name, path in SECRET_MANIFEST_PATHS.items()
            if (secret := secrets.get(path)) is not None and (protected or path[1] != "protected")
        },
        recording=spec.get("recording"),
        policies=tuple(spec.get("policies") or ()),
        external_policies=tuple(spec.get("externalPolicies") or ()),
        connector=_connector(connector) if connector is not None else None,
        connectors=_connector_names(spec),
        upstream_config=upstream_config,
        end_to_end_encryption=spec.get("endToEndEncryption"),
        connector_authentication=spec.get("connectorAuthentication"),
        prune=_flag(meta, PRUNE_ANNOTATION, True),
        adopt=_flag(meta, ADOPT_ANNOTATION, False),
        suspend=_flag(meta, SUSPEND_ANNOTATION, False),
        labels_authoritative=(meta.get("annotations") or {}).get(LABELS_ANNOTATION)
        == "authoritative",
        allow_replace=_flag(meta, ALLOW_REPLACE_ANNOTATION, False),
        confirm_delete=_flag(meta, CONFIRM_DELETE_ANNOTATION, False),
        ignore_fields=tuple(spec.get("ignoreFields") or ()),
        source=source,
        document=document,
    )


def policy_spec(data: Mapping[str, Any], source: Source) -> PolicySpec:
    """A `PolicySpec` from a valid Policy document."""
    meta, spec = data["metadata"], data["spec"]
    return PolicySpec(
        name=meta["name"],
        description=spec.get("description", ""),
        org_wide=spec.get("orgWide", False),
        policy_data=spec["policyData"],
        prune=_flag(meta, PRUNE_ANNOTATION, True),
        adopt=_flag(meta, ADOPT_ANNOTATION, False),
        suspend=_flag(meta, SUSPEND_ANNOTATION, False),
        allow_replace=_flag(meta, ALLOW_REPLACE_ANNOTATION, False),
        confirm_delete=_flag(meta, CONFIRM_DELETE_ANNOTATION, False),
        ignore_fields=tuple(spec.get("ignoreFields") or ()),
        source=source,
    )


def _connector_names(spec: Mapping[str, Any]) -> tuple[str, ...] | None:
    """spec.connectors and spec.externalConnectors together; None when neither is given."""
    if spec.get("connectors") is None and spec.get("externalConnectors") is None:
        return None
    names = [*(spec.get("connectors") or ()), *(spec.get("externalConnectors") or ())]
    return tuple(dict.fromkeys(names))


_UNITS = {"m": 60, "h": 3600, "d": 86400}


def connector_spec(data: Mapping[str, Any], source: Source, base_dir: Path) -> ConnectorKindSpec:
    """A `ConnectorKindSpec` from a valid Connector document; token files relative to
    `base_dir` (the manifest's folder)."""
    meta, spec = data["metadata"], data.get("spec") or {}
    tokens = []
    for token in spec.get("tokens") or ():
        destination = token["destination"]
        expires_in = token.get("expiresIn")
        file = destination.get("file")
        secret = destination.get("kubernetesSecret") or {}
        agent_only = bool(destination.get("agent"))
        path = base_dir / os.path.expanduser(file) if file else None
        if agent_only:
            path = agent_token_path(base_dir, meta["name"], token["name"])
        tokens.append(TokenSpec(
            name=token["name"],
            expires_in=int(expires_in[:-1]) * _UNITS[expires_in[-1]] if expires_in else None,
            expires_at=token.get("expiresAt"),
            file=str(path) if path else None,
            destination_present=path is None or _has_value(path),
            kubernetes_secret=secret.get("name"),
            kubernetes_key=secret.get("key", "token"),
            kubernetes_namespace=secret.get("namespace"),
            agent_only=agent_only,
        ))
    return ConnectorKindSpec(
        name=meta["name"],
        description=spec.get("description", ""),
        built_in_ssh=spec.get("builtInSsh", False),
        tokens=tuple(tokens),
        prune=_flag(meta, PRUNE_ANNOTATION, True),
        adopt=_flag(meta, ADOPT_ANNOTATION, False),
        suspend=_flag(meta, SUSPEND_ANNOTATION, False),
        source=source,
    )


#: The agent token store's folder (`destination: {agent: true}`); unset: the
#: `.border0-reconciler/agent-tokens` folder beside the Connector's manifest.
AGENT_TOKENS_ENV = "BORDER0_RECONCILER_AGENT_TOKENS"


def agent_token_path(base_dir: Path, connector: str, token: str) -> Path:
    """Where an agent-only token's value is kept: one 0600 file per token in a 0700 folder
    that the writer (apply) and the agent (`run --connectors-only`) both find from the
    manifests, and nothing else reads or prints."""
    root = os.environ.get(AGENT_TOKENS_ENV) or base_dir / ".border0-reconciler" / "agent-tokens"
    return Path(root) / connector / f"{token}.token"


def _has_value(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _flag(meta: Mapping[str, Any], annotation: str, default: bool) -> bool:
    value = (meta.get("annotations") or {}).get(annotation)
    if value is None:
        return default
    return str(value).lower() == "true"


def _connector(data: Mapping[str, Any]) -> ConnectorSpec:
    return ConnectorSpec(
        enabled=data.get("enabled", True),
        host=data.get("host"),
        port=data.get("port"),
        httpserver=data.get("httpserver", False),
        httpserver_dir=data.get("httpserverDir"),
        sshserver=data.get("sshserver", False),
        identity_file=data.get("identityFile"),
        proxy=data.get("proxy"),
    )
