"""One reconcile, told once: `summarize(result, previous, run) -> ReconcileReport`.

Flux's kustomize-controller records the outcome of a reconcile in one place (conditions with a
typed reason, the history entry); here that place is `summarize`, a pure function of the
`ReconcileResult`, the previous report and the facts of the run (trigger, revision, times,
whether it could write). Everything the daemon tells anyone (metrics, the history, log lines,
notifications, the connector sync, /status and the status page) reads the report and works
nothing out again: the errors are structured once, the object states and the drift are
computed once, and whether a change was applied is decided once (`wrote`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.drift import Drift, drift_of
from reconciler.daemon.history import reconcile_entry
from reconciler.daemon.logs import OBJECT_NAME
from reconciler.daemon.outcome import SUCCESS, Next, decide
from reconciler.daemon.state import (
    blocked_objects,
    iso_time,
    object_states,
    policy_rows,
    secret_values,
    socket_rows,
    state_counts,
    suspended_objects,
)
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.plan.types import DeferReason
from reconciler.reconcile import ReconcileResult, Stage

__all__ = [
    "ReconcileReport",
    "Run",
    "StatusError",
    "connector_error",
    "log_report",
    "summarize",
    "writes",
]

log = logging.getLogger("reconciler.daemon")

#: /status error codes that are not a diagnostic's own code.
APPLY_FAILED, RECONCILE_FAILED, CONNECTOR_FATAL = "apply-failed", "reconcile-failed", "connector-fatal"
HELD_WHYS = tuple(sorted(reason.value for reason in DeferReason))


@dataclass(frozen=True)
class StatusError:
    """One of /status's errors as data (`error_details`): what it is about (kind, name, where),
    a stable code and the message; `text` is the line `errors` has always listed."""

    source: str  # manifests | plan | apply | reconcile | connector
    code: str
    message: str
    text: str
    kind: str | None = None
    name: str | None = None
    where: str | None = None  # file:line:column of a manifest problem

    @classmethod
    def of_diagnostic(cls, source: str, d: Diagnostic) -> StatusError:
        return cls(source, d.code or "error", d.message, str(d), d.kind, d.name,
                   d.location() or None)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "name": self.name, "code": self.code,
                "message": self.message, "where": self.where}


def connector_error(socket: str, reason: str) -> StatusError:
    """A FATAL connector as one of /status's errors (its text as `status` has always shown it)."""
    return StatusError("connector", CONNECTOR_FATAL, reason, f"connector {socket} is FATAL: {reason}",
                       "connector", socket)


@dataclass(frozen=True)
class Run:
    """What the loop knows about a reconcile besides its result."""

    trigger: str
    revision: str | None
    wall: float  # when it started (epoch seconds)
    duration: float
    wrote: bool  # it could write: no dry run and a sync window that allowed it (`writes`)
    config: DaemonConfig
    window: str | None = None  # why the sync windows held it back, when they did


def writes(config: DaemonConfig, may_apply: bool) -> bool:
    """Whether a reconcile writes: not in a dry run, and only while the sync windows allow."""
    return may_apply and not config.dry_run


