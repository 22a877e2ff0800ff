"""The ids of the objects this reconciler manages, per instance, kept beside its state.

Ownership is read from a socket's tags (a policy's description marker), and anyone can write a
socket back without them: the portal, a script, `border0 socket update`. Without a memory of
its own, the reconciler would take its own socket for someone else's from then on. So it keeps
an inventory (Flux keeps one in its Kustomization status): every id it saw owned by its
instance. A declared object whose id is in the inventory but whose ownership marks are gone is
recognised as ours: the plan repairs the marks (shown as drift), it is not a conflict.

The file (`inventory.json` in the state folder, 0600, written atomically) holds ids only, no
names or values. No file: an empty inventory, as before it existed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reconciler.private_files import private_dirs

__all__ = ["INVENTORY_FILE", "Inventory"]

INVENTORY_FILE = "inventory.json"
log = logging.getLogger(__name__)


class Inventory:
    """Ids managed per instance; `path` None keeps them in memory only."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._ids: dict[str, set[str]] = {}
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._ids = {str(k): {str(i) for i in v} for k, v in
                             (data.get("instances") or {}).items() if isinstance(v, list)}
            except (OSError, ValueError, AttributeError) as exc:
                log.warning("ignoring an unreadable inventory %s: %s", self.path, exc)

    def ids(self, instance: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._ids.get(instance, ()))

    def record(self, instance: str, actual: Any, only: Iterable[str] | None = None) -> None:
        """After listing border0: the ids owned by `instance` now, plus the ids recorded before
        that still exist without any owner (their marks were lost and not yet repaired).
        `only` (the daemon's edit of a few sockets, read again into an earlier listing): the
        ids of those sockets owned now are added; the rest waits for the next full listing."""
        if only is not None:
            found = (actual.sockets.get(name) for name in only)
            owned = {s.socket_id for s in found
                     if s is not None and s.socket_id and s.ownership.owned_by(instance)}
        else:
            owned, unowned = _ids(actual, lambda own: own.owned_by(instance)), _ids(
                actual, lambda own: not own.managed)
        with self._lock:
            before = self._ids.get(instance, set())
            after = (before | owned) if only is not None else owned | (before & unowned)
            if after == before:
                return
            self._ids[instance] = after
            snapshot = {k: sorted(v) for k, v in self._ids.items()}
        self._save(snapshot)

    def _save(self, snapshot: dict[str, list[str]]) -> None:
        if self.path is None:
            return
        try:
            private_dirs(self.path.parent)
            fd, tmp = tempfile.mkstemp(prefix=".inventory-", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"instances": snapshot}, f)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write the inventory %s: %s", self.path, exc.strerror or exc)


def _ids(actual: Any, keep: Any) -> set[str]:
    objects: Iterable[tuple[str, Any]] = [
        *((s.socket_id, s.ownership) for s in actual.sockets.values()),
        *((p.policy_id, p.ownership) for p in actual.policies.values()),
    ]
    return {object_id for object_id, own in objects if object_id and keep(own)}
