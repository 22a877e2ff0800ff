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

The token file is read again when it changes (a rotated Kubernetes Secret). It must not be open
to others, as ssh requires of a private key: a file anyone may read is refused, and so is one the
daemon's own user owns that its group may read (a Kubernetes Secret volume with an `fsGroup` is
owned by root and group-readable, which is accepted, as ssh accepts a key it does not own). At
start a bad file is an error that says how to fix it; later, an emptied, unreadable or opened-up
file disables the trigger (401 to everyone, said once in the log) until it holds a good token
again: the old token is never kept.

A token bucket (`RateLimit`: a burst of `BURST`, then `RATE` per second) bounds what requests
cost: past it, 429 with Retry-After, before the body is read or any token compared. It is one
bucket for every sender: a flood delays webhooks, never the interval's reconciles.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reconciler.errors import UserError

__all__ = ["BURST", "MAX_BODY", "RATE", "RateLimit", "TriggerAuth", "trigger_route"]

log = logging.getLogger("reconciler.daemon")

#: GitHub caps webhook payloads at 25 MB but a push event is a few KiB; 1 MiB is plenty here.
MAX_BODY = 1024 * 1024
#: POST /reconcile: a burst of 30 (a CI pipeline's fan-out), then one every 2 s on average.
BURST = 30
RATE = 0.5


class RateLimit:
    """A token bucket: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float = RATE, burst: int = BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens, self._at = float(burst), clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 when a request may go ahead (it is counted); else the seconds until one may."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


def too_open(path: Path, st: os.stat_result) -> str | None:
    """Why a token file is open to others (the fix included), or None: as ssh's check of a
    private key, a file of the daemon's own user may be read by nobody else; any file may not be
    read by everyone."""
    mode = stat.S_IMODE(st.st_mode)
    mine = st.st_uid == os.getuid()
    if mode & 0o004 or (mine and mode & 0o077):
        fix = f"chmod 600 {path}" if mine else f"make it unreadable to others (chmod o-rwx {path})"
        return f"permissions {mode:04o} are too open: others can read the token; {fix}"
    return None


class TriggerAuth:
    """The shared secret from a file, and the three ways a request may prove it knows it."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, ...] | None = None
        self._token = b""
        self._problem: str | None = None
        self._started = False  # the start's problem is an error, not a log line
        problem = self._reload()
        if problem is not None:
            raise UserError(f"--trigger-token-file {path}: {problem}")
        self._started = True

    @property
    def token(self) -> str:
        return self._token.decode()

    def _read(self) -> tuple[tuple[int, ...] | None, bytes, str | None]:
        """(stamp, token, problem) of the file as it is now."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            return None, b"", f"cannot read it ({exc.strerror or exc})"
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid)
        if stamp == self._stamp:
            return stamp, self._token, self._problem
        problem = too_open(self.path, st)
        if problem is not None:
            return stamp, b"", problem
        try:
            token = self.path.read_bytes().strip()
        except OSError as exc:
            return None, b"", f"cannot read it ({exc.strerror or exc})"
        return stamp, token, None if token else "the file is empty"

    def _reload(self) -> str | None:
        """Read the file again if it changed; what is wrong with it now, or None."""
        stamp, token, problem = self._read()
        if problem != self._problem:
            if problem is not None and self._started:
                log.warning("--trigger-token-file %s: %s; POST /reconcile is disabled (401) "
                            "until the file holds a token again", self.path, problem)
            elif problem is None and self._problem is not None:
                log.info("--trigger-token-file %s holds a token again: POST /reconcile is "
                         "enabled", self.path)
        self._stamp, self._token, self._problem = stamp, token, problem
        return problem

    def check(self, headers: dict[str, str], body: bytes) -> str | None:
        """The scheme that authenticated the request ("bearer", "github", "gitlab") or None."""
        if self._reload() is not None:
            return None
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
    rate: RateLimit | None = None,
) -> Route:
    """The `POST /reconcile` route: 202 and one trigger when authenticated, 401 otherwise,
    429 past the rate limit; 503 from a follower (`accepting` false), which would drop it, so the sender sees it failed."""

    bucket = rate or RateLimit()

    async def reconcile(request: Request) -> Response:
        wait = bucket.take()
        if wait:
            return JSONResponse({"error": "too many requests"}, status_code=429,
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
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
