"""The last N reconciles, as plain data for /status, `status --history` and the dashboard.

/status used to keep only the last reconcile, so a drift repaired an interval ago was gone by
the time anyone looked. The report (`report.summarize`) keeps the last `--history`
`reconcile_entry` dicts, newest first; each names its changes and the drift it corrected (kind, action, name), never a field's value,
so nothing secret is copied out of the plan; a failed action keeps its error message, which the
status server's redactor covers like every other answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler.daemon.state import iso_time
from reconciler.settings import DEFAULTS

__all__ = ["DEFAULT_HISTORY", "MAX_CHANGES", "reconcile_entry"]

#: `run --history`'s default (reconciler/settings.py).
DEFAULT_HISTORY = DEFAULTS.history
#: Changes named per entry; beyond, only counted (`changes_omitted`): a plan of thousands of
#: changes must not make every /status answer huge for the next N reconciles.
MAX_CHANGES = 200


def _named(change: Any) -> dict[str, Any]:
    """A change by name: `title` reads `update socket web`, `attach policy p to socket s`."""
    return {
        "action": change.action.value,
        "kind": str(change.kind),
        "name": change.name,
        "title": change.title,
    }


def _changes(result: Any) -> list[dict[str, Any]]:
    """Every change of the reconcile: applied ones with `ok`, the others `ok: None`."""
    applied = getattr(result, "applied", None)
    if applied is not None:
        out = []
        for action in applied.results:
            entry = {**_named(action.change), "ok": action.ok}
            if not action.ok:
                entry["message"] = action.message
            out.append(entry)
        return out
    plan = getattr(result, "plan", None)
    return [{**_named(c), "ok": None} for c in (plan.changes if plan is not None else ())]


def _access_changes(result: Any) -> Any:
    """The plan's access review (who gains or loses access), when the plan has one and was
    applied; None otherwise."""
    plan, applied = getattr(result, "plan", None), getattr(result, "applied", None)
    if plan is None or applied is None:
        return None
    return plan.to_json().get("access_changes") or None


def reconcile_entry(
    result: Any,
    *,
    outcome: str,
    trigger: str,
    revision: str | None,
    wall: float,
    duration: float,
    drifted: int = 0,
    corrected: Iterable[Any] = (),
) -> dict[str, Any]:
    """One reconcile as /status shows it: `drifted` counts the plan's changes that were drift,
    `corrected` are those of them applied successfully."""
    plan = result.plan
    changes = _changes(result)
    entry: dict[str, Any] = {
        "time": iso_time(wall),
        "trigger": trigger,
        "result": outcome,
        "stage": str(result.stage),
        "revision": revision,
        "duration_seconds": round(duration, 3),
        "summary": plan.summary() if plan is not None else None,
        "changes": changes[:MAX_CHANGES],
        "drift": drifted,
        "drift_corrected": [_named(c) for c in corrected][:MAX_CHANGES],
        "error": result.error,
    }
    if len(changes) > MAX_CHANGES:
        entry["changes_omitted"] = len(changes) - MAX_CHANGES
    access = _access_changes(result)
    if access is not None:
        entry["access_changes"] = access
    return entry
