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
- Prune (plan/prune.py): our objects whose manifest is gone are deleted unless their live prune
  mark is false; one marked confirm-delete waits (a warning) until a run confirms its name.
- Mass-delete guard (`plan/guard.py`): refuse more than `max_delete` deletes (default half of
  what we manage, at least 1), and always refuse deletes when the desired set is empty, unless
  `allow_mass_delete`.
- Attachments: a socket's attached policies must equal its spec's `all_policies`.
- A replace loses nothing an update would have kept: the attachments of a replaced socket or
  policy that an update would leave in place (of a suspended object, made in the portal, all of
  them with policies not managed) are attached again, as attaches in the plan (plan/kept.py).
- Suspend: an object annotated suspend gets no change of any kind (nor do attachments that
  involve it) and is listed in `Plan.suspended`; it is still declared, so never pruned.
- Replace is loud: its reason says what it costs (`REPLACE_NOTE`), and without the object's
  allowance (annotation or --allow-replace) it is `blocked`.
- Labels: only the tag keys the manifest manages are compared (`model.live_socket_fields`
  with the spec); a change of tags names the policies whose `tag_rules` it starts or stops
  matching.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from reconciler import model
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.model import Actual, Desired, LivePolicy, LiveSocket
from reconciler.ownership import Instance, InvalidInstance
from reconciler.plan.access import access_review
from reconciler.plan.connectors import (
    POLICIES_NOT_MANAGED,
    plan_connectors,
    unknown_connectors,
    unserved_sockets,
)
from reconciler.plan.fields import FieldDiff, comparable, create_diffs, field_diffs
from reconciler.plan.guard import default_max_delete, guard_mass_delete
from reconciler.plan.ignore import respect_ignored
from reconciler.plan.in_sync import InSync, context_key, socket_key
from reconciler.plan.kept import keep_on_policy_replace, kept_on_socket_replace
from reconciler.plan.prune import prune as _prune
from reconciler.plan.resource_changes import resource_changes
from reconciler.plan.settling import Settle, defer, widening
from reconciler.plan.suspended import suspended_rows
from reconciler.plan.types import (
    POLICY_REPLACE_NOTE,
    REPLACE_NOTE,
    Action,
    Blocked,
    Change,
    Kind,
    Plan,
    phase_of,
)
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


def check_instance(instance: str) -> str | None:
    """Why `instance` cannot be used (`ownership.Instance` holds the rule), or None."""
    try:
        Instance(instance)
    except InvalidInstance as exc:
        return str(exc)
    return None


