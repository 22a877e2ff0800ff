"""Access review: who may use which socket before and after a plan, and what changes.

Pure: plan changes, `Desired` and `Actual` in, a sorted list of `AccessChange` out. Reviewers
ask "who can now reach what?", which field diffs of policies do not answer.

- A socket's effective policies are those attached to it, every org-wide policy, and every
  policy whose `tag_rules` select its tags (`model.LivePolicy.selects`: the socket's tags as
  listed before, `model.tags_after` once the plan writes it; `tag_rules` are not managed, so a
  policy keeps the ones border0 has, and a created one has none).
- A policy grants each principal of `condition.who` (email, domain, group, service_account) the
  actions it allows: v1 `policy_data.action`, v2 `policy_data.permissions` (a kind is allowed
  when its value is an object, unless `allowed: false`), matched to the socket's type
  (http/https -> http, ssh, database, tls, other border0 types by name), under `where`/`when`.
- "after" is border0 once the plan is applied: the plan's own changes replayed on the live state,
  so sockets the plan does not touch (unmanaged ones too) still count, and a deleted or replaced
  policy is detached everywhere.
- A grant in both with other conditions is widened, narrowed or changed (neither contains the
  other, or it cannot be told); equivalent conditions are no change. A v2 kind's settings are
  read in the form plans compare (`model.normalize_policy_data`): a setting that is an object,
  empty or not (`sftp: {}`), is a permission, so adding one widens and dropping one narrows
  (`_settings_cover`); the cause names them (`changed: adds sftp`).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from reconciler.model import Actual, Desired, LivePolicy, normalize_policy_data, tags_after

__all__ = ["GAINING", "SELECTED", "UNSELECTED", "AccessChange", "access_review",
           "action_for_type", "policy_edited", "policy_grants"]

#: Change kinds that widen someone's access (`--deny-access-gain` refuses them).
GAINING = ("gain", "widened", "changed")
#: The cause of a grant that a policy's own edit changes (`policy_edited`).
CHANGED = "changed"
_ORDER = {"gain": 0, "widened": 1, "changed": 2, "narrowed": 3, "loss": 4}
_TYPE_ACTION = {"http": "http", "https": "http", "ssh": "ssh", "database": "database", "tls": "tls"}


def action_for_type(socket_type: str) -> str:
    """The policy action that gives access to a socket of this (manifest or API) type."""
    return _TYPE_ACTION.get(socket_type, socket_type)


@dataclass(frozen=True)
class AccessChange:
    """One principal's access to one action on one socket, gained, lost or re-conditioned."""

    socket: str
    change: str  # gain | loss | widened | narrowed | changed
    principal_type: str  # email | domain | group | service_account
    principal: str
    action: str
    policies: tuple[tuple[str, str], ...]  # (policy name, cause), cause may be ""
    before: tuple[tuple[str, Mapping[str, Any]], ...] | None = None  # (policy, its conditions)
    after: tuple[tuple[str, Mapping[str, Any]], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "socket": self.socket,
            "change": self.change,
            "principal_type": self.principal_type,
            "principal": self.principal,
            "action": self.action,
            "policies": [{"name": n, "cause": c} for n, c in self.policies],
            "before": _grants_json(self.before),
            "after": _grants_json(self.after),
        }


def _grants_json(grants: tuple[tuple[str, Mapping[str, Any]], ...] | None) -> list[dict[str, Any]] | None:
    return None if grants is None else [{"policy": p, **c} for p, c in grants]


# --- what one policy grants ----------------------------------------------------------------


