"""Connectors and their tokens, as border0-go client/connector.go models them (a Store mixin).

A connector is an API object (`POST`/`PUT /connector`, `GET`/`DELETE /connector/{id}`,
`GET /connectors`); sockets name the connectors that serve them in `connector_ids`. A connector
token authenticates one connector process (`border0 connector start` reads it from
`BORDER0_TOKEN`): `POST /connector/token` answers its value once, every later read shows its
id, name and expiry only, and `DELETE /connector/{id}/token/{token_id}` revokes it. The store
keeps a SHA-256 of each value, never the value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler.border0.emulator.rules import Invalid, Missing, check_name
from reconciler.border0.emulator.transaction import Transaction

__all__ = ["CONNECTOR_SCHEMA", "ConnectorsMixin"]

CONNECTOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS connectors (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connector_tokens (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    connector_id TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS connector_tokens_connector ON connector_tokens (connector_id);
"""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _expiry(value: Any) -> datetime | None:
    """SDK FlexibleTime (client/flexible_time.go): RFC 3339, a Unix time in seconds, or empty
    (no expiry: CreateConnectorToken's comment)."""
    if value in (None, "", 0):
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            if value.isdigit():
                return datetime.fromtimestamp(int(value), UTC)
            return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise Invalid(f"expires_at {value!r} is not a time (RFC 3339 or Unix seconds)")


