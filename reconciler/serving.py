"""Bind and serve uvicorn: the one helper for the emulator and the daemon's status server.

The listening socket is bound by the caller's thread (`bind`), so the port is known before the
server starts (port 0 = a free port), no other process can take it in between, and "address in
use" is a clear `ListenError` at start-up rather than a failure inside the server thread. Each
server keeps its own `uvicorn.Config`; this module only owns the socket and the serve loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

__all__ = ["ListenError", "QuietServer", "bind", "parse_listen", "serve_in_thread", "url_host"]

log = logging.getLogger(__name__)


class ListenError(OSError):
    """The address cannot be listened on (in use, not local, no permission)."""


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6, `:PORT` for loopback) -> (host, port); ValueError if
    malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def url_host(host: str) -> str:
    """A host as it appears in a URL: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def bind(host: str = "127.0.0.1", port: int = 0, *, backlog: int = 128) -> socket.socket:
    """A non-blocking listening TCP socket; ListenError if the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener says TCP; without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        where = f"{url_host(host)}:{port}"
        raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its owner (uvicorn would re-raise them), wakes
    every `tick` seconds (uvicorn: 0.1 s; an idle daemon wants less) and stops at once on
    `request_exit()`."""

    def __init__(self, config: uvicorn.Config, *, tick: float = 0.1) -> None:
        super().__init__(config)
        self.tick = tick
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        step = max(1, round(self.tick * 10))  # on_tick counts tenths of a second
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + step) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), self.tick)
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


def serve_in_thread(
    server: uvicorn.Server, sock: socket.socket, name: str, *, timeout: float = 10.0
) -> threading.Thread:
    """Serve on `sock` in a daemon thread; returns once it accepts connections, or the thread
    ended, or `timeout` passed (check `server.started`)."""
    def run() -> None:
        try:
            server.run(sockets=[sock])
        except Exception:
            log.exception("%s stopped unexpectedly", name)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.002)
    return thread
