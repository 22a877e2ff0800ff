"""Parsed manifest files by file identity, for the daemon: it reads the whole tree again on
every change, and an edit should cost the parse of the files it touched, not of all of them.

The identity is (device, inode, size, mtime, ctime) from `stat`: an editor's write-and-rename
makes a new inode, an in-place write a new mtime and ctime. The stat is taken before the read,
so a file that changes meanwhile is stored under its old identity and parsed again next time.
A file modified within the last `RACY_S` seconds is not stored at all: a second write in the
same timestamp tick could keep size and mtime (git's "racily clean" problem). What is kept is
the loader's (`loader.ParsedFile`): the parsed YAML and, once a load found every document of the
file valid, those documents as checked, so an unchanged file is neither parsed nor validated
again. A socket that names a secret has it read again from its source on every load; its
spec is kept only while every secret reads as it did (`loader._Loader.resolved_again`).
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["ParseCache"]

#: Files changed more recently than this are parsed every time until they are older.
RACY_S = 2.0

_Key = tuple[int, int, int, int, int]


def _identity(path: Path) -> _Key | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ParseCache:
    """path -> (identity, parsed); `get` before reading a file, `put` after parsing it."""

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[_Key, Any]] = {}
        self._seen: dict[Path, _Key | None] = {}  # identity taken by the last `get`
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, path: Path) -> Any | None:
        key = _identity(path)
        with self._lock:
            self._seen[path] = key
            entry = self._entries.get(path)
            if key is not None and entry is not None and entry[0] == key:
                self.hits += 1
                return entry[1]
            self.misses += 1
            return None

    def put(self, path: Path, parsed: Any) -> None:
        with self._lock:
            key = self._seen.pop(path, None)
            if key is None or time.time_ns() - key[3] < RACY_S * 1e9:
                self._entries.pop(path, None)
                return
            self._entries[path] = (key, parsed)

    def retain(self, paths: Iterable[Path]) -> None:
        """Forget every file not in `paths` (deleted, renamed, moved out of the tree)."""
        keep = set(paths)
        with self._lock:
            for path in [p for p in self._entries if p not in keep]:
                del self._entries[path]

    def loaded(self) -> None:
        """The load is over: the daemon keeps every file for its next load, nothing to do."""
