"""The daemon's HTTP endpoints: the status page (/), /healthz, /readyz, /metrics, /status.

A small Starlette app served by uvicorn in a thread of its own. It only *reads* what the daemon
publishes through a `StatusSource`; it never starts a reconcile. Every body passes through the
redactor before it leaves, a second guard after the model's `(sensitive)` rendering.

The listening socket is bound by the caller's thread (`bind`, from `reconciler/serving.py`), so
"address already in use" is a clear `ListenError` at start-up rather than a failure inside the
server thread.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reconciler.daemon.dashboard import render_page
from reconciler.daemon.metrics import CONTENT_TYPE
from reconciler.serving import QuietServer, bind, parse_listen, serve_in_thread

__all__ = ["StatusServer", "StatusSource", "create_app"]

log = logging.getLogger(__name__)


class StatusSource(Protocol):
    def health(self) -> tuple[bool, dict[str, Any]]: ...
    def readiness(self) -> tuple[bool, dict[str, Any]]: ...
    def metrics_text(self) -> bytes: ...
    def status(self) -> dict[str, Any]: ...


def create_app(source: StatusSource, redact: Callable[[str], str] = lambda s: s) -> Starlette:
    def json_response(data: dict[str, Any], status: int = 200) -> Response:
        body = redact(json.dumps(data, indent=2, default=str, sort_keys=False)) + "\n"
        return Response(body, status_code=status, media_type="application/json")

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
        return json_response(source.status())

    async def dashboard(request: Request) -> Response:
        html, headers = render_page(source.status(), request.query_params.get("refresh"))
        return Response(redact(html), media_type="text/html", headers=headers)

    return Starlette(
        routes=[
            Route("/", dashboard),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/status", status),
        ]
    )


class StatusServer:
    """uvicorn serving `create_app(source)` on an already bound socket, in a daemon thread."""

    def __init__(
        self, source: StatusSource, listen: str, redact: Callable[[str], str] = lambda s: s
    ):
        self.source = source
        self.listen = listen
        self.redact = redact
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
            create_app(self.source, self.redact),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
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
