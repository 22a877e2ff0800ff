"""The emulator inside this process: uvicorn in a daemon thread on a loopback socket we bind.

Binding the socket ourselves (port 0 = a free port) means the URL is known before the server
starts and no other process can take the port in between. Used by `--api local` and the tests.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Any, Self

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from reconciler.border0.emulator.app import API_PREFIX, create_app
from reconciler.border0.emulator.faults import ARRIVED
from reconciler.border0.emulator.store import Store
from reconciler.clock import SYSTEM, Clock
from reconciler.serving import QuietServer, bind, serve_in_thread, url_host

__all__ = ["EmbeddedEmulator", "private_db_file", "server_config"]

#: SQLite's companions of a database file; they hold the same data.
_DB_COMPANIONS = ("-wal", "-shm", "-journal")


def private_db_file(path: str) -> None:
    """Make the SQLite file (and its WAL/shm/journal files) 0600 whatever the umask: it holds
    the sockets' upstream passwords in clear. The file is created here, 0600, before SQLite
    opens it; SQLite then gives its -wal and -shm files the database file's mode. Existing
    files (older versions made them 0644) are fixed too."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in _DB_COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path + suffix, 0o600)


class _ArrivalH11(H11Protocol):
    """uvicorn's h11 protocol that notes in each request's scope (`ARRIVED`) when its first
    bytes arrived: the round trip `--latency` makes starts there, as a network's does, not once
    its headers are whole and parsed and its task has its turn on the event loop (0.1-0.2 ms
    later, more while the loop serves other requests; the whole slow upload of a header)."""

    _began: float | None = None  # when the first bytes of the request now coming arrived

    def data_received(self, data: bytes) -> None:
        if self._began is None and self.conn.their_state is h11.IDLE:  # not a body's bytes
            self._began = self.loop.time()
        before = self.scope
        super().data_received(data)
        if self.scope is not before and self._began is not None:  # the request's headers came
            self.scope[ARRIVED] = self._began  # type: ignore[literal-required]
            self._began = None


def server_config(app: Any, *, access_log: bool = False) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=_ArrivalH11,
        lifespan="off",
        ws="none",  # no websockets: nor is their protocol imported
        access_log=access_log,
        log_level="info" if access_log else "warning",
        log_config=None,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=30,
    )


class EmbeddedEmulator:
    """start() -> URL (with /api/v1); stop() shuts it down and closes the store."""

    def __init__(self) -> None:
        self.url = ""
        self.token = ""
        self.store: Store | None = None
        self.app: Any = None
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def start(
        self,
        db_path: str | None = None,
        token: str = "",
        *,
        org: str = "local",
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        fail_rate: float = 0.0,
        rate_limit: int = 0,
        read_after_write_delay_ms: int = 0,
        seed: int | None = None,
        secrets_on_read: str = "omit",
        timeout: float = 10.0,
        clock: Clock = SYSTEM,
    ) -> str:
        if self._thread is not None:
            raise RuntimeError("the emulator is running already")
        self.token = token
        if db_path and db_path != ":memory:":
            private_db_file(db_path)
        self.store = Store(db_path, org=org)
        self.app = create_app(
            self.store, token=token, org=org, latency_ms=latency_ms, fail_rate=fail_rate,
            rate_limit=rate_limit, read_after_write_delay_ms=read_after_write_delay_ms, seed=seed,
            secrets_on_read=secrets_on_read, clock=clock,
        )
        self._socket = bind(host, port)
        bound_host, bound_port = self._socket.getsockname()[:2]
        self.url = f"http://{url_host(bound_host)}:{bound_port}{API_PREFIX}"
        self._server = QuietServer(server_config(self.app))
        self._thread = serve_in_thread(
            self._server, self._socket, "border0-emulator", timeout=timeout)
        if not self._server.started:
            self.stop()
            raise RuntimeError("the embedded emulator did not start")
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.request_exit()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        if self.store is not None:
            self.store.close()
        self._server = self._thread = self._socket = None
        self.store = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
