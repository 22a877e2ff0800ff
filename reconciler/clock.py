"""Time as a value the code is handed, not a module it reaches for.

Parts that wait (the client's retries and read-after-write window, the daemon's debounce, grace
and intervals) take a `Clock` and default to `SYSTEM`, the real one. Tests hand them a
`ManualClock`, whose `sleep` moves time on at once, so a 30 s backoff or a 10 min grace is
checked in microseconds and by what the code waited, never by how long a test took.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["SYSTEM", "Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: time.monotonic, time.time and time.sleep."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when told: `advance(s)`, or `sleep(s)`, which returns at once.

    Thread-safe. `slept` lists every sleep, in order, so a test reads the waits the code chose.
    """

    def __init__(self, start: float = 1_000.0, wall: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._wall_offset = wall - start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        with self._lock:
            return self._now + self._wall_offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
