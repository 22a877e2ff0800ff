"""No orphans: a connector's whole process tree ends with the daemon, even after SIGKILL.

The supervisor starts each connector as the leader of a session of its own (one process group)
and stops it by signalling the group. On top of that (Linux; elsewhere only the groups):

- The leader gets PR_SET_PDEATHSIG=SIGKILL (`preexec_for`): it dies with the daemon. That
  reaches the leader only, not what it forked.
- A watchdog (`WATCHDOG`): one small process per daemon, in a session of its own, that reads
  "+SID" / "-SID" lines from a pipe the daemon holds. The daemon's death, SIGKILL included,
  closes the pipe; the watchdog then SIGKILLs every session still listed and exits.
- A record (`connectors.json` beside the local state, 0600): pid (= pgid = session id) and
  start time of every session started. A restarted daemon ends what is left of them before it
  starts connectors (in case the watchdog was killed too: OOM killer, kill -9 of the tree).
  The start time, the boot id and the pid namespace guard against killing a reused pid.
- Trees (trees.py): each connector's whole tree, `setsid` and double-forked children
  included, in a cgroup of its own where one is writable, else found by a marker in its
  environment. A connector's exit or stop ends its tree; a restarted daemon ends the trees its
  instance left; the watchdog ends them when the daemon dies.
- The daemon is a child subreaper (PR_SET_CHILD_SUBREAPER): a connector's descendant whose
  parent exits is re-parented to the daemon, not to init. `reap_orphans` reaps it when it exits,
  leaves it alone while it is in a running connector's session (which ends as a unit), and ends
  it otherwise: it left its connector's session (setsid, a daemonizing double fork), or its
  connector is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from reconciler.connectors.trees import Tree, Trees, instance_id, kill_until_gone, marker_of
from reconciler.connectors.watchdog import WATCHDOG

__all__ = ["WATCHDOG", "ProcessGroups", "kill_session", "preexec_for", "proc_stat"]

log = logging.getLogger("reconciler.connectors")

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()


def preexec_for(parent: int, cgroup_procs: str | None = None) -> Callable[[], None] | None:
    """Runs in the forked child before exec: join the tree's cgroup (before it can fork), die
    with the spawning thread (Linux only)."""
    if _PRCTL is None:
        return None
    prctl, sigkill = _PRCTL, int(signal.SIGKILL)

    def preexec() -> None:
        if cgroup_procs is not None:
            try:
                fd = os.open(cgroup_procs, os.O_WRONLY)
                try:
                    os.write(fd, b"%d" % os.getpid())
                finally:
                    os.close(fd)
            except OSError:
                pass  # the marker still finds the tree
        prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:  # the daemon died between fork and prctl
            os._exit(1)

    return preexec


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat this module needs."""

    pid: int
    state: str  # "Z" for a zombie
    ppid: int
    pgrp: int
    session: int
    start: int  # clock ticks after boot: with the pid, names one process for good


def proc_stat(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and ")"
    return ProcStat(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))


def _all_processes() -> Iterator[ProcStat]:
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None:
            yield stat


def kill_session(sid: int, *, started_after: int = 0) -> int:
    """SIGKILL every live process of session `sid` (its groups included) that started at or
    after `started_after`; the number found. Repeated until none is left, so a fork in flight
    is caught too. (No killpg: once the leader is gone, only the start times tell a session
    from a later one that got the same id.)"""
    if not os.path.isdir("/proc"):
        return 0
    return kill_until_gone(lambda: [
        p.pid for p in _all_processes()
        if p.session == sid and p.state != "Z" and p.start >= started_after
        and p.pid != os.getpid()
    ], tries=5)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


