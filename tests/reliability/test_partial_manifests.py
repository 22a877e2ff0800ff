"""Partial input never prunes (issue 12, item 1): the daemon while files are half written.

Before: truncating a 50-socket file at half while the daemon ran left it ending in `---\\napi`;
the scalar was skipped as "another tool's YAML" and 25 sockets were deleted ("reconcile
succeeded ... delete=25"). A cut inside a value planned `update=1 delete=19 detach=1`; a slow
writer gave delete=25 then create=25 (new ids); so did files written one by one (`git pull`).

Each test runs the real daemon (the `run` command in this process, daemon_host.py; a child
process where its connectors or a git repository are in play), real file events, the emulator
over HTTP; every wait is a condition with a deadline. The invariant checked each time:
no socket the final manifests keep is deleted, and no socket id changes.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import test_reliability
from helpers import wait_for
from test_reliability import Daemon, socket_yaml

daemons = test_reliability.daemons  # the fixture: daemons started by a test, closed after it

GRACE = "3s"


def fleet(names: list[str], connectors: tuple[str, ...] = (), **described: str) -> str:
    return "---\n".join(
        socket_yaml(n, description=described.get(n, f"socket {n} of the fleet"),
                    connector=n in connectors)
        for n in names
    )


def ids(emulator: Any) -> dict[str, str]:
    return {s["name"]: s["socket_id"] for s in emulator.client().list_sockets()}


#: A connector that only waits (real child processes; their pids show restarts).
WAITING_CONNECTOR = '{python} -c "import time; time.sleep(3600)" {name}'


def start(daemons: Any, emulator: Any, folder: Path, names: list[str], *,
          connectors: bool = False) -> Daemon:
    """`daemons`: daemon_run (this process) or test_reliability's `daemons` (a child process,
    for the tests whose connectors are processes)."""
    extra = ["--connector-command", WAITING_CONNECTOR, "--connector-startsecs", "0.2s"]
    daemon = daemons(folder, emulator.url, emulator.token, "--debounce", "200ms",
                     "--delete-grace", GRACE, "--interval", "1h", *(extra if connectors else []))
    daemon.wait(lambda: set(ids(emulator)) == set(names) and last(daemon, 0, "success"),
                timeout=90, message="the first apply")
    return daemon


def start_on_one_file(daemons: Any, emulator: Any, tmp_path: Path, names: list[str]
                      ) -> tuple[Daemon, Path]:
    """A daemon over one file, m/fleet.yaml, that declares `names`, after its first apply."""
    folder = tmp_path / "m"
    folder.mkdir()
    path = folder / "fleet.yaml"
    path.write_text(fleet(names))
    return start(daemons, emulator, folder, names), path


def last(daemon: Daemon, since: float, result: str | None = None) -> dict | None:
    """The last reconcile, if it started after `since` (epoch seconds) [with `result`]."""
    info = daemon.status().get("last_reconcile") or {}
    started = datetime.fromisoformat(info["time"]).timestamp() if info.get("time") else 0
    if started < since or (result is not None and info.get("result") != result):
        return None
    return info


def log(daemon: Any) -> list[dict]:
    """The daemon's JSON log records so far (a child's `records()`, daemon_run's `records`)."""
    return list(daemon.records() if callable(daemon.records) else daemon.records)


def records(daemon: Daemon, text: str, since: float = 0) -> list[dict]:
    return [r for r in log(daemon) if text in str(r.get("message", ""))
            and datetime.fromisoformat(r.get("time", "1970-01-01T00:00:00+00:00")).timestamp()
            >= since]


def settled(daemon: Daemon, since: float) -> bool:
    """A successful reconcile that read the manifests written before `since`, with no deletes
    left deferred, and the re-plan of any deferral since then done."""
    info = last(daemon, since, "success")
    if info is None or info.get("deletions_deferred_until"):
        return False
    deferrals = records(daemon, "deletion deferred", since - 60)
    replans = [r for r in records(daemon, "reconcile succeeded", since)
               if "deferred deletions" in str(r.get("trigger"))]
    return not deferrals or bool(replans)


def running_pid(daemon: Daemon, socket: str) -> int | None:
    for connector in daemon.status()["connectors"]:
        if connector["socket"] == socket and connector["state"] == "RUNNING":
            return connector["pid"]
    return None


def assert_nothing_lost(daemon: Daemon, emulator: Any, before: dict[str, str]) -> None:
    assert ids(emulator) == before  # same names, same ids: nothing deleted or re-created
    assert not [r for r in log(daemon) if str(r.get("message", "")).startswith("deleted ")]


