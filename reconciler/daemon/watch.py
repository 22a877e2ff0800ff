"""Watch the manifests and call back once per burst of changes (debounced, coalesced).

Three kinds of change reach the reconciler as file events:
- an edit in place, or an editor's save by write-then-rename: events inside the watched tree;
- git-sync's atomic symlink swap: PATH (or one of its parents) is a symlink re-pointed to a new
  worktree. Nothing changes inside the old tree, so the directory that *contains* each symlink
  on the way to PATH is watched too, and `os.path.realpath(PATH)` is compared whenever something
  happens there (and on every `check()`, which the daemon calls at each interval);
- the tree appearing, disappearing or being replaced by another folder of the same name
  (`mv m m.old && mkdir m`, `rmdir m && mkdir m`): the folder that holds PATH is watched too, and
  a re-check compares the identity (device, inode) of what PATH resolves to, not only its name,
  so the recursive watch moves to the new folder instead of staying on the old one.

The daemon's own files are no change: anything in a `.border0-reconciler` folder (the state,
SQLite's WAL and journal, the connectors' record, their temp files) and the files named in
`ignore` (a `--state` elsewhere in the tree) trigger nothing and never show as the reason.

The event handlers only record what happened; one debounce thread waits for `debounce` seconds
of quiet (at most `max_delay` in all), re-points the recursive watch at the new real path if it
moved, and calls `on_change(reason)` once.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from reconciler.clock import SYSTEM, Clock
from reconciler.settings import DEFAULTS

__all__ = ["ManifestWatcher", "symlink_anchors"]

log = logging.getLogger(__name__)

#: Event types that do not change content: reading manifests must not trigger a reconcile.
#: The longest the debounce thread waits before it reads its clock again.
CLOCK_POLL = 0.25

_IGNORED_EVENTS = frozenset({"opened", "closed_no_write", "attrib"})


def symlink_anchors(path: str | os.PathLike[str]) -> list[Path]:
    """The directories that contain a symlink on the way to `path` (the path itself included)."""
    anchors: list[Path] = []
    current = Path(os.path.abspath(path))
    for candidate in [current, *current.parents]:
        if candidate.is_symlink() and candidate.parent not in anchors:
            anchors.append(candidate.parent)
    return anchors


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the folder `path`, None when it is not one: a folder replaced by
    another of the same name has another identity."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


def _in_git_dir(path: str) -> bool:
    return ".git" in Path(path).parts


#: The folder of the daemon's own files (border0/session.py's STATE_DIR; daemon/ may not
#: import border0/, so the name is repeated here and a test checks they agree).
OWN_DIR = ".border0-reconciler"


def _real(path: str) -> str:
    """`path` with its folder's links resolved (the file itself may not exist yet)."""
    return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))),
                        os.path.basename(path))


class _Handler(FileSystemEventHandler):
    def __init__(self, record: Callable[[FileSystemEvent], None]) -> None:
        self._record = record

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENTS:
            return
        self._record(event)


