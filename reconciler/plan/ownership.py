"""The ownership rule for a declared object that exists in border0 (used by planner.py): ours,
adopted, ours with its marks lost (recognised by id in the inventory, plan/inventory.py), or a
conflict that names why."""

from __future__ import annotations

from typing import Any

from reconciler import model
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.plan.types import Kind

__all__ = ["REPAIR", "conflict", "take_over"]


def conflict(kind: Kind, name: str, message: str, source: Any, code: str) -> Diagnostic:
    return Diagnostic(
        Severity.ERROR,
        f"{kind} {name}: {message}",
        file=getattr(source, "file", None),
        line=getattr(source, "line", None),
        column=getattr(source, "column", None),
        code=code,
    )


def _ownership_conflict(kind: Kind, spec: Any, own: model.Ownership, instance: str) -> Diagnostic:
    if own.managed:
        return conflict(
            kind,
            spec.name,
            f"exists in border0 and is managed by another instance ({own.instance!r}, not "
            f"{instance!r}); it is never taken over, even with the adopt annotation",
            spec.source,
            "owned-by-other-instance",
        )
    return conflict(
        kind,
        spec.name,
        "exists in border0 but was not created by border0-reconciler; annotate the manifest "
        "with border0-reconciler/adopt: \"true\" to take it over, or rename it",
        spec.source,
        "not-managed",
    )


#: Why an object of ours is written although only its ownership marks changed.
REPAIR = ("ownership tags lost (someone wrote it back without them): recognised by its id in "
          "the inventory, tags repaired")


def take_over(
    kind: Kind, spec: Any, live_id: str, own: model.Ownership, instance: str,
    conflicts: list[Diagnostic], inventory: frozenset[str],
) -> tuple[bool | None, str]:
    """(`_adopting`'s answer, the word that explains a take-over): an unmanaged object in the
    inventory is ours, its marks to be repaired."""
    if not own.managed and live_id in inventory:
        return True, REPAIR
    return _adopting(kind, spec, own, instance, conflicts), "adopt"


def _adopting(
    kind: Kind, spec: Any, own: model.Ownership, instance: str, conflicts: list[Diagnostic]
) -> bool | None:
    """The ownership rule for a declared object that exists: False when it is ours, True when
    the adopt annotation takes an unmanaged one over, None (a conflict recorded) otherwise."""
    if own.owned_by(instance):
        return False
    if own.managed or not spec.adopt:
        conflicts.append(_ownership_conflict(kind, spec, own, instance))
        return None
    return True
