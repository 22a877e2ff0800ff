"""`border0-reconciler emulator`: the emulator as a long-running process.

It prints one line when it is ready (`emulator listening on http://HOST:PORT/api/v1 ...`) on
stderr; with `--listen HOST:0` that line carries the port the system chose. SIGTERM and SIGINT
stop it gracefully with exit code 0.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys
from dataclasses import dataclass
from typing import Any

from reconciler.border0.emulator.app import API_PREFIX, create_app
from reconciler.border0.emulator.embedded import private_db_file, server_config
from reconciler.border0.emulator.store import Store
from reconciler.serving import QuietServer, bind, parse_listen, url_host

__all__ = ["ServeOptions", "serve"]


@dataclass(frozen=True)
class ServeOptions:
    listen: str = "127.0.0.1:8787"
    db: str | None = None
    token: str = ""
    org: str = "local"
    latency_ms: float = 0
    fail_rate: float = 0.0
    rate_limit: int = 0
    read_after_write_delay_ms: int = 0
    access_log: bool = False
    seed: int | None = None
    secrets_on_read: str = "omit"


def serve(options: ServeOptions) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    host, port = parse_listen(options.listen)
    if options.db:
        try:
            private_db_file(options.db)
        except OSError as exc:  # reported as the database error it is, not as a listen error
            raise sqlite3.OperationalError(exc.strerror or str(exc)) from None
    store = Store(options.db, org=options.org)
    app = create_app(
        store, token=options.token, org=options.org, latency_ms=options.latency_ms,
        fail_rate=options.fail_rate, rate_limit=options.rate_limit,
        read_after_write_delay_ms=options.read_after_write_delay_ms, seed=options.seed,
        secrets_on_read=options.secrets_on_read,
    )
    sock = bind(host, port)
    if options.access_log:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = QuietServer(server_config(app, access_log=options.access_log))

    def stop(signum: int, frame: Any) -> None:
        server.request_exit()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = url_host(bound_host)
    faults = []
    if options.latency_ms:
        faults.append(f"latency {options.latency_ms:g} ms")
    if options.fail_rate:
        faults.append(f"fail rate {options.fail_rate:g}")
    if options.rate_limit:
        faults.append(f"rate limit {options.rate_limit}/s")
    if options.read_after_write_delay_ms:
        faults.append(f"reads stale for {options.read_after_write_delay_ms} ms after a write")
    if options.secrets_on_read != "omit":
        faults.append(f"secrets on read: {options.secrets_on_read}")
    print(
        f"emulator listening on http://{shown}:{bound_port}{API_PREFIX} "
        f"(db {options.db or ':memory:'}, org {options.org}"
        f"{', ' + ', '.join(faults) if faults else ''})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        store.close()
    return 0
