"""Connector tokens at apply time: create one, put its value where the manifest says, revoke.

A token's value is answered once, by `POST /connector/token`; it goes to its destination (a
file written 0600, atomically; the agent token store, the same way; or a Kubernetes Secret,
connectors/kube_secrets.py) and nowhere else: not to a log, a result message or an exception.
If the destination cannot be written the new token is revoked at once, so no value is lost
with a live token behind it. Before planning, `check_destinations` asks each Secret whether it
still holds its token (files are checked when the manifests are read), so a lost destination
plans a new token and the old one's revocation.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.border0.api import Border0API
from reconciler.connector_model import TokenSpec
from reconciler.connectors.kube_secrets import KubeSecretError, read_secret, write_secret
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.model import Desired
from reconciler.plan.connectors import expiry_for
from reconciler.private_files import private_dirs, write_atomically

__all__ = ["TokenDestinationError", "check_destinations", "issue_token", "write_secret_file"]


class TokenDestinationError(Exception):
    """The destination of a new token could not be written (the message names the path only)."""


def write_secret_file(path: str, value: str) -> None:
    """Write `value` to `path` with mode 0600, atomically (a reader never sees half a token)."""
    target = Path(path)
    try:
        private_dirs(target.parent)
        write_atomically(target, (value + "\n").encode("utf-8"))
    except OSError as exc:
        raise TokenDestinationError(
            f"cannot write the token to {path}: {exc.strerror or type(exc).__name__}") from None


def issue_token(client: Border0API, connector_id: str, token: TokenSpec) -> str:
    """Create a token for the connector and store its value at its destination; its id."""
    expires = expiry_for(token, datetime.now(UTC))
    body: dict[str, Any] = {"connector_id": connector_id, "name": token.name}
    if expires is not None:
        body["expires_at"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    created = client.create_connector_token(body)
    token_id = str(created.get("id") or "")
    value = str(created.get("token") or "")
    try:
        if not value:
            raise TokenDestinationError("border0 answered no token value")
        if token.file is not None:
            write_secret_file(token.file, value)
        elif token.kubernetes_secret is not None:
            try:
                write_secret(token.kubernetes_secret, token.kubernetes_key, value,
                             token.kubernetes_namespace)
            except KubeSecretError as exc:
                raise TokenDestinationError(f"token {token.name}: {exc}") from None
        else:
            raise TokenDestinationError(
                f"token {token.name}: no destination this reconciler can write")
    except TokenDestinationError:
        if token_id:
            client.delete_connector_token(connector_id, token_id)
        raise
    return token_id


def check_destinations(desired: Desired) -> tuple[Desired, list[Diagnostic]]:
    """`desired` with each Kubernetes Secret destination marked present or lost (read through
    the Kubernetes API), and a warning for each Secret that could not be read: its token is then
    left as it is rather than replaced on a guess."""
    warnings: list[Diagnostic] = []
    connectors = dict(desired.connectors)
    checked = [n for n, s in connectors.items()
               if not s.suspend and any(t.kubernetes_secret for t in s.tokens)]
    if not checked:
        return desired, warnings
    for name in checked:
        spec = connectors[name]
        tokens = []
        for token in spec.tokens:
            if token.kubernetes_secret is not None:
                try:
                    present = read_secret(token.kubernetes_secret, token.kubernetes_key,
                                          token.kubernetes_namespace) is not None
                    token = replace(token, destination_present=present)
                except KubeSecretError as exc:
                    warnings.append(Diagnostic(
                        Severity.WARNING, f"connector {name}, token {token.name}: {exc}; "
                        "whether it still holds the token is unknown, so it is not replaced",
                        code="token-destination-unknown"))
            tokens.append(token)
        connectors[name] = replace(spec, tokens=tuple(tokens))
    return replace(desired, connectors=connectors), warnings
