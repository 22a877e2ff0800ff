"""List border0 into `Actual`: one paged list of sockets and one list of policies, attachments
joined from both sides. The only code that turns API listings into the planner's input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from reconciler import model
from reconciler.model import Actual, LiveSocket

__all__ = ["fetch_actual"]


def fetch_actual(client: Any) -> Actual:
    """One paged list of sockets and one list of policies; never a request per object.

    Attachments are read from both sides (a socket's `policies` and a policy's `socket_ids`).
    """
    sockets = [model.socket_from_api(s) for s in client.list_sockets()]
    policies = {p.name: p for p in (model.policy_from_api(d) for d in client.list_policies())}
    by_socket: dict[str, dict[str, str]] = {}
    for policy in policies.values():
        for socket_id in policy.socket_ids:
            by_socket.setdefault(socket_id, {})[policy.policy_id] = policy.name
    result: dict[str, LiveSocket] = {}
    for live in sockets:
        attached = dict(zip(live.policy_ids, live.policy_names))
        extra = by_socket.get(live.socket_id, {})
        if extra.keys() - attached.keys():
            attached.update(extra)
            live = _with_policies(live, attached)
        result[live.name] = live
    return Actual(sockets=result, policies=policies)


def _with_policies(live: LiveSocket, attached: Mapping[str, str]) -> LiveSocket:
    return replace(live, policy_ids=tuple(attached), policy_names=tuple(attached.values()))
