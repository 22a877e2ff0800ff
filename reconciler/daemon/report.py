"""What a reconcile tells the user: its errors (for /status) and its log lines."""

from __future__ import annotations

import logging
from typing import Any

from reconciler.daemon.logs import OBJECT_NAME
from reconciler.daemon.outcome import SUCCESS
from reconciler.diagnostics import Severity
from reconciler.reconcile import ReconcileResult

__all__ = ["errors_of", "log_outcome", "waiting_deletions"]

log = logging.getLogger("reconciler.daemon")


def errors_of(result: ReconcileResult) -> list[str]:
    """The errors a reconcile met, for /status: diagnostics, conflicts, failed actions."""
    errors = [str(d) for d in result.diagnostics if d.severity is Severity.ERROR]
    if result.plan is not None:
        errors += [str(d) for d in result.plan.conflicts if d.severity is Severity.ERROR]
    if result.applied is not None:
        errors += [r.message for r in result.applied.failed]
    if result.error and not errors:
        errors.append(result.error)
    return errors


def waiting_deletions(result: ReconcileResult) -> list[str]:
    """Deletions held for a confirmation (confirm-delete), as the plan words them."""
    if result.plan is None:
        return []
    return [d.message for d in result.plan.warnings if d.code == "delete-unconfirmed"]


def log_outcome(
    result: ReconcileResult,
    outcome: str,
    trigger: str,
    revision: str | None,
    duration: float,
    errors: list[str],
    *,
    dry_run: bool,
) -> None:
    """One line per action, then the summary line (and each error on a failure). Each action's
    line carries kind, name, action, revision and duration_ms as fields; the summary line
    revision and duration_ms (and duration_seconds, as before)."""
    if result.applied is not None:
        for action in result.applied.results:
            change = action.change
            fields = {"kind": change.kind.value, OBJECT_NAME: change.name,
                      "action": change.action.value, "duration_ms": action.duration_ms}
            if revision:
                fields["revision"] = revision
            (log.info if action.ok else log.error)(action.message, extra=fields)
    fields: dict[str, Any] = {"trigger": trigger, "duration_seconds": round(duration, 3),
                              "duration_ms": round(duration * 1000, 1)}
    if revision:
        fields["revision"] = revision
    summary = result.plan.summary() if result.plan is not None else None
    if summary:
        fields.update({k: v for k, v in summary.items() if v})
    for message in waiting_deletions(result):
        log.warning(message, extra={"code": "delete-unconfirmed"})
    if outcome == SUCCESS:
        log.info("reconcile succeeded" + (" (dry run)" if dry_run else ""), extra=fields)
        return
    for error in errors:
        if error != result.error:  # that one is on the summary line
            log.error(error)
    log.error(f"reconcile failed at {result.stage}", extra={**fields, "error": result.error})
