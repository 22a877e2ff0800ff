"""One lock plus one SQLite transaction: the store's unit of work, rolled back on any error."""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["Transaction"]


class Transaction:
    """The store's lock plus one SQLite transaction, rolled back on any error."""

    def __init__(self, lock: threading.Lock, db: sqlite3.Connection) -> None:
        self._lock, self._db = lock, db

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()
