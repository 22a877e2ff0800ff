"""Sleep until something happens instead of polling: every wake-up of an idle Python thread
costs about 1 ms of CPU on a small VM, and an idle daemon should cost next to nothing.

`Wakeup` is a `threading.Event`-like flag (set / clear / wait) kept in a pipe, so one `poll()`
waits for it together with other events:
- `wake_on_signals()` makes it Python's signal wake-up fd: a signal wakes the waiting thread at
  once (the interpreter's C handler writes a byte; no lock is taken in a signal handler);
- `wait(timeout, pids=...)` also returns when one of those child processes exits: a pidfd per
  child (Linux 5.3+). Where pidfds are missing (`PIDFD` is False) the caller's timeout is the
  only bound, so callers keep polling there.
"""

from __future__ import annotations

import os
import select
import signal
import weakref
from collections.abc import Iterable

__all__ = ["PIDFD", "Wakeup"]

PIDFD = hasattr(os, "pidfd_open") and hasattr(select, "poll")


def _close(fds: list[int], pidfds: dict[int, int]) -> None:
    for fd in [*fds, *pidfds.values()]:
        try:
            os.close(fd)
        except OSError:
            pass
    pidfds.clear()


class Wakeup:
    """A flag any thread (or a signal) can set; one thread waits for it, and for child exits."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._pidfds: dict[int, int] = {}  # used by the waiting thread only
        self._finalizer = weakref.finalize(self, _close, [self._r, self._w], self._pidfds)

    def set(self) -> None:
        try:
            os.write(self._w, b"\0")
        except BlockingIOError:  # the pipe is full: it is set already
            pass

    def clear(self) -> None:
        try:
            while os.read(self._r, 4096):
                pass
        except BlockingIOError:
            pass

    def is_set(self) -> bool:
        return bool(select.select([self._r], [], [], 0)[0])

    def wake_on_signals(self) -> None:
        """Signals wake `wait` (main thread only, as `signal.set_wakeup_fd`)."""
        signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)

    def wait(self, timeout: float | None = None, pids: Iterable[int] = ()) -> bool:
        """Until set, one of `pids` has exited, or `timeout` seconds; True unless timed out."""
        poller = select.poll()
        poller.register(self._r, select.POLLIN)
        for fd in self._track(pids):
            poller.register(fd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))

    def _track(self, pids: Iterable[int]) -> list[int]:
        """pidfds of exactly `pids`; an fd for a process that is gone is closed."""
        wanted = set(pids) if PIDFD else set()
        for pid in [p for p in self._pidfds if p not in wanted]:
            os.close(self._pidfds.pop(pid))
        for pid in wanted - self._pidfds.keys():
            try:
                self._pidfds[pid] = os.pidfd_open(pid)
            except OSError:  # already reaped: the caller's own check sees it
                pass
        return list(self._pidfds.values())