@pytest.mark.timeout(240)
def test_a_file_truncated_at_half_deletes_nothing(daemon_run, emulator, tmp_path: Path) -> None:
    names = [f"s{i:02d}" for i in range(50)]
    daemon, path = start_on_one_file(daemon_run, emulator, tmp_path, names)
    before = ids(emulator)

    cut = time.time()
    text = path.read_text()
    os.truncate(path, text.index("---\n", len(text) // 2 - 8) + 7)  # about half ...
    assert path.read_text().endswith("---\napi")  # ... and ending as in the report
    daemon.wait(lambda: last(daemon, cut, "invalid"), 60, "the cut file to be refused")
    assert "not a plain value" in " ".join(daemon.status()["errors"])
    assert_nothing_lost(daemon, emulator, before)

    restored = time.time()
    path.write_text(fleet(names))
    daemon.wait(lambda: settled(daemon, restored), 60, "the whole file to be applied")
    assert_nothing_lost(daemon, emulator, before)


@pytest.mark.timeout(240)
def test_a_cut_inside_a_value_defers_the_deletes_until_the_file_is_whole(
    daemon_run, emulator, tmp_path: Path
) -> None:
    names = [f"s{i:02d}" for i in range(40)]
    daemon, path = start_on_one_file(daemon_run, emulator, tmp_path, names)
    whole = path.read_text()
    before = ids(emulator)

    cut = time.time()
    os.truncate(path, whole.index("socket s30 of the fleet") + len("socket s3"))
    daemon.wait(lambda: records(daemon, "deletion deferred", cut), 60, "a deferred deletion")
    assert records(daemon, "deletion deferred", cut)[0]["message"].startswith(
        "deletion deferred: manifests changed ")
    assert " ms ago (delete socket s31, delete socket s32" in (
        records(daemon, "deletion deferred", cut)[0]["message"])
    # the update in the cut (a shortened description) cannot be a complete write: held too
    # (issue 23: it used to reach border0 at once)
    daemon.wait(lambda: records(daemon, "update socket s30 (its file looks cut mid-write)", cut),
                30, "the update of s30 to be held back")
    assert emulator.client().get_socket("s30")["description"] == "socket s30 of the fleet"

    written = time.time()
    path.write_text(whole)  # the writer finishes
    daemon.wait(lambda: settled(daemon, written), 60, "the whole file, and the re-plan")
    assert_nothing_lost(daemon, emulator, before)
    assert emulator.client().get_socket("s30")["description"] == "socket s30 of the fleet"


@pytest.mark.timeout(240)
def test_a_slow_writer_pausing_half_way_loses_nothing(daemon_run, emulator, tmp_path: Path) -> None:
    names = [f"s{i:02d}" for i in range(30)]
    daemon, path = start_on_one_file(daemon_run, emulator, tmp_path, names)
    whole = path.read_text()
    before = ids(emulator)

    half = len(whole) // 2 + 17
    paused = time.time()
    with path.open("w") as handle:  # an editor writing in place: truncate, half, pause, rest
        handle.write(whole[:half])
        handle.flush()
        daemon.wait(lambda: last(daemon, paused), 60, "a reconcile of the half-written file")
        handle.write(whole[half:])
    written = time.time()
    daemon.wait(lambda: settled(daemon, written), 60, "the whole file, and the re-plan")
    assert_nothing_lost(daemon, emulator, before)


@pytest.mark.timeout(240)
@pytest.mark.slow
def test_a_socket_moved_between_files_written_one_by_one_keeps_its_id(
    daemons, emulator, tmp_path: Path
) -> None:
    first, second = [f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "a.yaml").write_text(fleet([*first, "mover"], connectors=("mover",)))
    (folder / "b.yaml").write_text(fleet(second))
    daemon = start(daemons, emulator, folder, [*first, *second, "mover"], connectors=True)
    before = ids(emulator)
    pid = daemon.wait(lambda: running_pid(daemon, "mover"), 60, "mover's connector")

    moved = time.time()
    (folder / "a.yaml").write_text(fleet(first))  # one file written ...
    daemon.wait(lambda: records(daemon, "delete socket mover", moved), 60,
                "the delete of mover to be deferred")
    assert running_pid(daemon, "mover") == pid  # its connector is not stopped meanwhile
    (folder / "b.yaml").write_text(fleet([*second, "mover"], connectors=("mover",)))
    written = time.time()
    daemon.wait(lambda: settled(daemon, written), 60, "both files, and the re-plan")
    assert_nothing_lost(daemon, emulator, before)
    assert running_pid(daemon, "mover") == pid  # nor restarted


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_git_pull_of_many_changed_files_loses_nothing(daemons, emulator, tmp_path: Path) -> None:
    """A plain clone updated by `git pull`: git writes the files one by one. A smudge filter
    that takes 0.4 s a file stands for a big repository on a slow disk, so the daemon sees the
    states in between (files gone before their sockets reappear elsewhere)."""
    groups = {f"team{g}.yaml": [f"t{g}-{i}" for i in range(5)] for g in range(8)}
    names = [n for group in groups.values() for n in group]
    origin, author, deploy = tmp_path / "origin.git", tmp_path / "author", tmp_path / "deploy"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(author))
    (author / "border0").mkdir()
    for name, group in groups.items():
        (author / "border0" / name).write_text(fleet(group))
    git(author, "add", "-A")
    git(author, "commit", "-q", "-m", "fleet")
    git(author, "push", "-q", "origin", "HEAD")
    git(tmp_path, "clone", "-q", str(origin), str(deploy))
    git(deploy, "config", "filter.slow.smudge", "sh -c 'sleep 0.4; cat'")
    (deploy / ".git" / "info" / "attributes").write_text("*.yaml filter=slow\n")
    daemon = start(daemons, emulator, deploy / "border0", names)
    before = ids(emulator)

    # the new commit: every team file changes; sockets move between files, files are renamed
    regrouped = {f"squad{g}.yaml": names[g::6] for g in range(6)}
    for name in groups:
        (author / "border0" / name).unlink()
    for name, group in regrouped.items():
        (author / "border0" / name).write_text(fleet(group, **{n: f"{n} moved" for n in group}))
    git(author, "add", "-A")
    git(author, "commit", "-q", "-m", "regroup")
    git(author, "push", "-q", "origin", "HEAD")
    pulled = time.time()
    git(deploy, "pull", "-q", "--ff-only")
    done = time.time()
    assert done - pulled > 2  # the files were written one by one, slowly
    daemon.wait(lambda: settled(daemon, done), 90, "the pulled commit, and the re-plan")
    assert_nothing_lost(daemon, emulator, before)
    assert {s["description"] for s in emulator.client().list_sockets()} == {
        f"{n} moved" for n in names}
    # the daemon did see states in between, and held their deletes back
    assert records(daemon, "deletion deferred", pulled) or [
        r for r in log(daemon) if r.get("message") == "reconcile failed at load"]


@pytest.mark.timeout(240)
def test_a_socket_removed_for_good_is_deleted_after_the_grace_period(
    daemon_run, emulator, tmp_path: Path
) -> None:
    names = [f"s{i}" for i in range(4)]
    daemon, path = start_on_one_file(daemon_run, emulator, tmp_path, names)
    path.write_text(fleet(names[:3]))
    daemon.wait(lambda: "s3" not in ids(emulator), 60, "s3 to be deleted after the grace")
    # the daemon logs its writes when the reconcile is published, after border0 shows them
    daemon.wait(lambda: [r for r in log(daemon) if r.get("message") == "deleted socket s3"],
                30, "the deletion logged")
    logged = log(daemon)
    deferred = [i for i, r in enumerate(logged) if "deletion deferred" in str(r.get("message"))]
    deleted = [i for i, r in enumerate(logged) if r.get("message") == "deleted socket s3"]
    assert deferred and deleted and deferred[0] < deleted[0]  # held first, deleted after
    # ... by the reconcile the grace's end started (its length: test_settle_clock, on a clock)
    assert any(r.get("message") == "reconcile succeeded" and r.get("trigger")
               == "deferred deletions" for r in logged[deleted[0]:])
    assert set(ids(emulator)) == set(names[:3])


def test_files_that_change_while_being_read_are_reported_not_used(tmp_path: Path) -> None:
    """The loader re-checks every file (size, mtime_ns, inode) and the file list after reading;
    the daemon then reads again after the debounce instead of acting on a mix of versions."""
    from reconciler.manifests.files import changed_since
    from reconciler.manifests.loader import load

    folder = tmp_path / "m"
    folder.mkdir()
    names = [f"s{i:03d}" for i in range(400)]
    (folder / "a.yaml").write_text(fleet(names))
    (folder / "b.yaml").write_text(fleet(["b"]))
    result = load([folder], env={})
    assert result.ok and result.changed == []
    (folder / "b.yaml").write_text(fleet(["b", "c"]))
    (folder / "new.yaml").write_text(fleet(["d"]))
    assert changed_since([folder], result.files, result.stamps) == [
        str(folder / "b.yaml"), str(folder / "new.yaml")]

    stop = threading.Event()

    def rewrite() -> None:  # an editor saving in place, again and again
        versions = [fleet(names), fleet(names[:200])]
        i = 0
        while not stop.is_set():
            (folder / "a.yaml").write_text(versions[i % 2])
            i += 1

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    try:
        seen = wait_for(lambda: load([folder], env={}).changed, timeout=30,
                        message="a load that notices the rewrite")
    finally:
        stop.set()
        writer.join(10)
    assert str(folder / "a.yaml") in seen
