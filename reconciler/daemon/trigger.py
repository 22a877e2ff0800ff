"""`POST /reconcile`: ask the daemon for a reconcile now, authenticated.

The endpoint exists only when the daemon was given `--trigger-token-file`. A request is accepted
with any one of:

- ``Authorization: Bearer <token>``,
- ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed with the token>`` (GitHub),
- ``X-Gitlab-Token: <token>`` (GitLab sends the secret itself).

Every comparison is constant-time (`hmac.compare_digest`). Anything else is 401 and changes
nothing. Two query parameters make it a manual trigger that says what it wants:
`?override=sync-window` reconciles and applies outside the sync windows, where a window allows
manual syncs (windows.py); `?confirm-delete=NAME` (repeatable) confirms the deletion of an
object annotated `border0-reconciler/confirm-delete` for that reconcile. The body is read up to `MAX_BODY` bytes (413 past it) before any signature is checked, so
a large upload costs bounded memory. An accepted request only *triggers*: the daemon coalesces it
with a reconcile in flight, so a burst of webhooks causes at most one more run.

The token file is read again when it changes (a rotated Kubernetes Secret), keeping the last good
value if it becomes unreadable or empty.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reconciler.errors import UserError

__all__ = ["MAX_BODY", "TriggerAuth", "trigger_route"]

log = logging.getLogger("reconciler.daemon")

#: GitHub caps webhook payloads at 25 MB but a push event is a few KiB; 1 MiB is plenty here.
MAX_BODY = 1024 * 1024


class TriggerAuth:
    """The shared secret from a file, and the three ways a request may prove it knows it."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._token = b""
        if not self._reload():
            raise UserError(f"--trigger-token-file {path}: the file is missing or empty")

    @property
    def token(self) -> str:
        return self._token.decode()

    def _reload(self) -> bool:
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return True
            token = self.path.read_bytes().strip()
        except OSError:
            return bool(self._token)
        if token:
            self._stamp, self._token = stamp, token
        return bool(self._token)

    def check(self, headers: dict[str, str], body: bytes) -> str | None:
        """The scheme that authenticated the request ("bearer", "github", "gitlab") or None."""
        self._reload()
        token = self._token
        if not token:
            return None
        auth = headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token):
            return "bearer"
        signature = headers.get("x-hub-signature-256", "")
        if signature.startswith("sha256="):
            expected = "sha256=" + hmac.new(token, body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(signature.encode(), expected.encode()):
                return "github"
        gitlab = headers.get("x-gitlab-token")
        if gitlab is not None and hmac.compare_digest(gitlab.encode(), token):
            return "gitlab"
        return None


async def _read_bounded(request: Request, limit: int) -> bytes | None:
    """The raw body, or None once it is longer than `limit` (the rest is not read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def trigger_route(
    auth: TriggerAuth,
    trigger: Callable[[str], None],
    limit: int = MAX_BODY,
    accepting: Callable[[], bool] = lambda: True,
) -> Route:
    """The `POST /reconcile` route: 202 and one trigger when authenticated, 401 otherwise;
    503 from a follower (`accepting` false), which would drop it, so the sender sees it failed."""

    async def reconcile(request: Request) -> Response:
        body = await _read_bounded(request, limit)
        if body is None:
            return JSONResponse({"error": f"body larger than {limit} bytes"}, status_code=413)
        scheme = auth.check({k.lower(): v for k, v in request.headers.items()}, body)
        if scheme is None:
            log.warning("POST /reconcile refused: no valid token or signature")
            return JSONResponse(
                {"error": "unauthorized"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="border0-reconciler"'},
            )
        if not accepting():
            return JSONResponse({"error": "not the leader: this replica reconciles nothing"},
                                status_code=503)
        event = request.headers.get("x-github-event") or request.headers.get("x-gitlab-event")
        event = re.sub(r"[^\w .-]", "", event or "")[:40]  # the sender's words, kept short
        asks: dict[str, object] = {}
        override = request.query_params.get("override")
        if override is not None:
            if override != "sync-window":
                return JSONResponse({"error": "override takes one value: sync-window"},
                                    status_code=400)
            asks["override"] = True
        confirmed = [n[:63] for n in request.query_params.getlist("confirm-delete") if n][:100]
        if confirmed:
            asks["confirm_delete"] = tuple(confirmed)
        words = ", ".join(
            (["overriding the sync windows"] if "override" in asks else [])
            + ([f"confirming deletion of {', '.join(confirmed)}"] if confirmed else []))
        trigger(f"POST /reconcile ({scheme}{': ' + event if event else ''})"
                + (f" {words}" if words else ""), **asks)
        return JSONResponse({"accepted": True, **asks}, status_code=202)

    return Route("/reconcile", reconcile, methods=["POST"])
