"""One connector: its target (from the manifests and border0), its state table (supervisord's
states, every legal transition listed once), its status, and its behaviour, as supervisord's
`Subprocess` owns its own: `spawn`, `stop`, `on_exit` and `on_tick` change its state only
through `_change_state`. The supervisor (supervisor.py) matches targets and ticks; what a
connector needs from it (the command template, the timings, the process guards, the sink for
its output) comes in one `Launch` value."""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reconciler.connectors.argv import ConnectorTarget, child_command
from reconciler.connectors.process import Output, Sink, killpg
from reconciler.connectors.process_groups import preexec_for
from reconciler.model import Actual, Desired

__all__ = [
    "REMOVE",
    "TRANSITIONS",
    "Connector",
    "ConnectorStatus",
    "IllegalTransition",
    "Launch",
    "State",
    "connector_targets",
]


class State(Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"
    FATAL = "fatal"


S = State
#: Every legal transition; `Connector._change_state` refuses anything else.
TRANSITIONS: Mapping[State, frozenset[State]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.STOPPING}),
    S.RUNNING: frozenset({S.EXITED, S.STOPPING}),
    S.EXITED: frozenset({S.BACKOFF}),
    S.BACKOFF: frozenset({S.STARTING, S.FATAL, S.STOPPED}),
    S.STOPPING: frozenset({S.STOPPED}),
    S.FATAL: frozenset({S.STARTING, S.STOPPED}),
}


class IllegalTransition(RuntimeError):
    """A state change the table does not allow: a bug in the supervisor, never a user error."""


@dataclass(frozen=True)
class ConnectorStatus:
    """What /status and /metrics show for one connector."""

    name: str
    state: State
    pid: int | None
    restarts: int
    last_exit_code: int | None  # negative: killed by that signal (-9 = SIGKILL)
    since: float  # time.time() of the last state change
    last_error: str | None = None
    socket_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "pid": self.pid,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "since": self.since,
            "last_error": self.last_error,
            "socket_id": self.socket_id,
        }


REMOVE = object()  # `Connector.pending` value: stop, then forget this connector


@dataclass(frozen=True)
class Launch:
    """What a connector needs from its supervisor to start, watch and stop its process."""

    template: str
    protected_paths: tuple[str, ...]
    child_env: Mapping[str, str]
    tokens: tuple[str, ...]  # the border0 tokens its command line must never show
    startsecs: float  # up this long: a start that counts
    stop_timeout: float  # SIGTERM, then SIGKILL after this long
    fatal_after: int  # failed starts in a row before FATAL
    stable_secs: float  # a run this long resets the backoff
    delay: Callable[[int], float]  # the backoff delay at a level
    sink: Sink  # where its output goes (log, through the redactor)
    groups: Any = None  # process_groups.ProcessGroups: the guards against orphans


