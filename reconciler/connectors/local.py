"""The local connector: a stand-in for `border0 socket connect` when running with `--api local`.

border0's connector opens a tunnel from border0's edge to `host:port`. Locally there is no edge,
so this one listens on 127.0.0.1 at the port the emulator allocated to the socket and forwards
each TCP connection to `host:port` (or, with `--httpserver`, serves a directory over HTTP: the
one named, else an empty temporary one, never the working directory). It is
supervised like any connector: one process, a log line at start, exit 0 on SIGTERM. It spawns no
processes of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import http.server
import logging
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass

from reconciler.serving import ListenError

__all__ = ["LocalConnectorOptions", "run_local_connector"]

log = logging.getLogger("reconciler.local_connector")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class LocalConnectorOptions:
    name: str
    listen_port: int
    host: str = "localhost"
    port: int | None = None
    httpserver: bool = False
    httpserver_dir: str | None = None
    sshserver: bool = False  # stand-in for the built-in ssh server: forward to the local sshd
    listen_host: str = "127.0.0.1"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction until EOF, then half-close the other side."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def _forward(
    opts: LocalConnectorOptions, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
) -> None:
    peer = client_w.get_extra_info("peername")
    try:
        up_r, up_w = await asyncio.open_connection(opts.host, opts.port)
    except OSError as exc:
        log.warning("cannot reach %s:%s for %s: %s", opts.host, opts.port, peer, exc)
        client_w.close()
        return
    try:
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
    finally:
        for w in (up_w, client_w):
            w.close()
            try:
                await w.wait_closed()
            except (ConnectionError, OSError):
                pass


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.info("%s - %s", self.address_string(), format % args)


async def _serve(opts: LocalConnectorOptions, stop: asyncio.Event) -> None:
    if opts.httpserver and not opts.httpserver_dir:
        with tempfile.TemporaryDirectory(prefix="border0-local-connector-empty-") as empty:
            await _serve(dataclasses.replace(opts, httpserver_dir=empty), stop)
        return
    if opts.httpserver:
        directory = opts.httpserver_dir
        handler = functools.partial(_QuietHandler, directory=directory)
        try:
            httpd = http.server.ThreadingHTTPServer((opts.listen_host, opts.listen_port), handler)
        except OSError as exc:
            raise ListenError(
                f"cannot listen on {opts.listen_host}:{opts.listen_port}: {exc}"
            ) from None
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, name="httpserver", daemon=True)
        thread.start()
        log.info(
            "listening on %s:%d, serving directory %s",
            opts.listen_host,
            opts.listen_port,
            directory,
        )
        try:
            await stop.wait()
        finally:
            await asyncio.to_thread(httpd.shutdown)
            httpd.server_close()
        return
    try:
        server = await asyncio.start_server(
            functools.partial(_forward, opts), opts.listen_host, opts.listen_port
        )
    except OSError as exc:
        raise ListenError(
            f"cannot listen on {opts.listen_host}:{opts.listen_port}: {exc}"
        ) from None
    log.info(
        "listening on %s:%d, forwarding to %s:%s%s",
        opts.listen_host,
        opts.listen_port,
        opts.host,
        opts.port,
        " (stand-in for the built-in ssh server)" if opts.sshserver else "",
    )
    async with server:
        await stop.wait()


async def _main(opts: LocalConnectorOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await _serve(opts, stop)
    log.info("stopped")


def run_local_connector(opts: LocalConnectorOptions) -> int:
    """Run until SIGTERM/SIGINT; 0 then. Raises ListenError if the port cannot be opened."""
    if not opts.httpserver and opts.port is None:
        raise ValueError("--port is required unless --httpserver or --sshserver is given")
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    asyncio.run(_main(opts))
    return 0
