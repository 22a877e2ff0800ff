"""A connector's whole tree of processes, `setsid` and double-forked children included.

A session or a process group does not hold a tree: a child may `setsid` out of it, and a
daemonizing double fork leaves its grandchild with neither. Two things do:

- a cgroup (v2), where one is writable: each connector joins a cgroup of its own before it
  execs (`preexec`), and nothing it forks can leave it; ending the tree is writing "1" to its
  `cgroup.kill` (Linux 5.14; before that, SIGKILL to each of `cgroup.procs` until empty).
  The cgroups of one instance sit under `<the daemon's cgroup>/border0-reconciler-<instance>/`.
- otherwise a marker in the environment (`MARKER=<instance>:<tree>`), which every descendant
  inherits unless it clears its environment: a tree is the processes whose /proc/PID/environ
  holds the marker. (The daemon is also a child subreaper: process_groups.py.)

Only our own are ever touched: a process of another user is never signalled (nor is its
environment readable), and one of another instance carries another instance id.
The instance id is a digest of the folder of the daemon's record, so a restarted daemon of the
same instance finds what its predecessor left after a kill -9, and another instance's never.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MARKER", "Tree", "Trees", "instance_id", "kill_until_gone", "marked", "marker_of"]

#: The environment variable that names a process's connector tree: "<instance>:<tree>".
MARKER = "BORDER0_RECONCILER_TREE"
_PREFIX = "border0-reconciler-"


def instance_id(anchor: str | os.PathLike[str] | None) -> str:
    """Stable for one instance (the real path of its record's folder), else random."""
    if anchor is None:
        return secrets.token_hex(8)
    real = os.path.realpath(os.fspath(anchor))
    return hashlib.sha256(f"{os.getuid()}:{real}".encode()).hexdigest()[:16]


def _own_pids() -> Iterator[int]:
    """The live processes of this user, but this one."""
    me, uid = os.getpid(), os.getuid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue  # another user's: never touched
        except OSError:
            continue
        yield int(entry)


def marker_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:
        return None
    key = MARKER.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(key):
            return entry[len(key):].decode("ascii", "replace")
    return None


def marked(prefix: str) -> list[int]:
    """The processes of this user whose marker starts with `prefix` ("<instance>:" for all of
    an instance's trees, "<instance>:<tree>" for one)."""
    return [pid for pid in _own_pids() if (m := marker_of(pid)) is not None
            and (m == prefix or (prefix.endswith(":") and m.startswith(prefix)))]


def kill_until_gone(find: Callable[[], list[int]], tries: int) -> int:
    """SIGKILL every process `find` names, again until it names none (a fork in flight) or
    `tries` rounds are spent; the number found."""
    found: set[int] = set()
    for _ in range(tries):
        pids = find()
        if not pids:
            break
        found.update(pids)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return len(found)


def _kill_marked(prefix: str) -> int:
    """SIGKILL every process marked `prefix`, again until none is left (a fork in flight)."""
    return kill_until_gone(lambda: marked(prefix), tries=20)


def _my_cgroup_dir() -> Path | None:
    """The folder of this process's cgroup v2, or None (no cgroup v2 mounted)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    mount = next((m.split()[4] for m in mounts if " - cgroup2 " in m), None)
    if path is None or mount is None:
        return None
    return Path(mount + path.rstrip("/")) if path != "/" else Path(mount)


def _cgroup_pids(cgroup: Path) -> list[int]:
    try:
        return [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _kill_cgroup(cgroup: Path) -> int:
    """End every process of `cgroup` (its sub-cgroups included) and remove it; the number."""
    if not cgroup.is_dir():
        return 0
    found = set(_cgroup_pids(cgroup))
    nested = sum(_kill_cgroup(child) for child in cgroup.iterdir() if child.is_dir())
    killed = False
    with contextlib.suppress(OSError):
        (cgroup / "cgroup.kill").write_text("1")
        killed = True
    deadline = time.monotonic() + 5.0
    while (pids := _cgroup_pids(cgroup)) and time.monotonic() < deadline:
        found.update(pids)
        if not killed:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    with contextlib.suppress(OSError):
        cgroup.rmdir()
    found.discard(0)
    return len(found) + nested


@dataclass
class Tree:
    """One connector's tree: its marker, and its cgroup's `cgroup.procs` when it has one."""

    token: str
    marker: str
    cgroup: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def procs_file(self) -> str | None:
        return str(self.cgroup / "cgroup.procs") if self.cgroup is not None else None


class Trees:
    """The trees of one instance: `new()` before a spawn, `end(tree)` after its leader exited,
    `end_leftovers()` for what an earlier daemon of this instance left."""

    def __init__(self, instance: str, *, cgroups: bool = True) -> None:
        self.instance = instance
        mine = _my_cgroup_dir() if cgroups else None
        #: where this instance's cgroups go (made by the first `new()` that can)
        self.base: Path | None = mine / f"{_PREFIX}{instance}" if mine is not None else None
        self._usable: bool | None = None if self.base is not None else False

    @property
    def mode(self) -> str:
        """"cgroup" once a tree got a cgroup, else "marker"."""
        return "cgroup" if self._usable else "marker"

    def _cgroup_for(self, token: str) -> Path | None:
        if self._usable is False or self.base is None:
            return None
        try:
            self.base.mkdir(exist_ok=True)
            (self.base / token).mkdir()
        except OSError:
            self._usable = False  # read-only (a container), or not delegated to this user
            return None
        self._usable = True
        return self.base / token

    def new(self) -> Tree:
        token = secrets.token_hex(8)
        marker = f"{self.instance}:{token}"
        return Tree(token, marker, self._cgroup_for(token), {MARKER: marker})

    def end(self, tree: Tree) -> int:
        """End every process of `tree`; the number found. A cgroup holds the whole tree, so
        only without one is /proc searched for the marker (one read of each of this user's
        processes' environment)."""
        if tree.cgroup is not None:
            return _kill_cgroup(tree.cgroup)
        return _kill_marked(tree.marker)

    def end_leftovers(self) -> int:
        """End every tree of this instance (cgroups and markers): at a start, when no daemon
        of this instance runs."""
        ended = 0
        if self.base is not None and self.base.is_dir():
            for child in [p for p in self.base.iterdir() if p.is_dir()]:
                ended += _kill_cgroup(child)
            self.close()
        return ended + _kill_marked(f"{self.instance}:")

    def close(self) -> None:
        """Remove the instance's cgroup folder; only an empty one goes (a live tree keeps it)."""
        if self.base is not None:
            with contextlib.suppress(OSError):
                self.base.rmdir()