def make_plan(
    desired: Desired,
    actual: Actual,
    *,
    instance: str = "default",
    max_delete: int | None = None,
    allow_mass_delete: bool = False,
    allow_clear_credentials: bool = False,
    inventory: frozenset[str] = frozenset(),
    confirm_delete: Collection[str] = (),
    manage_policies: bool = True,
    settle: Settle | None = None,
    isolate_conflicts: bool = False,
    notes: Sequence[Diagnostic] = (),
    only: Collection[str] | None = None,
    in_sync: InSync | None = None,
) -> Plan:
    """Compute the ordered plan that makes `actual` match `desired` for this instance;
    `inventory`: the ids this instance manages (their ownership marks may be lost);
    `confirm_delete`: names whose deletion waits for a confirmation and has it (this run);
    `settle`: when the manifests changed and the grace they need: what must wait for them to
    settle goes to `Plan.deferred` instead of `changes` (plan/settling.py), so the mass-delete
    guard counts only the deletes planned now; `isolate_conflicts` (the daemon): an object that
    cannot go ahead (a conflict about it alone, a replace without its allowance) leaves only its
    own change out, listed in `Plan.isolated`, and the rest of the plan stays applicable.
    `notes`: warnings found before planning (token Secrets that could not be read), kept last.
    `only` (the daemon's edit of a few files, `reconcile.edited_sockets`): only these sockets are
    compared, created or pruned; every other socket is as the last clean plan left it, so it is
    not compared again. Policies, connectors and the mass-delete guard still see everything.
    `in_sync`: the sockets an earlier plan found in sync (plan/in_sync.py), not compared again
    while nothing they were compared on changed; `Plan.in_sync` is this plan's record (None
    without `in_sync`, or with `only`).

    With `manage_policies` off, policies and attachments are neither compared nor changed
    (`actual` holds none: they were not read), and a warning says so; a replaced socket's
    attachments (as its answer lists them) are made again."""
    Instance(instance)  # InvalidInstance, a ValueError, for a bad one (the plan keeps a str)
    desired = respect_ignored(desired, actual)  # spec.ignoreFields (plan/ignore.py)
    changes: list[Change] = []
    conflicts: list[Diagnostic] = []
    warnings: list[Diagnostic] = []

    confirmed = frozenset(confirm_delete)
    plan_connectors(desired, actual, instance, changes, conflicts, warnings, _adopting)
    policy_plans = None
    if manage_policies:
        policy_plans = _plan_policies(desired, actual, instance, changes, conflicts, warnings,
                                      inventory, confirmed)
    else:
        warnings.append(POLICIES_NOT_MANAGED)
    found_in_sync = _plan_sockets(desired, actual, instance, changes, conflicts, warnings,
                                  policy_plans, inventory, confirmed, only, in_sync)
    changes = [_clearing(c, desired, actual, allow_clear_credentials) for c in changes]
    isolated: list[Blocked] = []
    if isolate_conflicts:  # before the access review: it reviews what is applied
        changes, conflicts, isolated = _isolated(changes, conflicts)

    changes.sort(key=lambda c: (phase_of(c.kind, c.action), c.name))
    # sockets left without a connector: nobody reaches them (plan/connectors.py)
    access, unserved = unserved_sockets(changes, access_review(changes, desired, actual, instance),
                                       actual)
    warnings.extend(unserved)
    changes = widening(changes, access)
    rows = resource_changes(changes, desired, actual, instance)
    changes, deferred, waiting = defer(changes, settle)
    guard_mass_delete(desired, actual, instance, changes, max_delete, allow_mass_delete,
                      conflicts)
    plan = Plan(changes=changes, conflicts=conflicts, warnings=[*warnings, *waiting, *notes],
                instance=instance, suspended=suspended_rows(desired, actual),
                access_changes=access, resource_changes=rows, deferred=deferred,
                isolated=isolated, in_sync=found_in_sync)
    return plan


#: Conflicts about one object alone: with `isolate_conflicts` they block only that object.
OBJECT_CONFLICTS = ("not-managed", "owned-by-other-instance")


def _isolated(changes: list[Change], conflicts: list[Diagnostic]
              ) -> tuple[list[Change], list[Diagnostic], list[Blocked]]:
    """(the changes that go ahead, the conflicts left, the objects set aside): an object with a
    conflict about it alone or a change that needs an allowance is set aside, and so is every
    attachment to or of it. A policy this instance may not manage is never attached: it is
    someone else's, and may grant more than the manifest's (a socket or policy that is not
    replaced keeps its id and its attachments)."""
    objects = [d for d in conflicts if d.code in OBJECT_CONFLICTS]
    unallowed = [c for c in changes if c.blocked]
    if not objects and not unallowed:
        return changes, conflicts, []
    isolated = [Blocked(d.kind or "", d.name or "", d.message) for d in objects] + [
        Blocked(str(c.kind), c.name, c.blocked) for c in unallowed]
    held = {(b.kind, b.name) for b in isolated}
    going = [c for c in changes if not c.blocked and not (
        c.kind == Kind.ATTACHMENT and ((str(Kind.SOCKET), c.socket) in held
                                       or (str(Kind.POLICY), c.policy) in held))]
    return going, [d for d in conflicts if d.code not in OBJECT_CONFLICTS], isolated


