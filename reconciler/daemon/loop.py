"""The `run` loop: keep border0 matching the manifests, and the connectors running.

The daemon is a few named root parts (started and stopped in parts.py) around one loop (kopf's
shape):

    watcher     watchdog on PATH (and the directories holding its symlinks) -> trigger("change")
    scheduler   APScheduler interval with jitter                             -> trigger("interval")
    signals     SIGHUP -> trigger("SIGHUP"); SIGTERM/SIGINT -> request_stop()  (flags only)
    server      /healthz /readyz /metrics /status, reading what the loop publishes
    connectors  the Supervisor, synced after each reconcile that got as far as the API
    loop        the main thread: waits for a trigger, runs ONE reconcile, publishes the outcome

Single flight falls out of the shape: only the loop reconciles, and triggers that arrive while it
runs only mark it dirty, so they cause exactly one more run after it. A failure to reach border0
is retried sooner than the interval (exponential backoff, capped); invalid manifests are not
retried (the next change or interval will be), and the last good desired state stays in force.
Manifests that changed while being read are read again after the debounce; deletes deferred
until the manifests are quiet for `delete_grace` are planned again then (see reconcile.py).

Readiness: ready after the first successful reconcile, until `fail_threshold` reconciles in a
row fail talking to border0 (fetch or apply); invalid manifests do not change it. Health: the
loop has turned within `heartbeat_stale` seconds and no root part has died.

Shutdown is staged: stop taking triggers (watcher, scheduler), let the reconcile in flight finish
(the loop checks the stop flag only between reconciles), stop connectors within their stop
timeout, then the server.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from reconciler.connectors.agents import connector_start_targets
from reconciler.connectors.connector import connector_targets
from reconciler.connectors.wakeup import Wakeup
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.drift import DriftLog
from reconciler.daemon.history import History, reconcile_entry
from reconciler.daemon.logs import RedactFilter
from reconciler.daemon.metrics import DaemonMetrics
from reconciler.daemon.outcome import FAILURE, INVALID, SUCCESS, Next, decide
from reconciler.daemon.parts import RootParts
from reconciler.daemon.report import errors_of, log_outcome, waiting_deletions
from reconciler.daemon.revision import source_revision
from reconciler.daemon.settle import Settling
from reconciler.daemon.signals import SignalFlags
from reconciler.daemon.state import (
    iso_time,
    object_states,
    secret_values,
    state_counts,
)
from reconciler.daemon.status import StatusReads
from reconciler.daemon.status_server import StatusServer
from reconciler.daemon.watch import ManifestWatcher
from reconciler.daemon.windows import Gate, gate
from reconciler.manifests.cache import ParseCache
from reconciler.plan.inventory import INVENTORY_FILE, Inventory
from reconciler.reconcile import Focus, ReconcileResult, Stage, reconcile

__all__ = ["FAILURE", "INVALID", "SUCCESS", "Daemon", "DaemonConfig"]

log = logging.getLogger("reconciler.daemon")

#: How often an idle loop turns its heartbeat and looks for dead parts. Signals, triggers and
#: stop requests wake it at once (`Wakeup`: the signal wake-up fd), so it need not poll them.
SIGNAL_POLL = 5.0


class Daemon(RootParts, StatusReads):
    """One reconciler daemon. Every dependency is a keyword argument with a default."""

    def __init__(
        self,
        config: DaemonConfig,
        client: Any,
        *,
        reconcile_fn: Callable[..., ReconcileResult] = reconcile,
        supervisor: Any = None,
        redactor: RedactFilter | None = None,
        watcher_factory: Callable[..., Any] = ManifestWatcher,
        scheduler_factory: Callable[[], Any] = lambda: BackgroundScheduler(daemon=True),
        server_factory: Callable[..., Any] = StatusServer,
        revision_fn: Callable[[str], str | None] = source_revision,
        reporter: Any = None,
        leader: Any = None,
        routes: Sequence[Any] = (),
    ) -> None:
        self.config = config
        self.client = client
        self.supervisor = supervisor
        self.redactor = redactor or RedactFilter()
        self._reconcile_fn = reconcile_fn
        self._watcher_factory = watcher_factory
        self._scheduler_factory = scheduler_factory
        self._server_factory = server_factory
        self._revision_fn = revision_fn
        self.reporter = reporter  # events.EventReporter with --notify
        self._connector_targets: dict[str, Any] = {}  # the last sync (suspended ones keep theirs)
        self.leader = leader  # a lease.LeaderElector with --leader-elect: only its leader writes
        self._routes = tuple(routes)  # POST /reconcile (trigger.py) when a token is configured
        self.metrics = DaemonMetrics(
            request_counts=lambda: getattr(client, "request_counts", None),
            connectors=self._connector_statuses,
        )
        self.metrics.leader.set_function(lambda: 1 if self.leads() else 0)
        if hasattr(client, "on_request"):  # border0.client: API latency by operation
            client.on_request = self.metrics.observe_request
        self.watcher: Any = None
        self.scheduler: Any = None
        self.server: Any = None

        self._lock = threading.Lock()  # guards _pending and the published snapshot
        self._wake = Wakeup()
        self._parse_cache = ParseCache()  # an edit re-parses only the files it touched
        #: the ids this instance manages, beside its state: recognises a socket of ours that
        #: someone wrote back without its tags
        self.inventory = Inventory(
            None if config.state_dir is None else f"{config.state_dir}/{INVENTORY_FILE}")
        self._kept_at: float | None = None  # when the shown objects' data was read
        self._attempt_at: float | None = None  # when the last reconcile started
        self._stop = threading.Event()
        self._pending: list[str] = []
        self._reset_fatal = False
        self._heartbeat = time.monotonic()
        self._retry_at: float | None = None
        self._settling = Settling(config.debounce)  # re-reads and deferred deletes
        self._failures = 0
        self._succeeded_once = False
        self._invalid = False  # the last reconcile found the manifests invalid
        self._last_success: float | None = None
        self._last_good_desired: Any = None
        self._last_actual: Any = None
        self._focus: Focus | None = None  # after a clean reconcile: what an edit is planned on
        self._states: dict[tuple[str, str], str] = {}
        self.history = History(config.history)
        self._last_success_info: dict[str, Any] | None = None
        self._errors: list[str] = []
        self._held: dict[str, Any] | None = None  # changes held back until the files settle
        self._revision: str | None = None
        self._dead_part: str | None = None
        self.reconciles_run = 0
        self._triggers = 0
        self._in_flight: dict[str, Any] | None = None
        self._drift = DriftLog()
        self._signals = SignalFlags()
        self._override = False  # a manual trigger asked to override the sync windows
        self._confirmed: set[str] = set()  # deletions confirmed by a trigger, for the next run
        self._gate = Gate(True)  # the sync windows' verdict for the last reconcile
        self._observing = config.dry_run  # this reconcile plans only (dry run, or a window)

    # --- triggers (any thread; they only set flags) --------------------------------------------

    def trigger(self, reason: str, *, override: bool = False,
                confirm_delete: Sequence[str] = ()) -> None:
        """Reconcile soon. `override`: a manual trigger that overrides the sync windows;
        `confirm_delete`: objects whose waiting deletion it confirms."""
        with self._lock:
            self._pending.append(reason)
            self._triggers += 1
            self._override = self._override or override
            self._confirmed.update(confirm_delete)
        log.debug("trigger", extra={"reason": reason})
        self._wake.set()

    def wake(self) -> None:
        """Let the loop look at its flags now (the leader elector lost the lease)."""
        self._wake.set()

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def on_sighup(self) -> None:
        self._reset_fatal = True
        self.trigger("SIGHUP")

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reconciles now (see `daemon/signals.py`)."""
        self._signals.install(self._wake)

    def _take_signals(self) -> None:
        """Turn the flags the signal handlers set into a stop request or a trigger."""
        stop, hup = self._signals.take()
        if stop and not self._stop.is_set():
            log.info("stop signal received")
            self._stop.set()
        if hup:
            log.info("SIGHUP received: reconciling now, restarting failed connectors")
            self.on_sighup()

    # --- running ---------------------------------------------------------------------------------

    def run_once(self, detailed_exitcode: bool = False) -> int:
        """One reconcile; 0 when it succeeded, 1 otherwise (like `apply`), 2 with
        `detailed_exitcode` when its plan had changes (drift). Nothing is deferred (there is no
        later run); manifests changing while read are read again a few times."""
        if self.reporter is not None:
            self.reporter.start()
        try:
            for _ in range(5):
                result = self.reconcile_now(["once"], delete_grace=0.0)
                if not result.unstable:
                    break
                time.sleep(self.config.debounce)
        finally:
            if self.reporter is not None:
                self.reporter.stop()  # deliver what this reconcile had to say
        if not result.ok:
            return 1
        return 2 if detailed_exitcode and result.plan is not None and result.plan.has_changes \
            else 0

    def run(self) -> int:
        """Start the root parts, loop until stopped, shut down in stages. 0 on a requested stop."""
        code = 0
        try:
            self._start_parts()
            _collect_less_often()
            self.trigger("start")
            code = self._loop()
        finally:
            self._shutdown()
        return code

    def _loop(self) -> int:
        while True:
            self._take_signals()
            if self._stop.is_set():
                break
            self._heartbeat = time.monotonic()
            timeout = SIGNAL_POLL
            if self._retry_at is not None:
                timeout = max(0.0, min(timeout, self._retry_at - time.monotonic()))
            settle_in = self._settling.wait_for()
            if settle_in is not None:
                timeout = max(0.0, min(timeout, settle_in))
            self._wake.wait(timeout)
            self._wake.clear()
            self._take_signals()
            if self._stop.is_set():
                break
            with self._lock:
                reasons, self._pending = self._pending, []
            if self._retry_at is not None and time.monotonic() >= self._retry_at:
                self._retry_at = None
                reasons.append("retry")
            due = self._settling.take_due()
            if due is not None:
                reasons.append(due)
            if reasons and self.leads():
                self.reconcile_now(reasons)  # a follower drops them: the elector triggers later
            if self.leader is not None and self.leader.lost:
                log.error("not the leader any more; exiting so a restart campaigns afresh")
                return 1
            dead = self._dead_root_part()
            if dead:
                self._dead_part = dead
                log.error("a root part stopped unexpectedly; shutting down", extra={"part": dead})
                return 1
        return 0

    # --- one reconcile ---------------------------------------------------------------------------

    def reconcile_now(
        self, reasons: list[str], delete_grace: float | None = None
    ) -> ReconcileResult:
        """Run one reconcile and publish its outcome (status, metrics, logs, connectors)."""
        cfg = self.config
        trigger = ", ".join(dict.fromkeys(reasons))
        if self._reset_fatal and self.supervisor is not None:
            self._reset_fatal = False
            self.supervisor.reset_fatal()
        revision = self._revision_fn(cfg.path)
        if revision != self._revision:
            log.info("manifests revision", extra={"revision": revision or "(not a git checkout)"})
            self._revision = revision
        with self._lock:
            override, self._override = self._override, False
            confirmed, self._confirmed = frozenset(self._confirmed), set()
        self._gate = gate(cfg.sync_windows, datetime.now(UTC), manual=override)
        if self._gate.reason:
            log.warning("sync windows", extra={"reason": self._gate.reason})
        self._observing = cfg.dry_run or not self._gate.may_apply
        options = cfg.reconcile_options(
            self._parse_cache,
            may_write=self.leader.is_leader if self.leader is not None else None,
            delete_grace=cfg.delete_grace if delete_grace is None else delete_grace,
            known_snapshot=self._settling.snapshot,
            changed_at=self._settling.changed_at,
            inventory=self.inventory,
            focus=self._focus if all(r.startswith("change") for r in reasons) else None,
            confirm_delete=confirmed,
        )
        if self._observing and not cfg.dry_run:
            options = replace(options, dry_run=True)
        started, wall = time.monotonic(), time.time()
        self._in_flight = {"trigger": trigger, "since": iso_time(wall)}
        try:
            result = self._reconcile_fn([cfg.path], self.client, options)
        except Exception as exc:
            log.exception("reconcile crashed")
            result = ReconcileResult(
                False, Stage.INTERNAL, error=f"internal error ({type(exc).__name__})"
            )
        duration = time.monotonic() - started
        self.reconciles_run += 1
        self._focus = _focus_after(result)
        if self._settling.after(result):
            self._in_flight = None
            return result
        try:
            self._publish(result, trigger, revision, wall, duration)
        finally:
            self._in_flight = None
        return result

    def _publish(
        self,
        result: ReconcileResult,
        trigger: str,
        revision: str | None,
        wall: float,
        duration: float,
    ) -> None:
        """After one reconcile: decide what next, then record, count, log and resync."""
        if result.desired is not None:
            self.redactor.set_secrets(secret_values(result.desired) + self._token())
        drifted, corrected = self._drift.observe(
            result, self._last_good_desired, dry_run=self._observing)
        self.metrics.drift_corrections.inc(len(corrected))
        step = decide(
            result, failures=self._failures, succeeded_once=self._succeeded_once,
            config=self.config,
        )
        self._follow(step, wall, revision)
        self._attempt_at = wall
        if step.keep:
            self._keep(result)
            self._kept_at = wall
        errors = errors_of(result)
        self.metrics.record(result, step, duration, dry_run=self._observing)
        entry = reconcile_entry(
            result, outcome=step.outcome, trigger=trigger, revision=revision, wall=wall,
            duration=duration, drifted=len(drifted), corrected=corrected,
        )
        entry["deletions_deferred_until"] = iso_time(result.deferred_until)
        held = {"until": iso_time(result.deferred_until), "changes": result.held} if (
            result.held) else None
        self.metrics.set_held(result.held)
        self.metrics.blocked_objects.set(len(result.blocked))
        if self._gate.reason:
            entry["sync_window"] = self._gate.reason
        waiting = waiting_deletions(result)
        if waiting:
            entry["deletions_waiting_for_confirmation"] = waiting
        with self._lock:
            self._errors = errors
            self._held = held
            self.history.add(entry)
        log_outcome(result, step.outcome, trigger, revision, duration, errors,
                    dry_run=self._observing)
        if step.sync_connectors and self.supervisor is not None and self.leads():
            self._sync_connectors(result)
        if self.reporter is not None:
            try:
                self.reporter.reconciled(result, step.outcome, errors, corrected,
                                         dry_run=self._observing, revision=revision)
            except Exception:
                log.exception("deciding notifications failed")

    def _follow(self, step: Next, wall: float, revision: str | None) -> None:
        """Take the decided step: failures in a row, when to retry, the last success."""
        self._failures, self._succeeded_once = step.failures, step.succeeded_once
        self._invalid = step.outcome == INVALID
        self._retry_at = None if step.retry_in is None else time.monotonic() + step.retry_in
        if step.outcome == SUCCESS:
            self._last_success = wall
            self.metrics.last_success.set(wall)
            self._last_success_info = {"time": iso_time(wall), "revision": revision}
        elif step.retry_in is not None:
            log.warning(
                "will retry",
                extra={"in_seconds": round(step.retry_in, 3), "failures": step.failures},
            )

    def _keep(self, result: ReconcileResult) -> None:
        """The result reached border0: it becomes the last good state shown on /status."""
        self._last_good_desired, self._last_actual = result.desired, result.actual
        self._states = object_states(
            result.desired, result.actual, result.plan, result.applied, self._observing,
            result.blocked,
        )
        self.metrics.set_managed(state_counts(self._states))
        self.metrics.set_objects(self._states)

    def _sync_connectors(self, result: ReconcileResult) -> None:
        """The last good desired state, as it exists in border0 now."""
        try:
            desired = self._settling.connector_desired(result)
            targets = connector_targets(desired, result.actual, self._connector_targets)
            if self.config.connector_start is not None and desired is not None:
                targets.update(connector_start_targets(
                    desired, result.actual, template=self.config.connector_start,
                    serve=self.config.serve_connectors, env=self.config.connector_env,
                    previous=self._connector_targets))
            self.supervisor.sync(targets)
            self._connector_targets = targets
        except Exception:
            log.exception("syncing connectors failed")

    def _token(self) -> list[str]:
        token = getattr(self.client, "_token", None)  # the client keeps it as a secrets.Secret
        value = getattr(token, "value", token)
        return [value] if isinstance(value, str) and value else []


def _focus_after(result: ReconcileResult) -> Focus | None:
    """What the next edit may be planned against: only a clean run's picture of border0 (the
    interval, a signal, a retry or any failure list the whole organization)."""
    if not (result.ok and result.fresh and result.actual is not None
            and result.desired is not None and result.snapshot):
        return None
    return Focus(result.actual, result.desired, dict(result.snapshot))


def _collect_less_often() -> None:
    """The daemon holds its last listing, desired state and parsed files (tens of thousands of
    acyclic objects at 10,000 sockets), and each young-generation collection that spills over
    walks them: what is loaded at start is frozen out of the collector's way, and a pass runs
    every 20,000 allocations instead of 700, as for the command line (`cli/bulk.py`). Measured
    in-process on an edit among 10,000 sockets: 0.65 -> 0.45 s of CPU."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