def policy_grants(
    policy_data: Mapping[str, Any],
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]], dict[str, Any]]:
    """(action -> finer settings, principals as (type, name), conditions {where, when}).

    Reads v1 (`action` list) and v2 (`permissions` per kind) whatever `version` says, so a
    policy whose version is only on the API object (border0's v2) is read too. Read in the
    form plans compare (`model.normalize_policy_data`): under `permissions` an empty object is
    a grant (`sftp: {}`), so a kind's settings keep it.
    """
    data = normalize_policy_data(policy_data) if isinstance(policy_data, Mapping) else {}
    actions: dict[str, dict[str, Any]] = {}
    permissions = data.get("permissions")
    if isinstance(permissions, Mapping):
        for kind, perm in permissions.items():
            if perm is True or (isinstance(perm, Mapping) and perm.get("allowed", True) is not False):
                actions[str(kind)] = {k: v for k, v in perm.items() if k != "allowed"} if (
                    isinstance(perm, Mapping)) else {}
    for action in data.get("action") or ():
        actions.setdefault(str(action), {})
    condition: Mapping[str, Any] = data.get("condition") or {}
    if not isinstance(condition, Mapping):
        condition = {}
    who: Mapping[str, Any] = condition.get("who") or {}
    if not isinstance(who, Mapping):
        who = {}
    principals = [
        (str(kind), str(name))
        for kind, names in who.items() if isinstance(names, (list, tuple))
        for name in names if name not in (None, "")
    ]
    conditions = {k: dict(condition.get(k) or {}) for k in ("where", "when")}
    return actions, principals, conditions


# --- the two worlds -------------------------------------------------------------------------


#: name -> (action, attached policy names, tags)
_Socket = tuple[str, frozenset[str], Mapping[str, str]]
#: name -> (policy_data, org_wide, the live policy when its tag_rules select sockets, else None)
_Policy = tuple[Mapping[str, Any], bool, LivePolicy | None]


@dataclass(frozen=True)
class _World:
    sockets: Mapping[str, _Socket]
    policies: Mapping[str, _Policy]

    def effective(self, socket: str) -> frozenset[str]:
        attached = self.sockets[socket][1]
        return (frozenset(n for n in attached if n in self.policies) | self.org_wide
                | self.tagged(socket))

    def tagged(self, socket: str) -> frozenset[str]:
        """The policies whose tag_rules select `socket` by its tags."""
        tags = self.sockets[socket][2]
        return frozenset(n for n in self.selecting
                         if (p := self.policies[n][2]) is not None and p.selects(tags))

    @cached_property
    def selecting(self) -> frozenset[str]:
        """The policies that have tag_rules."""
        return frozenset(n for n, (_, _, p) in self.policies.items() if p is not None)

    @cached_property
    def org_wide(self) -> frozenset[str]:
        return frozenset(n for n, (_, ow, _) in self.policies.items() if ow)


def _before(actual: Actual, only: set[str] | None = None) -> _World:
    """The live state; `only`: of these sockets alone (the others cannot change)."""
    sockets = actual.sockets.items() if only is None else [
        (n, actual.sockets[n]) for n in only if n in actual.sockets]
    return _World(
        sockets={n: (action_for_type(s.type), frozenset(s.policy_names), s.tags)
                 for n, s in sockets},
        policies={n: _policy(p.policy_data, p.org_wide, p) for n, p in actual.policies.items()},
    )


def _policy(policy_data: Mapping[str, Any], org_wide: bool, live: LivePolicy | None) -> _Policy:
    return policy_data, org_wide, live if live is not None and live.tag_rules else None


def _after(changes: Iterable[Any], desired: Desired, actual: Actual, before: _World,
           instance: str) -> _World:
    """Replay the plan's changes on the live state (apply's own order does not matter here).
    Untouched sockets keep their entries, so a plan of few changes costs little."""
    policies = dict(before.policies)
    sockets = dict(before.sockets)
    changes = list(changes)

    def edit(name: str, action: str | None = None, add: str | None = None,
             drop: str | None = None, keep: bool = True,
             tags: Mapping[str, str] | None = None) -> None:
        old_action, attached, old_tags = sockets.get(name, ("", frozenset(), {}))
        attached = attached if keep else frozenset()
        if add:
            attached = attached | {add}
        if drop:
            attached = attached - {drop}
        sockets[name] = (action or old_action, attached, old_tags if tags is None else tags)

    for c in changes:
        if c.kind != "policy":
            continue
        if c.action.value == "delete":
            policies.pop(c.name, None)
        else:  # an update or a replace keeps the tag_rules border0 has (api_json carries them)
            spec = desired.policies[c.name]
            policies[c.name] = _policy(spec.policy_data, spec.org_wide,
                                       actual.policies.get(c.name))
        if c.action.value in ("delete", "replace"):  # detached everywhere; attaches re-add it
            for name in [n for n, (_, attached, _) in sockets.items() if c.name in attached]:
                edit(name, drop=c.name)
    for c in changes:
        if c.kind == "socket" and c.action.value == "delete":
            sockets.pop(c.name, None)
        elif c.kind == "socket":
            # an update writes its tags over the live ones, and so does a replace (the new
            # socket takes the tags set elsewhere along: api_json.socket_create_body); a
            # create writes them from nothing
            update = c.action.value == "update"
            live = actual.sockets.get(c.name) if c.action.value != "create" else None
            socket = desired.sockets[c.name]
            edit(c.name, action_for_type(socket.type), keep=update,
                 tags=tags_after(socket, instance, live.tags if live is not None else None))
    for c in changes:
        if c.kind == "attachment" and c.socket in sockets:
            edit(c.socket, add=c.policy if c.action.value == "attach" else None,
                 drop=c.policy if c.action.value == "detach" else None)
    return _World(sockets=sockets, policies=policies)


