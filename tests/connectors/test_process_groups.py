"""The record of connector sessions: what a restarted daemon ends, and what it never touches.

Real processes (`sleep` in sessions of their own) and a real record file; Linux only (/proc).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import wait_for

from reconciler.connectors.process_groups import ProcessGroups, proc_stat

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")


@pytest.fixture
def sessions():
    """Start `sh -c 'sleep 600 & sleep 600'` in a session of its own: a leader and a fork."""
    made: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[int, int]:
        proc = subprocess.Popen(["sh", "-c", "sleep 600 & exec sleep 600"],
                                start_new_session=True)
        made.append(proc)
        fork = wait_for(lambda: [p for p in _session(proc.pid) if p != proc.pid])
        return proc.pid, fork[0]

    yield start
    for proc in made:
        for pid in _session(proc.pid):
            os.kill(pid, 9)
        proc.kill()
        proc.wait()


def _session(sid: int) -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir()
            if e.name.isdigit() and (st := proc_stat(int(e.name)))
            and st.session == sid and st.state != "Z"]


def _live(pid: int) -> bool:
    st = proc_stat(pid)
    return st is not None and st.state != "Z"


def _record(path: Path, groups: list[dict], daemon_pid: int = 1, daemon_start: int = 0,
            **overrides) -> None:
    """A record as a daemon (by default a dead one) leaves it."""
    from reconciler.connectors.process_groups import _boot_id, _pid_namespace

    data = {"daemon": {"pid": daemon_pid, "start": daemon_start}, "boot_id": _boot_id(),
            "pidns": _pid_namespace(), "groups": groups, **overrides}
    path.write_text(json.dumps(data))


def test_recorded_sessions_are_ended_leader_and_forks(tmp_path, sessions):
    leader, fork = sessions()
    record = tmp_path / "connectors.json"
    _record(record, [{"pid": leader, "start": proc_stat(leader).start, "name": "web"}])
    assert ProcessGroups(record).end_leftovers() == 2
    wait_for(lambda: not _live(leader) and not _live(fork))


def test_a_pid_that_now_names_another_process_is_left_alone(tmp_path, sessions):
    leader, fork = sessions()
    record = tmp_path / "connectors.json"
    _record(record, [{"pid": leader, "start": proc_stat(leader).start + 1, "name": "web"}])
    assert ProcessGroups(record).end_leftovers() == 0
    assert _live(leader) and _live(fork)


def test_processes_older_than_the_recorded_session_are_left_alone(tmp_path, sessions):
    """The leader is gone (as after its parent-death signal); a process of that session id that
    started before the recorded leader cannot be one of its forks."""
    leader, fork = sessions()
    record = tmp_path / "connectors.json"
    os.kill(leader, 9)
    wait_for(lambda: not _live(leader))
    _record(record, [{"pid": leader, "start": proc_stat(fork).start + 1, "name": "web"}])
    assert ProcessGroups(record).end_leftovers() == 0 and _live(fork)
    _record(record, [{"pid": leader, "start": proc_stat(fork).start, "name": "web"}])
    assert ProcessGroups(record).end_leftovers() == 1
    wait_for(lambda: not _live(fork))


@pytest.mark.parametrize("other", ["boot_id", "pidns", "live daemon"])
def test_a_record_of_another_boot_namespace_or_live_daemon_is_left_alone(tmp_path, sessions,
                                                                         other):
    leader, fork = sessions()
    record = tmp_path / "connectors.json"
    group = {"pid": leader, "start": proc_stat(leader).start, "name": "web"}
    if other == "live daemon":  # this test's parent process stands for a running daemon
        parent = os.getppid()
        _record(record, [group], daemon_pid=parent, daemon_start=proc_stat(parent).start)
    else:
        _record(record, [group], **{other: "something else"})
    groups = ProcessGroups(record)
    assert groups.end_leftovers() == 0
    assert _live(leader) and _live(fork)
    if other == "live daemon":
        assert groups.record is None  # and it keeps no record of its own in that file


def test_an_unreadable_record_is_ignored(tmp_path):
    record = tmp_path / "connectors.json"
    record.write_text("{not json")
    assert ProcessGroups(record).end_leftovers() == 0


DAEMON = """
import os, signal, subprocess, sys, time
from reconciler.connectors.process_groups import ProcessGroups
groups = ProcessGroups(sys.argv[1])
groups.start()
def connector():
    proc = subprocess.Popen(["sh", "-c", "sleep 600 & exec sleep 600"], start_new_session=True)
    groups.add(proc.pid, "c%d" % proc.pid)
    return proc.pid
first = connector()
os.kill(groups._watchdog.pid, signal.SIGKILL)  # the OOM killer took the watchdog
groups._watchdog.wait()
second = connector()  # notices, and starts another watchdog that knows both sessions
print(first, second, groups._watchdog.pid, flush=True)
time.sleep(600)
"""


def test_a_killed_watchdog_is_replaced_and_a_sigkilled_daemon_leaves_nothing(tmp_path):
    """A stand-in daemon (ProcessGroups in a child process, real connectors that fork)."""
    script = tmp_path / "daemon.py"
    script.write_text(DAEMON)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "connectors.json")],
                            stdout=subprocess.PIPE, text=True)
    trees: dict[int, int] = {}
    try:
        first, second, watchdog = map(int, proc.stdout.readline().split())
        for sid in (first, second):
            members = wait_for(lambda sid=sid: len(_session(sid)) == 2 and _session(sid))
            trees.update({pid: proc_stat(pid).start for pid in members})
        assert _live(watchdog)
        proc.kill()
        proc.wait()
        wait_for(lambda: not any(_live(pid) for pid in trees), timeout=10,
                 message="both sessions ended by the second watchdog")
        wait_for(lambda: not _live(watchdog), timeout=10, message="the watchdog exited")
    finally:
        proc.kill()
        proc.wait()
        for pid, start in trees.items():
            if (st := proc_stat(pid)) and st.start == start and st.state != "Z":
                os.kill(pid, 9)
