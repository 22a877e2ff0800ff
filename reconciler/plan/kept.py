"""The attachments a replace makes again: those an update would have left in place.

A replace deletes the object and creates it with a new id and no attachments. It must not lose
what it did not decide to remove, so what it carries over is what an update would have kept:
the attachments of a suspended object (it stays attached where it is), those made elsewhere
that this plan does not decide (a socket not in the manifests, or not ours), and with policies
not managed every attachment of a replaced socket. They are planned as attaches (their reason
says why they are kept), written by apply's attach groups, and counted by the access review.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from reconciler import model
from reconciler.model import Actual, Desired, LiveSocket
from reconciler.plan.types import Action, Change, Kind

__all__ = ["KEPT", "keep_on_policy_replace", "kept_on_socket_replace"]

#: The reason of an attachment a replace writes again because an update would have kept it.
KEPT = "kept across the replace of {kind} {name}: {why}"


def kept_on_socket_replace(
    spec: model.SocketSpec,
    live: LiveSocket,
    actual: Actual,
    policy_ids: Mapping[str, str | None] | None,
    suspended: frozenset[str] | set[str],
    gone: Collection[str],
) -> tuple[list[Change], list[str]]:
    """(the attaches that carry a replaced socket's attachments over, the policies it loses).

    A replace keeps what an update would have left in place: with policies not managed
    (`policy_ids` None), every attachment; else one to a suspended policy (it stays attached
    where it is) and one to an org-wide policy the manifest does not name (never detached).
    One the manifest names is attached again as named (planner.py); one it does not name is
    lost, as an update would detach it (the replace's reason says so). A policy this plan
    replaces or deletes (`gone`) starts again (or ends) with no attachments."""
    src = str(spec.source) if spec.source else None
    kept: list[Change] = []
    dropped: list[str] = []
    for policy, pid in zip(live.policy_names, live.policy_ids):
        live_policy = actual.policies.get(policy)
        if policy_ids is None:
            why = "policies are not managed (--no-policies)"
        elif policy in suspended:
            why = f"policy {policy} is suspended"
        elif policy in spec.all_policies or policy in gone or policy_ids.get(policy) is None:
            continue  # named: attached again; replaced or deleted by this plan
        elif live_policy is not None and live_policy.org_wide:
            why = f"policy {policy} is org-wide"
        else:
            dropped.append(policy)
            continue
        kept.append(Change(
            Kind.ATTACHMENT, f"{spec.name}/{policy}", Action.ATTACH,
            KEPT.format(kind=Kind.SOCKET, name=spec.name, why=why), socket=spec.name,
            policy=policy, policy_id=pid, source=src))
    return kept, dropped


def keep_on_policy_replace(
    desired: Desired,
    actual: Actual,
    policy_ids: Mapping[str, str | None],
    decided: Collection[str],
    changes: list[Change],
) -> None:
    """Attach a replaced policy again to the sockets it was attached to whose attachments this
    plan does not decide, as an update of it would have left them: a suspended socket, one not
    in the manifests (made or attached in the portal), one not planned here (not ours, or
    outside a focused plan). Not to a socket this plan deletes. A socket whose manifest does
    not name the policy loses it, as an update would detach it: the policy's reason says so."""
    replaced = {n for n, pid in policy_ids.items() if pid is None and n in actual.policies}
    if not replaced:
        return
    deleted = {c.name for c in changes if c.kind is Kind.SOCKET and c.action is Action.DELETE}
    attaching = {(c.socket, c.policy) for c in changes if c.action is Action.ATTACH}
    dropped: dict[str, list[str]] = {}
    for name, live in actual.sockets.items():
        if name in deleted:
            continue
        for policy in replaced.intersection(live.policy_names):
            if name in decided:
                if (name, policy) not in attaching:
                    dropped.setdefault(policy, []).append(name)
                continue
            spec = desired.sockets.get(name)
            why = (f"socket {name} is not in the manifests" if spec is None
                   else f"socket {name} is suspended" if spec.suspend
                   else f"socket {name} is not planned here")
            changes.append(Change(
                Kind.ATTACHMENT, f"{name}/{policy}", Action.ATTACH,
                KEPT.format(kind=Kind.POLICY, name=policy, why=why), object_id=live.socket_id,
                socket=name, policy=policy, source=str(spec.source) if spec and spec.source
                else None))
    for index, change in enumerate(changes):
        if change.kind is Kind.POLICY and change.name in dropped:
            names = ", ".join(sorted(dropped[change.name]))
            changes[index] = replace(change, reason=f"{change.reason}; not attached again: "
                                     f"socket {names} (does not name it)")
