"""The emulator's state: sockets, policies, their attachments, connectors and connector tokens
in one SQLite database.

Each object is a JSON blob next to the few indexed columns lookups need (id, name, type), so a
list of 10,000 sockets is one query plus one for attachments. One connection serves every
thread behind one lock: SQLite is fast enough that a lock is simpler than a pool, and every
write is one transaction, so a crash never leaves half an operation behind.

border0's rules for bodies live in rules.py; here: unique names, consistent attachments,
soft deletion of sockets, and a hook that tells the read-after-write delay what a write changed.

Connectors and their tokens are as border0-go client/connector.go models them.
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
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from reconciler.border0.emulator import rules
from reconciler.border0.emulator.rules import (
    SOCKET_TYPES,
    Invalid,
    Missing,
    StoreError,
    check_name,
)
from reconciler.border0.emulator.transaction import Transaction

__all__ = ["DEFAULT_PORT_RANGE", "SOCKET_TYPES", "Invalid", "Missing", "Store", "StoreError"]

#: Called inside a write's transaction with (kind, id, the object before the write or None).
WriteHook = Callable[[str, str, "dict[str, Any] | None"], None]

DEFAULT_PORT_RANGE = (20000, 59999)
#: Page cursors kept between writes (a walk of 100,000 sockets in pages of 100 needs 1,000).
_MAX_CURSORS = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sockets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    socket_type TEXT NOT NULL,
    port INTEGER NOT NULL UNIQUE,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
    socket_id TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    PRIMARY KEY (socket_id, policy_id)
);
CREATE INDEX IF NOT EXISTS attachments_policy ON attachments (policy_id);
CREATE TABLE IF NOT EXISTS deleted_sockets (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
"""


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


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int


