"""Connector supervision: one child process per socket that asks for one, kept alive.

A small supervisord driven by the manifests. The daemon calls `sync(targets)` after each apply;
one long-lived supervisor thread starts, watches, restarts and stops the children to match.

States (as supervisord's)::

    STOPPED -> STARTING -> RUNNING -> EXITED -> BACKOFF -> STARTING ...
                  |  \\        \\                   |  \\
                  |   BACKOFF   STOPPING -> STOPPED  |   FATAL -> STARTING (spec change, SIGHUP)
                  +-> STOPPING                       +-> STOPPED

- A start counts once the process has stayed up `startsecs`. An exit before that is a failed
  start; `fatal_after` failed starts in a row make it FATAL until its target changes or
  `reset_fatal()` (SIGHUP).
- Any unexpected exit is followed by BACKOFF: `backoff_base` doubling up to `backoff_max`; a run
  of at least `stable_secs` resets the delay.
- Stop: SIGTERM to the child's process group, SIGKILL after `stop_timeout`; whatever is left in
  the group once the child has exited is killed too.
- No orphans: each child leads its own process group (`start_new_session`) and, on Linux, gets
  PR_SET_PDEATHSIG=SIGKILL, so it dies with the daemon even on SIGKILL. The kernel sends that
  signal when the *thread* that forked the child ends, which is why every child is spawned by
  the one supervisor thread, which lives until `stop_all()`. It covers the direct child only:
  grandchildren a connector spawns itself are not covered if the daemon is SIGKILLed.
- Child stdout and stderr become log lines on `reconciler.connector` with extra={"socket": name},
  every secret value (the `secrets` callable, the border0 token) replaced by ``(sensitive)``.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import IO, Any

from reconciler.backoff import backoff
from reconciler.connectors.argv import (
    DEFAULT_TEMPLATE,
    LOCAL_CONNECTOR_TEMPLATE,
    ConnectorTarget,
    TemplateError,
    env_for_token,
    render_command,
    validate_template,
)
from reconciler.connectors.wakeup import PIDFD, Wakeup
from reconciler.model import Actual, Desired
from reconciler.secrets import redact, redaction_set

__all__ = [
    "DEFAULT_TEMPLATE",
    "LOCAL_CONNECTOR_TEMPLATE",
    "TRANSITIONS",
    "Connector",
    "ConnectorStatus",
    "ConnectorTarget",
    "IllegalTransition",
    "State",
    "Supervisor",
    "TemplateError",
    "connector_targets",
    "env_for_token",
]

_TOKEN_VARS = ("BORDER0_ADMIN_TOKEN", "BORDER0_TOKEN")
_POLL = 0.05  # seconds between checks for exited children
#: ... once every child has been up startsecs: a RUNNING child's exit is noticed within this
#: (its restart waits at least backoff_base anyway); 50 ms polls of 50 children cost an idle
#: daemon about 1.3 % of a core.
_POLL_RUNNING = 0.5
#: With pidfds nothing needs a poll; the thread still turns this often.
_IDLE_WAIT = 60.0


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


_REMOVE = object()  # `Connector.pending` value: stop, then forget this connector


class Connector:
    """The supervisor's record of one connector; touched only under the supervisor's lock."""

    def __init__(self, target: ConnectorTarget, log: logging.Logger | None = None) -> None:
        self.name = target.name
        self.target = target
        self.state = State.STOPPED
        self.since = time.time()
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: _Output | None = None
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
        self.pending: Any = None  # after the stop: a ConnectorTarget to start, or _REMOVE
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


class _Output(threading.Thread):
    """Reads one child's merged stdout/stderr and logs each line, secrets redacted."""

    def __init__(self, name: str, pid: int, pipe: IO[bytes], sup: Supervisor) -> None:
        super().__init__(name=f"connector-output-{name}", daemon=True)
        self.socket, self.pid, self.pipe, self.sup = name, pid, pipe, sup
        self.last_line = ""

    def run(self) -> None:
        try:
            for raw in iter(self.pipe.readline, b""):
                line = self.sup.redact(raw.decode("utf-8", "replace").rstrip("\r\n"))
                if line.strip():
                    self.last_line = line
                self.sup.log.info(
                    "%s: %s", self.socket, line, extra={"socket": self.socket, "pid": self.pid}
                )
        except (OSError, ValueError):
            pass
        finally:
            self.pipe.close()