# --- grants per socket ----------------------------------------------------------------------

_Key = tuple[str, str, str]  # (principal type, principal, action)


class _Grants:
    """Per-policy grants, computed once per world, policy and action; conditions are interned
    as canonical JSON (compared as strings, looked up as objects in `conditions`)."""

    def __init__(self, world: _World, conditions: dict[str, dict[str, Any]]) -> None:
        self.world = world
        self.conditions = conditions
        self.cache: dict[tuple[str, str], tuple[str, list[Any]] | None] = {}

    def of(self, policy: str, action: str) -> tuple[str, list[Any]] | None:
        """(conditions blob, principals) of `policy` for `action`, or None when not granted."""
        key = (policy, action)
        if key not in self.cache:
            actions, principals, conditions = policy_grants(self.world.policies[policy][0])
            if action not in actions:
                self.cache[key] = None
            else:
                cond = dict(conditions)
                if actions[action]:
                    cond["permissions"] = actions[action]
                blob = json.dumps(cond, sort_keys=True)
                self.conditions.setdefault(blob, cond)
                self.cache[key] = (blob, principals)
        return self.cache[key]

    def socket(self, name: str) -> dict[_Key, dict[str, str]]:
        """(principal type, principal, action) -> {policy: conditions blob}."""
        action = self.world.sockets[name][0]
        out: dict[_Key, dict[str, str]] = {}
        for policy in self.world.effective(name):
            grant = self.of(policy, action)
            if grant is None:
                continue
            blob, principals = grant
            for ptype, principal in principals:
                out.setdefault((ptype, principal, action), {})[policy] = blob
        return out


def access_review(changes: Sequence[Any], desired: Desired, actual: Actual,
                  instance: str = "default") -> list[AccessChange]:
    """Every gain, loss and change of conditions the plan makes, sorted by socket. A plan
    that changes no policy changes access only on the sockets it writes or (de)taches: only
    those are looked at (an edit among 10,000 sockets, in the daemon). `instance`: the one
    whose ownership tags the plan writes (a tag rule may select on them)."""
    before = _before(actual, _touched(changes))
    after = _after(changes, desired, actual, before, instance)
    changed = {n for n in set(before.policies) | set(after.policies)
               if before.policies.get(n) != after.policies.get(n)}
    org_wide_same = before.org_wide == after.org_wide and not (after.org_wide & changed)
    tagged_same = before.selecting == after.selecting and not (after.selecting & changed)
    conditions: dict[str, dict[str, Any]] = {}
    grants_before, grants_after = _Grants(before, conditions), _Grants(after, conditions)
    out: list[AccessChange] = []
    for name in sorted(set(before.sockets) | set(after.sockets)):
        b, a = before.sockets.get(name), after.sockets.get(name)
        if (b is not None and b == a and org_wide_same and tagged_same
                and not (b[1] & changed)):
            continue  # fastest path: the socket and its policies untouched
        if b is not None and a is not None:
            eff_b, eff_a = before.effective(name), after.effective(name)
            if b[0] == a[0] and eff_b == eff_a and not (eff_a & changed):
                continue  # fast path: same type, same policies, none of them edited
        old = grants_before.socket(name) if b is not None else {}
        new = grants_after.socket(name) if a is not None else {}
        out.extend(_compare(name, old, new, before, after, conditions))
    out.sort(key=lambda c: (c.socket, _ORDER[c.change], c.action, c.principal_type, c.principal))
    return out


