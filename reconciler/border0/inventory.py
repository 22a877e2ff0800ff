"""List border0 into `Actual`: one paged list of sockets and one list of policies, attachments
joined from both sides. The only code that turns API listings into the planner's input; for
the daemon's edits, `refresh_sockets` reads a few sockets again into an earlier listing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from reconciler.border0.api_json import policy_from_api, socket_from_api
from reconciler.model import Actual, LivePolicy, LiveSocket

__all__ = ["fetch_actual", "refresh_sockets"]


def fetch_actual(client: Any) -> Actual:
    """One paged list of sockets and one list of policies; never a request per object.

    Attachments are read from both sides (a socket's `policies` and a policy's `socket_ids`).
    The policies are listed after the sockets, not beside them: while border0 does not answer,
    each retry is announced once, not once per listing.
    """
    sockets = [socket_from_api(s) for s in client.list_sockets()]
    policies = {p.name: p for p in (policy_from_api(d) for d in client.list_policies())}
    return Actual(sockets=_joined(sockets, policies), policies=policies)


def refresh_sockets(client: Any, base: Actual, names: Iterable[str],
                    parallelism: int = 8) -> Actual:
    """`base` (an earlier `fetch_actual`) with the sockets `names` read again, one GET each
    (absent ones dropped), and the policies listed again: what an edit of a few sockets is
    planned against, instead of listing the whole organization."""
    wanted = sorted(set(names))
    with ThreadPoolExecutor(max(1, min(parallelism, len(wanted) or 1))) as pool:
        found = [s for s in pool.map(client.find_socket, wanted) if s is not None]
    policies = {p.name: p for p in (policy_from_api(d) for d in client.list_policies())}
    fresh = _joined([socket_from_api(s) for s in found], policies)
    sockets = {n: s for n, s in base.sockets.items() if n not in wanted}
    sockets.update(fresh)
    return Actual(sockets=sockets, policies=policies)


def _joined(sockets: list[LiveSocket], policies: Mapping[str, LivePolicy]) -> dict[str, LiveSocket]:
    """Sockets by name, each with the attachments either side reports."""
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
    return result


def _with_policies(live: LiveSocket, attached: Mapping[str, str]) -> LiveSocket:
    return replace(live, policy_ids=tuple(attached), policy_names=tuple(attached.values()))
