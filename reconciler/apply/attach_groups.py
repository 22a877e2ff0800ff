"""Which attachments share one API call.

border0 attaches from either side: `PUT /socket/{id}/policy` takes many policies for one
socket, `PUT /policy/{id}/socket` many sockets for one policy. A plan that creates 1,000
sockets naming a few shared policies needs 1,000 calls from the sockets' side but only a few
batches from the policies' side; a socket that gains three policies is the other way round.
So the side with fewer calls wins, and a batch holds at most `BATCH` objects (a request body
stays small and one refused object fails one batch, not the whole phase).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from reconciler.plan.types import Change

__all__ = ["BATCH", "Group", "attachment_groups"]

#: Objects in one attach/detach call at most.
BATCH = 100


class Group(NamedTuple):
    side: str  # "socket": PUT /socket/{id}/policy; "policy": PUT /policy/{id}/socket
    changes: list[Change]  # all attach or all detach, all sharing that side's object


def _by(changes: Sequence[Change], side: str) -> list[Group]:
    keyed: dict[str, list[Change]] = {}
    for change in changes:
        key = (change.socket if side == "socket" else change.policy) or ""
        keyed.setdefault(key, []).append(change)
    return [
        Group(side, group[start:start + BATCH])
        for group in keyed.values()
        for start in range(0, len(group), BATCH)
    ]


def attachment_groups(changes: Sequence[Change], *, policy_side: bool = True) -> list[Group]:
    """The changes of one attach (or detach) phase, grouped for the fewest calls; without
    `policy_side` (policies not managed: /policy is never written) from the sockets' side."""
    by_socket = _by(changes, "socket")
    if not policy_side:
        return by_socket
    by_policy = _by(changes, "policy")
    return by_policy if len(by_policy) < len(by_socket) else by_socket
