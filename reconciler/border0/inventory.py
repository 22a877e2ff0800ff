"""List border0 into `Actual`: one paged list of sockets, one list of policies (attachments
joined from both sides) and one list of connectors. The only code that turns API listings into
the planner's input; for the daemon's edits, `refresh_sockets` reads a few sockets again into
an earlier listing.

`fetch_details` then reads, for the declared objects that need them only, what no listing
holds: a socket's connector links and typed upstream (`/socket/{id}/connectors`,
`/socket/{id}/upstream_configurations`, as border0's Terraform provider reads every socket) and
a connector's tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from reconciler.border0.api import Border0API
from reconciler.border0.api_json import (
    connector_from_api,
    policy_from_api,
    socket_from_api,
    token_from_api,
)
from reconciler.connector_model import DETAILS_TAG, LiveConnector
from reconciler.model import Actual, Desired, LivePolicy, LiveSocket, SocketSpec
from reconciler.settings import DEFAULTS

__all__ = ["as_written", "fetch_actual", "fetch_connector_details", "fetch_details",
           "refresh_sockets"]

#: Concurrent sub-resource reads (the provider's cap on concurrent requests is 10).
DETAIL_CONCURRENCY = 8


def fetch_actual(client: Border0API, *, policies: bool = True) -> Actual:
    """One paged list of sockets, one list of policies and one of connectors; never a
    request per object. `policies=False` (policy management off): /policies is not read.

    Attachments are read from both sides (a socket's `policies` and a policy's `socket_ids`).
    The three listings start together, so their first round trips are one (the client tells
    of a retry once when border0 does not answer them).
    """
    with ThreadPoolExecutor(2, thread_name_prefix="list") as pool:
        listing = pool.submit(client.list_policies) if policies else None
        connecting = pool.submit(client.list_all_connectors)
        sockets = client.list_sockets(convert=socket_from_api)
        listed = listing.result() if listing is not None else []
        connectors = {c.name: c for c in map(connector_from_api, connecting.result())}
    policies_by_name = {p.name: p for p in (policy_from_api(d) for d in listed)}
    return _joined(sockets, policies_by_name, connectors)


def refresh_sockets(client: Border0API, base: Actual, names: Iterable[str],
                    parallelism: int = DEFAULTS.parallelism, *, policies: bool = True,
                    list_policies: bool = True) -> Actual:
    """`base` (an earlier `fetch_actual`) with the sockets `names` read again, one GET each
    (absent ones dropped), and the policies listed again: what an edit of a few sockets is
    planned against, instead of listing the whole organization. Without `list_policies` (the
    daemon's edit) the policies are `base`'s, their `socket_ids` corrected for the sockets read
    (whose answer lists the policies attached to them, `serializer.Socket.policies`): at
    10,000 sockets the policy list carries every attachment and costs more than the GETs."""
    wanted = sorted(set(names))
    with ThreadPoolExecutor(max(1, min(parallelism, len(wanted) or 1))) as pool:
        found = [s for s in pool.map(client.find_socket, wanted) if s is not None]
    if policies and not list_policies:
        read = [socket_from_api(s) for s in found]
        by_name = _reattached(base.policies, [base.sockets[n] for n in wanted
                                              if n in base.sockets] + read, read)
        fresh = {live.name: live for live in read}
    else:
        listed = client.list_policies() if policies else []
        by_name = {p.name: p for p in (policy_from_api(d) for d in listed)}
        fresh = _joined([socket_from_api(s) for s in found], by_name, base.connectors).sockets
    sockets = {n: s for n, s in base.sockets.items() if n not in wanted}
    sockets.update(fresh)
    return replace(base, sockets=sockets, policies=by_name)


def _reattached(policies: Mapping[str, LivePolicy], before: list[LiveSocket],
                read: list[LiveSocket]) -> dict[str, LivePolicy]:
    """`policies` with the attachments of the sockets read again as their answers list them."""
    ids = {live.socket_id for live in before}
    attached: dict[str, list[str]] = {}
    for live in read:
        for policy_id in live.policy_ids:
            attached.setdefault(policy_id, []).append(live.socket_id)
    out = {}
    for name, policy in policies.items():
        kept = [i for i in policy.socket_ids if i not in ids]
        added = attached.get(policy.policy_id, [])
        changed = len(kept) != len(policy.socket_ids) or added
        out[name] = replace(policy, socket_ids=(*kept, *added)) if changed else policy
    return out


def _joined(sockets: list[LiveSocket], policies: dict, connectors: dict) -> Actual:
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
    return Actual(sockets=result, policies=policies, connectors=connectors)


def fetch_details(
    client: Border0API, desired: Desired, actual: Actual, *, every_socket: bool = False,
    only: Iterable[str] | None = None, trust_tag: bool = True,
) -> Actual:
    """`actual` with the links, typed upstreams and tokens the declared objects compare with:
    a request per declared socket that names connectors or a typed upstream, and per declared
    connector that exists; nothing for the rest. A socket whose DETAILS_TAG (in the listing)
    matches its manifest's digest is not read either: it holds what the last write sent
    (`as_written`), unless `trust_tag` is off (a full refresh: `--refresh=full`, the daemon's
    `--full-refresh-interval`), which finds edits made elsewhere that left the tag alone.
    `every_socket` (import): links and upstream of every socket, and the tokens of every
    connector whose marker names some (what a manifest declaring none revokes). `only` (the
    daemon's focused edit): the other sockets, and the connectors (an edit of a connector's
    file lists everything), keep the details `actual` already has."""
    jobs: dict[tuple[str, str], Any] = {}
    written: dict[str, LiveSocket] = {}
    reread = None if only is None else set(only)
    if every_socket:
        for name, live in actual.sockets.items():
            jobs[("links", name)] = lambda sid=live.socket_id: client.list_connectors(sid)
            jobs[("upstream", name)] = (
                lambda sid=live.socket_id: client.get_upstream_configuration(sid))
        for name, found in actual.connectors.items():
            if _tokens_needed(found, ()):
                jobs[("tokens", name)] = (
                    lambda cid=found.connector_id: client.list_connector_tokens(cid))
    declared = desired.sockets.items() if reread is None else [
        (name, desired.sockets[name]) for name in reread if name in desired.sockets]
    for name, spec in declared:
        live = actual.sockets.get(name)
        if live is None or spec.suspend or every_socket:
            continue
        digest = spec.details_digest
        if trust_tag and digest is not None and live.tags.get(DETAILS_TAG) == digest:
            written[name] = as_written(live, spec)
            continue
        if spec.connectors is not None:
            jobs[("links", name)] = lambda sid=live.socket_id: client.list_connectors(sid)
        if spec.upstream_config is not None:
            jobs[("upstream", name)] = (
                lambda sid=live.socket_id: client.get_upstream_configuration(sid))
    for name, spec in desired.connectors.items() if reread is None else ():
        found = actual.connectors.get(name)
        if found is not None and not spec.suspend and _tokens_needed(found, spec.tokens):
            jobs[("tokens", name)] = (
                lambda cid=found.connector_id: client.list_connector_tokens(cid))
    if written:
        actual = replace(actual, sockets={**actual.sockets, **written})
    return _read_details(actual, jobs)


def _tokens_needed(found: LiveConnector, declared: Sequence[Any]) -> bool:
    """Tokens are listed only to create, rotate or revoke one: none declared and none managed
    (the connector's marker, plan/connectors.py), nothing to read. A v0.2 marker (tokens None)
    does not say: listed, once."""
    own = found.ownership
    return bool(declared or own.tokens or (own.managed and own.tokens is None))


def as_written(live: LiveSocket, spec: SocketSpec) -> LiveSocket:
    """`live` with the typed upstream its manifest declares (secrets left out), as its matching
    DETAILS_TAG says the last write sent; the links as the listing answered them (border0's
    serializer.Socket `connectors`), else as written. Edits made elsewhere to the upstream
    are found once the manifest changes or the tag is lost (docs/performance.md)."""
    names = live.connector_names
    if names is None and spec.connectors is not None:
        names = tuple(spec.connectors)
    config = live.upstream_configuration
    if spec.upstream_config is not None:
        config = spec.upstream_split[0]
    return live.with_details(names, config)


def fetch_connector_details(client: Border0API, actual: Actual) -> Actual:
    """`actual` with every socket's connector links and every connector's tokens (names and
    expiry, never a value): what `ls --connectors` and `show CONNECTOR` print. A request per
    socket and per connector, DETAIL_CONCURRENCY at a time."""
    jobs: dict[tuple[str, str], Any] = {}
    for name, live in actual.sockets.items():
        jobs[("links", name)] = lambda sid=live.socket_id: client.list_connectors(sid)
    for name, found in actual.connectors.items():
        jobs[("tokens", name)] = lambda cid=found.connector_id: client.list_connector_tokens(cid)
    return _read_details(actual, jobs)


def _read_details(actual: Actual, jobs: Mapping[tuple[str, str], Any]) -> Actual:
    """Run the sub-resource reads `jobs` ((what, name) -> call), DETAIL_CONCURRENCY at a time,
    and fold each answer into `actual`: a socket's links or typed upstream, a connector's
    tokens."""
    if not jobs:
        return actual
    with ThreadPoolExecutor(DETAIL_CONCURRENCY, thread_name_prefix="details") as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        answers = {key: future.result() for key, future in futures.items()}
    sockets, connectors = dict(actual.sockets), dict(actual.connectors)
    for (what, name), answer in answers.items():
        if what == "links":  # read beside the answer: no longer keyed by it alone
            names = tuple(str(c.get("connector_name") or c.get("name") or "") for c in answer)
            sockets[name] = replace(sockets[name], connector_names=names, answer_digest=None)
        elif what == "upstream":
            sockets[name] = replace(sockets[name], upstream_configuration=answer or {},
                                    answer_digest=None)
        else:
            connectors[name] = replace(
                connectors[name], tokens=tuple(token_from_api(t) for t in answer))
    return replace(actual, sockets=sockets, connectors=connectors)


def _with_policies(live: LiveSocket, attached: Mapping[str, str]) -> LiveSocket:
    return replace(live, policy_ids=tuple(attached), policy_names=tuple(attached.values()))