def _touched(changes: Sequence[Any]) -> set[str] | None:
    """The sockets `changes` write or (de)tach; None when one changes a policy (every socket
    it applies to may gain or lose access)."""
    touched = set()
    for c in changes:
        if c.kind == "policy":
            return None
        touched.add(c.socket if c.kind == "attachment" else c.name)
    return touched


#: The cause of a grant that a policy's tag_rules start or stop giving (the socket's tags).
SELECTED, UNSELECTED = "selected by tag_rules", "no longer selected by tag_rules"


def _cause(policy: str, socket: str, before: _World, after: _World, gained: bool) -> str:
    """Why `policy` starts (gained) or stops granting on `socket`, in a word or two."""
    b_sock, a_sock = before.sockets.get(socket), after.sockets.get(socket)
    if a_sock is None:
        return "socket deleted"
    if b_sock is None:
        if policy in after.org_wide:
            return "org-wide"
        return SELECTED if policy not in a_sock[1] and policy in after.tagged(socket) else ""
    if b_sock[0] != a_sock[0]:
        return "socket type changed"
    if gained:
        if policy in before.effective(socket):
            return CHANGED
        if policy in a_sock[1]:
            return "attached" if policy in before.policies else "created"
        return "org-wide" if policy in after.org_wide else SELECTED
    if policy not in after.policies:
        return "deleted"
    if policy in after.effective(socket):
        return CHANGED
    if policy in b_sock[1]:
        return "detached"
    return "no longer org-wide" if policy in before.org_wide else UNSELECTED


