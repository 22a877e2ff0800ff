"""The emulator inside this process: uvicorn in a daemon thread on a loopback socket we bind.

Binding the socket ourselves (port 0 = a free port) means the URL is known before the server
starts and no other process can take the port in between. Used by `--api local` and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Self

import uvicorn

from reconciler.border0.emulator.app import API_PREFIX, create_app
from reconciler.border0.emulator.store import Store

__all__ = ["EmbeddedEmulator", "QuietServer", "bind_socket", "private_db_file"]

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


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener says TCP; without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its owner (uvicorn would re-raise them) and
    stops at once on `request_exit()` (uvicorn polls `should_exit` every 0.1 s)."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
            except TimeoutError:
                pass

    def request_exit(self) -> None:
        """Thread-safe and signal-safe."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop has closed already
                pass


def server_config(app: Any, *, access_log: bool = False) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
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
            secrets_on_read=secrets_on_read,
        )
        self._socket = bind_socket(host, port)
        bound_host, bound_port = self._socket.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}{API_PREFIX}"
        self._server = QuietServer(server_config(self.app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]},
            name="border0-emulator", daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the embedded emulator did not start")
            time.sleep(0.002)
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
