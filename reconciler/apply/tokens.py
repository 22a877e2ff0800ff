"""Connector tokens at apply time: create one, put its value where the manifest says, revoke.

A token's value is answered once, by `POST /connector/token`; it goes to its destination (a
file written 0600, atomically; the agent token store, the same way; or a Kubernetes Secret,
connectors/kube_secrets.py) and nowhere else: not to a log, a result message or an exception.
If the destination cannot be written the new token is revoked at once, so no value is lost
with a live token behind it. Each value is written with the record of which token it is
(connectors/token_records.py), so that the plan can tell the token in use from one whose value
never reached the destination (an apply killed between the POST and the write: no `except`
here can catch that). Before planning, `check_destinations` asks each Secret whether it still
holds its token (files are checked for a value when the manifests are read), and reads every
destination's record: the id of the token whose value it holds.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.border0.api import Border0API
from reconciler.connector_model import TokenSpec
from reconciler.connectors.kube_secrets import KubeSecretError, read_secret_record, write_secret
from reconciler.connectors.token_records import (
    fingerprint,
    held_token,
    read_file_records,
    write_file_records,
)
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.model import Desired
from reconciler.plan.connectors import expiry_for
from reconciler.private_files import private_dirs, write_atomically

__all__ = [
    "TokenDestinationError", "check_destinations", "issue_token", "write_secret_file",
    "write_token_file",
]


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


def write_token_file(path: str, token_id: str, value: str) -> None:
    """The value to `path` and the record of its token beside it: record (the value there now
    and the new one), value, record (the new one only); wherever this stops, the record names
    the value the file holds (connectors/token_records.py)."""
    new = {"id": token_id, "sha256": fingerprint(value)}
    try:
        private_dirs(Path(path).parent)
        records = read_file_records(path)
        there = held_token(_file_value(path), records)
        kept = [r for r in records if r["id"] == there]
        write_file_records(path, [*kept, new])
    except OSError as exc:
        raise TokenDestinationError(
            f"cannot write the token's record beside {path}: "
            f"{exc.strerror or type(exc).__name__}") from None
    write_secret_file(path, value)
    try:
        write_file_records(path, [new])
    except OSError:
        pass  # the first record already names this value


def _file_value(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def issue_token(client: Border0API, connector_id: str, token: TokenSpec) -> str:
    """Create a token for the connector and store its value at its destination; its id."""
    expires = expiry_for(token, datetime.now(UTC))  # whole seconds, as border0 keeps it
    body: dict[str, Any] = {"connector_id": connector_id, "name": token.name}
    if expires is not None:  # Unix seconds, as border0's CLI (int64) and SDK (FlexibleTime) send
        body["expires_at"] = int(expires.timestamp())
    created = client.create_connector_token(body)
    token_id = str(created.get("id") or "")
    value = str(created.get("token") or "")
    try:
        if not value:
            raise TokenDestinationError("border0 answered no token value")
        if token.file is not None:
            write_token_file(token.file, token_id, value)
        elif token.kubernetes_secret is not None:
            try:
                write_secret(token.kubernetes_secret, token.kubernetes_key, value,
                             token.kubernetes_namespace,
                             record={"id": token_id, "sha256": fingerprint(value)})
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
    """`desired` with each destination's held token (the id its record gives the value it holds,
    connectors/token_records.py) and each Kubernetes Secret destination marked present or lost
    (read through the Kubernetes API); a warning for each Secret that could not be read: its
    token is then left as it is rather than replaced on a guess."""
    warnings: list[Diagnostic] = []
    connectors = dict(desired.connectors)
    checked = [n for n, s in connectors.items() if not s.suspend and s.tokens]
    if not checked:
        return desired, warnings
    for name in checked:
        spec = connectors[name]
        tokens = []
        for token in spec.tokens:
            if token.file is not None and token.destination_present:
                held = held_token(_file_value(token.file), read_file_records(token.file))
                token = replace(token, held_token_id=held)
            elif token.kubernetes_secret is not None:
                try:
                    value, records = read_secret_record(
                        token.kubernetes_secret, token.kubernetes_key,
                        token.kubernetes_namespace)
                    token = replace(token, destination_present=value is not None,
                                    held_token_id=held_token(value, records))
                except KubeSecretError as exc:
                    token = replace(token, destination_unknown=True)
                    warnings.append(Diagnostic(
                        Severity.WARNING, f"connector {name}, token {token.name}: {exc}; "
                        "whether it still holds the token is unknown, so it is not replaced",
                        code="token-destination-unknown"))
            tokens.append(token)
        connectors[name] = replace(spec, tokens=tuple(tokens))
    return replace(desired, connectors=connectors), warnings
