"""The daemon's HTTP endpoints: the status page (/), /healthz, /readyz, /metrics, /status.

A small Starlette app served by uvicorn in a thread of its own. It only *reads* what the daemon
publishes through a `StatusSource`; the one route that starts a reconcile, `POST /reconcile`, is
passed in (`routes`) and lives in trigger.py with its authentication. Every body passes through the
redactor before it leaves, a second guard after the model's `(sensitive)` rendering.

The listening socket is bound by the caller's thread (`bind`, from `reconciler/serving.py`), so
"address already in use" is a clear `ListenError` at start-up rather than a failure inside the
server thread.

It may listen on 0.0.0.0 (the chart does), so a client cannot hold its connections: a request
must arrive in full within `READ_TIMEOUT` of the connection opening or of the previous response
(uvicorn has no such timeout: a silent or slow-header connection stayed open for ever), an idle
keep-alive connection is closed after `KEEP_ALIVE_TIMEOUT`, and with `MAX_CONNECTIONS` open
connections (its own included) a request is answered 503 at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import h11
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from reconciler.daemon.dashboard import page_query, render_page
from reconciler.daemon.metrics import CONTENT_TYPE
from reconciler.daemon.status import Page
from reconciler.serving import QuietServer, bind, parse_listen, serve_in_thread

__all__ = [
    "KEEP_ALIVE_TIMEOUT",
    "MAX_CONNECTIONS",
    "READ_TIMEOUT",
    "StatusServer",
    "StatusSource",
    "create_app",
]

log = logging.getLogger(__name__)

#: Seconds a request (head and body) may take to arrive: Go's ReadHeaderTimeout, nginx's
#: client_header_timeout. Probes and scrapes send theirs in one packet.
READ_TIMEOUT = 10.0
#: Seconds an idle keep-alive connection is kept (uvicorn's default, made explicit).
KEEP_ALIVE_TIMEOUT = 5.0
#: Open connections beyond which requests get 503 (probes, a scraper and a few `status` calls
#: need a handful).
MAX_CONNECTIONS = 64


class StatusSource(Protocol):
    """What the server reads (status.StatusView)."""

    def health(self) -> tuple[bool, dict[str, Any]]: ...
    def readiness(self) -> tuple[bool, dict[str, Any]]: ...
    def metrics_text(self) -> bytes: ...
    def status(self, page: Page | None = None) -> dict[str, Any]: ...


def create_app(
    source: StatusSource,
    redact: Callable[[str], str] = lambda s: s,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    bodies = _StatusBodies(redact)

    def json_response(data: dict[str, Any], status: int = 200) -> Response:
        return Response(bodies.body(data), status_code=status, media_type="application/json")

    async def healthz(request: Request) -> Response:
        ok, detail = source.health()
        return json_response({"status": "ok" if ok else "unhealthy", **detail}, 200 if ok else 503)

    async def readyz(request: Request) -> Response:
        ok, detail = source.readiness()
        return json_response(
            {"status": "ready" if ok else "not ready", **detail}, 200 if ok else 503
        )

    async def metrics(request: Request) -> Response:
        text = redact(source.metrics_text().decode("utf-8"))
        return Response(text, media_type=CONTENT_TYPE)

    async def status(request: Request) -> Response:
        query = request.query_params
        try:
            page = Page.parse(query.get("limit"), query.get("offset"), query.get("sort"),
                              query.get("filter"), query.get("state"))
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(source.status(page))

    async def dashboard(request: Request) -> Response:
        # the data is scrubbed, never the page: its own script and style (and their CSP
        # hashes) must reach the browser as they are; one page of rows, never all of them.
        # The script's refresh asks for this same page again (dashboard.js).
        query = dict(request.query_params)
        status = json.loads(redact(json.dumps(source.status(page_query(query)), default=str)))
        html, headers = render_page(status, query)
        return Response(html, media_type="text/html", headers=headers)

    return Starlette(
        routes=[
            Route("/", dashboard),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/status", status),
            *extra_routes,  # POST /reconcile when a trigger token is configured (trigger.py)
        ]
    )


def _dumps(data: Any) -> bytes:
    """JSON as `json.dumps(indent=2, default=str)` writes it (the same text for these
    documents), at orjson's speed: 3 ms instead of 125 for 10,000 socket rows."""
    return orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)


