"""What the daemon remembers so that half-written manifests never prune (see reconcile.py).

Between reconciles it keeps the snapshot of the manifests last read and when they last changed
(passed back into the next reconcile), when to run again (the manifests changed while being
read: after the debounce; deletes were deferred: when the grace period is over). Which sockets
the connectors follow meanwhile is in the report (`report.summarize`).
"""

from __future__ import annotations

import logging
from typing import Any

from reconciler.clock import SYSTEM, Clock

__all__ = ["Settling"]

log = logging.getLogger("reconciler.daemon")


class Settling:
    """The daemon loop's memory of the manifests' changes; used by the loop thread only."""

    def __init__(self, debounce: float, clock: Clock = SYSTEM) -> None:
        self.debounce = debounce
        self.clock = clock  # the debounce and the grace run on it (a ManualClock in tests)
        self.snapshot: Any = None  # the files' stamps as the last reconcile read them
        self.changed_at = 0.0  # when they last changed (epoch seconds)
        self._due: float | None = None  # monotonic time of the next run
        self._reason = ""

    def wait_for(self) -> float | None:
        """Seconds until a run is due, None when none is."""
        return None if self._due is None else self._due - self.clock.monotonic()

    def take_due(self) -> str | None:
        """The reason for a run that is due now (once), else None."""
        if self._due is None or self.clock.monotonic() < self._due:
            return None
        self._due = None
        return self._reason

    def after(self, result: Any) -> bool:
        """Remember what a reconcile read and schedule the next run it needs. True when the
        manifests changed while being read: nothing was decided, there is nothing to publish."""
        if result.unstable:
            log.info(
                "manifests changed while being read; reading them again",
                extra={"files": result.unstable[:5], "in_seconds": self.debounce},
            )
            self._schedule(self.debounce, "manifests changed while being read")
            return True
        if result.snapshot is not None:
            self.snapshot, self.changed_at = result.snapshot, result.changed_at
        if result.deferred_until is not None:
            delay = max(0.0, result.deferred_until - self.clock.time()) + 0.05
            self._schedule(delay, "deferred deletions")
        return False

    def _schedule(self, delay: float, reason: str) -> None:
        self._due, self._reason = self.clock.monotonic() + delay, reason