def _verify_fingerprints(desired: Desired, actual: Actual,
                         only: Collection[str] | None = None,
                         unchanged: Collection[str] = ()) -> None:
    """Check every secret against its fingerprint at once, on threads (scrypt is slow on
    purpose); the comparisons below then hit the cache. Not those of `unchanged` sockets,
    which are not compared."""
    pairs = []
    for name, spec in _among(desired.sockets, only):
        live = actual.sockets.get(name)
        if live is None or not spec.secrets_by_field or name in unchanged:
            continue
        for field_name, secret in spec.secrets_by_field.items():
            fp = live.fingerprint(field_name)
            if fp is not None:
                pairs.append((secret, fp.text))
    verify_many(pairs)


def _conflict(kind: Kind, name: str, message: str, source: Any, code: str) -> Diagnostic:
    return Diagnostic(
        Severity.ERROR,
        f"{kind} {name}: {message}",
        file=getattr(source, "file", None),
        line=getattr(source, "line", None),
        column=getattr(source, "column", None),
        code=code,
        kind=str(kind),
        name=name,
    )


def _ownership_conflict(kind: Kind, spec: Any, own: model.Ownership, instance: str) -> Diagnostic:
    if own.managed:
        return _conflict(
            kind,
            spec.name,
            f"exists in border0 and is managed by another instance ({own.instance!r}, not "
            f"{instance!r}); it is never taken over, even with the adopt annotation",
            spec.source,
            "owned-by-other-instance",
        )
    return _conflict(
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


def _take_over(
    kind: Kind, spec: Any, live_id: str, own: model.Ownership, instance: str,
    conflicts: list[Diagnostic], inventory: frozenset[str],
) -> tuple[bool | None, str, bool]:
    """(`_adopting`'s answer, the word that explains a take-over, whether the adopt annotation
    takes it: `Change.adopting`): an unmanaged object in the inventory is ours, its marks to be
    repaired."""
    if not own.managed and live_id in inventory:
        return True, REPAIR, False
    taking = _adopting(kind, spec, own, instance, conflicts)
    return taking, "adopt", bool(taking)


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


def _plan_policies(
    desired: Desired,
    actual: Actual,
    instance: str,
    changes: list[Change],
    conflicts: list[Diagnostic],
    warnings: list[Diagnostic],
    inventory: frozenset[str] = frozenset(),
    confirmed: frozenset[str] = frozenset(),
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
        adopting, why, adopt = _take_over(Kind.POLICY, spec, live.policy_id, live.ownership,
                                          instance, conflicts, inventory)
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
            reason = _loud((f"{why}; " + reason) if adopting else reason, Kind.POLICY)
            changes.append(
                Change(Kind.POLICY, name, Action.REPLACE, reason, diffs,
                       object_id=live.policy_id, source=src,
                       blocked=_blocked(Kind.POLICY, spec), adopting=adopt)
            )
            ids[name] = None
            continue
        changes.append(
            Change(Kind.POLICY, name, Action.UPDATE, why if adopting else "changed",
                   diffs, object_id=live.policy_id, source=src, adopting=adopt)
        )
    gone = [(name, live) for name, live in actual.policies.items()
            if name not in desired.policies and live.ownership.owned_by(instance)]
    named = _named_policies(desired) if gone else {}  # every socket walked: only when needed
    for name, live in gone:
        if name in named:  # deleting it would detach it from sockets that name it
            warnings.append(Diagnostic(
                Severity.WARNING,
                f"policy {name} is no longer in the manifests, but socket(s) "
                f"{', '.join(named[name])} name it: kept, since its delete would detach it "
                "from them; declare it again, or take it out of those sockets to prune it",
                code="prune-named", kind=str(Kind.POLICY), name=name))
            continue
        _prune(changes, warnings, Kind.POLICY, name, live.policy_id, live.ownership, confirmed)
    return ids


def _named_policies(desired: Desired) -> dict[str, list[str]]:
    """policy name -> the declared sockets that name it (spec.policies or externalPolicies,
    suspended sockets too: a delete would detach it from them all)."""
    named: dict[str, list[str]] = {}
    for socket in sorted(desired.sockets):
        for policy in desired.sockets[socket].all_policies:
            named.setdefault(policy, []).append(socket)
    return named


def _plan_sockets(
    desired: Desired,
    actual: Actual,
    instance: str,
    changes: list[Change],
    conflicts: list[Diagnostic],
    warnings: list[Diagnostic],
    policy_ids: Mapping[str, str | None] | None,
    inventory: frozenset[str] = frozenset(),
    confirmed: frozenset[str] = frozenset(),
    only: Collection[str] | None = None,
    in_sync: InSync | None = None,
) -> InSync | None:
    """Plan the sockets' changes. With `in_sync` (an earlier plan's record: plan/in_sync.py),
    a socket whose key is the one recorded is not compared again, and the record of this
    plan's sockets in sync is returned; a focused plan (`only`) keeps none."""
    suspended_policies = {n for n, p in desired.policies.items() if p.suspend}
    decided: set[str] = set()  # the sockets whose attachments this plan decides
    gone = {c.name for c in changes if c.kind is Kind.POLICY and c.action is Action.DELETE}
    keys: dict[str, str] = {}
    context, unchanged = "", frozenset[str]()
    if in_sync is not None and only is None:
        context = context_key(instance, desired, actual, policy_ids, suspended_policies, gone)
        keys = {name: key for name, spec in desired.sockets.items() if not spec.suspend
                and (live := actual.sockets.get(name)) is not None
                and (key := socket_key(spec, live, inventory)) is not None}
        unchanged = in_sync.unchanged(context, keys)
    _verify_fingerprints(desired, actual, only, unchanged)
    found: set[str] = set()  # compared (or not again) and nothing to do or say
    for name, spec in _among(desired.sockets, only):
        if spec.suspend:
            continue
        if name in unchanged:  # as the plan that recorded it found it: nothing to do
            found.add(name)
            if policy_ids is not None:
                decided.add(name)
            continue
        before = (len(changes), len(conflicts), len(warnings))
        src = str(spec.source) if spec.source else None
        live = actual.sockets.get(name)
        attached: Mapping[str, str] = {}
        socket_id: str | None = None
        kept: list[Change] = []
        if live is None:
            changes.append(
                Change(Kind.SOCKET, name, Action.CREATE, "not in border0",
                       create_diffs(model.socket_fields(spec)), source=src)
            )
        else:
            adopting, why, adopt = _take_over(Kind.SOCKET, spec, live.socket_id,
                                              live.ownership, instance, conflicts, inventory)
            if adopting is None:
                continue
            want, have = comparable(model.socket_fields(spec),
                                    model.live_socket_fields(live, spec))
            # equal forms: the same type and labels, so neither a replace nor a tag change
            same = want == have
            reason = "" if same else _replace_reason(spec, live, want, have)
            tagging = "" if same else _tag_rule_note(spec, live, actual, warnings)
            if reason:
                if adopting:
                    reason = f"{why}; " + reason
                kept, dropped = kept_on_socket_replace(spec, live, actual, policy_ids,
                                                        suspended_policies, gone)
                if dropped:
                    tagging += (f"; not attached again: policy {', '.join(dropped)} (not named "
                                "in the manifest)")
                changes.append(
                    Change(Kind.SOCKET, name, Action.REPLACE, _loud(reason) + tagging,
                           field_diffs(have, want), object_id=live.socket_id, source=src,
                           blocked=_blocked(Kind.SOCKET, spec), adopting=adopt)
                )
            else:
                socket_id = live.socket_id
                # a policy replaced by this plan starts with no attachments
                attached = {
                    n: i for n, i in zip(live.policy_names, live.policy_ids)
                    if not (n in actual.policies and (policy_ids or {}).get(n) is None)
                }
                if not same or adopting:
                    diffs = field_diffs(have, want)
                    if adopting:
                        diffs = (FieldDiff("managed_by", None, _owner_label(instance)),) + diffs
                    reason = why if adopting else "changed"
                    reason += tagging
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
                               diffs, object_id=live.socket_id, source=src, adopting=adopt)
                    )
        if policy_ids is not None:
            _plan_attachments(spec, socket_id, attached, actual, policy_ids, changes, conflicts,
                              suspended_policies)
            decided.add(name)
        changes += kept
        conflicts += unknown_connectors(spec, desired, actual)
        if (len(changes), len(conflicts), len(warnings)) == before:
            found.add(name)
    for name, live in _among(actual.sockets, only):
        if name in desired.sockets or not live.ownership.owned_by(instance):
            continue
        _prune(changes, warnings, Kind.SOCKET, name, live.socket_id, live.ownership, confirmed)
    if policy_ids is not None:
        keep_on_policy_replace(desired, actual, policy_ids, decided, changes)
    if in_sync is None or only is not None:
        return None
    return InSync(context, {name: keys[name] for name in found if name in keys})


