"""Fault injection: an ASGI middleware that makes the emulator slow, flaky and rate limited.

- latency: a round trip of `latency_ms`. The request runs when it arrives; its answer leaves
  `latency_ms` after the arrival, on time on average (`Waker`; asyncio, so concurrent requests
  overlap as they would over a real network), or when the request is done if that is later.
  The twin's own work is inside the round trip, as border0's is inside a real one: border0
  serves concurrent requests side by side, where this one process serves them one at a time
  (one GIL). Slept before the work, as it was, each request also waited for the twin's queue
  of the others that woke with it: 10 parallel creates took 55-57 ms a round at 50 ms, the
  extra growing with the parallelism, which made a parallel client look slower than it is
  (docs/performance.md, "Apply at the request floor").
- rate limit: a token bucket of `rate_limit` requests a second (burst `rate_limit`); beyond it
  429 `{"status_code":429,...}` with `Retry-After: 1`. Checked before the request runs.
- fail rate: a share `fail_rate` of requests fail, in one of four ways, equally likely:
    "500"        answer 500 without running the request;
    "drop"       close the connection without an answer, without running the request;
    "500-after"  run the request (a write is applied), then answer 500;
    "drop-after" run the request, then close the connection without an answer.
  The "-after" kinds are what real networks do to clients: the write happened but the client
  cannot tell, so a retried create meets "already exists" and a retried delete meets 404.
  `fail_methods` limits the fail rate to some methods (say only POST, to test a write's retries
  while its lookups succeed); None (the default) means every method.
- held: while `held` is true, requests wait before they run (border0 slow to answer for as long
  as a test chooses: a request stays in flight until the test lets it go). Off by default.
The OpenAPI document and the docs page are exempt from every fault; `/serverinfo` is not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.clock import SYSTEM, Clock

__all__ = ["ARRIVED", "EXEMPT_SUFFIXES", "FAIL_KINDS", "FaultInjector", "Waker"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAIL_KINDS = ("500", "drop", "500-after", "drop-after")
#: The scope key of when a request arrived (the event loop's clock): the round trip starts
#: there. Set by the server when the request's first bytes arrive (embedded.py), else by the
#: layer in front (guard.py) before it reads and checks the body.
ARRIVED = "border0_emulator.arrived"
EXEMPT_SUFFIXES = ("/openapi.json", "/docs", "/docs/oauth2-redirect")
log = logging.getLogger("reconciler.border0.emulator")


class _QuietDrops(logging.Filter):
    """Hide uvicorn's complaint about the responses we leave unfinished on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class FaultInjector:
    """ASGI middleware; every fault off by default."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        latency_ms: float = 0,
        fail_rate: float = 0.0,
        rate_limit: int = 0,
        seed: int | None = None,
        fail_methods: Collection[str] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        self.app = app
        self.latency = max(0.0, latency_ms) / 1000.0
        self.fail_rate = fail_rate
        self.fail_methods = None if fail_methods is None else frozenset(fail_methods)
        self.rate_limit = max(0, int(rate_limit))
        self.random = random.Random(seed)
        self._tokens = float(self.rate_limit)
        self._clock = clock
        self._refilled = clock.monotonic()
        self._forced: list[tuple[str, str | None]] = []  # (kind, method or None: any)
        self.injected: dict[str, int] = {kind: 0 for kind in (*FAIL_KINDS, "429")}
        self.held = False
        #: Requests inside their round trip now, and the most at once (the event loop's
        #: thread only): latency delays each answer, it does not queue them.
        self.delayed = self.delayed_peak = 0
        self._waker = Waker()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].endswith(EXEMPT_SUFFIXES):
            await self.app(scope, receive, send)
            return
        if not self.latency:
            await self._faulty(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        answer_at = scope.get(ARRIVED, loop.time()) + self.latency
        waiting = True
        self.delayed += 1
        self.delayed_peak = max(self.delayed_peak, self.delayed)

        async def send_late(message: Message) -> None:
            nonlocal waiting
            if waiting:  # the answer's first message waits out the rest of the round trip
                await self._waker.until(loop, answer_at)
                waiting = False
                self.delayed -= 1
            await send(message)

        try:
            await self._faulty(scope, receive, send_late)
        finally:
            if waiting:  # nothing was answered (the client went away)
                self.delayed -= 1

    async def _faulty(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request with the faults other than latency: held, rate limited, failed."""
        while self.held:
            await asyncio.sleep(0.01)
        if self.rate_limit and not self._take_token():
            self.injected["429"] += 1
            await _error(send, 429, "rate limit exceeded", [(b"retry-after", b"1")])
            return
        kind = self._fail_kind(scope["method"])
        if kind is None:
            await self.app(scope, receive, send)
            return
        self.injected[kind] += 1
        log.debug("injecting fault %s into %s %s", kind, scope["method"], scope["path"])
        if kind.endswith("-after"):
            await self.app(scope, receive, _discard)
        if kind.startswith("500"):
            await _error(send, 500, f"injected fault ({kind})")
        else:
            await _drop(send)

    def _take_token(self) -> bool:
        now = self._clock.monotonic()
        elapsed, self._refilled = now - self._refilled, now
        self._tokens = min(float(self.rate_limit), self._tokens + elapsed * self.rate_limit)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def fail_next(self, count: int = 1, kind: str = "500", method: str | None = None) -> None:
        """Make the next `count` requests (of `method`, when given) fail with `kind` (for tests
        of one exact case: `method="POST"` fails a create, not the reads an apply makes first)."""
        if kind not in FAIL_KINDS:
            raise ValueError(f"kind must be one of {FAIL_KINDS}")
        self._forced.extend([(kind, method)] * count)

    def _fail_kind(self, method: str) -> str | None:
        for index, (kind, only) in enumerate(self._forced):
            if only is None or only == method:
                del self._forced[index]
                return kind
        if self.fail_methods is not None and method not in self.fail_methods:
            return None
        if not self.fail_rate or self.random.random() >= self.fail_rate:
            return None
        return self.random.choice(FAIL_KINDS)


