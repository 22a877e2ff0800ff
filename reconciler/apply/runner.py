"""Execute a `Plan`: ordered phases, bounded concurrency, one result per action.

Phases (as `plan.PHASES`): policies created/updated, sockets created/updated/replaced,
attachments, detachments, sockets deleted, policies deleted. Actions within a phase are
independent and run on a thread pool (`parallelism`). A failed action does not stop the others;
its dependents (an attachment to a socket that was not created) fail with a clear message, and
rerunning apply finishes the job. Each write is one client call: the client's retry policy
(`border0/client.py`) is the only one, so a create is sent at most 1 + `max_retries_5xx` times.
A create that failed anyway (timeout, 5xx, or a retried POST that answers "duplicate") is checked
by name: if the object exists and is ours, it counts as created, so no duplicate is ever made.
A delete (or a token revocation) whose every answer was lost (the client marks it `ambiguous`:
no answer, or 5xx) is checked the other way: the object is read by id once, and if border0
answers 404 an attempt was applied, so it counts as deleted; still there, or unreadable, the
failure stands. This is the one place lost answers are recovered, and the ownership check is
part of a create's. border0's read-after-write delay is the client's concern (border0/api.py):
the read that checks waits there for the window of the write whose answer was lost.

A connector's marker names the tokens we manage, so an update that drops names waits for
their revocations (`_State.revoking`): it is written in the first phase still naming them
(skipped when nothing else changes), and its final marker only after the connector's token
revocations all succeeded. A failed revocation leaves the marker naming the token, so the next
plan revokes it again.

An update is a read-modify-write: the object is read (a socket with `?activeOnly=true`, then its
connector links and upstream configuration from their sub-resources) right before the PUT, and
everything the reconciler does not manage goes back as read (border0 resets an updatable field a
PUT leaves out). If any of those reads fails, nothing is written for that object. A replaced
object carries those fields over to its successor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, NamedTuple

from reconciler.apply.attach_groups import attachment_groups
from reconciler.apply.tokens import TokenDestinationError, issue_token
from reconciler.border0.api import JSON, Border0API
from reconciler.border0.api_json import (
    connector_body,
    connector_from_api,
    policy_create_body,
    policy_from_api,
    policy_update_body,
    socket_create_body,
    socket_from_api,
    socket_update_body,
    with_links,
)
from reconciler.border0.errors import Border0Error, IncompleteRead, NotFound
from reconciler.model import Actual, Desired
from reconciler.ownership import DEFAULT_INSTANCE
from reconciler.plan.types import PHASES, Action, Change, Kind, Plan, phase_of
from reconciler.settings import DEFAULTS

__all__ = ["ActionResult", "ApplyResult", "PlanNotApplicable", "apply_plan"]

log = logging.getLogger(__name__)

_PAST = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.REPLACE: "replaced",
    Action.DELETE: "deleted",
    Action.ATTACH: "attached",
    Action.DETACH: "detached",
}


def _timed(task: Callable[[], list[ActionResult]]) -> Callable[[], list[ActionResult]]:
    """`task` with each of its results carrying how long it took (for the logs)."""
    def run() -> list[ActionResult]:
        started = time.monotonic()
        results = task()
        took = round((time.monotonic() - started) * 1000, 1)
        return [replace(r, duration_ms=took) for r in results]
    return run


class PlanNotApplicable(Exception):
    """The plan has conflicts (errors); nothing was applied."""


@dataclass(frozen=True)
class ActionResult:
    change: Change
    ok: bool
    message: str  # "created socket web" or "failed: update socket db: 400 ..."
    object_id: str | None = None
    temporary: bool = False  # failed for a reason that may pass (5xx, timeout): rerun helps
    duration_ms: float | None = None  # its requests, retries included (a batch: the batch's)


@dataclass(frozen=True)
class ApplyResult:
    results: tuple[ActionResult, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> tuple[ActionResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    @property
    def succeeded(self) -> tuple[ActionResult, ...]:
        return tuple(r for r in self.results if r.ok)


def _done_message(change: Change) -> str:
    text = change.title
    verb = change.action.value
    return _PAST[change.action] + text[len(verb):]


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, (Border0Error, TokenDestinationError)):
        return str(exc)
    # Unknown exceptions may carry anything in their message: show the type only.
    log.debug("unexpected error during apply", exc_info=exc)
    return f"internal error ({type(exc).__name__})"


def _temporary(exc: BaseException) -> bool:
    return isinstance(exc, Border0Error) and exc.temporary


@dataclass
class _State:
    """What later phases need from earlier ones: ids by name, and what failed."""

    socket_ids: dict[str, str] = field(default_factory=dict)
    policy_ids: dict[str, str] = field(default_factory=dict)
    connector_ids: dict[str, str] = field(default_factory=dict)
    failed_sockets: set[str] = field(default_factory=set)
    failed_policies: set[str] = field(default_factory=set)
    #: per connector, the undeclared tokens this plan revokes (its marker waits for them)
    revoking: dict[str, frozenset[str]] = field(default_factory=dict)
    #: connector updates written so far without their final marker, by name
    pending: dict[str, Change] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def apply_plan(
    plan: Plan,
    client: Border0API,
    desired: Desired,
    actual: Actual,
    *,
    instance: str = DEFAULT_INSTANCE,
    parallelism: int = DEFAULTS.parallelism,
    progress: Callable[[ActionResult], None] | None = None,
    may_write: Callable[[], bool] | None = None,
    manage_policies: bool = True,
) -> ApplyResult:
    """Execute every change of `plan`, phase by phase; never raises for API errors.

    `may_write` is asked before each phase (a leader's lease still held, daemon/lease.py): once
    it says no, the remaining changes fail unwritten, so a deposed leader stops mid-plan.
    Without `manage_policies` (--no-policies) nothing is written to /policy: the attachments a
    replaced socket carries over are written from the socket's side."""
    if not plan.ok:
        raise PlanNotApplicable("the plan has conflicts; nothing was applied")
    state = _State(
        socket_ids={n: s.socket_id for n, s in actual.sockets.items()},
        policy_ids={n: p.policy_id for n, p in actual.policies.items()},
        connector_ids={n: c.connector_id for n, c in actual.connectors.items()},
        revoking=_revoking(plan, desired),
    )
    runner = _Runner(client, desired, instance, state, manage_policies)
    results: list[ActionResult] = []
    window_asked = False
    phases: dict[int, list[Change]] = {}  # one pass: the next phase starts without a scan
    for change in plan.changes:
        phases.setdefault(phase_of(change.kind, change.action), []).append(change)
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        for index in range(len(PHASES)):
            phase = phases.get(index)
            if not phase:
                continue
            if may_write is not None and not may_write():
                results += _refused(plan, index)
                break
            futures = [pool.submit(task) for task in runner.tasks(phase)]
            if not window_asked:
                # The read-after-write window (one /serverinfo) is learnt beside the first
                # writes: the first PUT or DELETE after a write needs it, and asked then it was
                # one more round trip in front of that phase. Queued after them, it takes no
                # slot from them when `apply` asked it already (cli/planning.py); the client
                # asks once (border0/client.py).
                pool.submit(client.read_after_write_delay)
                window_asked = True
            for future in as_completed(futures):  # report each action as it finishes
                for result in future.result():
                    results.append(result)
                    if progress is not None:
                        progress(result)
    results += [ActionResult(c, False, f"not written: {c.title}: its tokens were not revoked "
                             "(this replica is not the leader)")
                for c in state.pending.values()]
    return ApplyResult(tuple(results))


def _revoking(plan: Plan, desired: Desired) -> dict[str, frozenset[str]]:
    """Per connector the plan updates, the undeclared tokens it revokes (not an older token of
    a declared name: the marker names that name anyway)."""
    updated = {c.name for c in plan.changes
               if c.kind == Kind.CONNECTOR and c.action is Action.UPDATE}
    out: dict[str, set[str]] = {}
    for change in plan.changes:
        connector = change.connector or ""
        if (change.kind == Kind.TOKEN and change.action is Action.DELETE
                and connector in updated and connector in desired.connectors
                and change.token not in {t.name for t in desired.connectors[connector].tokens}):
            out.setdefault(connector, set()).add(change.token)
    return {name: frozenset(names) for name, names in out.items()}


def _refused(plan: Plan, first_phase: int) -> list[ActionResult]:
    """The changes of `first_phase` and later, failed without a request."""
    return [
        ActionResult(c, False, f"not written: {c.title}: this replica is not the leader")
        for c in plan.changes
        if phase_of(c.kind, c.action) >= first_phase
    ]


def _gone(still_there: Callable[[], bool]) -> bool:
    """Whether a delete whose answers were lost was applied, by one read (`still_there`): a 404
    says gone; any other failure to read says nothing, so not gone. The read is the client's:
    it waits out the read-after-write window of the lost delete (border0/client.py), so a
    lagging replica does not answer for the object as it was before."""
    try:
        return not still_there()
    except NotFound:
        return True
    except Border0Error:
        return False


class _NotCreated(Border0Error):
    """A change needs an object an earlier phase failed to create (its message says which)."""


class _Ops(NamedTuple):
    """What differs between writing a policy and writing a socket."""

    specs: Mapping[str, Any]
    create_body: Callable[[Any, str, Mapping[str, Any] | None], JSON]
    update_body: Callable[[Any, str, Mapping[str, Any]], JSON]
    get: Callable[[str], JSON]  # read before an update and a replace
    read: Callable[[str], JSON]  # one GET by id: is it still there after a lost delete
    create: Callable[[JSON], JSON]
    update: Callable[[str, JSON], JSON]
    delete: Callable[[str], None]
    find: Callable[[str], JSON | None]
    id_key: str
    is_ours: Callable[[Mapping[str, Any]], bool]
    ids: dict[str, str]


class _Runner:
    """Builds the callables of one phase; each returns the results of its changes."""

    def __init__(self, client: Border0API, desired: Desired, instance: str,
                 state: _State, manage_policies: bool = True) -> None:
        self.client = client
        self.desired = desired
        self.instance = instance
        self.state = state
        self.manage_policies = manage_policies

    def tasks(self, phase: list[Change]) -> list[Callable[[], list[ActionResult]]]:
        first = phase[0]
        if first.kind == "attachment":
            return [_timed(partial(self._attachments, *group))
                    for group in attachment_groups(phase, policy_side=self.manage_policies)]
        if first.kind == Kind.TOKEN and first.action is Action.DELETE:
            by_connector: dict[str, list[Change]] = {}
            for change in phase:
                by_connector.setdefault(change.connector or "", []).append(change)
            return [_timed(partial(self._revocations, name, group))
                    for name, group in by_connector.items()]
        return [_timed(partial(self._one_as_list, change)) for change in phase]

    def _one_as_list(self, change: Change) -> list[ActionResult]:
        if change.kind == Kind.CONNECTOR and change.name in self.state.revoking:
            return self._marker_waits(change)
        return [self._one(change)]

    # -- a connector's marker and its token revocations -------------------------------------

    def _marker_waits(self, change: Change) -> list[ActionResult]:
        """First half of a connector update that drops tokens: written with a marker still
        naming them, unless the live marker already covers every declared token and nothing
        else changes (then nothing is written yet; a v0.2 marker covers all). Its result comes
        with the revocations (`_revocations`)."""
        revoking = self.state.revoking[change.name]
        spec = self.desired.connectors[change.name]
        marker_only = all(d.path == "managed_tokens" for d in change.diffs)
        before = next((d.before for d in change.diffs if d.path == "managed_tokens"), None)
        covered = before is None or {t.name for t in spec.tokens} <= set(before)
        if not (marker_only and covered):
            try:
                self.client.update_connector(change.object_id or "",
                                             connector_body(spec, self.instance, revoking))
            except Exception as exc:  # noqa: BLE001 - reported, the others go on
                return [ActionResult(change, False, f"failed: {change.title}: "
                                     f"{_error_text(exc)}", temporary=_temporary(exc))]
        with self.state.lock:
            self.state.pending[change.name] = change
        return []

    def _revocations(self, connector: str, group: list[Change]) -> list[ActionResult]:
        """A connector's token deletes; then, if its update waits for them (`_marker_waits`),
        its final marker: written only when every revocation succeeded, so a failed one stays
        named and the next plan revokes it again."""
        results = [self._one(change) for change in group]
        with self.state.lock:
            update = self.state.pending.pop(connector, None)
        if update is None:
            return results
        revoking = self.state.revoking[connector]
        failed = [r for r in results if not r.ok and r.change.token in revoking]
        if failed:
            names = ", ".join(sorted(r.change.token for r in failed))
            return [*results, ActionResult(
                update, False, f"failed: {update.title}: its marker still names {names}, "
                "whose revocation failed: the next apply revokes it again",
                temporary=all(r.temporary for r in failed))]
        try:
            self.client.update_connector(update.object_id or "", connector_body(
                self.desired.connectors[connector], self.instance))
        except Exception as exc:  # noqa: BLE001
            return [*results, ActionResult(update, False, f"failed: {update.title}: "
                                           f"{_error_text(exc)}", temporary=_temporary(exc))]
        return [*results, ActionResult(update, True, _done_message(update), update.object_id)]

    # -- single objects ---------------------------------------------------------------------

    def _one(self, change: Change) -> ActionResult:
        try:
            object_id = self._do(change)
        except Exception as exc:  # noqa: BLE001 - one failure must not stop the others
            with self.state.lock:
                if change.action in (Action.CREATE, Action.REPLACE):
                    failed = (
                        self.state.failed_sockets
                        if change.kind == "socket"
                        else self.state.failed_policies
                    )
                    failed.add(change.name)
            return ActionResult(change, False, f"failed: {change.title}: {_error_text(exc)}",
                                temporary=_temporary(exc))
        return ActionResult(change, True, _done_message(change), object_id)

    def _ops(self, kind: str) -> _Ops:
        c = self.client
        if kind == "connector":
            return _Ops(self.desired.connectors,
                        lambda spec, instance, _current: connector_body(spec, instance),
                        lambda spec, instance, _current: connector_body(spec, instance),
                        c.get_connector, c.get_connector, c.create_connector,
                        c.update_connector,
                        c.delete_connector, c.find_connector, "connector_id",
                        self._connector_is_ours, self.state.connector_ids)
        if kind == "policy":
            return _Ops(self.desired.policies, policy_create_body,
                        policy_update_body, c.get_policy, c.get_policy, c.create_policy,
                        c.update_policy, c.delete_policy, c.find_policy, "id",
                        self._policy_is_ours, self.state.policy_ids)
        return _Ops(self.desired.sockets, socket_create_body,
                    socket_update_body, self._read_socket, c.get_socket, c.create_socket,
                    c.update_socket,
                    c.delete_socket, c.find_socket, "socket_id", self._socket_is_ours,
                    self.state.socket_ids)

    def _do(self, change: Change) -> str | None:
        if change.kind == "token":
            return self._token(change)
        ops = self._ops(change.kind)
        object_id = change.object_id or ""

        def still_there() -> bool:
            ops.read(object_id)  # NotFound once it is gone
            return True

        if change.action is Action.DELETE:
            self._delete(partial(ops.delete, object_id), still_there)
            return object_id
        spec = ops.specs[change.name]
        current = ops.get(object_id) if object_id else None
        if change.action is Action.UPDATE:
            body = ops.update_body(spec, self.instance, current or {})
            ops.update(object_id, self._with_links(change, spec, body))
            return object_id
        body = self._with_links(change, spec, ops.create_body(spec, self.instance, current))
        if change.action is Action.REPLACE:
            # a write: border0's primary sees it at once
            self._delete(partial(ops.delete, object_id), still_there)
        created = self._create(lambda: ops.create(body), ops.find, change.name, ops.is_ours)
        new_id = str(created.get(ops.id_key) or "")
        with self.state.lock:
            ops.ids[change.name] = new_id
        return new_id

    def _with_links(self, change: Change, spec: Any, body: JSON) -> JSON:
        """A socket body with `connector_ids` for the connectors its manifest names (ids of
        those created by this plan included)."""
        if change.kind != "socket" or spec.connectors is None:
            return body
        ids = []
        with self.state.lock:
            for name in spec.connectors:
                connector_id = self.state.connector_ids.get(name)
                if not connector_id:
                    raise _NotCreated(f"connector {name} was not created")
                ids.append(connector_id)
        return {**body, "connector_ids": ids}

    def _token(self, change: Change) -> str | None:
        """Create (and store), replace (create, store, then revoke the old) or revoke."""
        connector = change.connector or ""
        with self.state.lock:
            connector_id = change.object_id or self.state.connector_ids.get(connector)
        if not connector_id:
            raise _NotCreated(f"connector {connector} was not created")
        if change.action is Action.DELETE:
            self._revoke(connector_id, change.token_id or "")
            return change.token_id
        spec = next(t for t in self.desired.connectors[connector].tokens
                    if t.name == change.token)
        token_id = issue_token(self.client, connector_id, spec)
        if change.action is Action.REPLACE and change.token_id:
            self._revoke(connector_id, change.token_id)
        return token_id

    def _revoke(self, connector_id: str, token_id: str) -> None:
        """A token revocation, checked as a delete is (`_delete`): border0 reads no single
        token, so its connector's list is read (border0-go client/connector.go
        ConnectorTokens); a connector that is gone took its tokens with it (404)."""
        def still_there() -> bool:
            tokens = self.client.list_connector_tokens(connector_id)
            return any(str(t.get("id") or "") == token_id for t in tokens)

        self._delete(partial(self.client.delete_connector_token, connector_id, token_id),
                     still_there)

    def _connector_is_ours(self, data: Mapping[str, Any]) -> bool:
        return connector_from_api(data).ownership.owned_by(self.instance)

    def _create(
        self,
        create: Callable[[], JSON],
        find: Callable[[str], JSON | None],
        name: str,
        is_ours: Callable[[Mapping[str, Any]], bool],
    ) -> JSON:
        """One create (the client already retried it per its policy); after a failure, look by
        name: an object of ours means an earlier attempt was applied, so no duplicate is made and
        no second retry loop multiplies the client's attempts. One of someone else's stays
        theirs: the failure stands (the client leaves this decision here)."""
        try:
            return create()
        except Border0Error:
            existing = find(name)  # a read: the client waits out the read-after-write window
            if existing is not None and is_ours(existing):
                return existing
            raise

    def _delete(self, delete: Callable[[], None], still_there: Callable[[], bool]) -> None:
        """One delete (the client already retried it, and counts a 404 as done); after a failure
        that may have been applied (`ambiguous`: an attempt's answer was lost), one read: gone
        means an attempt was applied, so it counts as deleted. Still there, or unreadable: the
        delete's own failure stands. The mirror of `_create`."""
        try:
            delete()
        except Border0Error as exc:
            if exc.ambiguous and _gone(still_there):
                return
            raise

    def _read_socket(self, socket_id: str) -> JSON:
        """The socket and its two sub-resources, as a write must start from (`with_links`);
        IncompleteRead, naming the sub-resource, when one cannot be read."""
        answer = self.client.get_socket(socket_id)
        try:
            connectors = self.client.list_connectors(socket_id)
        except Border0Error as exc:
            raise IncompleteRead("reading its connector links failed, so it was not written",
                                 exc) from exc
        try:
            configurations = self.client.list_upstream_configurations(socket_id)
        except Border0Error as exc:
            raise IncompleteRead(
                "reading its upstream configuration failed, so it was not written", exc) from exc
        return with_links(answer, connectors, configurations)

    def _socket_is_ours(self, data: Mapping[str, Any]) -> bool:
        return socket_from_api(data).ownership.owned_by(self.instance)

    def _policy_is_ours(self, data: Mapping[str, Any]) -> bool:
        return policy_from_api(data).ownership.owned_by(self.instance)

    # -- attachments ------------------------------------------------------------------------

    def _attachments(self, side: str, group: list[Change]) -> list[ActionResult]:
        """One PUT for a group that shares a socket (`PUT /socket/{id}/policy`) or a policy
        (`PUT /policy/{id}/socket`): all attaches or all detaches."""
        results: list[ActionResult] = []
        ids: list[str] = []
        ready: list[Change] = []
        owner = ""
        for change in group:
            socket_id, policy_id, missing = self._attachment_ids(change)
            if missing:
                results.append(ActionResult(
                    change, False, f"failed: {change.title}: {missing} was not created"))
                continue
            owner = socket_id if side == "socket" else policy_id
            ids.append(policy_id if side == "socket" else socket_id)
            ready.append(change)
        if not ready:
            return results
        write = (self.client.update_socket_policies if side == "socket"
                 else self.client.update_policy_sockets)
        try:
            if ready[0].action is Action.ATTACH:
                write(owner, add=ids)
            else:
                write(owner, remove=ids)
        except Exception as exc:  # noqa: BLE001
            text = _error_text(exc)
            return results + [
                ActionResult(c, False, f"failed: {c.title}: {text}",
                             temporary=_temporary(exc)) for c in ready
            ]
        return results + [
            ActionResult(c, True, _done_message(c), self._attachment_ids(c)[0]) for c in ready
        ]

    def _attachment_ids(self, change: Change) -> tuple[str, str, str]:
        """(socket id, policy id, "") or, when one side was not created, its description."""
        socket = change.socket or ""
        with self.state.lock:
            socket_id = change.object_id or self.state.socket_ids.get(socket) or ""
            if socket in self.state.failed_sockets or not socket_id:
                return "", "", f"socket {socket}"
            policy_id = change.policy_id or self.state.policy_ids.get(change.policy or "") or ""
            if change.policy in self.state.failed_policies:
                policy_id = ""  # a failed replace: the id we hold is the deleted one
        if not policy_id:
            return socket_id, "", f"policy {change.policy}"
        return socket_id, policy_id, ""