def _among(objects: Mapping[str, Any], only: Collection[str] | None) -> Any:
    """`objects`' items, or only those named in `only` (a focused plan)."""
    if only is None:
        return objects.items()
    return [(name, objects[name]) for name in only if name in objects]


def _note(kind: Kind) -> str:
    return REPLACE_NOTE if kind is Kind.SOCKET else POLICY_REPLACE_NOTE


def _lost_credentials(spec: model.SocketSpec, live: LiveSocket) -> list[str]:
    """Upstream credentials a write of `spec` would clear: set on the socket (a fingerprint we
    recorded, or a masked answer), left out by the manifest, and not answered in clear (so
    `api_json.kept_secrets` cannot send them back)."""
    return [f for f in secret_fields_in("upstream")
            if spec.secret(f) is None and f not in live.answered_secrets
            and (live.fingerprint(f) is not None or f in live.masked_secrets)]


def _clearing(change: Change, desired: Desired, actual: Actual, allowed: bool) -> Change:
    """A socket write that would clear credentials shows `(set) → (cleared)` for each, and is
    blocked unless --allow-clear-credentials."""
    if change.kind is not Kind.SOCKET or change.action not in (Action.UPDATE, Action.REPLACE):
        return change
    lost = _lost_credentials(desired.sockets[change.name], actual.sockets[change.name])
    if not lost:
        return change
    diffs = tuple(sorted((*change.diffs, *(FieldDiff(f, "(set)", "(cleared)") for f in lost)),
                         key=lambda d: d.path))
    blocked = change.blocked
    if not allowed and not blocked:
        blocked = (f"socket {change.name}: the write would clear {', '.join(lost)}, which the "
                   "manifest does not declare and border0 does not answer (so it cannot be sent "
                   "back); declare it, or pass --allow-clear-credentials")
    return replace(change, diffs=diffs, blocked=blocked)