@dataclass(frozen=True)
class ReconcileReport:
    """One reconcile as the daemon tells it; what the next report needs is carried along."""

    step: Next
    run: Run
    stage: str
    error: str | None
    errors: tuple[StatusError, ...]
    #: (kind, name) -> state, as the last reconcile that reached border0 left them
    states: Mapping[tuple[str, str], str]
    counts: Mapping[tuple[str, str], int]
    sockets: tuple[Mapping[str, Any], ...]  # /status's rows (state.socket_rows), made once
    policies: tuple[Mapping[str, Any], ...]
    #: /status's whole-list figures, made once: [{kind, state, count}], suspended, blocked
    totals: tuple[Mapping[str, Any], ...]
    suspended: tuple[Mapping[str, str], ...]
    blocked_objects: tuple[Mapping[str, str], ...]
    kept_at: float | None  # when the objects' data (states, desired, actual) was read
    drift: Drift
    pending: int  # changes planned and not applied (dry run, a window, a failure)
    manifest_errors: int
    held: dict[str, Any] | None  # changes held back until the files settle, and until when
    held_counts: Mapping[str, int]
    blocked: tuple[Any, ...]
    waiting: tuple[str, ...]  # deletions waiting for a confirmation, as the plan words them
    summary: Mapping[str, int] | None
    actions: tuple[Any, ...]  # the apply's ActionResults, for one log line each
    corrected: tuple[dict[str, Any], ...]  # the drift repaired, by title
    access_gains: tuple[dict[str, Any], ...]  # an applied access review (who gains access)
    apply_failed: bool
    entry: Mapping[str, Any]  # this reconcile's history entry
    history: tuple[Mapping[str, Any], ...]  # the last `config.history` entries, newest first
    last_success: dict[str, Any] | None
    desired: Any = field(default=None, repr=False)  # the last good desired state
    actual: Any = field(default=None, repr=False)  # border0 as that reconcile left it
    #: what the connectors follow: the desired sockets plus those whose delete is deferred
    connector_desired: Any = field(default=None, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)  # for the log redactor only

    @property
    def outcome(self) -> str:
        return self.step.outcome


def _errors(result: ReconcileResult) -> tuple[StatusError, ...]:
    """The errors a reconcile met: diagnostics, conflicts, failed actions, else its error."""
    errors = [StatusError.of_diagnostic("manifests", d) for d in result.diagnostics
              if d.severity is Severity.ERROR]
    if result.plan is not None:
        errors += [StatusError.of_diagnostic("plan", d) for d in result.plan.conflicts
                   if d.severity is Severity.ERROR]
    if result.applied is not None:
        errors += [StatusError("apply", APPLY_FAILED, r.message, r.message, str(r.change.kind),
                               r.change.name) for r in result.applied.failed]
    if result.error and not errors:
        errors.append(StatusError("reconcile", RECONCILE_FAILED, result.error, result.error))
    return tuple(errors)


def _manifest_errors(result: ReconcileResult, errors: tuple[StatusError, ...]) -> int:
    """The manifests' errors: those found at load, or those the plan was refused for (a socket
    naming a policy that exists nowhere, a replace without its allowance): both are invalid
    manifests (`outcome.INVALID`), which a retry cannot fix."""
    if result.stage is Stage.LOAD:
        return sum(1 for d in result.diagnostics if d.severity is Severity.ERROR)
    if result.stage is Stage.PLAN and not result.ok:
        return len(errors)  # the plan's conflicts, else its refusal (`result.error`)
    return 0


def _held(result: ReconcileResult) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """The plan's deferred changes (plan/settling.py), as /status shows them, and their counts."""
    deferred = result.plan.deferred if result.plan is not None else []
    counts = dict.fromkeys(HELD_WHYS, 0)
    counts.update(Counter(d.reason.value for d in deferred))
    if not deferred:
        return None, counts
    changes = [{"kind": d.change.kind.value, "name": d.change.name,
                "action": d.change.action.value, "why": d.reason.value} for d in deferred]
    return {"until": iso_time(result.deferred_until), "changes": changes}, counts


def _connector_desired(result: ReconcileResult, previous: Any) -> Any:
    """The desired state plus, while deletes are deferred, the sockets it lost that still exist
    (their connectors stop only when they are deleted)."""
    desired = result.desired
    if result.deferred_until is not None and result.actual is not None and previous is not None:
        kept = {n: s for n, s in previous.sockets.items()
                if n not in desired.sockets and n in result.actual.sockets}
        desired = replace(desired, sockets={**kept, **desired.sockets})
    return desired


def _lists(states: Mapping[tuple[str, str], str]) -> tuple[tuple[Any, ...], ...]:
    totals = tuple({"kind": k, "state": s, "count": n}
                   for (k, s), n in sorted(Counter((k, s) for (k, _), s in states.items())
                                           .items()))
    return totals, tuple(suspended_objects(states)), tuple(blocked_objects(states))


