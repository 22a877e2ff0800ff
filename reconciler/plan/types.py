"""A plan as plain data: `Change`s (kind, action, before/after diffs, reason) and the `Plan`
that orders them into apply phases. Renderers read only `Plan.to_json()`, its versioned form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.plan.access import GAINING, AccessChange
from reconciler.plan.fields import FieldDiff

__all__ = [
    "DEFER_WORDS", "FORMAT_VERSION", "PHASES", "POLICY_REPLACE_NOTE", "REPLACE_NOTE", "Action",
    "Blocked", "Change", "DeferReason", "Deferred", "Kind", "Plan", "phase_of",
]

FORMAT_VERSION = "1"
#: What a replace costs, said by every rendering of one (it is in the change's reason).
REPLACE_NOTE = ("new id and TCP port; sessions and recordings stay with the old id; "
                "connections drop")
POLICY_REPLACE_NOTE = "new id; its attachments are made again"


class Kind(StrEnum):
    """What a change acts on."""

    SOCKET = "socket"
    POLICY = "policy"
    ATTACHMENT = "attachment"
    CONNECTOR = "connector"
    TOKEN = "token"  # a connector token: "<connector>/<token>"


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    ATTACH = "attach"
    DETACH = "detach"


#: The order of apply phases; changes in a plan are sorted by it.
PHASES: tuple[tuple[Kind, tuple[Action, ...]], ...] = (
    (Kind.CONNECTOR, (Action.CREATE, Action.UPDATE)),
    (Kind.TOKEN, (Action.CREATE, Action.REPLACE)),
    (Kind.POLICY, (Action.CREATE, Action.UPDATE, Action.REPLACE)),
    (Kind.SOCKET, (Action.CREATE, Action.UPDATE, Action.REPLACE)),
    (Kind.ATTACHMENT, (Action.ATTACH,)),
    (Kind.ATTACHMENT, (Action.DETACH,)),
    (Kind.SOCKET, (Action.DELETE,)),
    (Kind.POLICY, (Action.DELETE,)),
    (Kind.TOKEN, (Action.DELETE,)),
    (Kind.CONNECTOR, (Action.DELETE,)),
)


def phase_of(kind: Kind | str, action: Action) -> int:
    for index, (phase_kind, actions) in enumerate(PHASES):
        if phase_kind == kind and action in actions:
            return index
    raise ValueError(f"no phase for {action.value} {kind}")


@dataclass(frozen=True)
class Change:
    """One action on one object. `reason` explains; it never decides."""

    kind: Kind
    name: str  # object name; "socket/policy" for attachments
    action: Action
    reason: str = ""
    diffs: tuple[FieldDiff, ...] = ()
    object_id: str | None = None  # the live id (update, replace, delete; attachments: socket id)
    socket: str | None = None  # attachments only
    policy: str | None = None  # attachments only
    policy_id: str | None = None  # attachments: None when the policy is created by this plan
    source: str | None = None  # manifest file:line:column
    #: Why this change may not be applied as planned (a replace without its allowance); the
    #: CLI's apply refuses the plan, the daemon applies the rest and reports the object.
    blocked: str = ""
    connector: str | None = None  # tokens only: the connector's name
    token_id: str | None = None  # tokens: the live token revoked (replace, delete)
    #: Takes over an object border0 holds unmanaged (the adopt annotation): decided by the
    #: planner, read by views (`ls`: "to adopt") instead of the words of `reason`.
    adopting: bool = False
    #: Responsible for a grant the access review finds gained, widened or changed
    #: (`plan/access.py` GAINING): it waits for the manifests to settle (plan/settling.py).
    widens_access: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))  # "socket" is accepted, Kind is kept

    @property
    def replacing(self) -> bool:
        """Deleted and created again (a new id): the action says it, never the reason."""
        return self.action is Action.REPLACE

    @property
    def token(self) -> str:
        """A token change's token name (its `name` is `connector/token`)."""
        return self.name.split("/", 1)[1]

    @property
    def title(self) -> str:
        """`update socket db`, `attach policy p to socket s`: the one wording of a change, in
        the plan JSON (`title`) for every view, and in apply's progress and error lines."""
        if self.kind is Kind.ATTACHMENT:
            prep = "to" if self.action is Action.ATTACH else "from"
            return f"{self.action.value} policy {self.policy} {prep} socket {self.socket}"
        return f"{self.action.value} {self.kind} {self.name}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind.value,
            "name": self.name,
            "action": self.action.value,
            "title": self.title,
            "reason": self.reason,
            "diffs": [d.to_json() for d in self.diffs],
            "source": self.source,
        }
        if self.kind == "attachment":
            data["socket"] = self.socket
            data["policy"] = self.policy
        if self.blocked:
            data["blocked"] = self.blocked
        if self.kind == "token":
            data["connector"] = self.connector
        if self.adopting:
            data["adopting"] = True
        if self.widens_access:
            data["widens_access"] = True
        return data


