"""Drift: changes a reconcile planned although the manifests did not change (someone edited
border0 by hand). Logged once each and counted; changes the previous reconcile planned and did
not apply (dry run, failed actions) are pending, not new drift."""

from __future__ import annotations

import logging
from typing import Any

from reconciler.reconcile import ReconcileResult

__all__ = ["DriftLog", "change_key"]

log = logging.getLogger("reconciler.daemon")


def change_key(change: Any) -> tuple[Any, ...]:
    """What makes two planned changes "the same change" across reconciles."""
    return (change.kind, change.name, change.action.value, tuple(d.path for d in change.diffs))


class DriftLog:
    """Remembers the changes planned and not applied, across reconciles."""

    def __init__(self) -> None:
        self.unapplied: set[tuple[Any, ...]] = set()

    def observe(
        self, result: ReconcileResult, previous: Any, *, dry_run: bool
    ) -> tuple[list[Any], list[Any]]:
        """Log the drift in `result` (given the last good desired state); returns the drifted
        changes and those of them corrected (applied successfully)."""
        plan = result.plan
        known = self.unapplied
        if plan is not None:
            if dry_run or result.applied is None:
                self.unapplied = {change_key(c) for c in plan.changes}
            else:
                self.unapplied = {change_key(r.change) for r in result.applied.failed}
        if plan is None or not plan.changes or previous is None or result.desired != previous:
            return [], []
        drifted = [c for c in plan.changes if change_key(c) not in known]
        verb = "detected (dry run: not corrected)" if dry_run else "corrected"
        for change in drifted:
            log.warning(
                f"drift {verb}: {change.action.value} {change.kind} {change.name}",
                extra={
                    "fields": [d.path for d in change.diffs] or None,
                    "reason": change.reason or None,
                },
            )
        corrected: list[Any] = []
        if not dry_run and result.applied is not None:
            done = {change_key(r.change) for r in result.applied.succeeded}
            corrected = [c for c in drifted if change_key(c) in done]
        return drifted, corrected