def summarize(
    result: ReconcileResult, previous: ReconcileReport | None, run: Run
) -> ReconcileReport:
    """The report of `result`, given the previous report (None before the first)."""
    config = run.config
    step = decide(
        result, failures=previous.step.failures if previous else 0,
        succeeded_once=previous.step.succeeded_once if previous else False, config=config,
    )
    drift = drift_of(result, unapplied=previous.drift.unapplied if previous else frozenset(),
                     previous=previous.desired if previous else None, applied=run.wrote)
    plan = result.plan
    if step.keep and _edit_of(result, previous):
        assert previous is not None and result.focused is not None
        desired, actual, kept_at = result.desired, result.actual, run.wall
        states, sockets = _edited(result, previous, run)
        counts = state_counts(states)
        policies = policy_rows(states, actual)
        lists = _lists(states)
    elif step.keep:
        desired, actual, kept_at = result.desired, result.actual, run.wall
        states = object_states(desired, actual, plan, result.applied,
                               unapplied=not run.wrote or result.applied is None,
                               blocked=result.blocked)
        counts = state_counts(states)
        sockets, policies = socket_rows(states, desired, actual), policy_rows(states, actual)
        lists = _lists(states)
    elif previous is not None:
        desired, actual, kept_at = previous.desired, previous.actual, previous.kept_at
        states, counts = previous.states, previous.counts
        sockets, policies = previous.sockets, previous.policies
        lists = previous.totals, previous.suspended, previous.blocked_objects
    else:
        desired = actual = kept_at = None
        states, counts, sockets, policies = {}, state_counts({}), (), ()
        lists = (), (), ()
    errors = _errors(result)
    held, held_counts = _held(result)
    waiting = tuple(d.message for d in plan.warnings if d.code == "delete-unconfirmed") \
        if plan is not None else ()
    entry = reconcile_entry(
        result, outcome=step.outcome, trigger=run.trigger, revision=run.revision, wall=run.wall,
        duration=run.duration, drifted=len(drift.drifted), corrected=drift.corrected,
    )
    entry["deletions_deferred_until"] = iso_time(result.deferred_until)
    if run.window:
        entry["sync_window"] = run.window
    if waiting:
        entry["deletions_waiting_for_confirmation"] = list(waiting)
    last_success = {"time": iso_time(run.wall), "revision": run.revision} \
        if step.outcome == SUCCESS else (previous.last_success if previous else None)
    applied = result.applied
    gains = tuple(g.to_json() for g in getattr(plan, "access_gains", None) or ()) \
        if applied is not None and applied.succeeded else ()
    previous_connectors = previous.connector_desired if previous else None
    return ReconcileReport(
        step=step,
        run=run,
        stage=str(result.stage),
        error=result.error,
        errors=errors,
        states=states,
        counts=counts,
        sockets=sockets,
        policies=policies,
        totals=lists[0],
        suspended=lists[1],
        blocked_objects=lists[2],
        kept_at=kept_at,
        drift=drift,
        pending=len(drift.unapplied) if plan is not None else 0,
        manifest_errors=_manifest_errors(result, errors),
        held=held,
        held_counts=held_counts,
        blocked=tuple(result.blocked),
        waiting=waiting,
        summary=plan.summary() if plan is not None else None,
        actions=tuple(applied.results) if applied is not None else (),
        corrected=tuple(entry["drift_corrected"]),
        access_gains=gains,
        apply_failed=bool(applied is not None and applied.failed),
        entry=entry,
        history=((entry,) + (previous.history if previous else ()))[:config.history],
        last_success=last_success,
        desired=desired,
        actual=actual,
        connector_desired=_connector_desired(result, previous_connectors)
        if step.sync_connectors and result.desired is not None else previous_connectors,
        secrets=_secrets(result, previous),
    )


