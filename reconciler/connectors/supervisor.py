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
- No orphans: each child leads its own session and process group (`start_new_session`) and, on
  Linux, gets PR_SET_PDEATHSIG=SIGKILL, so it dies with the daemon even on SIGKILL. The kernel
  sends that signal when the *thread* that forked the child ends, which is why every child is
  spawned by the one supervisor thread, which lives until `stop_all()`. What a connector forks
  is covered by `groups` (process_groups.py and trees.py: each connector's whole tree, a
  watchdog, a record for the next daemon, a subreaper), which the daemon passes.
- Child stdout and stderr become log lines on `reconciler.connector` with extra={"socket": name},
  every secret value (the `secrets` callable, the border0 token) replaced by ``(sensitive)``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping

from reconciler.backoff import backoff
from reconciler.clock import SYSTEM, Clock
from reconciler.connectors.argv import (
    DEFAULT_TEMPLATE,
    LOCAL_CONNECTOR_TEMPLATE,
    ConnectorTarget,
    TemplateError,
    env_for_token,
    validate_template,
)
from reconciler.connectors.connector import (
    REMOVE,
    TRANSITIONS,
    Connector,
    ConnectorStatus,
    IllegalTransition,
    Launch,
    S,
    State,
    connector_targets,
)
from reconciler.connectors.process import has_exited
from reconciler.connectors.process_groups import ProcessGroups
from reconciler.connectors.wakeup import PIDFD, Wakeup
from reconciler.secrets import redact, redaction_set
from reconciler.settings import DEFAULTS

__all__ = [  # with the names of argv.py and connector.py that callers import from here
    "DEFAULT_TEMPLATE", "LOCAL_CONNECTOR_TEMPLATE", "TRANSITIONS", "Connector", "ConnectorStatus",
    "ConnectorTarget", "IllegalTransition", "State", "Supervisor", "TemplateError",
    "connector_targets", "env_for_token",
]

_TOKEN_VARS = ("BORDER0_ADMIN_TOKEN", "BORDER0_TOKEN")
_POLL = 0.05  # seconds between checks for exited children
#: ... once every child has been up startsecs: a RUNNING child's exit is noticed within this
#: (its restart waits at least backoff_base anyway); 50 ms polls of 50 children cost an idle
#: daemon about 1.3 % of a core.
_POLL_RUNNING = 0.5
#: With pidfds nothing needs a poll; the thread still turns this often.
_IDLE_WAIT = 60.0


class Supervisor:
    """Keeps one connector process per target running; see the module docstring."""

    def __init__(
        self,
        *,
        command_template: str | None = None,
        env: Mapping[str, str] | None = None,
        startsecs: float = DEFAULTS.connector_startsecs,
        stop_timeout: float = DEFAULTS.connector_stop_timeout,
        backoff_base: float = DEFAULTS.connector_backoff_base,
        backoff_max: float = DEFAULTS.connector_backoff_max,
        fatal_after: int = DEFAULTS.connector_start_retries,
        log: logging.Logger | None = None,
        secrets: Callable[[], Iterable[str]] | None = None,
        stable_secs: float = 60.0,
        protected_paths: Iterable[str] = (),
        groups: ProcessGroups | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.template = DEFAULT_TEMPLATE if command_template is None else command_template
        #: The time of startsecs, backoff and stable runs (tests hand in a ManualClock, so a
        #: backoff is checked by the delays chosen, not by waiting them out).
        self.clock = clock
        validate_template(self.template)
        self.child_env = {**os.environ, **(env or {})}
        self.startsecs = startsecs
        self.stop_timeout = stop_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.fatal_after = max(1, fatal_after)
        self.stable_secs = stable_secs
        #: what the built-in web server may never serve (the manifests, the state, the token)
        self.protected_paths = tuple(protected_paths)
        #: the daemon's guards against orphans after a SIGKILL (watchdog, record, subreaper)
        self.groups = groups
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
        if self.groups is not None:
            self.groups.close()

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
        targets = tuple(v for t in list(self._desired.values()) for _k, v in t.env)  # their tokens
        return redact(text, redaction_set(self._last_secrets + self._tokens + targets))

    # --- the supervisor thread -----------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="connector-supervisor", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        if self.groups is not None:
            try:
                self.groups.start()  # ends an earlier daemon's leftovers before any start
            except Exception:  # never keep connectors from starting
                self.log.exception("connector process guards failed to start")
        while True:
            self._wake.clear()
            with self._lock:
                try:
                    self._tick(self.clock.monotonic())
                except Exception:  # the loop must outlive any one bug
                    self.log.exception("connector supervisor error")
                self._seen = self._generation
                self._lock.notify_all()
                if self._stopping and not self._connectors:
                    return
                wait = self._next_wait(self.clock.monotonic())
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

    def _launch(self) -> Launch:
        """What each connector needs from here, as it is now (stop_all may shorten the stop)."""
        return Launch(self.template, self.protected_paths, self.child_env, self._tokens,
                      self.startsecs, self.stop_timeout, self.fatal_after, self.stable_secs,
                      self._delay, self, self.groups)

    def _tick(self, now: float) -> None:
        launch = self._launch()
        if self._reset:
            self._reset = False
            for conn in self._connectors.values():
                conn.reset(launch, now)
        self._match_desired(launch, now)
        for conn in list(self._connectors.values()):
            if conn.proc is not None and has_exited(conn.proc) and conn.on_exit(launch, now):
                del self._connectors[conn.name]
                continue
            conn.on_tick(launch, now)
        if self.groups is not None:
            self.groups.reap_orphans(c.proc.pid for c in self._connectors.values() if c.proc)

    def _match_desired(self, launch: Launch, now: float) -> None:
        for name, conn in list(self._connectors.items()):
            want = self._desired.get(name, REMOVE)
            if conn.state is S.STOPPING:
                conn.pending = want
            elif want is REMOVE or want != conn.target:
                conn.pending = want
                if conn.stop(launch, now):
                    del self._connectors[name]
        for name, target in self._desired.items():
            if name not in self._connectors:
                conn = self._connectors[name] = Connector(target, self.log)
                conn.spawn(launch, now)

    def _delay(self, level: int) -> float:
        return backoff(level + 1, base=self.backoff_base, cap=self.backoff_max)