_PR_SET_PDEATHSIG = 1


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


def _preexec_for(parent: int) -> Callable[[], None] | None:
    """Runs in the forked child before exec: die with the spawning thread (Linux only)."""
    if _PRCTL is None:
        return None
    prctl, sigkill = _PRCTL, int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:  # the daemon died between fork and prctl
            os._exit(1)

    return preexec


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the child has exited, *without* reaping it: while it is a zombie its pid
    (and so its process group id) cannot be reused, so killing the group stays safe."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True
    except AttributeError:  # pragma: no cover - no waitid on this platform
        return proc.poll() is not None


def _killpg(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    """Keeps one connector process per target running; see the module docstring."""

    def __init__(
        self,
        *,
        command_template: str | None = None,
        env: Mapping[str, str] | None = None,
        startsecs: float = 3.0,
        stop_timeout: float = 10.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        fatal_after: int = 5,
        log: logging.Logger | None = None,
        secrets: Callable[[], Iterable[str]] | None = None,
        stable_secs: float = 60.0,
    ) -> None:
        self.template = DEFAULT_TEMPLATE if command_template is None else command_template
        validate_template(self.template)
        self.child_env = {**os.environ, **(env or {})}
        self.startsecs = startsecs
        self.stop_timeout = stop_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.fatal_after = max(1, fatal_after)
        self.stable_secs = stable_secs
        self.log = log or logging.getLogger("reconciler.connector")
        self._secrets = secrets
        self._tokens = tuple(self.child_env[v] for v in _TOKEN_VARS if self.child_env.get(v))
        self._last_secrets: tuple[str, ...] = ()

        self._lock = threading.Condition()
        self._wake = Wakeup()  # set by sync/reset/stop; wait() also wakes on child exits
        self._desired: dict[str, ConnectorTarget] = {}
        self._connectors: dict[str, Connector] = {}
        self._generation = 0  # bumped by every sync(); the loop acknowledges with _seen
        self._seen = 0
        self._reset = False
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None

    # --- the public surface --------------------------------------------------------------

    def sync(self, targets: Mapping[str, ConnectorTarget]) -> None:
        """Start, restart and stop connectors to match `targets`; returns once the supervisor
        thread has acted on it (processes spawned, SIGTERMs sent), not when stops complete."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the supervisor was stopped")
            self._desired = dict(targets)
            self._generation += 1
            generation = self._generation
            self._ensure_thread()
        self._wake.set()
        with self._lock:
            self._lock.wait_for(lambda: self._seen >= generation, timeout=10.0)

    def status(self) -> list[ConnectorStatus]:
        with self._lock:
            return [self._connectors[n].status() for n in sorted(self._connectors)]

    def reset_fatal(self) -> None:
        """SIGHUP: give every FATAL connector a fresh series of starts."""
        with self._lock:
            self._reset = True
        self._wake.set()

    def stop_all(self, timeout: float | None = None) -> None:
        """Stop every connector (SIGTERM, SIGKILL after `timeout` or `stop_timeout`) and wait."""
        with self._lock:
            self._closed = True
            self._stopping = True
            self._desired = {}
            if timeout is not None:
                self.stop_timeout = timeout
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(self.stop_timeout + 10.0)
            if thread.is_alive():
                self.log.error("connector supervisor did not stop in time")

    def transitions(self, name: str) -> list[tuple[State, State]]:
        """The recent state changes of one connector (for tests and debugging)."""
        with self._lock:
            conn = self._connectors.get(name)
            return list(conn.history) if conn else []

    def redact(self, text: str) -> str:
        """`text` with every secret value and the border0 token replaced by (sensitive)."""
        if self._secrets is not None:
            try:
                self._last_secrets = tuple(str(s) for s in self._secrets())
            except Exception as exc:  # noqa: BLE001 - keep the last good set, never leak
                self.log.debug("connector secrets unavailable: %s", type(exc).__name__)
        return redact(text, redaction_set(self._last_secrets + self._tokens))

    # --- the supervisor thread -----------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="connector-supervisor", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.clear()
            with self._lock:
                try:
                    self._tick(time.monotonic())
                except Exception:  # the loop must outlive any one bug
                    self.log.exception("connector supervisor error")
                self._seen = self._generation
                self._lock.notify_all()
                if self._stopping and not self._connectors:
                    return
                wait = self._next_wait(time.monotonic())
                pids = [c.proc.pid for c in self._connectors.values() if c.proc is not None]
            self._wake.wait(wait, pids=pids)

    def _next_wait(self, now: float) -> float:
        """Until the next deadline; a child's exit wakes the thread through its pidfd, so
        children are polled only where there are no pidfds."""
        wait = _IDLE_WAIT if PIDFD else 1.0
        for conn in self._connectors.values():
            if conn.proc is not None and not PIDFD:
                wait = min(wait, _POLL_RUNNING if conn.state is S.RUNNING else _POLL)
            if conn.state in (S.STARTING, S.BACKOFF, S.STOPPING):
                wait = min(wait, max(0.0, conn.deadline - now))
        return wait

    def _tick(self, now: float) -> None:
        if self._reset:
            self._reset = False
            for conn in self._connectors.values():
                if conn.state is S.FATAL and conn.pending is None:
                    conn.failed_starts = conn.backoff_level = 0
                    self.log.info(
                        "connector %s: fatal reset, starting",
                        conn.name,
                        extra={"socket": conn.name},
                    )
                    self._spawn(conn, now)
        self._match_desired(now)
        for conn in list(self._connectors.values()):
            if conn.proc is not None and _has_exited(conn.proc):
                self._on_exit(conn, now)
            self._on_timer(conn, now)

    def _match_desired(self, now: float) -> None:
        for name, conn in list(self._connectors.items()):
            want = self._desired.get(name, _REMOVE)
            if conn.state is S.STOPPING:
                conn.pending = want
            elif want is _REMOVE or want != conn.target:
                conn.pending = want
                self._stop(conn, now)
        for name, target in self._desired.items():
            if name not in self._connectors:
                conn = self._connectors[name] = Connector(target, self.log)
                self._spawn(conn, now)

    def _delay(self, level: int) -> float:
        return backoff(level + 1, base=self.backoff_base, cap=self.backoff_max)

    def _spawn(self, conn: Connector, now: float) -> None:
        conn._change_state(S.STARTING)
        conn.killed = False
        try:
            argv = render_command(self.template, conn.target)
            if any(tok in arg for tok in self._tokens for arg in argv):
                raise TemplateError("the border0 token may not appear on a connector command line")
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.child_env,
                start_new_session=True,
                preexec_fn=_preexec_for(os.getpid()),  # noqa: PLW1509 - only prctl, pre-resolved
                close_fds=True,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            conn.proc = None
            self._failed_start(conn, now, self.redact(f"cannot start: {exc}"))
            return
        conn.proc = proc
        assert proc.stdout is not None
        conn.output = _Output(conn.name, proc.pid, proc.stdout, self)
        conn.output.start()
        conn.deadline = now + self.startsecs
        self.log.info(
            "connector %s: starting (pid %d)",
            conn.name,
            proc.pid,
            extra={"socket": conn.name, "pid": proc.pid},
        )

    def _failed_start(self, conn: Connector, now: float, error: str) -> None:
        conn.failed_starts += 1
        conn._change_state(S.BACKOFF)
        if conn.failed_starts >= self.fatal_after:
            conn.last_error = f"{error}; gave up after {conn.failed_starts} failed starts"
            conn._change_state(S.FATAL)
            self.log.error(
                "connector %s: fatal: %s", conn.name, conn.last_error, extra={"socket": conn.name}
            )
            return
        self._backoff(conn, now, error)

    def _backoff(self, conn: Connector, now: float, error: str) -> None:
        delay = self._delay(conn.backoff_level)
        conn.backoff_level += 1
        conn.deadline = now + delay
        conn.last_error = error
        self.log.warning(
            "connector %s: %s; restarting in %.1fs",
            conn.name,
            error,
            delay,
            extra={"socket": conn.name},
        )

    def _reap(self, conn: Connector) -> int:
        assert conn.proc is not None
        _killpg(conn.proc.pid, signal.SIGKILL)  # whatever the child left in its group
        code = conn.proc.wait()
        if conn.output is not None:
            conn.output.join(0.5)
        conn.proc = None
        conn.last_exit_code = code
        return code

    def _describe_exit(self, conn: Connector, code: int) -> str:
        what = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        last = conn.output.last_line if conn.output is not None else ""
        return f"{what}: {last}" if last else what

    def _on_exit(self, conn: Connector, now: float) -> None:
        code = self._reap(conn)
        if conn.state is S.STARTING:
            self._failed_start(conn, now, self._describe_exit(conn, code) + " (while starting)")
        elif conn.state is S.RUNNING:
            conn._change_state(S.EXITED)
            if now - conn.running_since >= self.stable_secs:
                conn.backoff_level = 0
            conn._change_state(S.BACKOFF)
            self._backoff(conn, now, self._describe_exit(conn, code))
        elif conn.state is S.STOPPING:
            conn._change_state(S.STOPPED)
            self.log.info("connector %s: stopped", conn.name, extra={"socket": conn.name})
            self._after_stop(conn, now)

    def _on_timer(self, conn: Connector, now: float) -> None:
        if now < conn.deadline:
            return
        if conn.state is S.STARTING and conn.proc is not None:
            conn._change_state(S.RUNNING)
            conn.failed_starts = 0
            conn.running_since = now
            self.log.info(
                "connector %s: running (pid %d)",
                conn.name,
                conn.proc.pid,
                extra={"socket": conn.name, "pid": conn.proc.pid},
            )
        elif conn.state is S.BACKOFF:
            conn.restarts += 1
            self._spawn(conn, now)
        elif conn.state is S.STOPPING and not conn.killed and conn.proc is not None:
            conn.killed = True
            self.log.warning(
                "connector %s: no exit %.1fs after SIGTERM, sending SIGKILL",
                conn.name,
                self.stop_timeout,
                extra={"socket": conn.name},
            )
            _killpg(conn.proc.pid, signal.SIGKILL)

    def _stop(self, conn: Connector, now: float) -> None:
        if conn.state in (S.STARTING, S.RUNNING) and conn.proc is not None:
            conn._change_state(S.STOPPING)
            conn.deadline = now + self.stop_timeout
            self.log.info(
                "connector %s: stopping (pid %d)",
                conn.name,
                conn.proc.pid,
                extra={"socket": conn.name},
            )
            _killpg(conn.proc.pid, signal.SIGTERM)
        elif conn.state in (S.BACKOFF, S.FATAL):
            conn._change_state(S.STOPPED)
            self._after_stop(conn, now)

    def _after_stop(self, conn: Connector, now: float) -> None:
        want, conn.pending = conn.pending, None
        if want is _REMOVE or want is None:
            del self._connectors[conn.name]
            return
        conn.target = want
        conn.failed_starts = conn.backoff_level = 0
        conn.last_error = None
        self._spawn(conn, now)


def connector_targets(desired: Desired, actual: Actual) -> dict[str, ConnectorTarget]:
    """A target for every socket whose manifest enables a connector and that exists in border0."""
    targets: dict[str, ConnectorTarget] = {}
    for name, spec in desired.sockets.items():
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