class DeferReason(StrEnum):
    """Why a change waits for the manifests to settle (plan/settling.py)."""

    REMOVAL = "removal"  # a delete or detach
    ACCESS = "access"  # grants access (`Change.widens_access`)
    GUARD = "guard"  # switches `protected` or `recording` off
    INCOMPLETE = "incomplete"  # its file looks cut mid-write


#: Each reason in words, for every view (the plan JSON's `why`).
DEFER_WORDS: dict[str, str] = {
    DeferReason.REMOVAL: "removes an object", DeferReason.ACCESS: "grants access",
    DeferReason.GUARD: "lowers a guard", DeferReason.INCOMPLETE: "its file looks cut mid-write",
}


@dataclass(frozen=True)
class Deferred:
    """A change the planner held back from this plan, as Terraform's deferred changes: it is
    planned again at `until` (epoch seconds). Views and the daemon read these; nothing after
    the planner takes changes out of a plan."""

    change: Change
    reason: DeferReason
    until: float

    def describe(self) -> str:
        return f"{self.change.title} ({DEFER_WORDS[self.reason]})"

    def to_json(self) -> dict[str, Any]:
        until = datetime.fromtimestamp(self.until, UTC).isoformat(timespec="milliseconds")
        return {"change": self.change.to_json(), "reason": self.reason.value,
                "why": DEFER_WORDS[self.reason], "until": until}


@dataclass(frozen=True)
class Blocked:
    """An object whose change was left out while the rest of the plan goes ahead (the daemon's
    isolation): a conflict about it alone, or a replace without its allowance. `why` is the
    whole sentence, naming it."""

    kind: str
    name: str
    why: str

    def __str__(self) -> str:
        return self.why


@dataclass(frozen=True)
class Plan:
    """An ordered list of changes plus the problems that block it (conflicts) or explain it."""

    changes: list[Change] = field(default_factory=list)
    conflicts: list[Diagnostic] = field(default_factory=list)  # errors: the plan cannot be applied
    warnings: list[Diagnostic] = field(default_factory=list)
    instance: str = "default"
    access_changes: list[AccessChange] = field(default_factory=list)  # plan/access.py
    #: Declared objects annotated suspend, left as they are: {kind, name, in_border0, source}.
    suspended: list[dict[str, Any]] = field(default_factory=list)
    resource_changes: list[dict[str, Any]] = field(default_factory=list)  # Terraform's shape
    #: Changes held back until the manifests settle (not in `changes`): plan/settling.py.
    deferred: list[Deferred] = field(default_factory=list)
    #: Objects left out while the rest goes ahead (`make_plan(isolate_conflicts=True)`).
    isolated: list[Blocked] = field(default_factory=list)
    #: The sockets this plan found in sync, for the next plan (plan/in_sync.py); not shown.
    in_sync: Any = field(default=None, compare=False, repr=False)

    @property
    def deferred_until(self) -> float | None:
        """When the deferred changes are planned again (epoch seconds); None: nothing waits."""
        return max((d.until for d in self.deferred), default=None)

    @property
    def access_gains(self) -> list[AccessChange]:
        """Access changes that widen someone's access (refused by --deny-access-gain)."""
        return [c for c in self.access_changes if c.change in GAINING]

    @property
    def blocked(self) -> list[Change]:
        """Changes that need an allowance this run does not have (see `Change.blocked`)."""
        return [c for c in self.changes if c.blocked]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def ok(self) -> bool:
        """True when no conflict is an error (a blocked change aside: see `applicable`)."""
        return not any(d.severity is Severity.ERROR for d in self.conflicts)

    @property
    def applicable(self) -> bool:
        """True when `apply` would take this plan as it is: no error and no blocked change."""
        return self.ok and not self.blocked

    def summary(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """The versioned JSON form (docs/plan-format.md); every renderer reads only this."""
        return {
            "format_version": FORMAT_VERSION,
            "instance": self.instance,
            "applicable": self.applicable,
            "summary": self.summary(),
            "changes": [c.to_json() for c in self.changes],
            "conflicts": [d.to_json() for d in self.conflicts],
            "warnings": [d.to_json() for d in self.warnings],
            "suspended": list(self.suspended),
            "access_changes": [c.to_json() for c in self.access_changes],
            "resource_changes": self.resource_changes,
            "deferred": [d.to_json() for d in self.deferred],
        }
