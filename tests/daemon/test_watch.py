"""ManifestWatcher with real files and real inotify events: debounce, saves, symlink swaps."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from helpers import wait_for

from reconciler.clock import ManualClock
from reconciler.daemon.watch import ManifestWatcher, symlink_anchors


class Calls:
    """Records the watcher's callbacks (thread-safe)."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, reason: str) -> None:
        with self._lock:
            self.reasons.append(reason)

    def __len__(self) -> int:
        with self._lock:
            return len(self.reasons)


@pytest.fixture
def watch():
    started: list[ManifestWatcher] = []

    def make(path: Path, debounce: float = 0.15, **kw) -> tuple[ManifestWatcher, Calls]:
        calls = Calls()
        watcher = ManifestWatcher(path, calls, debounce=debounce, **kw)
        watcher.start()
        started.append(watcher)
        return watcher, calls

    yield make
    for watcher in started:
        watcher.stop()


def settled(calls: Calls, quiet: float = 0.3) -> bool:
    """True once no callback has arrived for `quiet` seconds (polled by wait_for)."""
    count = len(calls)
    done = threading.Event()
    done.wait(quiet)
    return len(calls) == count


def test_an_edit_calls_back_once(tmp_path, watch):
    (tmp_path / "a.yaml").write_text("one\n")
    _watcher, calls = watch(tmp_path)
    (tmp_path / "a.yaml").write_text("two\n")
    wait_for(lambda: len(calls) >= 1, message="a callback after the edit")
    wait_for(lambda: settled(calls), timeout=5)
    assert len(calls) == 1
    assert "a.yaml" in calls.reasons[0]


def test_a_burst_of_writes_is_coalesced(tmp_path, watch):
    _watcher, calls = watch(tmp_path, debounce=0.2)
    for i in range(20):
        (tmp_path / f"f{i % 3}.yaml").write_text(f"v{i}\n")
    wait_for(lambda: len(calls) >= 1)
    wait_for(lambda: settled(calls, 0.5), timeout=5)
    assert len(calls) == 1


def test_the_debounce_runs_on_the_watchers_clock(tmp_path):
    """A 30 s debounce, checked in well under a second: the quiet period is measured on the
    clock the watcher is handed, so the callback comes only once that clock has moved 30 s
    past the write's last event (moved 1 s at a time: a late event of the same write pushes
    the quiet period on, as it should)."""
    clock = ManualClock()
    called_at: list[float] = []
    watcher = ManifestWatcher(tmp_path, lambda reason: called_at.append(clock.monotonic()),
                              debounce=30, max_delay=300, clock=clock)
    watcher.start()
    try:
        written = clock.monotonic()
        (tmp_path / "a.yaml").write_text("one\n")
        wait_for(lambda: watcher.pending, message="the watcher to see the write")

        def one_second_more() -> bool:
            if not called_at:
                clock.advance(1)
            return bool(called_at)

        wait_for(one_second_more, timeout=10, interval=0.02, message="the callback")
        assert called_at[0] - written >= 30 and not watcher.pending
    finally:
        watcher.stop()


def test_reading_files_does_not_call_back(tmp_path, watch):
    (tmp_path / "a.yaml").write_text("one\n")
    _watcher, calls = watch(tmp_path)
    for _ in range(5):
        (tmp_path / "a.yaml").read_text()
    (tmp_path / "marker.yaml").write_text("x\n")  # a real change, so we know events flow
    wait_for(lambda: len(calls) >= 1)
    wait_for(lambda: settled(calls), timeout=5)
    assert len(calls) == 1
    assert "marker.yaml" in calls.reasons[0]


def test_an_editor_save_by_write_and_rename(tmp_path, watch):
    target = tmp_path / "sub" / "a.yaml"
    target.parent.mkdir()
    target.write_text("one\n")
    _watcher, calls = watch(tmp_path)
    tmp = target.with_name(".a.yaml.swp")
    tmp.write_text("two\n")
    os.replace(tmp, target)
    wait_for(lambda: len(calls) >= 1, message="a callback after the rename")
    assert target.read_text() == "two\n"


def test_a_single_file_path_ignores_its_neighbours(tmp_path, watch):
    target = tmp_path / "a.yaml"
    target.write_text("one\n")
    _watcher, calls = watch(target)
    (tmp_path / "other.txt").write_text("noise\n")
    target.write_text("two\n")
    wait_for(lambda: len(calls) >= 1)
    wait_for(lambda: settled(calls), timeout=5)
    assert len(calls) == 1 and "a.yaml" in calls.reasons[0]


def test_git_sync_symlink_swap_is_seen_and_followed(tmp_path, watch):
    wt1, wt2 = tmp_path / "wt1", tmp_path / "wt2"
    for wt, text in ((wt1, "one"), (wt2, "two")):
        wt.mkdir()
        (wt / "a.yaml").write_text(text)
    link = tmp_path / "current"
    link.symlink_to(wt1)
    watcher, calls = watch(link)
    assert watcher.real_path == str(wt1)

    tmp_link = tmp_path / ".current.tmp"
    tmp_link.symlink_to(wt2)
    os.replace(tmp_link, link)  # git-sync's atomic swap
    wait_for(lambda: len(calls) >= 1, message="a callback after the swap")
    wait_for(lambda: watcher.real_path == str(wt2))

    # The watch now follows the new worktree: an edit there is seen, one in the old is not.
    wait_for(lambda: settled(calls), timeout=5)
    before = len(calls)
    (wt1 / "a.yaml").write_text("old tree\n")
    (wt2 / "a.yaml").write_text("new tree\n")
    wait_for(lambda: len(calls) > before)
    wait_for(lambda: settled(calls), timeout=5)
    assert "wt2" in calls.reasons[-1]


