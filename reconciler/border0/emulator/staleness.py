"""Reads as a lagging replica answers them: `--read-after-write-delay MS` made real.

border0 replicates across regions and says so: GET /serverinfo answers
`data_consistency.rx_after_tx_delay_ms` (border0-go client/server_info.go), the TF provider
waits that long after every write (terraform-provider-border0 border0/provider.go,
ReadAfterWriteDelay) and the SDK retries a 404 three times (client/api_client.go). So for
`delay` seconds after a write, a read here sees the object as it was before the write: a
created object is 404, an updated one is the old version, a deleted one is still there. Writes
themselves always see the current state (they go to the primary).

Not modelled: attachments (a socket's `policies`, a policy's `socket_ids`) are always current.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from reconciler.border0.emulator.rules import Missing
from reconciler.clock import SYSTEM, Clock

__all__ = ["StaleReads"]

_ID = {"socket": "socket_id", "policy": "id"}


class StaleReads:
    def __init__(self, delay_ms: float, clock: Clock = SYSTEM) -> None:
        self.delay = max(0.0, delay_ms) / 1000.0
        self._clock = clock
        self._writes: deque[tuple[float, str, str, dict[str, Any] | None]] = deque()
        self._lock = threading.Lock()

    def record(self, kind: str, object_id: str, before: dict[str, Any] | None) -> None:
        """The store's write hook: `before` is the object before the write (None: created)."""
        if self.delay:
            with self._lock:
                self._writes.append((self._clock.monotonic(), kind, object_id, before))

    def _pending(self, kind: str) -> dict[str, dict[str, Any] | None]:
        """id -> the object as the replica has it, for objects written within the delay."""
        if not self.delay:
            return {}
        horizon = self._clock.monotonic() - self.delay
        out: dict[str, dict[str, Any] | None] = {}
        with self._lock:
            while self._writes and self._writes[0][0] <= horizon:
                self._writes.popleft()
            for _, k, object_id, before in self._writes:
                if k == kind:
                    out.setdefault(object_id, before)  # the earliest unreplicated write wins
        return out

    def one(self, kind: str, key: str, current: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The object `key` (id or name) as the replica answers it."""
        pending = self._pending(kind)
        if not pending:
            return current()
        for object_id, before in pending.items():
            if object_id == key or (before is not None and before.get("name") == key):
                if before is None:
                    raise Missing(f"{kind} {key} not found")
                return before
        found = current()
        if pending.get(found[_ID[kind]], found) is None:
            raise Missing(f"{kind} {key} not found")
        return found

    def many(self, kind: str, items: list[dict[str, Any]], *, last_page: bool = True,
             keep: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[dict[str, Any]]:
        """A listing as the replica answers it; objects deleted within the delay come back on
        the last page (if `keep` says they match the listing's filters)."""
        pending = self._pending(kind)
        if not pending:
            return items
        key = _ID[kind]
        out, seen = [], set()
        for item in items:
            seen.add(item[key])
            before = pending.get(item[key], item)
            if before is not None:
                out.append(before)
        if last_page:
            out += [b for i, b in pending.items() if i not in seen and b is not None and keep(b)]
        return out
