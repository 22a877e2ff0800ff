"""Connector tokens at apply time: create one, put its value where the manifest says, revoke.

A token's value is answered once, by `POST /connector/token`; it goes to its destination (a
file written 0600, atomically) and nowhere else: not to a log, a result message or an exception.
If the destination cannot be written the new token is revoked at once, so no value is lost
with a live token behind it.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.border0.api import Border0API
from reconciler.connector_model import TokenSpec
from reconciler.plan.connectors import expiry_for

__all__ = ["TokenDestinationError", "issue_token", "write_secret_file"]


class TokenDestinationError(Exception):
    """The destination of a new token could not be written (the message names the path only)."""


def write_secret_file(path: str, value: str) -> None:
    """Write `value` to `path` with mode 0600, atomically (a reader never sees half a token)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
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
        else:
            raise TokenDestinationError(
                f"token {token.name}: no destination this reconciler can write")
    except TokenDestinationError:
        if token_id:
            client.delete_connector_token(connector_id, token_id)
        raise
    return token_id