#: asyncio's timers wake up to a millisecond late (epoll waits in whole milliseconds, rounded
#: up): 0.5-1 ms more a round trip, 1-2 % of a 50 ms one. The last `_FINE` of a wait is slept
#: in a thread instead, which wakes within a tenth of a millisecond.
_FINE = 0.002
_fine_sleeper = ThreadPoolExecutor(max_workers=32, thread_name_prefix="emulator-latency")
#: The most a wait is cut short by what `Waker` learnt: the event loop's resumption after the
#: thread's sleep costs 0.2-0.5 ms here, and a busy loop's longer still.
_MOST_AIMED_EARLY = 0.001


class Waker:
    """Waits until a moment of the event loop's clock, on time on average.

    After the thread's sleep the loop still has to resume the waiting task (the thread's
    wake-up, the loop's self-pipe, other requests' work queued on it): measured here, 0.35 ms
    late one request at a time and 0.45 ms on average ten at a time, 1 % of a 50 ms round trip
    the twin promised. Each wait measures how late it resumed and the next aims that much
    earlier (by a tenth of it: a running mean, bounded by `_MOST_AIMED_EARLY`), so the answers
    leave on time on average, the earliest a few tenths of a millisecond early."""

    def __init__(self) -> None:
        self.aim_early = 0.0  # seconds: what resuming costs, as learnt so far

    async def until(self, loop: asyncio.AbstractEventLoop, moment: float) -> None:
        left = moment - loop.time()
        if left > _FINE:
            await asyncio.sleep(left - _FINE)
            left = moment - loop.time()
        if left <= 0:
            return
        await loop.run_in_executor(_fine_sleeper, time.sleep, max(0.0, left - self.aim_early))
        late = loop.time() - moment
        self.aim_early = min(_MOST_AIMED_EARLY, max(0.0, self.aim_early + late / 10))


async def _discard(message: Message) -> None:
    return None


async def _error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()  # type: ignore[assignment]
) -> None:
    body = json.dumps({"status_code": status, "error_message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _drop(send: Send) -> None:
    """Start an answer and never finish it: uvicorn then closes the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        }
    )
