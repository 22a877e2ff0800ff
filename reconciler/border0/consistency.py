"""Reads that see our own writes, although border0 answers reads from lagging replicas.

border0 replicates across regions and says how far reads may lag writes: `GET /serverinfo`
answers `data_consistency.rx_after_tx_delay_ms` (border0-go client/server_info.go; the
Terraform provider waits that long after each write, border0/provider.go). Within that window a
read answers the state before the write: a created object is 404, an updated one is old.

`WriteClock` remembers when the client last wrote each object (by id and by name) and anything
at all (a write whose every answer was lost too: it may have been applied); before a read it
waits out the rest of the window of the writes that read would see: writes to the same object,
or any write for a listing. A 404 soon after a write is asked again
(`may_lag`), as the SDK retries 404s (client/api_client.go).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from reconciler.clock import SYSTEM, Clock

__all__ = ["WriteClock", "object_key"]


def object_key(path: str) -> str | None:
    """`socket/ID` or `policy/ID` for a path about one object; None for lists and the rest."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] in ("socket", "policy"):
        return f"{parts[0]}/{parts[1]}"
    return None


class WriteClock:
    """Thread-safe; `delay` is asked lazily (it costs a request the first time)."""

    def __init__(self, delay: Callable[[], float], clock: Clock = SYSTEM) -> None:
        self._delay = delay
        self._clock = clock
        self._lock = threading.Lock()
        self.last_write = 0.0
        self._written: dict[str, float] = {}

    def wrote(self, path: str, body: Any) -> None:
        now = self._clock.monotonic()
        keys = {object_key(path)}
        if isinstance(body, Mapping) and body.get("name"):  # the object is read by name too
            kind = "policy" if path.strip("/").startswith("polic") else "socket"
            keys.add(f"{kind}/{quote(str(body['name']), safe='')}")
        with self._lock:
            self.last_write = now
            for key in keys - {None}:
                self._written[str(key)] = now

    def wait_before_read(self, path: str, deadline_at: float) -> None:
        """Sleep out the rest of the window of the writes a read of `path` would see."""
        with self._lock:
            if not self.last_write:
                return
            key = object_key(path)
            last = self.last_write if key is None else self._written.get(key, 0.0)
        if not last:
            return
        left = last + self._delay() - self._clock.monotonic()
        if left > 0:
            self._clock.sleep(max(0.0, min(left, deadline_at - self._clock.monotonic())))

    def wait_out(self) -> None:
        """Sleep out the rest of the last write's window (a client closing after writing)."""
        if not self.last_write:
            return
        left = self.last_write + self._delay() - self._clock.monotonic()
        if left > 0:
            self._clock.sleep(left)

    def within_window(self) -> bool:
        """True while the last write may not have reached every replica yet."""
        if not self.last_write:
            return False
        return self._clock.monotonic() - self.last_write < self._delay()

    def may_lag(self, deadline_at: float) -> bool:
        """After a recent write a 404 may be replication lag: wait a little, True to ask again."""
        if not self.last_write:
            return False
        window = self._delay()
        left = self.last_write + window - self._clock.monotonic()
        if window <= 0 or left <= 0 or self._clock.monotonic() + min(left, 0.2) > deadline_at:
            return False
        self._clock.sleep(min(left, 0.2))
        return True
