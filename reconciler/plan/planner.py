"""Diff `Desired` against `Actual` into an ordered `Plan`: plain data that can be shown and applied.

Rules that live here, and only here:
- Compare the comparable forms (`model.socket_fields` / `live_socket_fields`, ...) with `==`
  first; only objects that differ go through DeepDiff for field-level diffs (fast for 10k sockets).
- Ownership: only objects owned by this instance are changed or deleted. A manifest naming an
  unmanaged object is a conflict unless annotated adopt; an object owned by ANOTHER instance is
  always a conflict (adopt does not steal, as Flux and Argo refuse to). An unmanaged object whose
  id is in the inventory (plan/inventory.py) is ours and lost its marks: they are repaired.
- Replace (delete then create) when border0's socket_type changes, or a field border0 cannot
  change in place (`NOT_UPDATABLE`: protection) does.
- Secrets: compared with the fingerprints recorded in the socket's tags (`reconciler.secrets`),
  never with anything read back; a secret without a fingerprint is written once to record one.
- Prune: our objects whose manifest is gone are deleted unless their live prune mark is false.
- Mass-delete guard: refuse more than `max_delete` deletes (default half of what we manage, at
  least 1), and always refuse deletes when the desired set is empty, unless `allow_mass_delete`.
- Attachments: a socket's attached policies must equal its spec's `all_policies`.
- Suspend: an object annotated suspend gets no change of any kind (nor do attachments that
  involve it) and is listed in `Plan.suspended`; it is still declared, so never pruned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler import model
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.model import Actual, Desired, LivePolicy, LiveSocket
from reconciler.plan.access import access_review
from reconciler.plan.fields import FieldDiff, comparable, create_diffs, field_diffs
from reconciler.plan.ownership import conflict, take_over
from reconciler.plan.resource_changes import resource_changes
from reconciler.plan.suspended import suspended_rows
from reconciler.plan.types import Action, Change, Kind, Plan, phase_of
from reconciler.secrets import (
    SECRET_FIELDS,
    Fingerprint,
    Secret,
    foreign_key,
    secret_fields_in,
    verify_many,
)

__all__ = ["check_instance", "default_max_delete", "make_plan"]

#: Socket fields border0 cannot change in place (absent from its updateSocketRequest,
#: tests/reference/border0-openapi.json): a change to any of them is a replace.
NOT_UPDATABLE = ("protected", "protected_username", *secret_fields_in("protected"))


def _flag(value: Any) -> str:
    return "true" if value else "false"


def _owner_label(instance: str | None) -> str:
    return f"border0-reconciler instance={instance}"


# --- the planner ----------------------------------------------------------------------------


_INSTANCE_RE = re.compile(r"^[A-Za-z0-9._-]{1,63}$")


def check_instance(instance: str) -> str | None:
    """Why `instance` cannot be used (it goes into a tag value and the policy marker), or None."""
    if _INSTANCE_RE.match(instance or ""):
        return None
    return (
        f"invalid instance {instance!r}: use 1 to 63 letters, digits, '.', '_' or '-'"
    )


def default_max_delete(managed: int) -> int:
    """Half of what this instance manages, rounded down, and at least 1."""
    return max(1, managed // 2)


def make_plan(
    desired: Desired,
    actual: Actual,
    *,
    instance: str = "default",
    max_delete: int | None = None,
    allow_mass_delete: bool = False,
    inventory: frozenset[str] = frozenset(),
) -> Plan:
    """Compute the ordered plan that makes `actual` match `desired` for this instance;
    `inventory`: the ids this instance manages (their ownership marks may be lost)."""
    problem = check_instance(instance)
    if problem:
        raise ValueError(problem)
    changes: list[Change] = []
    conflicts: list[Diagnostic] = []
    warnings: list[Diagnostic] = []

    _verify_fingerprints(desired, actual)
    policy_plans = _plan_policies(desired, actual, instance, changes, conflicts, warnings,
                                  inventory)
    _plan_sockets(desired, actual, instance, changes, conflicts, warnings, policy_plans,
                  inventory)

    managed = sum(1 for s in actual.sockets.values() if s.ownership.owned_by(instance)) + sum(
        1 for p in actual.policies.values() if p.ownership.owned_by(instance)
    )
    deletes = sum(1 for c in changes if c.action is Action.DELETE)
    _guard_mass_delete(desired, managed, deletes, max_delete, allow_mass_delete, conflicts)

    changes.sort(key=lambda c: (phase_of(c.kind, c.action), c.name))
    return Plan(changes=changes, conflicts=conflicts, warnings=warnings, instance=instance,
                suspended=suspended_rows(desired, actual),
                access_changes=access_review(changes, desired, actual),
                resource_changes=resource_changes(changes, desired, actual, instance))


def _verify_fingerprints(desired: Desired, actual: Actual) -> None:
    """Check every secret against its fingerprint at once, on threads (scrypt is slow on
    purpose); the comparisons below then hit the cache."""
    pairs = []
    for name, spec in desired.sockets.items():
        live = actual.sockets.get(name)
        for field_name in SECRET_FIELDS if live is not None else ():
            secret, fp = spec.secret(field_name), live.fingerprint(field_name)
            if secret is not None and fp is not None:
                pairs.append((secret, fp.text))
    verify_many(pairs)


def _guard_mass_delete(
    desired: Desired,
    managed: int,
    deletes: int,
    max_delete: int | None,
    allow: bool,
    conflicts: list[Diagnostic],
) -> None:
    if allow or deletes == 0:
        return
    if not desired.sockets and not desired.policies:
        conflicts.append(
            Diagnostic(
                Severity.ERROR,
                f"refusing to delete all {deletes} objects this instance manages: the manifests "
                "declare nothing (an empty or wrong checkout?); pass --allow-mass-delete if "
                "this is intended",
                code="mass-delete",
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
                code="mass-delete",
            )
        )


def _plan_policies(
    desired: Desired,
    actual: Actual,
    instance: str,
    changes: list[Change],
    conflicts: list[Diagnostic],
    warnings: list[Diagnostic],
    inventory: frozenset[str] = frozenset(),
) -> dict[str, str | None]:
    """Plan policy changes; return policy name -> live id (None when created by this plan)."""
    ids: dict[str, str | None] = {name: p.policy_id for name, p in actual.policies.items()}
    for name, spec in desired.policies.items():
        if spec.suspend:
            continue
        src = str(spec.source) if spec.source else None
        live = actual.policies.get(name)
        if live is None:
            changes.append(
                Change(Kind.POLICY, name, Action.CREATE, "not in border0",
                       create_diffs(model.policy_fields(spec)), source=src)
            )
            ids[name] = None
            continue
        adopting, why = take_over(Kind.POLICY, spec, live.policy_id, live.ownership, instance,
                                   conflicts, inventory)
        if adopting is None:
            continue
        want, have = model.policy_fields(spec), model.live_policy_fields(live)
        if want == have and not adopting:
            continue
        diffs = field_diffs(have, want)
        if adopting:
            diffs = (FieldDiff("managed_by", None, _owner_label(instance)),) + diffs
        if want["org_wide"] != have["org_wide"]:
            # border0 does not change org_wide in place (PUT ignores it): delete and create,
            # then attach the new policy wherever it is named.
            reason = f"org_wide changed: {_flag(have['org_wide'])} → {_flag(want['org_wide'])}"
            changes.append(
                Change(Kind.POLICY, name, Action.REPLACE,
                       (f"{why}; " + reason) if adopting else reason, diffs,
                       object_id=live.policy_id, source=src)
            )
            ids[name] = None
            continue
        changes.append(
            Change(Kind.POLICY, name, Action.UPDATE, why if adopting else "changed",
                   diffs, object_id=live.policy_id, source=src)
        )
    for name, live in actual.policies.items():
        if name in desired.policies or not live.ownership.owned_by(instance):
            continue
        _prune(changes, warnings, Kind.POLICY, name, live.policy_id, live.ownership.prune)
    return ids


def _prune(
    changes: list[Change], warnings: list[Diagnostic], kind: Kind, name: str, object_id: str,
    prune: bool,
) -> None:
    if prune:
        changes.append(
            Change(kind, name, Action.DELETE, "not in the manifests (prune)", object_id=object_id)
        )
    else:
        warnings.append(
            Diagnostic(
                Severity.WARNING,
                f"{kind} {name} is no longer in the manifests; kept: prune disabled",
                code="prune-disabled",
            )
        )


def _plan_sockets(
    desired: Desired,
    actual: Actual,
    instance: str,
    changes: list[Change],
    conflicts: list[Diagnostic],
    warnings: list[Diagnostic],
    policy_ids: Mapping[str, str | None],
    inventory: frozenset[str] = frozenset(),
) -> None:
    suspended_policies = {n for n, p in desired.policies.items() if p.suspend}
    for name, spec in desired.sockets.items():
        if spec.suspend:
            continue
        src = str(spec.source) if spec.source else None
        live = actual.sockets.get(name)
        attached: Mapping[str, str] = {}
        socket_id: str | None = None
        if live is None:
            changes.append(
                Change(Kind.SOCKET, name, Action.CREATE, "not in border0",
                       create_diffs(model.socket_fields(spec)), source=src)
            )
        else:
            adopting, why = take_over(Kind.SOCKET, spec, live.socket_id, live.ownership,
                                       instance, conflicts, inventory)
            if adopting is None:
                continue
            want, have = comparable(model.socket_fields(spec), model.live_socket_fields(live))
            reason = _replace_reason(spec, live, want, have)
            if reason:
                if adopting:
                    reason = f"{why}; " + reason
                changes.append(
                    Change(Kind.SOCKET, name, Action.REPLACE, reason, field_diffs(have, want),
                           object_id=live.socket_id, source=src)
                )
            else:
                socket_id = live.socket_id
                # a policy replaced by this plan starts with no attachments
                attached = {
                    n: i for n, i in zip(live.policy_names, live.policy_ids)
                    if not (n in actual.policies and policy_ids.get(n) is None)
                }
                if want != have or adopting:
                    diffs = field_diffs(have, want)
                    if adopting:
                        diffs = (FieldDiff("managed_by", None, _owner_label(instance)),) + diffs
                    reason = why if adopting else "changed"
                    unrecorded = _unrecorded_secrets(want, have)
                    if unrecorded:
                        reason += (
                            f"; no fingerprint of {', '.join(unrecorded)} on the socket: "
                            "written once to record one (border0 does not read secrets back)"
                        )
                    rekeyed = _rekeyed_secrets(want, have)
                    if rekeyed:
                        reason += f"; {_REKEYED.format(', '.join(rekeyed))}"
                    changes.append(
                        Change(Kind.SOCKET, name, Action.UPDATE, reason,
                               diffs, object_id=live.socket_id, source=src)
                    )
        _plan_attachments(spec, socket_id, attached, actual, policy_ids, changes, conflicts,
                          suspended_policies)
    for name, live in actual.sockets.items():
        if name in desired.sockets or not live.ownership.owned_by(instance):
            continue
        _prune(changes, warnings, Kind.SOCKET, name, live.socket_id, live.ownership.prune)


def _replace_reason(
    spec: model.SocketSpec, live: LiveSocket, want: Mapping[str, Any], have: Mapping[str, Any]
) -> str:
    """Why the socket must be deleted and created again, or "" when an update will do."""
    if live.socket_type != model.api_type(spec)[0]:
        return f"type changed: {live.type} → {spec.type}"
    fixed = [k for k in NOT_UPDATABLE if k in want and want[k] != have.get(k)]
    if not fixed:
        return ""
    why = "border0 cannot change protection in place (not in its updateSocketRequest)"
    if fixed == _unrecorded_secrets(want, have):
        return f"no fingerprint of {', '.join(fixed)} on the socket: written once, and {why}"
    if fixed == _rekeyed_secrets(want, have):
        return f"{_REKEYED.format(', '.join(fixed))}, and {why}"
    return f"{', '.join(fixed)} changed: {why}"


_REKEYED = ("the fingerprint of {} was made with another key (the fingerprint key changed or "
            "was lost): written once to record one")


def _rekeyed_secrets(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    """The secret fields whose fingerprint was made with another fingerprint key."""
    return [k for k in SECRET_FIELDS if isinstance(want.get(k), Secret)
            and isinstance(have.get(k), Fingerprint) and foreign_key(have[k].text)]


def _unrecorded_secrets(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    """The secret fields the manifest sets that have no fingerprint on the live socket."""
    return [k for k in SECRET_FIELDS if isinstance(want.get(k), Secret) and have.get(k) is None]


def _plan_attachments(
    spec: model.SocketSpec,
    socket_id: str | None,
    attached: Mapping[str, str],
    actual: Actual,
    policy_ids: Mapping[str, str | None],
    changes: list[Change],
    conflicts: list[Diagnostic],
    suspended: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Attach what the spec names and is not attached; detach what is attached and not named.

    Org-wide policies apply to every socket without an attachment: they are never detached.
    Attachments of a suspended policy are left as they are.
    """
    src = str(spec.source) if spec.source else None
    wanted = spec.all_policies
    for policy in wanted:
        if policy in suspended:
            continue
        if policy not in policy_ids:
            external = policy in spec.external_policies and policy not in spec.policies
            what = "external policy" if external else "policy"
            conflicts.append(
                conflict(Kind.SOCKET, spec.name,
                          f"{what} {policy!r} does not exist in border0 or the manifests",
                          spec.source, "unknown-policy")
            )
            continue
        if policy in attached:
            continue
        changes.append(
            Change(Kind.ATTACHMENT, f"{spec.name}/{policy}", Action.ATTACH,
                   "named in the manifest", object_id=socket_id, socket=spec.name,
                   policy=policy, policy_id=policy_ids[policy], source=src)
        )
    for policy, pid in attached.items():
        if policy in wanted or policy in suspended:
            continue
        live_policy: LivePolicy | None = actual.policies.get(policy)
        if live_policy is not None and live_policy.org_wide:
            continue
        changes.append(
            Change(Kind.ATTACHMENT, f"{spec.name}/{policy}", Action.DETACH,
                   "not named in the manifest", object_id=socket_id, socket=spec.name,
                   policy=policy, policy_id=pid, source=src)
        )