def test_a_swapped_parent_symlink_is_followed(tmp_path, watch):
    for name in ("wt1", "wt2"):
        (tmp_path / name / "manifests").mkdir(parents=True)
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "wt1")
    watcher, calls = watch(link / "manifests")
    assert symlink_anchors(link / "manifests") == [tmp_path]
    tmp_link = tmp_path / ".tmp"
    tmp_link.symlink_to(tmp_path / "wt2")
    os.replace(tmp_link, link)
    wait_for(lambda: len(calls) >= 1)
    assert watcher.real_path == str(tmp_path / "wt2" / "manifests")


def test_unrelated_changes_beside_the_symlink_do_not_call_back(tmp_path, watch):
    (tmp_path / "wt1").mkdir()
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "wt1")
    _watcher, calls = watch(link)
    (tmp_path / "unrelated.txt").write_text("x")
    (tmp_path / "wt1" / "a.yaml").write_text("real change")
    wait_for(lambda: len(calls) >= 1)
    wait_for(lambda: settled(calls), timeout=5)
    assert len(calls) == 1 and "a.yaml" in calls.reasons[0]


def test_a_path_that_appears_later_is_picked_up(tmp_path, watch):
    path = tmp_path / "manifests"
    _watcher, calls = watch(path)
    path.mkdir()
    wait_for(lambda: len(calls) >= 1, message="a callback when the directory appears")
    wait_for(lambda: settled(calls), timeout=5)
    before = len(calls)
    (path / "a.yaml").write_text("x")
    wait_for(lambda: len(calls) > before, message="events from inside the new directory")


def _edit_is_seen(calls: Calls, path: Path, text: str) -> None:
    """Once quiet, an edit of `path` calls back (within the debounce and a margin)."""
    wait_for(lambda: settled(calls), timeout=5)
    before = len(calls)
    path.write_text(text)
    wait_for(lambda: len(calls) > before and str(path) in calls.reasons[-1], timeout=5,
             message=f"a callback for the edit of {path}")


def test_a_replaced_folder_is_watched_again(tmp_path, watch):
    """Issue 12: after `mv m m.old && mkdir m && cp m.old/* m/` later edits were seen only at
    the next --interval (the watch stayed on the old folder, now m.old)."""
    m = tmp_path / "m"
    m.mkdir()
    (m / "a.yaml").write_text("one\n")
    _watcher, calls = watch(m)
    _edit_is_seen(calls, m / "a.yaml", "two\n")

    os.rename(m, tmp_path / "m.old")
    m.mkdir()
    (m / "a.yaml").write_text((tmp_path / "m.old" / "a.yaml").read_text())
    wait_for(lambda: len(calls) >= 2, message="a callback for the new folder")
    _edit_is_seen(calls, m / "a.yaml", "three\n")
    _edit_is_seen(calls, m / "b.yaml", "new file\n")
    wait_for(lambda: settled(calls), timeout=5)
    before = len(calls)
    (tmp_path / "m.old" / "a.yaml").write_text("the old folder is not ours any more\n")
    (m / "c.yaml").write_text("marker\n")
    wait_for(lambda: len(calls) > before)
    wait_for(lambda: settled(calls), timeout=5)
    assert not any("m.old" in reason for reason in calls.reasons[before:]), calls.reasons


def test_a_folder_removed_and_created_again_is_watched_again(tmp_path, watch):
    m = tmp_path / "m"
    m.mkdir()
    (m / "a.yaml").write_text("one\n")
    _watcher, calls = watch(m)
    _edit_is_seen(calls, m / "a.yaml", "two\n")
    for round_ in range(2):
        (m / "a.yaml").unlink()
        m.rmdir()
        wait_for(lambda: len(calls) >= 1 and settled(calls), timeout=5)
        m.mkdir()
        _edit_is_seen(calls, m / "a.yaml", f"again {round_}\n")


def test_stop_ends_the_threads(tmp_path):
    watcher = ManifestWatcher(tmp_path, lambda reason: None, debounce=0.05)
    watcher.start()
    assert watcher.is_alive()
    watcher.stop()
    assert not watcher.is_alive()


def test_the_daemons_own_files_in_the_tree_are_no_change(tmp_path, watch):
    """The state folder (state, WAL, temp files) and a --state file kept in the tree trigger
    nothing and are never the reason shown; the next manifest edit is."""
    from reconciler.border0.session import STATE_DIR
    from reconciler.daemon.watch import OWN_DIR

    assert OWN_DIR == STATE_DIR
    (tmp_path / "a.yaml").write_text("one\n")
    own = tmp_path / STATE_DIR
    own.mkdir()
    _watcher, calls = watch(tmp_path, ignore=[tmp_path / "custom.db", tmp_path / "custom.db-wal"])
    for name in ("local.db", "local.db-wal", "local.db-shm", "connectors.json.tmp"):
        (own / name).write_bytes(b"x" * 10)
    (own / "connectors.json.tmp").rename(own / "connectors.json")
    (tmp_path / "custom.db").write_bytes(b"x")
    (tmp_path / "custom.db-wal").write_bytes(b"x")
    (tmp_path / "custom.db.tmp").write_bytes(b"x")
    (tmp_path / "a.yaml").write_text("two\n")
    wait_for(lambda: len(calls) >= 1, message="a callback after the manifest edit")
    wait_for(lambda: settled(calls), timeout=5)
    assert len(calls) == 1 and calls.reasons[0].endswith("a.yaml"), calls.reasons