class Store:
    """Sockets, policies and connectors of one organization. Thread-safe;
    every method is one transaction."""

    def __init__(
        self,
        path: str | None = None,
        *,
        org: str = "local",
        port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
    ) -> None:
        self.path = path or ":memory:"
        self.org = org
        self.org_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{org}.border0.io"))
        self.port_range = port_range
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA + CONNECTOR_SCHEMA)
        self._used_ports = {row[0] for row in self._db.execute("SELECT port FROM sockets")}
        self._next_port = port_range[0]
        self.on_write: WriteHook | None = None
        #: (filter, args, page_size, page) -> the seq the page starts after; see _page_start.
        self._cursors: dict[tuple[Any, ...], int] = {}
        self._cursors_version = -1

    def _written(self, kind: str, object_id: str, before: dict[str, Any] | None) -> None:
        if kind == "socket":
            self._cursors.clear()
        if self.on_write is not None:
            self.on_write(kind, object_id, before)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- plumbing -------------------------------------------------------------------------

    def _tx(self) -> Transaction:
        return Transaction(self._lock, self._db)

    def _allocate_port(self) -> int:
        low, high = self.port_range
        size = high - low + 1
        for i in range(size):
            port = low + (self._next_port - low + i) % size
            if port not in self._used_ports:
                self._used_ports.add(port)
                self._next_port = port + 1
                return port
        raise Invalid(f"no free TCP port left in {low}-{high}")

    def _policies_by_id(self, ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT id, data FROM policies")
        wanted = set(ids) if ids is not None else None
        return {pid: json.loads(data) for pid, data in rows if wanted is None or pid in wanted}

    def _attachments(self, socket_ids: list[str] | None) -> dict[str, list[str]]:
        """socket id -> attached policy ids, in attachment order."""
        if socket_ids is None:
            rows = self._db.execute("SELECT socket_id, policy_id FROM attachments ORDER BY rowid")
        else:
            marks = ",".join("?" * len(socket_ids))
            rows = self._db.execute(
                f"SELECT socket_id, policy_id FROM attachments WHERE socket_id IN ({marks}) "
                "ORDER BY rowid",
                socket_ids,
            )
        out: dict[str, list[str]] = {}
        for sid, pid in rows:
            out.setdefault(sid, []).append(pid)
        return out

    def _render_sockets(self, blobs: list[str], *, every: bool = False) -> list[dict[str, Any]]:
        """API answers of the stored sockets; `every`: these are all the sockets (one read of
        every attachment rather than one per 500 sockets)."""
        sockets = [orjson.loads(b) for b in blobs]
        if not sockets:
            return sockets
        ids = [s["socket_id"] for s in sockets]
        if every:
            attached = self._attachments(None)
        else:  # a page reads its own attachments only, never the whole table (deep pages)
            attached = {}
            for i in range(0, len(ids), 500):
                attached.update(self._attachments(ids[i:i + 500]))
        policies = self._policies_by_id() if attached else {}
        names = self.connector_names()
        for s in sockets:
            s["policies"] = [_slim_policy(policies[p]) for p in attached.get(s["socket_id"], ())]
            # serializer.SlimConnector in the reference: what a socket answer says of its links.
            s["connectors"] = [{"connector_id": c, "name": names.get(c, "")}
                               for c in s.get("connector_ids") or ()]
        return sockets

    def _render_policy(self, blob: str) -> dict[str, Any]:
        policy = json.loads(blob)
        policy["socket_ids"] = [
            r[0]
            for r in self._db.execute(
                "SELECT socket_id FROM attachments WHERE policy_id = ? ORDER BY rowid",
                (policy["id"],),
            )
        ]
        return policy

    def _socket_row(self, id_or_name: str) -> tuple[str, str]:
        row = self._db.execute(
            "SELECT id, data FROM sockets WHERE id = ? OR name = ?", (id_or_name, id_or_name)
        ).fetchone()
        if row is None:
            raise Missing(f"socket {id_or_name} not found")
        return row

    def _policy_row(self, policy_id: str) -> tuple[str, str]:
        row = self._db.execute(
            "SELECT id, data FROM policies WHERE id = ?", (policy_id,)
        ).fetchone()
        if row is None:
            raise Missing(f"policy {policy_id} not found")
        return row

    # --- sockets --------------------------------------------------------------------------

    def list_sockets(
        self,
        *,
        page: int = 1,
        page_size: int | None = None,
        name: str | None = None,
        search: str | None = None,
        socket_type: str | None = None,
    ) -> Page:
        where, args = [], []  # type: list[str], list[Any]
        if name:
            where.append("name = ?")
            args.append(name)
        if socket_type:
            where.append("socket_type = ?")
            args.append(socket_type)
        if search:
            where.append("(instr(name, ?) > 0 OR instr(lower(json_extract(data, '$.description')), ?) > 0)")
            args += [search.lower(), search.lower()]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._tx():
            total = self._db.execute(f"SELECT count(*) FROM sockets{clause}", args).fetchone()[0]
            if not page_size:
                blobs = [r[0] for r in self._db.execute(
                    f"SELECT data FROM sockets{clause} ORDER BY seq", args)]
                return Page(self._render_sockets(blobs, every=not where), total)
            key = (clause, tuple(args), int(page_size))
            after = self._page_start(key, page)
            if after is None:
                sql = (f"SELECT seq, data FROM sockets{clause} ORDER BY seq "
                       f"LIMIT {int(page_size)} OFFSET {int((page - 1) * page_size)}")
                rows = self._db.execute(sql, args).fetchall()
            else:
                keyed = f"{clause} AND seq > ?" if where else " WHERE seq > ?"
                rows = self._db.execute(
                    f"SELECT seq, data FROM sockets{keyed} ORDER BY seq LIMIT {int(page_size)}",
                    [*args, after]).fetchall()
            if rows and len(self._cursors) < _MAX_CURSORS:
                self._cursors[(*key, page + 1)] = rows[-1][0]
            return Page(self._render_sockets([r[1] for r in rows]), total)

    def _page_start(self, key: tuple[Any, ...], page: int) -> int | None:
        """The seq page `page` starts after, when the previous page was served since the last
        write (None: count with OFFSET). A walk through the pages is then linear: OFFSET steps
        over every earlier row (4.6 ms for page 1,000 of 100 at 100,000 sockets, so a full
        listing grew with the square of its size). Writes clear the cursors (_written), and so
        does a commit from another connection to the same file (PRAGMA data_version)."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._cursors_version:
            self._cursors.clear()
            self._cursors_version = version
        return self._cursors.get((*key, page)) if page > 1 else None

    def get_socket(self, id_or_name: str, *, active_only: bool = True) -> dict[str, Any]:
        """A socket by id or name. `active_only=False` (GET /socket/{id} without
        ?activeOnly=true) also finds a deleted socket by its id: TF border0/resource_socket.go
        (fetchSocket) says border0 answers a soft-deleted socket by id, 404 by name; the SDK
        (client/socket.go) asks with ?activeOnly=true for that reason. No marker tells a
        deleted socket from a live one in that answer (none in the SDK's Socket)."""
        with self._tx():
            try:
                _, blob = self._socket_row(id_or_name)
            except Missing:
                row = None if active_only else self._db.execute(
                    "SELECT data FROM deleted_sockets WHERE id = ?", (id_or_name,)).fetchone()
                if row is None:
                    raise
                return dict(self._render_sockets([row[0]])[0], policies=[])
            return self._render_sockets([blob])[0]

    def create_socket(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = rules.new_socket(body)
        name, now = fields["name"], _now()
        socket: dict[str, Any] = {"socket_id": str(uuid.uuid4()), **fields}
        socket.update(dnsname=f"{name}-{self.org}.border0.io", created_at=now, updated_at=now)
        rules.check_socket_fields(socket)
        with self._tx():
            socket["connector_ids"] = self.check_connector_ids(socket.get("connector_ids"))
            if self._db.execute("SELECT 1 FROM sockets WHERE name = ?", (name,)).fetchone():
                raise Invalid(f"a socket named {name!r} already exists")
            self._written("socket", socket["socket_id"], None)
            for _ in range(2):
                port = self._allocate_port()
                socket["socket_tcp_ports"] = [port]
                try:
                    self._db.execute(
                        "INSERT INTO sockets (id, name, socket_type, port, data) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (socket["socket_id"], name, fields["socket_type"], port,
                         json.dumps(socket)),
                    )
                    break
                except sqlite3.IntegrityError:
                    # Another process (a second `--api local` on the same file) took the port.
                    self._used_ports = {r[0] for r in self._db.execute("SELECT port FROM sockets")}
            else:
                raise StoreError("could not allocate a TCP port")
            for policy_name in dict.fromkeys(body.get("policy_names") or ()):
                row = self._db.execute("SELECT id FROM policies WHERE name = ?",
                                       (policy_name,)).fetchone()
                if row is None:  # inference: an unknown name is refused, nothing is made
                    raise Invalid(f"policy_names: no policy named {policy_name!r}")
                self._attach("add", socket["socket_id"], row[0])
            return self._render_sockets([json.dumps(socket)])[0]

    def update_socket(self, id_or_name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT: a replacement of the updatable fields (rules.update_socket)."""
        with self._tx():
            socket_id, blob = self._socket_row(id_or_name)
            stored = json.loads(blob)
            socket = rules.update_socket(stored, body)
            if socket["name"] != stored["name"]:
                if self._db.execute(
                    "SELECT 1 FROM sockets WHERE name = ?", (socket["name"],)
                ).fetchone():
                    raise Invalid(f"a socket named {socket['name']!r} already exists")
                socket["dnsname"] = f"{socket['name']}-{self.org}.border0.io"
            rules.check_socket_fields(socket)
            socket["connector_ids"] = self.check_connector_ids(socket.get("connector_ids"))
            socket["updated_at"] = _now()
            self._written("socket", socket_id, self._render_sockets([blob])[0])
            self._db.execute(
                "UPDATE sockets SET name = ?, data = ? WHERE id = ?",
                (socket["name"], json.dumps(socket), socket_id),
            )
            return self._render_sockets([json.dumps(socket)])[0]

    def delete_socket(self, id_or_name: str) -> None:
        """A soft delete: the socket leaves every listing and name lookup but stays readable by
        id (see get_socket); its name and TCP port are free again."""
        with self._tx():
            socket_id, blob = self._socket_row(id_or_name)
            self._written("socket", socket_id, self._render_sockets([blob])[0])
            for port in json.loads(blob).get("socket_tcp_ports", ()):
                self._used_ports.discard(port)
            self._db.execute("DELETE FROM attachments WHERE socket_id = ?", (socket_id,))
            self._db.execute("DELETE FROM sockets WHERE id = ?", (socket_id,))
            self._db.execute("INSERT OR REPLACE INTO deleted_sockets (id, data) VALUES (?, ?)",
                             (socket_id, blob))

    def socket_connectors(self, id_or_name: str) -> list[dict[str, Any]]:
        """GET /socket/{id}/connectors: SDK SocketConnector (client/socket.go) per link."""
        with self._tx():
            socket_id, blob = self._socket_row(id_or_name)
            socket = json.loads(blob)
            names = self.connector_names()
            return [{"id": i + 1, "connector_id": c, "connector_name": names.get(c, ""),
                     "socket_id": socket_id, "created_at": socket["updated_at"],
                     "updated_at": socket["updated_at"]}
                    for i, c in enumerate(socket.get("connector_ids") or ())]

    def socket_upstream_configurations(self, id_or_name: str) -> list[dict[str, Any]]:
        """GET /socket/{id}/upstream_configurations: SDK SocketUpstreamConfig (client/socket.go)
        {config, created_at, updated_at}; empty when none is set. Credentials included: TF
        (internal/schemautil/socket/*/from_upstream_config.go) stores passwords from here."""
        with self._tx():
            _, blob = self._socket_row(id_or_name)
            socket = json.loads(blob)
        config = socket.get("upstream_configuration")
        if not config:
            return []
        return [{"config": config, "created_at": socket["created_at"],
                 "updated_at": socket["updated_at"]}]

    def connector_config(self, connector_id: str) -> dict[str, Any]:
        """What a connector serves, for the test stand-in (app.py GET /connector/config): the
        shape of border0-proto connector/connector.proto `Init` {connector_config, sockets[]},
        each socket a `SocketConfig` {id, name, type, config} whose config is SDK
        types/service ConnectorServiceConfiguration. The real connector is pushed this over a
        gRPC control stream instead."""
        with self._tx():
            connector = self._connector_row(connector_id)
            rows = self._db.execute(
                "SELECT data FROM sockets WHERE instr(data, ?) > 0 ORDER BY seq",
                (connector_id,)).fetchall()
        sockets = []
        for (blob,) in rows:
            s = json.loads(blob)
            if connector_id not in (s.get("connector_ids") or ()):
                continue
            sockets.append({"id": s["socket_id"], "name": s["name"], "type": s["socket_type"],
                            "config": {
                                "connector_authentication_enabled":
                                    bool(s.get("connector_authentication_enabled")),
                                "end_to_end_encryption_enabled": False,
                                "recording_enabled": bool(s.get("recording_enabled")),
                                "upstream_configuration": s.get("upstream_configuration"),
                            }})
        return {"connector_config": connector, "sockets": sockets}

    def update_socket_policies(self, id_or_name: str, actions: Iterable[tuple[str, str]]) -> None:
        """Attach ("add") or detach ("remove") policies; all or nothing."""
        with self._tx():
            socket_id, _ = self._socket_row(id_or_name)
            for action, policy_id in actions:
                self._policy_row(policy_id)
                self._attach(action, socket_id, policy_id)

    # --- policies -------------------------------------------------------------------------

    def list_policies(self, *, socket_id: str | None = None,
                      org_wide_only: bool = False) -> list[dict[str, Any]]:
        """Every policy; with `socket_id` those attached to it and the org-wide ones; with
        `org_wide_only` the org-wide ones (the CLI's `policies/?org_wide=true`)."""
        with self._tx():
            attached = self._attachments(None)
            by_policy: dict[str, list[str]] = {}
            for sid, pids in attached.items():
                for pid in pids:
                    by_policy.setdefault(pid, []).append(sid)
            out = []
            for (blob,) in self._db.execute("SELECT data FROM policies ORDER BY seq"):
                policy = json.loads(blob)
                policy["socket_ids"] = by_policy.get(policy["id"], [])
                if policy["org_wide"] or (socket_id is None and not org_wide_only) or (
                        socket_id in policy["socket_ids"]):
                    out.append(policy)
            return out

    def find_policy(self, name: str) -> dict[str, Any]:
        with self._tx():
            row = self._db.execute("SELECT data FROM policies WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise Missing(f"policy {name!r} not found")
            return self._render_policy(row[0])

    def get_policy(self, policy_id: str) -> dict[str, Any]:
        with self._tx():
            return self._render_policy(self._policy_row(policy_id)[1])

    def policy_version(self, policy_id: str) -> str | None:
        """A stored policy's version (for checking a PUT that sends none), None if missing."""
        with self._tx():
            row = self._db.execute("SELECT data FROM policies WHERE id = ?",
                                   (policy_id,)).fetchone()
        return json.loads(row[0]).get("version") if row else None

    def create_policy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        now = _now()
        policy = {"id": str(uuid.uuid4()), **rules.new_policy(body), "org_id": self.org_id,
                  "created_at": now, "updated_at": now, "deleted": False}
        name = policy["name"]
        with self._tx():
            if self._db.execute("SELECT 1 FROM policies WHERE name = ?", (name,)).fetchone():
                raise Invalid(f"a policy named {name!r} already exists")
            self._written("policy", policy["id"], None)
            self._db.execute(
                "INSERT INTO policies (id, name, data) VALUES (?, ?, ?)",
                (policy["id"], name, json.dumps(policy)),
            )
            policy["socket_ids"] = []
            return policy

    def update_policy(self, policy_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """rules.update_policy; attachments and org_wide are kept."""
        with self._tx():
            _, blob = self._policy_row(policy_id)
            stored = json.loads(blob)
            policy = rules.update_policy(stored, body)
            if policy["name"] != stored["name"] and self._db.execute(
                "SELECT 1 FROM policies WHERE name = ?", (policy["name"],)
            ).fetchone():
                raise Invalid(f"a policy named {policy['name']!r} already exists")
            policy["updated_at"] = _now()
            self._written("policy", policy_id, self._render_policy(blob))
            self._db.execute(
                "UPDATE policies SET name = ?, data = ? WHERE id = ?",
                (policy["name"], json.dumps(policy), policy_id),
            )
            return self._render_policy(json.dumps(policy))

    def delete_policy(self, policy_id: str) -> None:
        with self._tx():
            _, blob = self._policy_row(policy_id)
            self._written("policy", policy_id, self._render_policy(blob))
            self._db.execute("DELETE FROM attachments WHERE policy_id = ?", (policy_id,))
            self._db.execute("DELETE FROM policies WHERE id = ?", (policy_id,))

    def update_policy_sockets(self, policy_id: str, actions: Iterable[tuple[str, str]]) -> None:
        """Attach or detach sockets from the policy's side; all or nothing."""
        with self._tx():
            self._policy_row(policy_id)
            for action, id_or_name in actions:
                socket_id, _ = self._socket_row(id_or_name)
                self._attach(action, socket_id, policy_id)

    def _attach(self, action: str, socket_id: str, policy_id: str) -> None:
        if action == "add":
            self._db.execute(
                "INSERT OR IGNORE INTO attachments (socket_id, policy_id) VALUES (?, ?)",
                (socket_id, policy_id),
            )
        elif action == "remove":
            self._db.execute(
                "DELETE FROM attachments WHERE socket_id = ? AND policy_id = ?",
                (socket_id, policy_id),
            )
        else:
            raise Invalid(f"unknown action {action!r}: use add or remove")


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

def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _slim_policy(policy: Mapping[str, Any]) -> dict[str, Any]:
    """A policy as embedded in a socket: without socket_ids (which could be thousands long)."""
    return {k: v for k, v in policy.items() if k != "socket_ids"}


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