class ConnectorsMixin:
    """Connector methods of the Store, which provides what is declared here."""

    _db: sqlite3.Connection
    org_id: str
    _tx: Callable[[], Transaction]
    _written: Callable[[str, str, dict[str, Any] | None], None]
    _render_sockets: Callable[[list[str]], list[dict[str, Any]]]

    # --- connectors -----------------------------------------------------------------------

    def _connector_row(self, connector_id: str) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT data FROM connectors WHERE id = ?", (connector_id,)).fetchone()
        if row is None:
            raise Missing(f"connector {connector_id} not found")
        return json.loads(row[0])

    def connector_names(self, ids: list[str] | None = None) -> dict[str, str]:
        """connector id -> name (all connectors, or those of `ids`); call inside a transaction."""
        rows = self._db.execute("SELECT id, name FROM connectors")
        wanted = set(ids) if ids is not None else None
        return {cid: name for cid, name in rows if wanted is None or cid in wanted}

    def check_connector_ids(self, ids: Any) -> list[str]:
        """`connector_ids` as stored: every id must name a connector of the organization.
        Inference (no border0 source shows the refusal): border0 keeps socket-connector links
        as rows that reference the connector, so a link to no connector cannot be written;
        the twin answers 400 rather than store a link nobody serves."""
        ids = list(dict.fromkeys(ids or []))
        known = self.connector_names(ids)
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise Invalid(f"connector_ids: no connector with id {', '.join(map(repr, unknown))}")
        return ids

    def list_connectors_all(self) -> list[dict[str, Any]]:
        with self._tx():
            return [json.loads(r[0]) for r in
                    self._db.execute("SELECT data FROM connectors ORDER BY seq")]

    def get_connector(self, connector_id: str) -> dict[str, Any]:
        with self._tx():
            return self._connector_row(connector_id)

    def create_connector(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /connector. The SDK always sends `connector_id` (no omitempty): "" here."""
        now = _now()
        connector = {
            "connector_id": str(uuid.uuid4()),
            **_connector_fields(body),
            "created_at": now, "updated_at": now,
        }
        with self._tx():
            self._unique_name(connector["name"], None)
            self._db.execute("INSERT INTO connectors (id, name, data) VALUES (?, ?, ?)",
                             (connector["connector_id"], connector["name"],
                              json.dumps(connector)))
            return connector

    def update_connector(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /connector (the id is in the body: SDK UpdateConnector). The SDK's Connector has
        `description` and `built_in_ssh_service_enabled` omitempty, so a field not sent is its
        zero value: the PUT replaces them."""
        connector_id = body.get("connector_id")
        if not isinstance(connector_id, str) or not connector_id:
            raise Invalid("connector_id is required")
        with self._tx():
            stored = self._connector_row(connector_id)
            connector = {**stored, **_connector_fields(body), "updated_at": _now()}
            self._unique_name(connector["name"], connector_id)
            self._db.execute("UPDATE connectors SET name = ?, data = ? WHERE id = ?",
                             (connector["name"], json.dumps(connector), connector_id))
            return connector

    def delete_connector(self, connector_id: str) -> None:
        """DELETE /connector/{id}: its tokens go with it, and sockets lose the link.
        Inference: no border0 source says what happens to sockets bound to a deleted connector;
        the links reference the connector, so they go too and the sockets stay (unserved)."""
        with self._tx():
            self._connector_row(connector_id)
            self._db.execute("DELETE FROM connector_tokens WHERE connector_id = ?",
                             (connector_id,))
            self._db.execute("DELETE FROM connectors WHERE id = ?", (connector_id,))
            rows = self._db.execute(
                "SELECT id, data FROM sockets WHERE instr(data, ?) > 0", (connector_id,)
            ).fetchall()
            for socket_id, blob in rows:
                socket = json.loads(blob)
                if connector_id in (socket.get("connector_ids") or ()):
                    before = self._render_sockets([blob])[0]
                    self._written("socket", socket_id, before)
                    socket["connector_ids"] = [
                        c for c in socket["connector_ids"] if c != connector_id]
                    self._db.execute("UPDATE sockets SET data = ? WHERE id = ?",
                                     (json.dumps(socket), socket_id))

    def _unique_name(self, name: str, own_id: str | None) -> None:
        row = self._db.execute("SELECT id FROM connectors WHERE name = ?", (name,)).fetchone()
        if row is not None and row[0] != own_id:
            raise Invalid(f"a connector named {name!r} already exists")

    # --- tokens ---------------------------------------------------------------------------

    def create_connector_token(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /connector/token {connector_id, name, expires_at}: the only answer that holds
        the token's value (SDK ConnectorToken.Token; TF resource_connector_token.go keeps it
        from the create, its read never sets it)."""
        connector_id = body.get("connector_id")
        if not isinstance(connector_id, str) or not connector_id:
            raise Invalid("connector_id is required")
        name = check_name("connector token", body.get("name"))
        expires = _expiry(body.get("expires_at"))
        if expires is not None and expires <= datetime.now(UTC):
            raise Invalid("expires_at is in the past")
        token_id = str(uuid.uuid4())
        with self._tx():
            self._connector_row(connector_id)
            value = self._token_value(connector_id, token_id, expires)
            record = {"id": token_id, "connector_id": connector_id, "name": name,
                      "created_by": "admin", "created_at": _now()}
            if expires is not None:  # none: no expiry (the SDK decodes a missing time as zero)
                record["expires_at"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
            self._db.execute(
                "INSERT INTO connector_tokens (id, connector_id, hash, data) VALUES (?, ?, ?, ?)",
                (token_id, connector_id, _hash(value), json.dumps(record)))
            return {**record, "token": value}

    def _token_value(self, connector_id: str, token_id: str, expires: datetime | None) -> str:
        """A JWT-shaped value (border0's tokens are JWTs); the twin never parses it, it looks
        its SHA-256 up."""
        claims: dict[str, Any] = {"org_id": self.org_id, "connector_id": connector_id,
                                  "token_id": token_id, "type": "connector"}
        if expires is not None:
            claims["exp"] = int(expires.timestamp())
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        return f"{head}.{_b64(json.dumps(claims).encode())}.{_b64(secrets.token_bytes(32))}"

    def connector_tokens(self, connector_id: str) -> dict[str, Any]:
        """GET /connector/{id}/tokens: SDK ConnectorTokens {list, connector}; no values."""
        with self._tx():
            connector = self._connector_row(connector_id)
            rows = self._db.execute(
                "SELECT data FROM connector_tokens WHERE connector_id = ? ORDER BY seq",
                (connector_id,))
            return {"list": [_token_out(json.loads(r[0])) for r in rows],
                    "connector": connector}

    def connector_token(self, connector_id: str, token_id: str) -> dict[str, Any]:
        with self._tx():
            row = self._db.execute(
                "SELECT data FROM connector_tokens WHERE connector_id = ? AND id = ?",
                (connector_id, token_id)).fetchone()
            if row is None:
                raise Missing(f"token {token_id} of connector {connector_id} not found")
            return _token_out(json.loads(row[0]))

    def delete_connector_token(self, connector_id: str, token_id: str) -> None:
        with self._tx():
            deleted = self._db.execute(
                "DELETE FROM connector_tokens WHERE connector_id = ? AND id = ?",
                (connector_id, token_id)).rowcount
            if not deleted:
                raise Missing(f"token {token_id} of connector {connector_id} not found")

    def connector_of_token(self, token: str) -> str | None:
        """The connector a token value authenticates, None if unknown, revoked or expired."""
        with self._tx():
            row = self._db.execute(
                "SELECT connector_id, data FROM connector_tokens WHERE hash = ?",
                (_hash(token),)).fetchone()
        if row is None:
            return None
        expires = _expiry(json.loads(row[1]).get("expires_at"))
        if expires is not None and expires <= datetime.now(UTC):
            return None
        return str(row[0])


def _connector_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The stored fields of SDK `Connector` (client/connector.go); `tailscale_auth_key` and
    `built_in_ssh_service` are border0's to set, never the client's."""
    return {
        "name": check_name("connector", body.get("name")),
        "description": str(body.get("description") or ""),
        "built_in_ssh_service_enabled": bool(body.get("built_in_ssh_service_enabled")),
    }


def _token_out(record: Mapping[str, Any]) -> dict[str, Any]:
    """A token as every read but the create answers it: the value is never shown again."""
    return {k: v for k, v in record.items() if k != "token"}
