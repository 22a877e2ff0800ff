"""The daemon's signal handlers: SIGTERM/SIGINT stop, SIGHUP reconciles now.

The handlers only assign flags, which the loop reads (`take`) as soon as the signal wake-up fd
wakes it: taking a lock in a handler (even Event.set) could deadlock against the very code the
signal interrupted.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from reconciler.connectors.wakeup import Wakeup

__all__ = ["SignalFlags"]


class SignalFlags:
    def __init__(self) -> None:
        self._stop = False  # set by signal handlers only (plain assignments)
        self._hup = False

    def install(self, wake: Wakeup) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        wake.wake_on_signals()

    def take(self) -> tuple[bool, bool]:
        """(a stop was signalled, a SIGHUP arrived since the last call)."""
        hup, self._hup = self._hup, False
        return self._stop, hup

    def _on_stop(self, signum: int, frame: Any) -> None:
        """First signal: stop gracefully. A second one while stopping: exit at once (the last
        stage of a staged shutdown; connectors die with us through PDEATHSIG)."""
        if self._stop:
            os._exit(128 + signum)
        self._stop = True

    def _on_hup(self, signum: int, frame: Any) -> None:
        self._hup = True
