"""What the daemon knows after each reconcile, as plain data for /status, metrics and `status`.

`object_states` turns one reconcile's plan and apply result into a state per declared object;
`socket_rows` joins those states with the live sockets and the connector states into the rows
`border0-reconciler status` prints. Nothing here holds a secret: only names, ids, ports,
descriptions and states are copied out of the model objects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler.connectors.connector import State
from reconciler.model import Actual, Desired
from reconciler.secrets import Secret, scrubbed

__all__ = [
    "BLOCKED",
    "ERROR",
    "IN_SYNC",
    "MISSING",
    "OUT_OF_SYNC",
    "SUSPENDED",
    "TO_DELETE",
    "blocked_objects",
    "fatal_connectors",
    "iso_time",
    "object_states",
    "policy_rows",
    "secret_values",
    "socket_rows",
    "state_counts",
    "suspended_objects",
]

IN_SYNC = "in-sync"
OUT_OF_SYNC = "out-of-sync"  # a change is planned but not applied (dry run)
MISSING = "missing"  # declared, not in border0 (dry run, or its create failed)
ERROR = "error"  # its last action failed
TO_DELETE = "to-delete"  # owned, no longer declared, not yet deleted (dry run)
SUSPENDED = "suspended"  # annotated border0-reconciler/suspend: left as it is in border0
BLOCKED = "blocked"  # left out while the rest applied: no replace allowance, or not ours


def iso_time(ts: float | None) -> str | None:
    """A Unix time as ISO 8601 in UTC with milliseconds: the one time format of /status."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _object_key(change: Any) -> tuple[str, str]:
    """The (kind, name) a change is about; an attachment counts for its socket."""
    if change.kind == "attachment":
        return "socket", str(change.socket or change.name.split("/")[0])
    return change.kind, change.name


def object_states(
    desired: Desired, actual: Actual | None, plan: Any, applied: Any, unapplied: bool,
    blocked: Iterable[Any] = (),
) -> dict[tuple[str, str], str]:
    """(kind, name) -> state for every declared object and every owned object due to go;
    `unapplied`: the plan was not carried out (a dry run, a closed window: `report.summarize`
    decides); `blocked`: the objects left out while the rest applied (`ReconcileResult.blocked`)."""
    held = {(str(c.kind), c.name) for c in blocked}
    planned: dict[tuple[str, str], list[Any]] = {}
    for change in getattr(plan, "changes", None) or ():
        planned.setdefault(_object_key(change), []).append(change)
    failed = {_object_key(r.change) for r in (getattr(applied, "failed", None) or ())}
    deleted = {
        _object_key(r.change) for r in (getattr(applied, "succeeded", None) or ())
        if r.change.action.value == "delete"
    }
    live_sockets = actual.sockets if actual else {}
    live_policies = actual.policies if actual else {}

    states: dict[tuple[str, str], str] = {}
    declared = [("socket", n) for n in desired.sockets] + [("policy", n) for n in desired.policies]
    for key in declared:
        kind, name = key
        live = live_sockets if kind == "socket" else live_policies
        spec = (desired.sockets if kind == "socket" else desired.policies)[name]
        if spec.suspend:
            states[key] = SUSPENDED
        elif key in held:
            states[key] = BLOCKED
        elif key in failed:
            states[key] = ERROR
        elif name not in live:
            states[key] = MISSING
        elif key in planned and unapplied:
            states[key] = OUT_OF_SYNC
        else:
            states[key] = IN_SYNC
    for key, changes in planned.items():
        if key in states or not any(c.action.value == "delete" for c in changes):
            continue
        if key in failed:
            states[key] = ERROR
        elif key not in deleted:  # a deleted object is gone: no row of dashes until the next run
            states[key] = TO_DELETE
    return states


def state_counts(states: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], int]:
    """(kind, state) -> number, with a zero for each state not present, for a stable gauge."""
    counts: dict[tuple[str, str], int] = {
        (kind, state): 0
        for kind in ("socket", "policy")
        for state in (IN_SYNC, OUT_OF_SYNC, MISSING, ERROR, TO_DELETE, SUSPENDED, BLOCKED)
    }
    counts.update(Counter((kind, state) for (kind, _), state in states.items()))
    return counts


def socket_rows(
    states: Mapping[tuple[str, str], str],
    desired: Desired | None,
    actual: Actual | None,
) -> tuple[dict[str, Any], ...]:
    """One row per socket the daemon looks after, like `border0 socket ls` plus its state and
    its attached policies; `wants_connector` until /status joins the connector's live state."""
    rows = []
    for name in sorted(name for kind, name in states if kind == "socket"):
        live = actual.sockets.get(name) if actual else None
        spec = desired.sockets.get(name) if desired else None
        if live is not None:
            policies = list(live.policy_names)
        else:
            policies = list(spec.all_policies) if spec else []
        rows.append(
            {
                "name": name,
                "socket_id": live.socket_id if live else None,
                "dns_name": live.dnsname if live else None,
                "ports": list(live.tcp_ports) if live else [],
                "type": live.type if live else (spec.type if spec else None),
                "description": live.description if live else (spec.description if spec else ""),
                "state": states[("socket", name)],
                "policies": sorted(policies),
                "wants_connector": bool(spec and spec.connector and spec.connector.enabled),
            }
        )
    return tuple(rows)


def policy_rows(
    states: Mapping[tuple[str, str], str], actual: Actual | None
) -> tuple[dict[str, Any], ...]:
    """One row per policy the daemon looks after: name, id and state."""
    live = actual.policies if actual else {}
    return tuple(
        {"name": name, "policy_id": getattr(live.get(name), "policy_id", None), "state": state}
        for (kind, name), state in sorted(item for item in states.items() if item[0][0] == "policy")
    )


def fatal_connectors(connectors: Iterable[Any]) -> list[dict[str, Any]]:
    """The connectors the supervisor gave up on (FATAL), with the reason it recorded."""
    return [
        {"socket": c.name, "reason": getattr(c, "last_error", None) or "no reason recorded"}
        for c in connectors
        if c.state is State.FATAL
    ]


def blocked_objects(states: Mapping[tuple[str, str], str]) -> list[dict[str, str]]:
    """The objects a replace is waiting for an allowance for, as /status lists them."""
    return [{"kind": k, "name": n} for k, n in sorted(key for key, state in states.items()
                                                       if state == BLOCKED)]


def suspended_objects(states: Mapping[tuple[str, str], str]) -> list[dict[str, str]]:
    """The objects annotated suspend, as /status lists them."""
    return [{"kind": k, "name": n} for k, n in sorted(key for key, state in states.items()
                                                       if state == SUSPENDED)]


def secret_values(desired: Desired | None) -> list[str]:
    """The plain values the last-resort scrub looks for (secrets.scrubbed: passwords and
    values declared secret; every secret of a typed upstream, each a password, key or token
    by nature: upstream.SECRET_KEYS), for the log redactor and the connectors' output."""
    if desired is None:
        return []
    return [secret.value for spec in desired.sockets.values() for secret in (
        *(s for name, s in spec.secrets_by_field.items() if scrubbed(name, s)),
        *(s for s in spec.upstream_split[1].values() if isinstance(s, Secret)))]
