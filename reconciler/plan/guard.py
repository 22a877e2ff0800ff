"""The mass-delete guard: a plan that deletes most of what this instance manages, or
anything while the manifests declare nothing (an empty or wrong checkout), is refused unless
allowed (`--allow-mass-delete`, a higher `--max-delete`)."""

from __future__ import annotations

from reconciler.diagnostics import MASS_DELETE, Diagnostic, Severity
from reconciler.model import Actual, Desired
from reconciler.plan.types import Action, Change, Kind

__all__ = ["MASS_DELETE", "default_max_delete", "guard_mass_delete"]


def default_max_delete(managed: int) -> int:
    """Half of what this instance manages, rounded down, and at least 1."""
    return max(1, managed // 2)


def guard_mass_delete(
    desired: Desired,
    actual: Actual,
    instance: str,
    changes: list[Change],
    max_delete: int | None,
    allow: bool,
    conflicts: list[Diagnostic],
) -> None:
    """A conflict when the plan deletes more than allowed of what this instance manages
    (sockets, policies, connectors; a revoked token is a credential, not an object)."""
    deletes = sum(1 for c in changes if c.action is Action.DELETE and c.kind is not Kind.TOKEN)
    if allow or deletes == 0:
        return
    managed = sum(1 for group in (actual.sockets, actual.policies, actual.connectors)
                  for live in group.values() if live.ownership.owned_by(instance))
    if not desired.sockets and not desired.policies and not desired.connectors:
        conflicts.append(
            Diagnostic(
                Severity.ERROR,
                f"refusing to delete all {deletes} objects this instance manages: the manifests "
                "declare nothing (an empty or wrong checkout?); pass --allow-mass-delete if "
                "this is intended",
                code=MASS_DELETE,
            )
        )
        return
    limit = default_max_delete(managed) if max_delete is None else max_delete
    if deletes > limit:
        conflicts.append(
            Diagnostic(
                Severity.ERROR,
                f"refusing to delete {deletes} objects (more than --max-delete {limit}, of "
                f"{managed} managed); pass --allow-mass-delete or a higher --max-delete if "
                "this is intended",
                code=MASS_DELETE,
            )
        )