class ProcessGroups:
    """The daemon's guards against orphans (see the module docstring): `start()` once before
    the first connector, `add`/`remove` around each, `reap_orphans()` now and then, `close()`
    after the last. Touched by the supervisor thread only."""

    def __init__(self, record: str | os.PathLike[str] | None = None) -> None:
        self.record = Path(record) if record is not None else None
        self.sessions: dict[int, dict[str, Any]] = {}  # sid -> {"pid", "start", "name"}
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._pipe: IO[bytes] | None = None
        self._subreaper = False
        self._me = os.getpid()
        self._my_session = os.getsid(0)
        self._trees: Trees | None = None
        self._tree_of: dict[int, Tree] = {}  # leader pid -> its tree

    @property
    def trees(self) -> Trees:
        """This instance's trees (made on first use: it may create a cgroup)."""
        if self._trees is None:
            anchor = self.record.parent if self.record is not None else None
            self._trees = Trees(instance_id(anchor), cgroups=self.use_cgroups)
        return self._trees

    #: False: find trees by their marker only, even where a cgroup is writable (tests).
    use_cgroups = True

    def new_tree(self) -> Tree:
        """The tree of the next connector: its environment and cgroup (see trees.py)."""
        return self.trees.new()

    # --- the life cycle -----------------------------------------------------------------

    def start(self) -> None:
        self.end_leftovers()
        if _PRCTL is not None:
            self._subreaper = _PRCTL(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        self._start_watchdog()
        self._write_record()

    def close(self) -> None:
        """After the last connector stopped: the watchdog ends whatever is still listed (the
        daemon may be closing with a connector that would not stop) and exits."""
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                self._pipe.close()
        if self._watchdog is not None:
            try:
                self._watchdog.wait(5.0)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
        self._pipe = self._watchdog = None
        if self._trees is not None:
            self._trees.close()
        if self.record is not None and self._owns_record():
            with contextlib.suppress(OSError):
                self.record.unlink()

    def add(self, pid: int, name: str, tree: Tree | None = None) -> None:
        """A connector `pid` started, leading session `pid` (and `tree`)."""
        stat = proc_stat(pid)
        self.sessions[pid] = {"pid": pid, "start": stat.start if stat else 0, "name": name}
        if tree is not None:
            self._tree_of[pid] = tree
            self.sessions[pid]["tree"] = tree.marker
        self._tell(f"+{pid}\n")
        self._write_record()

    def remove(self, pid: int) -> None:
        """A connector `pid` exited and is not reaped yet (its zombie holds the pid): end what
        is left of its session, then forget it."""
        info = self.sessions.pop(pid, None)
        kill_session(pid, started_after=info["start"] if info else 0)
        tree = self._tree_of.pop(pid, None)
        if tree is not None:
            self.trees.end(tree)
        self._tell(f"-{pid}\n")
        self._write_record()

    def reap_orphans(self, leaders: Iterable[int]) -> list[int]:
        """Children re-parented to the daemon (a subreaper) from a connector's tree: reap the
        exited ones; leave a live one in a running connector's session alone (it ends with
        that session); end one outside every connector's session (it left its connector's
        session, or its connector is gone), since nothing else could end it."""
        if not self._subreaper:
            return []
        try:
            children = Path(f"/proc/{self._me}/task/{self._me}/children").read_text().split()
        except OSError:
            return []
        running = set(leaders)  # a connector leader's pid is its session id
        live_trees = {t.marker for p, t in self._tree_of.items() if p in running}
        ended = []
        for pid in map(int, children):
            stat = proc_stat(pid)
            if (stat is None or pid in running or stat.session == self._my_session
                    or (self._watchdog is not None and pid == self._watchdog.pid)):
                continue  # a connector, one of the daemon's own (git), the watchdog
            if stat.state != "Z":
                if stat.session in running or marker_of(pid) in live_trees:
                    continue
                kill_session(stat.session, started_after=stat.start)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    ended.append(pid)
        return ended

    # --- leftovers of an earlier daemon -------------------------------------------------

    def end_leftovers(self) -> int:
        """End the sessions an earlier daemon recorded and left behind; the number of
        processes ended. A record of a live daemon, another boot or another pid namespace is
        left alone."""
        old = self._read_record()
        if not old:
            return self._say_ended(self.trees.end_leftovers(), [])
        if old.get("boot_id") != _boot_id() or old.get("pidns") != _pid_namespace():
            return 0
        owner = old.get("daemon") or {}
        if owner.get("pid") != self._me and self._alive(owner):
            log.warning(
                "%s belongs to a running daemon (pid %s): leaving its connectors alone and "
                "keeping no record", self.record, owner.get("pid"),
            )
            self.record = None
            return 0
        ended = self.trees.end_leftovers()
        for group in old.get("groups") or []:
            leader = proc_stat(int(group["pid"]))
            if leader is not None and leader.state != "Z" and leader.start != group["start"]:
                continue  # the pid belongs to another process now
            ended += kill_session(int(group["pid"]), started_after=int(group["start"]))
        self._wait_gone(old.get("groups") or [])
        return self._say_ended(ended, old.get("groups") or [])

    @staticmethod
    def _say_ended(ended: int, groups: list[dict[str, Any]]) -> int:
        if ended:
            names = ", ".join(str(g.get("name")) for g in groups)
            log.warning("ended %d process(es) left by an earlier daemon's connectors%s",
                        ended, f" ({names})" if names else "")
        return ended

    @staticmethod
    def _alive(proc: dict[str, Any]) -> bool:
        stat = proc_stat(int(proc.get("pid") or 0)) if proc.get("pid") else None
        return stat is not None and stat.state != "Z" and stat.start == proc.get("start")

    @staticmethod
    def _wait_gone(groups: list[dict[str, Any]], timeout: float = 5.0) -> None:
        """Until no live process of those sessions is left: their ports are free again."""
        sids = {int(g["pid"]) for g in groups}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(p.session in sids and p.state != "Z" for p in _all_processes()):
                return
            time.sleep(0.02)

    # --- the watchdog and the record ----------------------------------------------------

    def _start_watchdog(self) -> None:
        if not os.path.isdir("/proc"):
            return
        if self._watchdog is not None:
            self._watchdog.poll()  # reap the one that died
        try:
            trees = self.trees
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-c", WATCHDOG, trees.instance, str(trees.base or "")],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True, bufsize=0,
            )
        except OSError as exc:
            log.warning("no connector watchdog: %s", exc)
            return
        self._pipe = self._watchdog.stdin
        for sid in self.sessions:
            self._tell(f"+{sid}\n")

    def _tell(self, line: str) -> None:
        if self._pipe is None:
            return
        try:
            self._pipe.write(line.encode())
        except OSError:  # the watchdog was killed: start another, with every session
            log.warning("the connector watchdog died; starting another")
            self._start_watchdog()

    def _owns_record(self) -> bool:
        return ((self._read_record() or {}).get("daemon") or {}).get("pid") == self._me

    def _read_record(self) -> dict[str, Any] | None:
        if self.record is None:
            return None
        try:
            data = json.loads(self.record.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.record, exc)
            return None
        return data if isinstance(data, dict) else None

    def _write_record(self) -> None:
        if self.record is None:
            return
        me = proc_stat(self._me)
        data = {
            "daemon": {"pid": self._me, "start": me.start if me else 0},
            "boot_id": _boot_id(),
            "pidns": _pid_namespace(),
            "groups": list(self.sessions.values()),
        }
        tmp = self.record.with_name(self.record.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.record)
        except OSError as exc:
            log.warning("cannot record the connectors' process groups in %s: %s",
                        self.record, exc)