def _loud(reason: str, kind: Kind = Kind.SOCKET) -> str:
    return f"{reason}; a replace: {_note(kind)}"


def _blocked(kind: Kind, spec: Any) -> str:
    if spec.allow_replace:
        return ""
    return (f"{kind} {spec.name} needs a replace ({_note(kind)}); allow it with --allow-replace "
            "or the annotation border0-reconciler/allow-replace: \"true\"")


def _tag_rule_note(
    spec: model.SocketSpec, live: LiveSocket, actual: Actual, warnings: list[Diagnostic]
) -> str:
    """"; starts/stops matching tag_rules of policy p" when the write changes which policies
    select the socket by tag (and a warning saying so): a tag is access."""
    before = live.labels
    after = model.labels_after(spec, live.tags)
    if before == after:
        return ""
    starts, stops = model.tag_rules_matching(actual.policies, before, after)
    parts = ([f"starts matching tag_rules of policy {', '.join(starts)}"] if starts else []) + (
        [f"stops matching tag_rules of policy {', '.join(stops)}"] if stops else [])
    if not parts:
        return ""
    text = "; ".join(parts)
    src = spec.source
    warnings.append(Diagnostic(
        Severity.WARNING, f"socket {spec.name}: its tags change: {text}",
        file=getattr(src, "file", None), line=getattr(src, "line", None),
        column=getattr(src, "column", None), code="tag-rules", kind=str(Kind.SOCKET),
        name=spec.name))
    return "; " + text


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
                _conflict(Kind.SOCKET, spec.name,
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
