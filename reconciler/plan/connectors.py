"""Connectors and their tokens in the plan: the rules that live here, and only here.

- A connector is owned, adopted, pruned and suspended as a policy is (its ownership is the same
  description marker: connectors carry no tags).
- Deleting a connector that sockets still name (declared, or linked in border0) is refused,
  with their names: the sockets would go dark.
- Tokens (`spec.tokens`): a declared token border0 does not list is created; one that expires
  within a third of its lifetime (`expiresIn`), whose `expiresAt` changed, or whose destination
  is gone (its value exists only at creation), is replaced (a new token, then the old one
  revoked). Of several tokens of one name, the one in use is the one whose value the
  destination holds (its record, connectors/token_records.py), never merely the newest: the
  others' values are nowhere (an apply died between making one and writing it), so they are
  revoked (`LOST`). A fixed `expiresAt` is never rotated for its nearing expiry (the new token
  would expire at the same moment): the plan warns instead, and makes no token whose expiresAt
  has passed (border0 refuses one). `expiresAt` counts to the second, as border0 keeps it: a
  fraction is dropped, in the request and in the comparison alike. The connector's marker names
  the tokens this instance manages (ownership.py, `tokens=`; written with the connector, so a
  change of `spec.tokens` updates it): a token it names that is no longer declared is revoked,
  and no other token is ever revoked, whoever made it (issue 23: never wipe what others set).
  A marker without `tokens=` was written by v0.2, which revoked every undeclared token of a
  connector it owned: that rule applies once (`V02_RULE`), and the update rewrites the marker.
  A token's value never enters the plan: its change has no diffs, and renders as
  `token <name>: create (sensitive)`.
- A socket served by connectors that the plan leaves with none can no longer be reached by
  anyone: the access review lists each principal's loss (cause `no connector serves it`) and a
  warning names the socket (`unserved_sockets`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta

from reconciler.connector_model import (
    ConnectorKindSpec,
    LiveConnector,
    LiveToken,
    TokenSpec,
    connector_fields,
    live_connector_fields,
)
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.model import Actual, Desired, SocketSpec
from reconciler.plan.access import AccessChange, action_for_type, policy_grants
from reconciler.plan.fields import FieldDiff, create_diffs, field_diffs
from reconciler.plan.types import Action, Change, Kind

__all__ = [
    "LOST", "POLICIES_NOT_MANAGED", "UNSERVED", "expiry_for", "expiry_warning",
    "plan_connectors", "rotation_due", "undeclared_revocations",
    "unknown_connectors", "unserved_sockets",
]

#: The access review's cause when a socket loses its last connector.
UNSERVED = "no connector serves it"

#: The plan's word when policy management is off (--no-policies).
POLICIES_NOT_MANAGED = Diagnostic(
    Severity.WARNING,
    "policies are not managed (--no-policies): no policy is read, created, changed, attached or "
    "deleted (but a replaced socket's attachments are made again, from the socket's side); "
    "spec.policies, spec.externalPolicies and kind: Policy manifests are ignored",
    code="policies-not-managed")

#: Why a token of a connector whose marker v0.2 wrote (no `tokens=`) is revoked: v0.2 revoked
#: every undeclared token of a connector it owned, and its marker does not say which it made.
V02_RULE = ("not declared in spec.tokens, and the connector's marker, written by v0.2, names "
            "no tokens: v0.2's rule applies this once")

#: Why a token of a declared name is revoked when the destination holds another of that name:
#: its value is nowhere anybody can read it.
LOST = ("its value never reached the destination, which holds another token of this name: an "
        "apply stopped between making it and writing it")

#: Rotate when less than this share of a token's lifetime is left.
ROTATE_AT = 1 / 3


def _parse(value: str) -> datetime | None:
    """An RFC 3339 time to the second: border0 keeps expiry in whole seconds (SDK FlexibleTime
    sends Unix seconds), so a fraction is dropped here, for requests and comparisons alike."""
    try:
        return datetime.fromisoformat(value).astimezone(UTC).replace(microsecond=0)
    except (ValueError, AttributeError):
        return None


def expiry_for(token: TokenSpec, now: datetime) -> datetime | None:
    """When a token created `now` expires, to the second (None: never)."""
    if token.expires_at:
        return _parse(token.expires_at)
    if token.expires_in:
        return (now + timedelta(seconds=token.expires_in)).replace(microsecond=0)
    return None


def rotation_due(token: TokenSpec, live: LiveToken, now: datetime) -> str:
    """Why a live token must be replaced now, or ""."""
    if not token.destination_present:
        return (f"destination {token.destination} is missing: a token's value exists only at "
                "creation, so a new token is made and the old one revoked")
    expires = _parse(live.expires_at) if live.expires_at else None
    if token.expires_at:
        if expires is None or expires != _parse(token.expires_at):
            return f"expiresAt changed to {token.expires_at}"
        return ""  # a new token would expire at the same moment: `expiry_warning` says so
    if expires is None:
        return "now expires" if token.expires_in else ""
    created = _parse(live.created_at)
    lifetime = (expires - created) if created else timedelta(seconds=token.expires_in or 0)
    left = expires - now
    if left <= lifetime * ROTATE_AT:
        return f"expires {live.expires_at}: rotated before it does"
    return ""


def expiry_warning(connector: str, token: TokenSpec, live: LiveToken | None,
                   now: datetime) -> Diagnostic | None:
    """For a fixed `expiresAt`: a warning once less than a third of the token's lifetime is
    left (rotating would not help: the new token would expire at the same moment), and once
    the date has passed. None otherwise."""
    expires = _parse(token.expires_at) if token.expires_at else None
    if expires is None:
        return None
    if expires <= now:
        return _token_warning(
            connector, token, "token-expired", f"its expiresAt {token.expires_at} has passed, "
            "so it no longer authenticates, and border0 makes no token that expires in the "
            "past: set a later expiresAt (or use expiresIn)")
    created = _parse(live.created_at) if live is not None and live.created_at else None
    if created is None or expires - now > (expires - created) * ROTATE_AT:
        return None
    return _token_warning(
        connector, token, "token-expiry-near", f"expires {token.expires_at} (a fixed "
        "expiresAt) and is not rotated, since a new token would expire at the same moment: "
        "set a later expiresAt (or use expiresIn) before then")


def _token_warning(connector: str, token: TokenSpec, code: str, message: str) -> Diagnostic:
    return Diagnostic(Severity.WARNING, f"connector {connector}, token {token.name}: {message}",
                      code=code, kind=str(Kind.TOKEN), name=f"{connector}/{token.name}")


def plan_connectors(
    desired: Desired,
    actual: Actual,
    instance: str,
    changes: list[Change],
    conflicts: list[Diagnostic],
    warnings: list[Diagnostic],
    adopting: Callable[..., bool | None],
    now: datetime | None = None,
) -> None:
    """Connector and token changes into `changes`; conflicts and warnings as diagnostics."""
    now = now or datetime.now(UTC)
    for name, spec in desired.connectors.items():
        if spec.suspend:
            continue
        src = str(spec.source) if spec.source else None
        live = actual.connectors.get(name)
        if live is None:
            changes.append(Change(Kind.CONNECTOR, name, Action.CREATE, "not in border0",
                                  create_diffs(connector_fields(spec)), source=src))
            _plan_tokens(spec, None, instance, changes, warnings, now)
            continue
        adopt = adopting(Kind.CONNECTOR, spec, live.ownership, instance, conflicts)
        if adopt is None:
            continue
        want = {**connector_fields(spec), "managed_tokens": sorted({t.name for t in spec.tokens})}
        managed = live.ownership.tokens  # None: a v0.2 marker, without tokens=
        have = {**live_connector_fields(live),
                "managed_tokens": None if managed is None else list(managed)}
        if want != have or adopt:
            diffs = field_diffs(have, want)
            if adopt:
                diffs = (FieldDiff("managed_by", None, f"border0-reconciler instance={instance}"),
                         *diffs)
            changes.append(Change(Kind.CONNECTOR, name, Action.UPDATE,
                                  "adopt" if adopt else "changed", diffs,
                                  object_id=live.connector_id, source=src, adopting=adopt))
        _plan_tokens(spec, live, instance, changes, warnings, now)
    for name, live in actual.connectors.items():
        if name in desired.connectors or not live.ownership.owned_by(instance):
            continue
        users = _users(name, desired, actual)
        if users:
            conflicts.append(Diagnostic(
                Severity.ERROR,
                f"connector {name}: not in the manifests, but sockets still name it: "
                f"{', '.join(users)}; remove it from their spec.connectors first (deleting it "
                "would leave them unserved)", code="connector-in-use",
                kind=str(Kind.CONNECTOR), name=name))
            continue
        if live.ownership.prune:
            changes.append(Change(Kind.CONNECTOR, name, Action.DELETE,
                                  "not in the manifests (prune); its tokens are revoked with it",
                                  object_id=live.connector_id))
        else:
            warnings.append(Diagnostic(
                Severity.WARNING,
                f"connector {name} is no longer in the manifests; kept: prune disabled",
                code="prune-disabled", kind=str(Kind.CONNECTOR), name=name))


def _users(connector: str, desired: Desired, actual: Actual) -> list[str]:
    """Sockets that name the connector: declared ones, and live links border0 answered."""
    named = {s.name for s in desired.sockets.values() if connector in (s.connectors or ())}
    named |= {s.name for s in actual.sockets.values()
              if connector in (s.connector_names or ())
              and (s.name not in desired.sockets or desired.sockets[s.name].connectors is None)}
    return sorted(named)


def _plan_tokens(
    spec: ConnectorKindSpec, live: LiveConnector | None, instance: str,
    changes: list[Change], warnings: list[Diagnostic], now: datetime,
) -> None:
    src = str(spec.source) if spec.source else None
    listed = list(live.tokens or ()) if live is not None else []
    connector_id = live.connector_id if live is not None else None
    declared = {t.name for t in spec.tokens}

    def change(token: str, action: Action, reason: str, token_id: str | None = None) -> None:
        changes.append(Change(Kind.TOKEN, f"{spec.name}/{token}", action, reason,
                              object_id=connector_id, source=src, connector=spec.name,
                              token_id=token_id))

    for token in spec.tokens:
        same = sorted((t for t in listed if t.name == token.name),
                      key=lambda t: t.created_at, reverse=True)
        current, lost, issue = _token_in_use(token, same, now)
        expiry = expiry_warning(spec.name, token, current, now)
        if issue and expiry is not None and expiry.code == "token-expired":
            action, why = issue  # border0 would refuse it: say so instead of failing the apply
            warnings.append(_token_warning(
                spec.name, token, "token-expired",
                f"not {'created' if action is Action.CREATE else 'replaced'} ({why}): its "
                f"expiresAt {token.expires_at} has passed and border0 makes no token that "
                "expires in the past; set a later expiresAt (or use expiresIn)"))
        elif issue:
            action, why = issue
            change(token.name, action, why,
                   current.token_id if action is Action.REPLACE and current else None)
        elif expiry is not None:
            warnings.append(expiry)
        for old in lost:
            change(token.name, Action.DELETE, LOST if current is not None and
                   token.held_token_id == current.token_id else "an older token of this name",
                   old.token_id)
    for live_token, why in undeclared_revocations(live, instance, declared):
        change(live_token.name, Action.DELETE, why, live_token.token_id)


def undeclared_revocations(live: LiveConnector | None, instance: str, declared: Collection[str]
                           ) -> list[tuple[LiveToken, str]]:
    """The listed tokens this instance revokes because `spec.tokens` does not declare them,
    with why: those its marker names, or every one under a v0.2 marker (`import` warns of
    these: it cannot declare a token, whose value and destination border0 never gives)."""
    if live is None or not live.ownership.owned_by(instance) or live.tokens is None:
        return []  # an adopted connector's marker names no token yet: none is ours to revoke
    managed = live.ownership.tokens
    if managed is None:  # v0.2 wrote this marker: its rule, once (the marker is rewritten)
        return [(t, V02_RULE) for t in live.tokens if t.name not in declared]
    return [(t, "no longer declared in spec.tokens (revoked)") for t in live.tokens
            if t.name not in declared and t.name in managed]


def _token_in_use(
    token: TokenSpec, same: list[LiveToken], now: datetime,
) -> tuple[LiveToken | None, list[LiveToken], tuple[Action, str] | None]:
    """Of the live tokens of one declared name (newest first): the one in use (None: none),
    the others (to revoke), and the new token to make (CREATE or REPLACE of the one in use, with
    the reason) or None. The one in use is the one whose value the destination holds: the
    newest only when the destination is gone or there is a single token."""
    if not same:
        return None, [], (Action.CREATE, "not in border0")
    if token.destination_unknown:  # unreadable: nothing made, revoked or rotated (warned)
        return same[0], [], None
    held = token.held_token_id
    current = next((t for t in same if t.token_id == held), None)
    if current is None and held is not None and token.destination_present:
        newest, *older = same
        return newest, older, (Action.REPLACE, (
            f"{token.destination} holds a token border0 no longer lists (revoked): a new "
            "token is made"))
    if current is None and len(same) > 1 and token.destination_present:
        return None, [], (Action.CREATE, (
            f"{len(same)} tokens of this name, and no record of which one {token.destination} "
            "holds: a new one is made and recorded, none is revoked; the next plan revokes the "
            "others"))
    current = current or same[0]
    lost = [t for t in same if t is not current]
    why = rotation_due(token, current, now)
    return current, lost, (Action.REPLACE, why) if why else None


def unknown_connectors(spec: SocketSpec, desired: Desired, actual: Actual) -> list[Diagnostic]:
    """A conflict for each connector a socket names that is neither declared nor in border0."""
    src = spec.source
    return [Diagnostic(Severity.ERROR,
                       f"socket {spec.name}: connector {name!r} does not exist in border0 or "
                       "the manifests", file=getattr(src, "file", None),
                       line=getattr(src, "line", None), column=getattr(src, "column", None),
                       code="unknown-connector", kind=str(Kind.SOCKET), name=spec.name)
            for name in spec.connectors or ()
            if name not in desired.connectors and name not in actual.connectors]


def unserved_sockets(
    changes: Sequence[Change], review: list[AccessChange], actual: Actual,
) -> tuple[list[AccessChange], list[Diagnostic]]:
    """The access review with the sockets the plan leaves without a connector (border0 links
    read and not empty before, none after): nobody reaches them afterwards, so their entries
    become the loss of every grant they had; and a warning naming each."""
    lost: dict[str, list[str]] = {}
    for change in changes:
        if change.kind != Kind.SOCKET or change.action not in (Action.UPDATE, Action.REPLACE):
            continue
        for diff in change.diffs:
            if diff.path == "connectors" and diff.before and not diff.after:
                lost[change.name] = list(diff.before)
    if not lost:
        return review, []
    kept = [c for c in review if c.socket not in lost]
    warnings = []
    for name, before in sorted(lost.items()):
        live = actual.sockets.get(name)
        if live is None:
            continue
        warnings.append(Diagnostic(
            Severity.WARNING, f"socket {name}: no connector serves it after this plan (it had "
            f"{', '.join(before)}): nobody can reach it until a connector does",
            code="socket-unserved", kind="socket", name=name))
        kept.extend(_losses(name, actual))
    kept.sort(key=lambda c: c.socket)  # stable: each socket's entries keep their order
    return kept, warnings


def _losses(name: str, actual: Actual) -> list[AccessChange]:
    """Every grant on the live socket (its policies and the org-wide ones), as a loss."""
    live = actual.sockets[name]
    action = action_for_type(live.type)
    policies = [p for p in actual.policies.values()
                if p.org_wide or p.name in live.policy_names]
    out: list[AccessChange] = []
    for policy in sorted(policies, key=lambda p: p.name):
        actions, principals, _ = policy_grants(policy.policy_data)
        if action in actions:
            out.extend(AccessChange(name, "loss", kind, who, action, ((policy.name, UNSERVED),))
                       for kind, who in principals)
    return out
