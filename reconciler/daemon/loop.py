"""The `run` loop: keep border0 matching the manifests, and the connectors running.

The daemon is a few named root parts (parts.py: objects in one list, started in order and
stopped in reverse) around one loop (kopf's shape):

    watcher     watchdog on PATH (and the directories holding its symlinks) -> trigger("change")
    scheduler   APScheduler interval with jitter                             -> trigger("interval")
    signals     SIGHUP -> trigger("SIGHUP"); SIGTERM/SIGINT -> request_stop()  (flags only)
    lease       the Kubernetes Lease with --leader-elect: only its holder writes
    server      /healthz /readyz /metrics /status, from the published snapshot (status.py)
    notifier    notifications (events.py, notify.py)
    connectors  the Supervisor, synced after each reconcile that got as far as the API
    loop        the main thread: waits for a trigger, runs ONE reconcile, publishes its report

After each reconcile the loop calls `report.summarize` once and hands the report on: to the
metrics, the log lines, the notifications, the connector sync, and, as one immutable
`Snapshot` replaced under one lock, to the status view.

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

from reconciler import __version__
from reconciler.clock import SYSTEM, Clock
from reconciler.connectors.agents import connector_start_targets
from reconciler.connectors.connector import connector_targets
from reconciler.connectors.wakeup import Wakeup
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.logs import RedactFilter
from reconciler.daemon.metrics import DaemonMetrics
from reconciler.daemon.outcome import FAILURE, INVALID, SUCCESS
from reconciler.daemon.parts import Part, root_parts
from reconciler.daemon.report import ReconcileReport, Run, log_report, summarize, writes
from reconciler.daemon.revision import source_revision
from reconciler.daemon.settle import Settling
from reconciler.daemon.signals import SignalFlags
from reconciler.daemon.state import iso_time
from reconciler.daemon.status import Page, Snapshot, StatusView
from reconciler.daemon.status_server import StatusServer
from reconciler.daemon.watch import ManifestWatcher
from reconciler.daemon.windows import Gate, gate
from reconciler.manifests.cache import ParseCache
from reconciler.plan.in_sync import InSync
from reconciler.plan.inventory import INVENTORY_FILE, Inventory
from reconciler.reconcile import Focus, ReconcileResult, Stage, reconcile

__all__ = ["FAILURE", "INVALID", "SUCCESS", "Daemon", "DaemonConfig"]

log = logging.getLogger("reconciler.daemon")

#: How often an idle loop turns its heartbeat and looks for dead parts. Signals, triggers and
#: stop requests wake it at once (`Wakeup`: the signal wake-up fd), so it need not poll them.
SIGNAL_POLL = 5.0


class Daemon:
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
        lease: Any = None,
        routes: Callable[..., Sequence[Any]] | Sequence[Any] = (),
        signals: bool = False,
        clock: Clock = SYSTEM,
    ) -> None:
        self.config = config
        self.clock = clock  # the retry backoff, the settling and run-once's re-reads wait on it
        self.client = client
        self.supervisor = supervisor
        self.redactor = redactor or RedactFilter()
        self.reporter = reporter  # events.EventReporter with --notify
        self._reconcile_fn = reconcile_fn
        self._revision_fn = revision_fn
        if leader is None and lease is not None:  # --leader-elect: only the leader writes
            from reconciler.daemon.lease import LeaderElector, lease_client

            leader = LeaderElector(lease, lease_client(lease),
                                   on_started=lambda: self.trigger("became leader"),
                                   on_lost=self.wake)
        self.leader = leader
        self._connector_targets: dict[str, Any] = {}  # the last sync (suspended ones keep theirs)
        self.metrics = DaemonMetrics(
            request_counts=lambda: getattr(client, "request_counts", None),
            connectors=self._connector_statuses,
        )
        self.metrics.leader.set_function(lambda: 1 if self.leads() else 0)
        if hasattr(client, "on_request"):  # border0.client: API latency by operation
            client.on_request = self.metrics.observe_request

        self._lock = threading.Lock()  # guards the snapshot and the trigger queue below
        self._snapshot = Snapshot()
        self._pending: list[str] = []
        self._override = False  # a manual trigger asked to override the sync windows
        self._confirmed: set[str] = set()  # deletions confirmed by a trigger, for the next run
        self._wake = Wakeup()
        self._stop = threading.Event()
        self._signals = SignalFlags()
        self._parse_cache = ParseCache()  # an edit re-parses only the files it touched
        #: the ids this instance manages, beside its state: recognises a socket of ours that
        #: someone wrote back without its tags
        self.inventory = Inventory(
            None if config.state_dir is None else f"{config.state_dir}/{INVENTORY_FILE}")
        self._reset_fatal = False
        self._retry_at: float | None = None
        self._settling = Settling(config.debounce, clock)  # re-reads and deferred deletes
        self._focus: Focus | None = None  # after a clean reconcile: what an edit is planned on
        #: the sockets the last full plan found in sync: not compared again while unchanged
        self._in_sync = InSync()
        self.view = StatusView(config, self.snapshot, parts=lambda: self.parts,
                               leader=self.leader, connectors=self._connector_statuses,
                               metrics=self.metrics)
        # /readyz's answer, a follower's included (it publishes no report)
        self.metrics.ready.set_function(lambda: 1 if self.view.ready() else 0)
        self.parts: list[Part] = root_parts(
            config, trigger=self.trigger, view=self.view, redact=self.redactor.redact,
            connectors=self._connector_statuses, watcher_factory=watcher_factory,
            scheduler_factory=scheduler_factory, server_factory=server_factory,
            routes=routes(self.trigger, self.leads) if callable(routes) else routes,
            supervisor=supervisor, reporter=reporter,
            elector=self.leader if lease is not None else None,
            signals=(self._signals, self._wake) if signals else None,
        )

    # --- the published snapshot (any thread) ---------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def _publish_snapshot(self, **changes: Any) -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)

    @property
    def reconciles_run(self) -> int:
        return self.snapshot().reconciles

    @property
    def server(self) -> Any:
        """The status server once started (its address), else None."""
        return next((getattr(p, "server", None) for p in self.parts if p.name == "status server"),
                    None)

    def leads(self) -> bool:
        return self.view.leads()

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.view.health()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return self.view.readiness()

    def metrics_text(self) -> bytes:
        return self.view.metrics_text()

    def status(self, page: Page | None = None) -> dict[str, Any]:
        return self.view.status(page)

    def _connector_statuses(self) -> list[Any]:
        if self.supervisor is None:
            return []
        try:
            return list(self.supervisor.status())
        except Exception:
            log.exception("reading connector status failed")
            return []

    # --- triggers (any thread; they only set flags) --------------------------------------------

    def trigger(self, reason: str, *, override: bool = False,
                confirm_delete: Sequence[str] = ()) -> None:
        """Reconcile soon. `override`: a manual trigger that overrides the sync windows;
        `confirm_delete`: objects whose waiting deletion it confirms."""
        with self._lock:
            self._pending.append(reason)
            self._snapshot = replace(self._snapshot, triggers=self._snapshot.triggers + 1)
            self._override = self._override or override
            self._confirmed.update(confirm_delete)
        log.debug("trigger", extra={"reason": reason})
        self._wake.set()

    def wake(self) -> None:
        """Let the loop look at its flags now (the leader elector lost the lease)."""
        self._wake.set()

    def request_stop(self) -> None:
        self._stop.set()
        self._publish_snapshot(stopping=True)
        self._wake.set()

    def on_sighup(self) -> None:
        self._reset_fatal = True
        self.trigger("SIGHUP")

    def _take_signals(self) -> None:
        """Turn the flags the signal handlers set into a stop request or a trigger."""
        stop, hup = self._signals.take()
        if stop and not self._stop.is_set():
            log.info("stop signal received")
            self.request_stop()
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
                self.clock.sleep(self.config.debounce)
        finally:
            if self.reporter is not None:
                self.reporter.stop()  # deliver what this reconcile had to say
        if not result.ok:
            return 1
        return 2 if detailed_exitcode and result.plan is not None and result.plan.has_changes \
            else 0

    def run(self) -> int:
        """Start the root parts, loop until stopped, stop them in reverse. 0 on a requested
        stop."""
        code = 0
        started: list[Part] = []
        try:
            for part in self.parts:
                part.start()
                started.append(part)
            cfg = self.config
            log.info("daemon started", extra={
                "path": cfg.path, "instance": cfg.instance, "interval": cfg.interval,
                "debounce": cfg.debounce, "dry_run": cfg.dry_run, "version": __version__,
            })
            _collect_less_often()
            self.trigger("start")
            code = self._loop()
        finally:
            self._shutdown(started)
        return code

    def _shutdown(self, started: list[Part]) -> None:
        log.info("stopping")
        self._publish_snapshot(stopping=True)
        for part in reversed(started):
            try:
                part.stop()
            except Exception:
                log.exception("stopping %s failed", part.name)
        log.info("stopped")

    def _loop(self) -> int:
        while True:
            self._take_signals()
            if self._stop.is_set():
                break
            self._publish_snapshot(heartbeat=time.monotonic())
            timeout = SIGNAL_POLL
            if self._retry_at is not None:
                timeout = max(0.0, min(timeout, self._retry_at - self.clock.monotonic()))
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
            if self._retry_at is not None and self.clock.monotonic() >= self._retry_at:
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
            dead = self.view.dead_part()
            if dead:
                self._publish_snapshot(dead_part=dead)
                log.error("a root part stopped unexpectedly; shutting down", extra={"part": dead})
                return 1
        return 0

    # --- one reconcile ---------------------------------------------------------------------------

    def reconcile_now(
        self, reasons: list[str], delete_grace: float | None = None
    ) -> ReconcileResult:
        """Run one reconcile and publish its report (status, metrics, logs, connectors)."""
        cfg = self.config
        trigger = ", ".join(dict.fromkeys(reasons))
        if self._reset_fatal and self.supervisor is not None:
            self._reset_fatal = False
            self.supervisor.reset_fatal()
        revision = self._revision_fn(cfg.path)
        if revision != self.snapshot().revision:
            log.info("manifests revision", extra={"revision": revision or "(not a git checkout)"})
        with self._lock:
            override, self._override = self._override, False
            confirmed, self._confirmed = frozenset(self._confirmed), set()
        verdict = gate(cfg.sync_windows, datetime.now(UTC), manual=override)
        if verdict.reason:
            log.warning("sync windows", extra={"reason": verdict.reason})
        wrote = writes(cfg, verdict.may_apply)
        last = self.snapshot().report
        full = cfg.full_refresh(reasons, last is not None and last.step.outcome == FAILURE)
        options = cfg.reconcile_options(
            self._parse_cache,
            may_write=self.leader.is_leader if self.leader is not None else None,
            delete_grace=cfg.delete_grace if delete_grace is None else delete_grace,
            known_snapshot=self._settling.snapshot,
            changed_at=self._settling.changed_at,
            inventory=self.inventory,
            focus=self._focus if all(r.startswith("change") for r in reasons) else None,
            confirm_delete=confirmed,
            full_refresh=full,
            in_sync=self._in_sync,
        )
        if not wrote and not cfg.dry_run:  # a sync window: plan only
            options = replace(options, dry_run=True)
        started, wall = time.monotonic(), time.time()
        self._publish_snapshot(revision=revision,
                               in_flight={"trigger": trigger, "since": iso_time(wall)})
        try:
            result = self._reconcile_fn([cfg.path], self.client, options)
        except Exception as exc:
            log.exception("reconcile crashed")
            result = ReconcileResult(
                False, Stage.INTERNAL, error=f"internal error ({type(exc).__name__})"
            )
        duration = time.monotonic() - started
        self._focus = _focus_after(result)
        if result.plan is not None and result.plan.in_sync is not None:
            self._in_sync = result.plan.in_sync
        if full and result.actual is not None:  # border0 was read in full: /status says when
            self._publish_snapshot(full_refresh_at=wall)
        if self._settling.after(result):
            self._publish_snapshot(in_flight=None, reconciles=self.snapshot().reconciles + 1)
            return result
        run = Run(trigger, revision, wall, duration, wrote, cfg, verdict.reason)
        self._publish(summarize(result, self.snapshot().report, run), verdict)
        return result

    def _publish(self, report: ReconcileReport, verdict: Gate) -> None:
        """Hand one reconcile's report on: status, redactor, metrics, logs, connectors,
        notifications. Nothing here works anything out of it."""
        step = report.step
        self._retry_at = None if step.retry_in is None else self.clock.monotonic() + step.retry_in
        self.redactor.set_secrets(list(report.secrets) + self._token())
        with self._lock:
            snap = self._snapshot
            self._snapshot = replace(
                snap, report=report, reconciles=snap.reconciles + 1, in_flight=None,
                retry_at=None if step.retry_in is None else self.clock.time() + step.retry_in,
                attempt_at=report.run.wall, gate=verdict)
        self.metrics.publish(report)
        log_report(report)
        if step.sync_connectors and self.supervisor is not None and self.leads():
            self._sync_connectors(report)
        if self.reporter is not None:
            try:
                self.reporter.reconciled(report)
            except Exception:
                log.exception("deciding notifications failed")

    def _sync_connectors(self, report: ReconcileReport) -> None:
        """The last good desired state, as it exists in border0 now."""
        try:
            desired = report.connector_desired
            targets = connector_targets(desired, report.actual, self._connector_targets)
            if self.config.connector_start is not None and desired is not None:
                targets.update(connector_start_targets(
                    desired, report.actual, template=self.config.connector_start,
                    serve=self.config.serve_connectors, env=self.config.connector_env,
                    previous=self._connector_targets))
            self.supervisor.sync(targets)
            self._connector_targets = targets
        except Exception:
            log.exception("syncing connectors failed")

    def _token(self) -> list[str]:
        token = self.client.token if hasattr(self.client, "token") else None
        value = getattr(token, "value", token)
        return [value] if isinstance(value, str) and value else []


def _focus_after(result: ReconcileResult) -> Focus | None:
    """What the next edit may be planned against: only a clean run's picture of border0 (the
    interval, a signal, a retry or any failure list the whole organization), and only when it
    left border0 as declared. An edit plans only its own files' sockets, so a plan that left
    changes for later (a dry run, a sync window, a deferred delete) is followed by a full one,
    which still shows them."""
    if not (result.ok and result.fresh and result.actual is not None
            and result.desired is not None and result.snapshot):
        return None
    plan = result.plan
    if plan is not None and (plan.deferred or plan.has_changes and result.applied is None):
        return None
    return Focus(result.actual, result.desired, dict(result.snapshot), result.declared)


def _collect_less_often() -> None:
    """The daemon holds its last listing, desired state and parsed files (tens of thousands of
    acyclic objects at 10,000 sockets), and each young-generation collection that spills over
    walks them: what is loaded at start is frozen out of the collector's way, and a pass runs
    every 20,000 allocations instead of 700, as for the command line (`cli/bulk.py`). Measured
    in-process on an edit among 10,000 sockets: 0.65 -> 0.45 s of CPU."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
