"""Which changes of a plan must wait until the manifests settle, and holding them back.

A file caught half-written (an interrupted copy, a paused writer, an editor writing in place)
can read as valid YAML that says less than the finished file will: a policy without its
`where`, a socket without its protection. Applying that would open access for as long as the
file stays cut. So changes that *grant* access or *lower a guard* wait out the grace window like
deletes do, and so does every change from a file that cannot be a complete write (its content
does not end in a newline: cut mid-line). Changes that only narrow access, or are neutral, go
ahead at once.

What grants access is the access review's verdict (`plan/access.py`: a gain, widened or
changed grant), traced back to the changes responsible (`widening`, which the planner runs to set
`Change.widens_access`): the policy edited, created or made org-wide, the attachment added, the
socket whose type changed, the socket whose new tags a policy's `tag_rules` select. A socket's
creation is not held for the grants it starts with (nor are its attachments). Lowering a guard
is a socket update that switches `protected` or `recording` off.

The planner decides all of it (`defer`, given a `Settle`): the changes held back leave the plan's
`changes` for its `deferred` list, with their reason and when they are planned again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.plan.access import GAINING, SELECTED, AccessChange, policy_edited
from reconciler.plan.types import Action, Change, DeferReason, Deferred, Kind

__all__ = ["GUARDS", "Held", "Settle", "defer", "held_back", "widening"]

#: Socket fields that guard access: switching one off waits like a grant does.
GUARDS = ("protected", "recording")


@dataclass(frozen=True)
class Held:
    """One change held back, and why."""

    change: Change
    why: DeferReason


@dataclass(frozen=True)
class Settle:
    """What the planner needs to hold changes back (the pipeline's delete grace): when the
    manifests last changed, how long they must then stay unchanged, the time now (epoch
    seconds), and the files that look cut mid-write."""

    changed_at: float
    grace: float
    now: float
    incomplete: tuple[str, ...] = ()

    @property
    def quiet(self) -> float:
        """Seconds since the manifests last changed."""
        return self.now - self.changed_at

    @property
    def settled(self) -> bool:
        """Nothing waits: the grace has passed, or there is none (`plan`, `apply`, `--once`;
        even when a file's mtime is slightly ahead of this clock)."""
        return self.grace <= 0 or self.quiet >= self.grace


def _file_of(source: str | None) -> str | None:
    if not source:
        return None
    parts = source.rsplit(":", 2)
    return parts[0] if len(parts) == 3 else source


def _lowers_guard(change: Change) -> bool:
    if change.kind != Kind.SOCKET or change.action not in (Action.UPDATE, Action.REPLACE):
        return False
    return any(d.path in GUARDS and d.before is True and not d.after for d in change.diffs)


def _granting(changes: Sequence[Change], access: Iterable[AccessChange]) -> set[int]:
    """Indexes of the changes responsible for a gained, widened or changed grant."""
    policies: set[str] = set()
    attachments: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    for grant in access:
        if grant.change not in GAINING:
            continue
        for policy, cause in grant.policies:
            if cause == "attached":
                attachments.add((grant.socket, policy))
            elif cause in ("socket type changed", SELECTED):
                sockets.add(grant.socket)
            elif cause in ("created", "org-wide") or policy_edited(cause):
                policies.add(policy)
                attachments.add((grant.socket, policy))  # a created policy is attached too
    out = set()
    for index, c in enumerate(changes):
        edits = c.kind == Kind.POLICY and c.action is not Action.DELETE and c.name in policies
        attach = c.kind == Kind.ATTACHMENT and c.action is Action.ATTACH and (
            (c.socket or "", c.policy or "") in attachments)
        rewrite = c.kind == Kind.SOCKET and c.action in (Action.UPDATE, Action.REPLACE) and (
            c.name in sockets)
        if edits or attach or rewrite:
            out.add(index)
    return out


def widening(changes: Sequence[Change], access: Iterable[AccessChange]) -> list[Change]:
    """`changes` with `widens_access` set on those responsible for a gained, widened or
    changed grant of the access review."""
    granting = _granting(changes, access)
    return [replace(c, widens_access=True) if i in granting else c
            for i, c in enumerate(changes)]


def held_back(
    changes: Sequence[Change], *, removals: bool, incomplete: Iterable[str] = (),
) -> list[Held]:
    """The changes to hold back while the manifests are unsettled: those that grant access
    (`Change.widens_access`) or lower a guard, those from `incomplete` files, and (when
    `removals`) deletes and detaches."""
    cut = set(incomplete)
    held = []
    for change in changes:
        if _file_of(change.source) in cut:
            held.append(Held(change, DeferReason.INCOMPLETE))
        elif change.widens_access:
            held.append(Held(change, DeferReason.ACCESS))
        elif _lowers_guard(change):
            held.append(Held(change, DeferReason.GUARD))
        elif removals and change.action in (Action.DELETE, Action.DETACH):
            held.append(Held(change, DeferReason.REMOVAL))
    waiting = {c.change.name for c in held if c.change.kind == Kind.POLICY}
    held.extend(  # an attachment cannot go ahead of the policy it attaches
        Held(c, DeferReason.ACCESS) for c in changes
        if c.kind == Kind.ATTACHMENT and c.action is Action.ATTACH and c.policy in waiting
        and all(h.change is not c for h in held))
    return held


def defer(
    changes: Sequence[Change], settle: Settle | None,
) -> tuple[list[Change], list[Deferred], list[Diagnostic]]:
    """`changes` split into those planned now and those deferred until the manifests settle
    (nothing while they are settled), with the warnings that say why."""
    if settle is None or settle.settled:
        return list(changes), [], []
    until = settle.changed_at + settle.grace
    deferred = [Deferred(h.change, h.why, until)
                for h in held_back(changes, removals=True, incomplete=settle.incomplete)]
    taken = {id(d.change) for d in deferred}
    return [c for c in changes if id(c) not in taken], deferred, _warnings(deferred, settle.quiet)


def _warnings(deferred: Sequence[Deferred], quiet: float) -> list[Diagnostic]:
    removals = [d for d in deferred if d.reason is DeferReason.REMOVAL]
    others = [d for d in deferred if d.reason is not DeferReason.REMOVAL]
    warnings = []
    if removals:
        warnings.append(Diagnostic(
            Severity.WARNING,
            f"deletion deferred: manifests changed {quiet * 1000:.0f} ms ago "
            f"({_names(d.change for d in removals)}); "
            "planned again once they have been unchanged for the grace period",
            code="deletion-deferred",
        ))
    if others:
        warnings.append(Diagnostic(
            Severity.WARNING,
            f"held back until the manifests settle: changed {quiet * 1000:.0f} ms ago "
            f"({'; '.join(d.describe() for d in others[:5])}"
            f"{f' and {len(others) - 5} more' if len(others) > 5 else ''}); "
            "applied only if the files stay unchanged for the grace period",
            code="change-held",
        ))
    return warnings


def _names(changes: Iterable[Change]) -> str:
    listed = list(changes)
    names = ", ".join(f"{c.action.value} {c.kind} {c.name}" for c in listed[:5])
    return names + (f" and {len(listed) - 5} more" if len(listed) > 5 else "")
