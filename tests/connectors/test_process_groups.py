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


@pytest.mark.slow
def test_recorded_sessions_are_ended_leader_and_forks(tmp_path, sessions):
    leader, fork = sessions()
    record = tmp_path / "connectors.json"
    _record(record, [{"pid": leader, "start": proc_stat(leader).start, "name": "web"}])
    assert ProcessGroups(record).end_leftovers() == 2
    wait_for(lambda: not _live(leader) and not _live(fork))


@pytest.mark.slow
def test_a_pid_that_now_names_another_process_is_left_alone(tmp_path, sessions):
    leader, fork = sessions()
    record = tmp_path / "connectors.json"
    _record(record, [{"pid": leader, "start": proc_stat(leader).start + 1, "name": "web"}])
    assert ProcessGroups(record).end_leftovers() == 0
    assert _live(leader) and _live(fork)


@pytest.mark.slow
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
@pytest.mark.slow
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


@pytest.mark.slow
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


#: A connector's tree that no session or group holds: a `setsid` child with a grandchild, and a
#: daemonizing double fork. Each notes its pid in the folder argv[1].
TREE = """
import os, sys, time
def note():
    open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        note(); time.sleep(600); os._exit(0)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            note(); time.sleep(600); os._exit(0)
        os._exit(0)
    note(); time.sleep(600); os._exit(0)
note()
time.sleep(600)
"""

STAND_IN = """
import os, subprocess, sys, time
from reconciler.connectors.process_groups import ProcessGroups, preexec_for
groups = ProcessGroups(sys.argv[1])
groups.use_cgroups = sys.argv[3] == "cgroup"
groups.start()
tree = groups.new_tree()
proc = subprocess.Popen([sys.executable, sys.argv[4], sys.argv[2]], start_new_session=True,
                        env={**os.environ, **tree.env},
                        preexec_fn=preexec_for(os.getpid(), tree.procs_file))
groups.add(proc.pid, "app", tree)
print(groups._watchdog.pid, groups.trees.mode, flush=True)
time.sleep(600)
"""


def _noted(folder: Path, count: int) -> dict[int, int] | None:
    stats = {int(p.name): proc_stat(int(p.name)) for p in folder.iterdir()}
    live = {pid: st.start for pid, st in stats.items() if st and st.state != "Z"}
    return live if len(live) == count else None


def _alive_of(tree: dict[int, int]) -> list[int]:
    return [pid for pid, start in tree.items()
            if (st := proc_stat(pid)) and st.state != "Z" and st.start == start]


@pytest.fixture
def bystanders():
    """Processes of the same user that are not ours: no marker, and another instance's."""
    procs = [subprocess.Popen(["sleep", "600"], start_new_session=True),
             subprocess.Popen(["sleep", "600"], start_new_session=True,
                              env={**os.environ, "BORDER0_RECONCILER_TREE": "feedfacefeedface:0"})]
    yield procs
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("mode", ["marker", "cgroup"])
@pytest.mark.slow
def test_setsid_and_double_forked_descendants_end_after_kill_9_and_on_stop(tmp_path, mode,
                                                                           bystanders):
    """After kill -9 of a stand-in daemon and its watchdog, the next start of the same
    instance ends the whole tree; a connector's exit (a stop) ends its tree. Only ours."""
    from reconciler.connectors.process_groups import preexec_for
    from reconciler.connectors.trees import _my_cgroup_dir

    if mode == "cgroup" and _my_cgroup_dir() is None:
        pytest.skip("no cgroup v2 here")
    (tmp_path / "tree.py").write_text(TREE)
    (tmp_path / "stand_in.py").write_text(STAND_IN)
    record, first = tmp_path / "connectors.json", tmp_path / "first"
    first.mkdir()
    daemon = subprocess.Popen([sys.executable, str(tmp_path / "stand_in.py"), str(record),
                               str(first), mode, str(tmp_path / "tree.py")],
                              stdout=subprocess.PIPE, text=True)
    trees: list[dict[int, int]] = []
    try:
        watchdog, got = daemon.stdout.readline().split()
        if mode == "marker" or got == "cgroup":
            assert got == mode
        tree = wait_for(lambda: _noted(first, 4), timeout=30, message="4 processes")
        trees.append(tree)
        os.kill(int(watchdog), 9)
        daemon.kill()
        daemon.wait()
        wait_for(lambda: len(_alive_of(tree)) == 3, message="the leader died with the daemon")

        groups = ProcessGroups(record)
        groups.use_cgroups = mode == "cgroup"
        assert groups.end_leftovers() >= 3
        wait_for(lambda: not _alive_of(tree), message="the restart ended the whole tree")

        second = tmp_path / "second"
        second.mkdir()
        new = groups.new_tree()  # (no start(): this test process stays no subreaper)
        proc = subprocess.Popen([sys.executable, str(tmp_path / "tree.py"), str(second)],
                                start_new_session=True, env={**os.environ, **new.env},
                                preexec_fn=preexec_for(os.getpid(), new.procs_file))  # noqa: PLW1509
        groups.add(proc.pid, "app", new)
        tree = wait_for(lambda: _noted(second, 4), timeout=30, message="4 processes")
        trees.append(tree)
        os.killpg(proc.pid, 15)  # the supervisor's stop: its process group ...
        proc.wait()
        groups.remove(proc.pid)  # ... then, the leader gone, the rest of its tree
        assert _alive_of(tree) == []
        groups.close()
        assert all(p.poll() is None for p in bystanders)
    finally:
        daemon.kill()
        daemon.wait()
        for tree in trees:
            for pid in _alive_of(tree):
                os.kill(pid, 9)