def _edit_of(result: ReconcileResult, previous: ReconcileReport | None) -> bool:
    """`result` is a daemon's edit of a few sockets (`ReconcileResult.focused`) planned on the
    picture `previous` kept: only those sockets' states and rows need working out again."""
    return (result.focused is not None and previous is not None and previous.step.keep
            and result.desired is not None and result.actual is not None)


def _edited(result: ReconcileResult, previous: ReconcileReport,
            run: Run) -> tuple[dict[tuple[str, str], str], tuple[dict[str, Any], ...]]:
    """The previous report's states and socket rows with the edited sockets' (and every
    policy's) worked out again: an edit among 10,000 sockets costs its own, not 10,000 rows."""
    assert result.desired is not None and result.focused is not None
    edited = set(result.focused)
    desired = replace(result.desired, sockets={
        n: result.desired.sockets[n] for n in edited if n in result.desired.sockets})
    fresh = object_states(desired, result.actual, result.plan, result.applied,
                          unapplied=not run.wrote or result.applied is None,
                          blocked=result.blocked)
    states = {key: state for key, state in previous.states.items()
              if key[0] == "socket" and key[1] not in edited}
    states.update(fresh)
    rows = {row["name"]: row for row in previous.sockets if row["name"] not in edited}
    for row in socket_rows({k: v for k, v in fresh.items() if k[0] == "socket"},
                           result.desired, result.actual):
        rows[row["name"]] = row
    return states, tuple(rows[name] for name in sorted(rows))


def _secrets(result: ReconcileResult, previous: ReconcileReport | None) -> tuple[str, ...]:
    """The values the log redactor scrubs: the desired state's; after an edit, the previous
    ones plus the edited sockets' (one that left stays until the next full reconcile)."""
    if result.desired is None:
        return previous.secrets if previous else ()
    if not _edit_of(result, previous):
        return tuple(secret_values(result.desired))
    assert previous is not None and result.focused is not None
    sockets = {n: result.desired.sockets[n] for n in result.focused
               if n in result.desired.sockets}
    edited = secret_values(replace(result.desired, sockets=sockets))
    return tuple(dict.fromkeys((*previous.secrets, *edited)))


def log_report(report: ReconcileReport) -> None:
    """The drift found, one line per action, then the summary line (and each error on a
    failure). Each action's line carries kind, name, action, revision and duration_ms as
    fields; the summary line revision and duration_ms (and duration_seconds, as before)."""
    run = report.run
    verb = "corrected" if run.wrote else "detected (dry run: not corrected)"
    for change in report.drift.drifted:
        log.warning(
            f"drift {verb}: {change.action.value} {change.kind} {change.name}",
            extra={"fields": [d.path for d in change.diffs] or None,
                   "reason": change.reason or None},
        )
    for action in report.actions:
        change = action.change
        fields = {"kind": change.kind.value, OBJECT_NAME: change.name,
                  "action": change.action.value, "duration_ms": action.duration_ms}
        if run.revision:
            fields["revision"] = run.revision
        (log.info if action.ok else log.error)(action.message, extra=fields)
    summary: dict[str, Any] = {"trigger": run.trigger, "duration_seconds": round(run.duration, 3),
                               "duration_ms": round(run.duration * 1000, 1)}
    if run.revision:
        summary["revision"] = run.revision
    summary.update({k: v for k, v in (report.summary or {}).items() if v})
    for message in report.waiting:
        log.warning(message, extra={"code": "delete-unconfirmed"})
    if report.step.retry_in is not None:
        log.warning("will retry", extra={"in_seconds": round(report.step.retry_in, 3),
                                         "failures": report.step.failures})
    if report.outcome == SUCCESS:
        log.info("reconcile succeeded" + ("" if run.wrote else " (dry run)"), extra=summary)
        return
    for error in report.errors:
        if error.text != report.error:  # that one is on the summary line
            log.error(error.text)
    log.error(f"reconcile failed at {report.stage}", extra={**summary, "error": report.error})

