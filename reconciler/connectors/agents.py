"""`border0 connector start` processes: one per declared Connector an agent serves.

border0's connector (CLI `cmd/connector.go`, `internal/connector_v2/`) is one long-lived process
per host: it authenticates with a connector token from `BORDER0_TOKEN`, and border0 pushes it
the configuration of every socket whose `connector_ids` include it, so sockets need no process
of their own. The agent (`run --connectors-only`) keeps one such process per Connector it is told
to serve, with that connector's token read from the token's destination (a file, the agent
token store, or a Kubernetes Secret, which the writer's apply keeps fresh), and nothing else of ours: the admin token never reaches it under any name
(supervisor `_connector_env`). A rotated token is a changed target: the supervisor restarts that
process alone.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Collection, Mapping
from pathlib import Path

from reconciler.connector_model import ConnectorKindSpec, TokenSpec
from reconciler.connectors.argv import ConnectorTarget, TemplateError
from reconciler.connectors.kube_secrets import (
    SECRET_MOUNTS_ENV,
    KubeSecretError,
    mounted_secret,
    read_secret,
)
from reconciler.model import Actual, ConnectorSpec, Desired

__all__ = [
    "CONNECTOR_START_TEMPLATE",
    "TARGET_PREFIX",
    "connector_start_targets",
    "read_token",
    "render_start",
]

log = logging.getLogger("reconciler.connectors")

#: border0's own command (its Helm chart runs `connector start --config=...`); placeholders
#: {name} (the connector), {connector_id} and {python}.
CONNECTOR_START_TEMPLATE = "border0 connector start"
#: Status, metrics and notifications name these processes `connector/<name>`.
TARGET_PREFIX = "connector/"


def render_start(template: str, name: str, connector_id: str) -> tuple[str, ...]:
    """The argv of one `connector start` (shlex-split, then each token formatted)."""
    values = {"name": name, "connector_id": connector_id, "python": sys.executable}
    try:
        return tuple(token.format(**values) for token in shlex.split(template))
    except (KeyError, ValueError, IndexError) as exc:
        raise TemplateError(f"connector start command: {exc!r} in {template!r}") from None


def read_token(spec: ConnectorKindSpec) -> str | None:
    """The value of the first declared token whose destination holds one: its file (or the
    agent token store's), or its Kubernetes Secret: mounted in this pod when the chart says so
    (BORDER0_RECONCILER_SECRET_MOUNTS), else read through the Kubernetes API."""
    for token in spec.tokens:
        if token.kubernetes_secret is not None:
            value = _secret_value(spec.name, token)
            if value:
                return value
            continue
        if token.file is None:
            continue
        try:
            value = Path(token.file).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if value:
            return value
    return None


def _secret_value(connector: str, token: TokenSpec) -> str | None:
    assert token.kubernetes_secret is not None
    if os.environ.get(SECRET_MOUNTS_ENV):  # a pod of the chart: its Secrets are volumes
        return mounted_secret(token.kubernetes_secret, token.kubernetes_key)
    try:
        return read_secret(token.kubernetes_secret, token.kubernetes_key,
                           token.kubernetes_namespace)
    except KubeSecretError as exc:
        log.warning("connector %s: %s", connector, exc, extra={"socket": TARGET_PREFIX + connector})
        return None


def connector_start_targets(
    desired: Desired,
    actual: Actual,
    *,
    template: str = CONNECTOR_START_TEMPLATE,
    serve: Collection[str] | None = None,
    env: Mapping[str, str] | None = None,
    previous: Mapping[str, ConnectorTarget] | None = None,
) -> dict[str, ConnectorTarget]:
    """A target per declared connector the agent serves (`serve`; None: all) that exists in
    border0 and has a token at its destination. `env` is added to each child's environment
    (e.g. BORDER0_API). A suspended connector keeps its previous target."""
    targets: dict[str, ConnectorTarget] = {}
    for name, spec in desired.connectors.items():
        key = TARGET_PREFIX + name
        if serve is not None and name not in serve:
            continue
        if spec.suspend:
            if previous and key in previous:
                targets[key] = previous[key]
            continue
        live = actual.connectors.get(name)
        if live is None:
            continue
        token = read_token(spec)
        if token is None:
            log.warning("connector %s: no token at its destination yet; not started", name,
                        extra={"socket": key})
            continue
        targets[key] = ConnectorTarget(
            name=key, spec=ConnectorSpec(), socket_type="connector",
            socket_id=live.connector_id,
            argv=render_start(template, name, live.connector_id),
            env=tuple(sorted({**(env or {}), "BORDER0_TOKEN": token}.items())),
        )
    return targets