def _edited(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The cause of a policy edited in place: "changed", naming the v2 settings it adds, drops
    or changes (`changed: adds sftp, tcp_forwarding`)."""
    b, a = old.get("permissions", {}), new.get("permissions", {})
    parts = [f"{verb} {', '.join(keys)}" for verb, keys in (
        ("adds", sorted(k for k in a if k not in b)),
        ("drops", sorted(k for k in b if k not in a)),
        ("changes", sorted(k for k in a if k in b and a[k] != b[k])),
    ) if keys]
    return CHANGED + (": " + "; ".join(parts) if parts else "")


def policy_edited(cause: str) -> bool:
    """True for the cause of a grant that a policy's own edit starts, stops or changes."""
    return cause == CHANGED or cause.startswith(CHANGED + ":")


def _compare(name: str, old: Mapping[_Key, Mapping[str, str]], new: Mapping[_Key, Mapping[str, str]],
             before: _World, after: _World, conditions: Mapping[str, dict[str, Any]],
             ) -> list[AccessChange]:
    out = []
    for key in set(old) | set(new):
        o, n = old.get(key, {}), new.get(key, {})
        if not o:
            kind, responsible = "gain", [(p, _cause(p, name, before, after, True)) for p in n]
        elif not n:
            kind, responsible = "loss", [(p, _cause(p, name, before, after, False)) for p in o]
        else:
            compared = _compare_conditions([conditions[c] for c in set(o.values())],
                                           [conditions[c] for c in set(n.values())])
            if compared is None:
                continue
            kind = compared
            responsible = [(p, _edited(conditions[o[p]], conditions[n[p]]) if p in o and p in n
                            else _cause(p, name, before, after, p in n))
                           for p in sorted(set(o) | set(n)) if o.get(p) != n.get(p)]
        ptype, principal, action = key
        out.append(AccessChange(
            socket=name, change=kind, principal_type=ptype, principal=principal, action=action,
            policies=tuple(responsible if len(responsible) == 1 else sorted(responsible)),
            before=_conditions(o, conditions) if o else None,
            after=_conditions(n, conditions) if n else None,
        ))
    return out


def _conditions(grants: Mapping[str, str], conditions: Mapping[str, dict[str, Any]],
                ) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    items = grants.items() if len(grants) == 1 else sorted(grants.items())
    return tuple((p, conditions[blob]) for p, blob in items)


# --- comparing conditions -------------------------------------------------------------------


def _compare_conditions(olds: list[dict[str, Any]], news: list[dict[str, Any]]) -> str | None:
    """widened / narrowed / changed, or None when both allow the same."""
    wider = all(any(_covers(n, o) for n in news) for o in olds)
    narrower = all(any(_covers(o, n) for o in olds) for n in news)
    if wider and narrower:
        return None
    return "widened" if wider else "narrowed" if narrower else "changed"


def _covers(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> bool:
    """True only when everything `inner` allows, `outer` allows too (unknown means False)."""
    if not _settings_cover(outer.get("permissions", {}), inner.get("permissions", {})):
        return False
    return _where_covers(outer.get("where", {}), inner.get("where", {})) and _when_covers(
        outer.get("when", {}), inner.get("when", {}))


def _settings_cover(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> bool:
    """v2's settings of one kind. A setting that is an object is a permission border0 grants
    (`shell: {}`, `sftp: {}`, `exec: {commands: [...]}`), any other a limit
    (`allowed_usernames`, `max_session_duration_seconds`). `outer` allows all `inner` does when
    it has inner's permissions and limits as they are, and perhaps more permissions. A kind
    with no settings (`ssh: {}`, like v1's `ssh`) and one that names some are not compared:
    which allows more cannot be told."""
    if outer == inner:
        return True
    if not outer or not inner:
        return False
    return all(k in outer and outer[k] == v for k, v in inner.items()) and all(
        isinstance(v, Mapping) for k, v in outer.items() if k not in inner)


def _where_covers(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> bool:
    for key in set(outer) | set(inner):
        o, i = outer.get(key), inner.get(key)
        if o is None:
            continue  # no limit of this kind outside
        if i is None:
            return False  # unlimited inside, limited outside
        if key == "allowed_ip":
            if not all(any(_net_in(x, y) for y in o) for x in i):
                return False
        elif key == "country":
            if not set(i) <= set(o):
                return False
        elif key == "country_not":
            if not set(o) <= set(i):
                return False
        elif o != i:
            return False
    return True


def _net_in(inner: str, outer: str) -> bool:
    try:
        a, b = ipaddress.ip_network(inner, strict=False), ipaddress.ip_network(outer, strict=False)
    except ValueError:
        return inner == outer
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


def _when_covers(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> bool:
    if outer.get("after") is not None and not _le(outer.get("after"), inner.get("after")):
        return False
    if outer.get("before") is not None and not _le(inner.get("before"), outer.get("before")):
        return False
    o_window = (outer.get("time_of_day_after"), outer.get("time_of_day_before"))
    i_window = (inner.get("time_of_day_after"), inner.get("time_of_day_before"))
    if o_window == (None, None) or o_window == i_window:
        return True
    return _window_in(i_window, o_window)


def _le(first: Any, second: Any) -> bool:
    """first <= second for RFC 3339 times; False when either is missing or unreadable."""
    try:
        a = datetime.fromisoformat(str(first))
        b = datetime.fromisoformat(str(second))
        return a <= b
    except (TypeError, ValueError):
        return False


def _minutes(value: Any) -> tuple[int, str] | None:
    """'07:30 UTC' -> (450, 'UTC')."""
    try:
        clock, _, zone = str(value).partition(" ")
        hours, minutes = clock.split(":")
        return int(hours) * 60 + int(minutes), zone.strip() or "UTC"
    except ValueError:
        return None


def _window_in(inner: tuple[Any, Any], outer: tuple[Any, Any]) -> bool:
    """A time-of-day window inside another (same zone, neither wrapping midnight)."""
    if None in inner:
        return False
    bounds = [_minutes(v) for v in (*inner, *outer)]
    if None in bounds or len({z for _, z in bounds if z}) != 1:  # type: ignore[misc]
        return False
    (i0, _), (i1, _), (o0, _), (o1, _) = bounds  # type: ignore[misc]
    return o0 <= o1 and i0 <= i1 and o0 <= i0 and i1 <= o1