class Connector:
    """The supervisor's record of one connector; touched only under the supervisor's lock."""

    def __init__(self, target: ConnectorTarget, log: logging.Logger | None = None) -> None:
        self.name = target.name
        self.target = target
        self.state = State.STOPPED
        self.since = time.time()
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: Output | None = None
        self.restarts = 0
        self.last_exit_code: int | None = None
        self.last_error: str | None = None
        self.failed_starts = 0  # consecutive exits before startsecs
        self.backoff_level = 0  # the next backoff delay is base * 2**level
        self.deadline = (
            0.0  # monotonic; STARTING: counts as started, BACKOFF: restart, STOPPING: kill
        )
        self.running_since = 0.0
        self.killed = False
        self.pending: Any = None  # after the stop: a ConnectorTarget to start, or REMOVE
        self.history: collections.deque[tuple[State, State]] = collections.deque(maxlen=64)
        self._log = log or logging.getLogger("reconciler.connector")

    def _change_state(self, new: State) -> None:
        """The one place a state changes; refuses transitions the table does not list."""
        old = self.state
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(
                f"connector {self.name}: {old.value} -> {new.value} is not allowed"
            )
        self.state = new
        self.since = time.time()
        self.history.append((old, new))
        self._log.debug(
            "connector %s: %s -> %s", self.name, old.value, new.value, extra={"socket": self.name}
        )

    # --- behaviour (the supervisor's thread, under its lock) -----------------------------------

    def spawn(self, launch: Launch, now: float) -> None:
        """Start the process: STARTING until it has stayed up `startsecs`."""
        self._change_state(S.STARTING)
        self.killed = False
        tree = None
        groups = launch.groups
        try:
            argv, env = child_command(launch.template, self.target, launch.protected_paths,
                                      launch.child_env, launch.tokens)
            tree = groups.new_tree() if groups is not None else None
            proc = subprocess.Popen(  # preexec: a cgroup join and prctl only, pre-resolved
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env={**env, **tree.env} if tree is not None else env,
                start_new_session=True, close_fds=True,
                preexec_fn=preexec_for(os.getpid(), tree.procs_file if tree else None),  # noqa: PLW1509
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            if tree is not None and groups is not None:  # its empty cgroup
                groups.trees.end(tree)
            self.proc = None
            self._failed_start(launch, now, launch.sink.redact(f"cannot start: {exc}"))
            return
        self.proc = proc
        if groups is not None:
            groups.add(proc.pid, self.name, tree)
        assert proc.stdout is not None
        self.output = Output(self.name, proc.pid, proc.stdout, launch.sink)
        self.output.start()
        self.deadline = now + launch.startsecs
        self._log.info("connector %s: starting (pid %d)", self.name, proc.pid,
                       extra={"socket": self.name, "pid": proc.pid})

    def reset(self, launch: Launch, now: float) -> None:
        """SIGHUP: a FATAL connector gets a fresh series of starts."""
        if self.state is S.FATAL and self.pending is None:
            self.failed_starts = self.backoff_level = 0
            self._log.info("connector %s: fatal reset, starting", self.name,
                           extra={"socket": self.name})
            self.spawn(launch, now)

    def _failed_start(self, launch: Launch, now: float, error: str) -> None:
        self.failed_starts += 1
        self._change_state(S.BACKOFF)
        if self.failed_starts >= launch.fatal_after:
            self.last_error = f"{error}; gave up after {self.failed_starts} failed starts"
            self._change_state(S.FATAL)
            self._log.error("connector %s: fatal: %s", self.name, self.last_error,
                            extra={"socket": self.name})
            return
        self._backoff(launch, now, error)

    def _backoff(self, launch: Launch, now: float, error: str) -> None:
        delay = launch.delay(self.backoff_level)
        self.backoff_level += 1
        self.deadline = now + delay
        self.last_error = error
        self._log.warning("connector %s: %s; restarting in %.1fs", self.name, error, delay,
                          extra={"socket": self.name})

    def _reap(self, launch: Launch) -> int:
        assert self.proc is not None
        killpg(self.proc.pid, signal.SIGKILL)  # whatever the child left in its group
        if launch.groups is not None:  # ... and in its session; before the wait frees the pid
            launch.groups.remove(self.proc.pid)
        code = self.proc.wait()
        if self.output is not None:
            self.output.join(0.5)
        self.proc = None
        self.last_exit_code = code
        return code

    def on_exit(self, launch: Launch, now: float) -> bool:
        """Its process ended; True when the connector is to be forgotten."""
        code = self._reap(launch)
        if self.state is S.STARTING:
            self._failed_start(launch, now, self.describe_exit(code) + " (while starting)")
        elif self.state is S.RUNNING:
            self._change_state(S.EXITED)
            if now - self.running_since >= launch.stable_secs:
                self.backoff_level = 0
            self._change_state(S.BACKOFF)
            self._backoff(launch, now, self.describe_exit(code))
        elif self.state is S.STOPPING:
            self._change_state(S.STOPPED)
            self._log.info("connector %s: stopped", self.name, extra={"socket": self.name})
            return self._after_stop(launch, now)
        return False

    def on_tick(self, launch: Launch, now: float) -> None:
        """Its deadline: started for good, restart after the backoff, or SIGKILL."""
        if now < self.deadline:
            return
        if self.state is S.STARTING and self.proc is not None:
            self._change_state(S.RUNNING)
            self.failed_starts = 0
            self.running_since = now
            self._log.info("connector %s: running (pid %d)", self.name, self.proc.pid,
                           extra={"socket": self.name, "pid": self.proc.pid})
        elif self.state is S.BACKOFF:
            self.restarts += 1
            self.spawn(launch, now)
        elif self.state is S.STOPPING and not self.killed and self.proc is not None:
            self.killed = True
            self._log.warning("connector %s: no exit %.1fs after SIGTERM, sending SIGKILL",
                              self.name, launch.stop_timeout, extra={"socket": self.name})
            killpg(self.proc.pid, signal.SIGKILL)

    def stop(self, launch: Launch, now: float) -> bool:
        """SIGTERM its process group (SIGKILL at the deadline); True when it is to be
        forgotten at once (it had no process)."""
        if self.state in (S.STARTING, S.RUNNING) and self.proc is not None:
            self._change_state(S.STOPPING)
            self.deadline = now + launch.stop_timeout
            self._log.info("connector %s: stopping (pid %d)", self.name, self.proc.pid,
                           extra={"socket": self.name})
            killpg(self.proc.pid, signal.SIGTERM)
        elif self.state in (S.BACKOFF, S.FATAL):
            self._change_state(S.STOPPED)
            return self._after_stop(launch, now)
        return False

    def _after_stop(self, launch: Launch, now: float) -> bool:
        want, self.pending = self.pending, None
        if want is REMOVE or want is None:
            return True
        self.target = want
        self.failed_starts = self.backoff_level = 0
        self.last_error = None
        self.spawn(launch, now)
        return False

    def describe_exit(self, code: int) -> str:
        """How the process ended, with its last line of output."""
        what = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        last = self.output.last_line if self.output is not None else ""
        return f"{what}: {last}" if last else what

    def status(self) -> ConnectorStatus:
        return ConnectorStatus(
            name=self.name,
            state=self.state,
            pid=self.proc.pid if self.proc is not None else None,
            restarts=self.restarts,
            last_exit_code=self.last_exit_code,
            since=self.since,
            last_error=self.last_error,
            socket_id=self.target.socket_id,
        )


def connector_targets(
    desired: Desired, actual: Actual, previous: Mapping[str, ConnectorTarget] | None = None
) -> dict[str, ConnectorTarget]:
    """A target for every socket whose manifest enables a connector and that exists in border0.

    A suspended socket keeps the target it had in `previous` (the last sync), or none: its
    connector is neither started, stopped nor restarted while the annotation is there.
    """
    targets: dict[str, ConnectorTarget] = {}
    for name, spec in desired.sockets.items():
        if spec.suspend:
            if previous and name in previous:
                targets[name] = previous[name]
            continue
        live = actual.sockets.get(name)
        if spec.connector is None or not spec.connector.enabled or live is None:
            continue
        targets[name] = ConnectorTarget(
            name=name,
            spec=spec.connector,
            socket_type=spec.type,
            socket_id=live.socket_id,
            tcp_ports=live.tcp_ports,
        )
    return targets
