"""Prune: what happens to an object this instance owns whose manifest is gone.

Deleted, unless its live prune mark is false (kept, with a warning); one whose live mark says
confirm-delete waits, with a warning naming how to confirm it, until a run confirms its name
(`apply --confirm-delete NAME`, `POST /reconcile?confirm-delete=NAME`).
"""

from __future__ import annotations

from reconciler import model
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.plan.types import Action, Change, Kind

__all__ = ["prune"]


def prune(
    changes: list[Change], warnings: list[Diagnostic], kind: Kind, name: str, object_id: str,
    own: model.Ownership, confirmed: frozenset[str] = frozenset(),
) -> None:
    if own.prune and own.confirm_delete and name not in confirmed:
        warnings.append(
            Diagnostic(
                Severity.WARNING,
                f"{kind} {name} is no longer in the manifests; its deletion waits for a "
                f"confirmation (border0-reconciler/confirm-delete): apply --confirm-delete "
                f"{name}, or POST /reconcile?confirm-delete={name} to the daemon",
                code="delete-unconfirmed",
                kind=str(kind),
                name=name,
            )
        )
    elif own.prune:
        reason = "not in the manifests (prune)" + (
            "; deletion confirmed" if own.confirm_delete else "")
        changes.append(Change(kind, name, Action.DELETE, reason, object_id=object_id))
    else:
        warnings.append(
            Diagnostic(
                Severity.WARNING,
                f"{kind} {name} is no longer in the manifests; kept: prune disabled",
                code="prune-disabled",
                kind=str(kind),
                name=name,
            )
        )