class ManifestWatcher:
    """Calls `on_change(reason)` after each debounced burst of manifest changes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_change: Callable[[str], None],
        *,
        debounce: float = DEFAULTS.debounce,
        max_delay: float | None = None,
        observer_factory: Callable[[], Any] = Observer,
        ignore: Iterable[str | os.PathLike[str]] = (),
        clock: Clock = SYSTEM,
    ) -> None:
        self.clock = clock  # the debounce and max_delay run on it (a ManualClock in tests)
        self.path = Path(os.path.abspath(path))
        self._ignore = frozenset(
            form for p in ignore for form in (os.path.abspath(p), _real(os.fspath(p)))
        )
        self.on_change = on_change
        self.debounce = debounce
        self.max_delay = max_delay if max_delay is not None else max(10 * debounce, 2.0)
        self._observer_factory = observer_factory
        self._observer: Any = None
        self._cond = threading.Condition()
        self._stopped = False
        self._first_event: float | None = None
        self._last_event = 0.0
        self._check_root = False
        self._tree_dirty = False
        self._tree_reason = ""
        self._real = os.path.realpath(self.path)
        self._real_id = _identity(self._real)
        self._tree_watch: Any = None
        self._anchor_watches: dict[Path, Any] = {}
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> bool:
        """True while a change waits for its quiet period (the debounce)."""
        with self._cond:
            return self._first_event is not None

    @property
    def real_path(self) -> str:
        """Where PATH pointed at the last check."""
        return self._real

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._observer = self._observer_factory()
        self._observer.daemon = True
        self._watch_tree()
        self._watch_anchors()
        self._observer.start()
        self._thread = threading.Thread(
            target=self._debounce_loop, name="watch-debounce", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def is_alive(self) -> bool:
        return bool(
            self._observer is not None
            and self._observer.is_alive()
            and self._thread is not None
            and self._thread.is_alive()
        )

    def check(self) -> None:
        """Look again where PATH points (git-sync swaps), as if an event had arrived."""
        with self._cond:
            self._check_root = True
            self._note_event()

    # --- event recording (watchdog's thread) ---------------------------------------------------

    def _note_event(self) -> None:
        now = self.clock.monotonic()
        if self._first_event is None:
            self._first_event = now
        self._last_event = now
        self._cond.notify_all()

    def _on_tree_event(self, event: FileSystemEvent) -> None:
        if event.is_directory and event.event_type == "modified":
            return  # a folder's entries changed: the entry's own event says which, and whose
        paths = [os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")]
        paths = [p for p in paths if p]
        if all(_in_git_dir(p) or self._own(p) for p in paths):
            return
        if self._is_file_root() and not {self._real, str(self.path)} & set(paths):
            return
        with self._cond:
            if not self._tree_dirty:
                self._tree_reason = f"{event.event_type} {paths[-1]}"
            self._tree_dirty = True
            self._note_event()

    def _own(self, path: str) -> bool:
        """One of the daemon's own files: in a `.border0-reconciler` folder, or named in
        `ignore` (a temp file of one too)."""
        if OWN_DIR in Path(path).parts:
            return True
        base = path.removesuffix(".tmp")
        return path in self._ignore or base in self._ignore

    def _on_anchor_event(self, event: FileSystemEvent) -> None:
        with self._cond:
            self._check_root = True
            self._note_event()

    # --- watches -------------------------------------------------------------------------------

    def _is_file_root(self) -> bool:
        return os.path.isfile(self._real)

    def _watch_tree(self) -> None:
        if self._tree_watch is not None:
            try:
                self._observer.unschedule(self._tree_watch)
            except (KeyError, OSError, ValueError):
                pass
            self._tree_watch = None
        real = self._real
        target, recursive = (real, True) if os.path.isdir(real) else (os.path.dirname(real), False)
        if not os.path.exists(real):
            log.warning(
                "manifest path does not exist; watching for it", extra={"path": str(self.path)}
            )
            return
        try:
            self._tree_watch = self._observer.schedule(
                _Handler(self._on_tree_event), target, recursive=recursive
            )
        except OSError as exc:
            log.warning("cannot watch manifests", extra={"path": target, "error": str(exc)})

    def _watch_anchors(self) -> None:
        anchors = symlink_anchors(self.path)
        if self.path.parent != self.path and self.path.parent not in anchors:
            anchors.append(self.path.parent)  # PATH itself removed, replaced or created
        for anchor in anchors:
            if anchor in self._anchor_watches or not anchor.is_dir():
                continue
            try:
                self._anchor_watches[anchor] = self._observer.schedule(
                    _Handler(self._on_anchor_event), str(anchor), recursive=False
                )
            except OSError as exc:
                log.warning(
                    "cannot watch directory", extra={"path": str(anchor), "error": str(exc)}
                )

    def _root_moved(self) -> bool:
        """Re-resolve PATH; re-point the tree watch when it now resolves elsewhere."""
        real = os.path.realpath(self.path)
        identity = _identity(real)
        had_tree = self._tree_watch is not None
        if real == self._real and identity == self._real_id and (had_tree or identity is None):
            return False
        previous, self._real, self._real_id = self._real, real, identity
        self._watch_tree()
        self._watch_anchors()
        if real != previous:
            log.info(
                "manifest path now points elsewhere", extra={"path": str(self.path), "target": real}
            )
        elif identity is not None:
            log.info("manifest folder replaced; watching the new one", extra={"path": real})
        return True

    # --- debounce (own thread) -----------------------------------------------------------------

    def _debounce_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and self._first_event is None:
                    self._cond.wait()
                if self._stopped:
                    return
                while not self._stopped:
                    now = self.clock.monotonic()
                    due = min(self._last_event + self.debounce, self._first_event + self.max_delay)
                    if now >= due:
                        break
                    # looked at again at least every CLOCK_POLL: a ManualClock moves on its own
                    self._cond.wait(min(due - now, CLOCK_POLL))
                if self._stopped:
                    return
                reason, check_root, tree_dirty = (
                    self._tree_reason,
                    self._check_root,
                    self._tree_dirty,
                )
                self._first_event = None
                self._check_root = self._tree_dirty = False
            moved = check_root and self._safe_root_moved()
            if tree_dirty or moved:
                try:
                    self.on_change(
                        reason if tree_dirty else f"{self.path} now points to {self._real}"
                    )
                except Exception:
                    log.exception("change callback failed")

    def _safe_root_moved(self) -> bool:
        try:
            return self._root_moved()
        except Exception:
            log.exception("cannot re-resolve the manifest path")
            return False
