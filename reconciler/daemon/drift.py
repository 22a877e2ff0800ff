"""Drift: changes a reconcile planned although the manifests did not change (someone edited
border0 by hand). Changes the previous reconcile planned and did not apply (dry run, failed
actions) are pending, not new drift. Pure: `report.summarize` calls it with what the previous
report remembered, and the log lines and counters read its answer from the report."""

from __future__ import annotations

from typing import Any, NamedTuple

from reconciler.reconcile import ReconcileResult

__all__ = ["Drift", "change_key", "drift_of"]


def change_key(change: Any) -> tuple[Any, ...]:
    """What makes two planned changes "the same change" across reconciles."""
    return (change.kind, change.name, change.action.value, tuple(d.path for d in change.diffs))


class Drift(NamedTuple):
    drifted: tuple[Any, ...]  # the plan's changes that are new drift
    corrected: tuple[Any, ...]  # those of them applied successfully
    unapplied: frozenset[tuple[Any, ...]]  # planned and not applied: pending at the next run


def drift_of(
    result: ReconcileResult, *, unapplied: frozenset[tuple[Any, ...]], previous: Any,
    applied: bool,
) -> Drift:
    """The drift in `result`, given the changes left unapplied before it and the last good
    desired state (`previous`); `applied`: this reconcile could write (no dry run, no window)."""
    plan = result.plan
    known = unapplied
    if plan is not None:
        if not applied or result.applied is None:
            unapplied = frozenset(change_key(c) for c in plan.changes)
        else:
            unapplied = frozenset(change_key(r.change) for r in result.applied.failed)
    if plan is None or not plan.changes or previous is None or result.desired != previous:
        return Drift((), (), unapplied)
    drifted = tuple(c for c in plan.changes if change_key(c) not in known)
    corrected: tuple[Any, ...] = ()
    if applied and result.applied is not None:
        done = {change_key(r.change) for r in result.applied.succeeded}
        corrected = tuple(c for c in drifted if change_key(c) in done)
    return Drift(drifted, corrected, unapplied)
