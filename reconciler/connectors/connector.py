"""One connector as the supervisor sees it: its target (from the manifests and border0), its
state table (supervisord's states, every legal transition listed once) and its status."""

from __future__ import annotations

import collections
import logging
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reconciler.connectors.argv import ConnectorTarget
from reconciler.connectors.process import Output
from reconciler.model import Actual, Desired

__all__ = [
    "REMOVE",
    "TRANSITIONS",
    "Connector",
    "ConnectorStatus",
    "IllegalTransition",
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