#: Stands in for a row list in the rest of a document while that is encoded.
_ROWS_MARK = "\x00status-rows:"
_ROW_LISTS = ("sockets", "policies")


class _StatusBodies:
    """Response bodies, scrubbed by `redact`. The row lists of /status (nearly all of its bytes:
    3.4 MB for 10,000 sockets) are encoded and scrubbed once per list object and spliced into
    the rest, encoded per request: `StatusView` hands out the same list objects until a
    reconcile publishes a new report or a connector's state changes (status.py). A bound
    `RedactFilter.redact` swaps its `secrets` tuple whole when the set changes, so a body
    scrubbed with an older set is never served; any other `redact` is taken to be constant."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self.redact = redact
        self._kept: dict[int, tuple[Any, Any, bytes]] = {}  # id(rows) -> (rows, set, bytes)
        self._lock = threading.Lock()

    def body(self, data: dict[str, Any]) -> bytes:
        spliced = {key: data[key] for key in _ROW_LISTS if isinstance(data.get(key), list)}
        if not spliced:
            return self.redact(_dumps(data).decode()).encode() + b"\n"
        rest = self.redact(_dumps({**data, **{k: _ROWS_MARK + k for k in spliced}}).decode())
        body = rest.encode()
        for key, rows in spliced.items():
            body = body.replace(orjson.dumps(_ROWS_MARK + key), self._rows(rows), 1)
        return body + b"\n"

    def _rows(self, rows: list[Any]) -> bytes:
        """`rows` encoded as the value of a top-level key (indented one level), scrubbed."""
        scrubbed_with = getattr(getattr(self.redact, "__self__", None), "secrets", None)
        with self._lock:
            kept = self._kept.get(id(rows))
        if kept is not None and kept[0] is rows and kept[1] is scrubbed_with:
            return kept[2]
        text = self.redact(_dumps(rows).decode())
        encoded = text.encode().replace(b"\n", b"\n  ")
        with self._lock:
            if len(self._kept) >= 16:
                self._kept.clear()
            self._kept[id(rows)] = (rows, scrubbed_with, encoded)
        return encoded


class _DeadlineH11(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request to arrive in full, armed when
    the connection opens and when a new request starts after a response; closed on expiry."""

    read_timeout = READ_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.call_later(self.read_timeout, self._expire)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):  # a request still arriving
            if self._deadline is None:
                self._deadline = self.loop.call_later(self.read_timeout, self._expire)
        elif self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def _expire(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()


class StatusServer:
    """uvicorn serving `create_app(source)` on an already bound socket, in a daemon thread."""

    def __init__(
        self,
        source: StatusSource,
        listen: str,
        redact: Callable[[str], str] = lambda s: s,
        routes: Sequence[BaseRoute] = (),
        *,
        read_timeout: float = READ_TIMEOUT,
        keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ):
        self.source = source
        self.routes = tuple(routes)
        self.listen = listen
        self.redact = redact
        self.read_timeout = read_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.max_connections = max_connections
        self._sock: socket.socket | None = None
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None

    def bind(self) -> tuple[str, int]:
        """Bind the listening socket now; ListenError (address in use, bad host) to the caller."""
        host, port = parse_listen(self.listen)
        sock = bind(host, port, backlog=64)
        self._sock = sock
        return sock.getsockname()[:2]

    @property
    def address(self) -> tuple[str, int] | None:
        return self._sock.getsockname()[:2] if self._sock else None

    def start(self) -> None:
        if self._sock is None:
            self.bind()
        config = uvicorn.Config(
            create_app(self.source, self.redact, self.routes),
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",  # no websockets: nor is their protocol imported
            timeout_graceful_shutdown=2,
            http=type("_Protocol", (_DeadlineH11,), {"read_timeout": self.read_timeout}),
            timeout_keep_alive=self.keep_alive_timeout,  # type: ignore[arg-type]
            limit_concurrency=self.max_connections,
        )
        # uvicorn wakes every 0.1 s to refresh its Date header and look for should_exit: about
        # 0.7 % of a core in an idle daemon on a small VM. Once a second is enough here.
        self._server = QuietServer(config, tick=1.0)
        self._thread = serve_in_thread(self._server, self._sock, "status-server")

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.request_exit()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
