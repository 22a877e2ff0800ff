"""The daemon's read side: one immutable `Snapshot` that the loop publishes under one lock, and
a `StatusView` that serves /status, /readyz, /healthz and /metrics from it (the status server's
thread). Nothing here holds a secret: the rows are names, ids, ports, descriptions and states.

The object rows are made once per reconcile (`summarize` puts them in the report), so a request
only joins a page of them with the connectors' live states: /status answers from memory however
many sockets there are, and `?limit=&offset=` pages the sockets and policies (the counts are
always whole). `?sort=&filter=&state=` narrow and order the sockets before the page is cut, so
they apply across pages (the status page's sort and filter are these). The document's shape is
`schemas/status.schema.json`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler import __version__
from reconciler.connectors.connector import State
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.outcome import INVALID, is_ready
from reconciler.daemon.report import ReconcileReport, StatusError, connector_error
from reconciler.daemon.state import (
    BLOCKED,
    ERROR,
    IN_SYNC,
    MISSING,
    OUT_OF_SYNC,
    SUSPENDED,
    TO_DELETE,
    fatal_connectors,
    iso_time,
)
from reconciler.daemon.windows import Gate, gate
from reconciler.manifests.schema_check import schema_validator

__all__ = ["SORT_KEYS", "STATE_NAMES", "Page", "Snapshot", "StatusView",
           "status_document", "status_problems"]

log = logging.getLogger("reconciler.daemon")


@dataclass(frozen=True)
class Snapshot:
    """What the loop has published: replaced whole (`dataclasses.replace`), never changed."""

    report: ReconcileReport | None = None
    revision: str | None = None
    reconciles: int = 0
    triggers: int = 0
    in_flight: Mapping[str, Any] | None = None
    retry_at: float | None = None  # when a failed reconcile is retried (epoch seconds)
    heartbeat: float = field(default_factory=time.monotonic)
    attempt_at: float | None = None  # when the last reconcile that published started (epoch)
    gate: Gate = field(default_factory=lambda: Gate(True))  # the sync windows' verdict for the last reconcile
    dead_part: str | None = None
    stopping: bool = False
    #: when the last full refresh (every declared socket's details read) started (epoch)
    full_refresh_at: float | None = None


#: `?sort=` keys: a socket row's field; a leading `-` sorts descending.
SORT_KEYS = ("name", "type", "dns_name", "ports", "state", "connector", "policies")
#: `?state=` values: the socket states of /status (schemas/status.schema.json `state`).
STATE_NAMES = (IN_SYNC, OUT_OF_SYNC, MISSING, ERROR, TO_DELETE, SUSPENDED, BLOCKED)


@dataclass(frozen=True)
class Page:
    """`?limit=&offset=&sort=&filter=&state=` of /status: which sockets to show, in which order,
    and which slice of them (and of the policies, which are only sliced)."""

    limit: int | None = None
    offset: int = 0
    sort: str | None = None  # a SORT_KEYS key, `-` in front: descending
    filter: str | None = None  # text every shown socket contains (any case)
    states: tuple[str, ...] = ()  # only sockets in these states; (): any

    @classmethod
    def parse(cls, limit: str | None, offset: str | None, sort: str | None = None,
              filter: str | None = None, state: str | None = None) -> Page:
        """From query parameters; ValueError (one line, for a 400) for a bad one."""
        def number(text: str | None, name: str) -> int | None:
            if text is None or text == "":
                return None
            if not text.isdigit():
                raise ValueError(f"{name} must be a whole number of 0 or more, not {text!r}")
            return int(text)

        if sort and sort.removeprefix("-") not in SORT_KEYS:
            raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)} (- in front: "
                             f"descending), not {sort!r}")
        states = tuple(s for s in (state or "").split(",") if s)
        unknown = [s for s in states if s not in STATE_NAMES]
        if unknown:
            raise ValueError(f"state must be one of {', '.join(STATE_NAMES)} (several: "
                             f"comma-separated), not {unknown[0]!r}")
        return cls(number(limit, "limit"), number(offset, "offset") or 0, sort or None,
                   (filter or "").strip() or None, states)

    def of(self, rows: Sequence[Any]) -> Sequence[Any]:
        end = None if self.limit is None else self.offset + self.limit
        return rows[self.offset:end]

    def select(self, rows: Sequence[Mapping[str, Any]],
               join: Callable[[Mapping[str, Any]], dict[str, Any]]) -> tuple[list[Any], int]:
        """The socket rows shown (each `join`ed with its connector's live state) and how many
        matched the filter. Unsorted and unfiltered, only the page's rows are joined."""
        if not (self.sort or self.filter or self.states):
            return [join(r) for r in self.of(rows)], len(rows)
        joined = [join(r) for r in rows]
        if self.states:
            joined = [r for r in joined if r.get("state") in self.states]
        if self.filter:
            needle = self.filter.lower()
            joined = [r for r in joined if needle in _searched(r)]
        if self.sort:
            key = self.sort.removeprefix("-")
            joined.sort(key=lambda r: (_sort_value(r, key), r["name"]),
                        reverse=self.sort.startswith("-"))
            # rows without the value last in either order (reversed, they came first)
            joined.sort(key=lambda r: _sort_value(r, key)[0])
        return list(self.of(joined)), len(joined)

    def to_json(self, matched: int) -> dict[str, Any]:
        return {"offset": self.offset, "limit": self.limit, "sort": self.sort,
                "filter": self.filter, "state": list(self.states), "matched": matched}


def _searched(row: Mapping[str, Any]) -> str:
    """What `?filter=` looks in: the words a socket's row shows."""
    words = [row.get(k) for k in ("name", "description", "type", "dns_name", "state",
                                  "connector", "connector_error")]
    words += [str(p) for p in row.get("ports") or ()] + list(row.get("policies") or ())
    return " ".join(str(w) for w in words if w).lower()


def _sort_value(row: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """Rows without the value last; ports by their first one, as numbers."""
    if key == "ports":
        ports = row.get("ports") or []
        return (not ports, ports[0] if ports else 0)
    value = row.get(key)
    if isinstance(value, list):
        value = " ".join(value)
    return (not value, str(value or "").lower())


def _connector_fields(row: Mapping[str, Any], conn: Any) -> dict[str, Any]:
    """A socket row with its connector's live state."""
    if conn is None:
        return {**row, "connector": State.STOPPED.name if row["wants_connector"] else None,
                "connector_restarts": 0, "connector_error": None}
    return {**row, "connector": conn.state.name,
            "connector_restarts": getattr(conn, "restarts", 0),
            "connector_error": getattr(conn, "last_error", None)}


def _shown(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "wants_connector"}


def status_document(
    config: DaemonConfig,
    snapshot: Snapshot,
    *,
    role: str,
    lease: dict[str, Any] | None,
    ready: bool,
    next_resync: str | None,
    connectors: list[Any],
    sync_windows: dict[str, Any] | None = None,
    page: Page | None = None,
    rows: PageRows | None = None,
) -> dict[str, Any]:
    """`rows`: the page's socket and policy rows and the sockets matched, made earlier
    (`StatusView` keeps them while the report, the page and the connectors' states are the
    same)."""
    page = page or Page()
    report = snapshot.report
    history = list(report.history) if report else []
    sockets: Sequence[Mapping[str, Any]] = report.sockets if report else ()
    policies: Sequence[Mapping[str, Any]] = report.policies if report else ()
    socket_rows, policy_rows, matched = rows or page_rows(report, page, connectors)
    fatal = [connector_error(f["socket"], f["reason"]) for f in fatal_connectors(connectors)]
    errors: list[StatusError] = [*(report.errors if report else ()), *fatal]
    data_as_of = report.kept_at if report else None
    return {
        "version": __version__,
        "instance": config.instance,
        "path": config.path,
        "dry_run": config.dry_run,
        "role": role,
        **({"lease": lease} if lease is not None else {}),
        "ready": ready,
        "revision": snapshot.revision,
        "last_reconcile": history[0] if history else None,
        "last_success": report.last_success if report else None,
        "consecutive_failures": report.step.failures if report else 0,
        # the sockets and policies below as the last reconcile that reached border0 saw them;
        # stale when a later attempt did not (it failed or was refused)
        "data_as_of": iso_time(data_as_of),
        "stale": data_as_of is not None and snapshot.attempt_at is not None
        and snapshot.attempt_at > data_as_of,
        "reconciles": snapshot.reconciles,
        "triggers": snapshot.triggers,
        "in_flight": dict(snapshot.in_flight) if snapshot.in_flight else None,
        "next_resync": next_resync,
        "last_full_refresh": iso_time(snapshot.full_refresh_at),
        "next_retry": iso_time(snapshot.retry_at),  # when a failed reconcile is retried
        #: changes waiting for the manifests to settle (plan/settling.py), None when none are
        "held_back": report.held if report else None,
        "sync_windows": sync_windows,
        #: how many objects there are in each state, whatever page is shown
        "counts": {
            "sockets": len(sockets), "policies": len(policies),
            "states": [dict(t) for t in report.totals] if report else [],
        },
        "page": page.to_json(matched),
        "sockets": socket_rows,
        "policies": policy_rows,
        "connectors": [
            {
                "socket": c.name,
                "state": c.state.name,
                "pid": getattr(c, "pid", None),
                "restarts": getattr(c, "restarts", 0),
                "last_exit_code": getattr(c, "last_exit_code", None),
                "since": iso_time(getattr(c, "since", None)),
                "last_error": getattr(c, "last_error", None),
            }
            for c in connectors
        ],
        "suspended": [dict(o) for o in report.suspended] if report else [],
        "blocked": [dict(o) for o in report.blocked_objects] if report else [],
        "errors": [e.text for e in errors],
        "error_details": [e.to_json() for e in errors],
        "history": history,
    }


#: A page's socket rows, its policy rows, and how many sockets matched `?filter=&state=`.
PageRows = tuple[list[dict[str, Any]], list[dict[str, Any]], int]


def page_rows(report: ReconcileReport | None, page: Page, connectors: Sequence[Any]) -> PageRows:
    """The socket rows of `page` (sorted, filtered, joined with their connectors' live
    states), its policy rows, and how many sockets matched."""
    if report is None:
        return [], [], 0
    by_name = {c.name: c for c in connectors}
    shown, matched = page.select(
        report.sockets, lambda row: _shown(_connector_fields(row, by_name.get(row["name"]))))
    return shown, [dict(row) for row in page.of(report.policies)], matched


def _connector_states(connectors: Sequence[Any]) -> tuple[Any, ...]:
    """What of the connectors a socket row shows (`_connector_fields`)."""
    return tuple((c.name, c.state.name, getattr(c, "restarts", 0),
                  getattr(c, "last_error", None)) for c in connectors)


def status_problems(document: Any) -> list[str]:
    """What makes `document` not a /status document (schemas/status.schema.json, shared by the
    server's tests, the `status` command and the status page's fixtures); [] when it is one."""
    validator = schema_validator("status")
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(document), key=lambda e: list(e.path))]


class StatusView:
    """/status, /readyz, /healthz and /metrics from the published snapshot; called from the
    status server's thread. Every input is passed in: the snapshot, the live parts, the lease,
    the connectors' states and the metrics."""

    def __init__(
        self,
        config: DaemonConfig,
        snapshot: Callable[[], Snapshot],
        *,
        parts: Callable[[], Sequence[Any]],
        leader: Any,
        connectors: Callable[[], list[Any]],
        metrics: Any,
    ) -> None:
        self.config = config
        self.snapshot = snapshot
        self.parts = parts
        self.leader = leader
        self.connectors = connectors
        self.metrics = metrics
        #: (report, page, connector states) -> the page's rows: the same list objects while
        #: nothing they show changed, so the server encodes them once (status_server.py);
        #: a new report (each publish) makes new ones. A few pages are kept.
        self._rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._rows_lock = threading.Lock()

    def leads(self) -> bool:
        """Without leader election always; with it, while the lease is held and fresh."""
        return self.leader is None or self.leader.is_leader()

    @property
    def role(self) -> str:
        return self.config.role if self.leader is None else self.leader.role

    def dead_part(self) -> str | None:
        return next((p.name for p in self.parts() if not p.alive()), None)

    def health(self) -> tuple[bool, dict[str, Any]]:
        snap = self.snapshot()
        age = time.monotonic() - snap.heartbeat
        dead = snap.dead_part or self.dead_part()
        ok = age <= self.config.heartbeat_stale and dead is None and not snap.stopping
        return ok, {"loop_heartbeat_age_seconds": round(age, 3), "dead_part": dead}

    def ready(self) -> bool:
        """/readyz's answer (and `border0_reconciler_ready`'s, read at each scrape)."""
        return self._ready(self.snapshot().report)

    def _ready(self, report: ReconcileReport | None) -> bool:
        if not self.leads():  # a follower stands by: ready, or a rollout would never finish
            return not (self.leader is not None and self.leader.lost)
        return is_ready(report is not None and report.step.succeeded_once,
                        report.step.failures if report else 0, self.config,
                        report is not None and report.outcome == INVALID)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        report = self.snapshot().report
        failures = report.step.failures if report else 0
        invalid = report is not None and report.outcome == INVALID
        return self._ready(report), {
            "role": self.role,
            "last_success": (report.last_success or {}).get("time") if report else None,
            "consecutive_failures": failures,
            "fail_threshold": self.config.fail_threshold,
            "invalid_manifests": invalid,
            "unready_on_invalid": self.config.unready_on_invalid,
            # shown, not counted against readiness: the reconciler itself still works
            "fatal_connectors": [f["socket"] for f in fatal_connectors(self.connectors())],
        }

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def status(self, page: Page | None = None) -> dict[str, Any]:
        page = page or Page()
        snap = self.snapshot()
        scheduler = next((p for p in self.parts() if p.name == "scheduler"), None)
        connectors = self.connectors()
        return status_document(
            self.config, snap, role=self.role,
            lease=self.leader.describe() if self.leader is not None else None,
            ready=self.readiness()[0],
            next_resync=scheduler.next_resync() if scheduler is not None else None,
            connectors=connectors, sync_windows=self.sync_windows(snap.gate), page=page,
            rows=self._page_rows(snap.report, page, connectors),
        )

    def _page_rows(self, report: ReconcileReport | None, page: Page,
                   connectors: Sequence[Any]) -> PageRows:
        key = (id(report), page, _connector_states(connectors))
        with self._rows_lock:
            kept = self._rows.get(key)
            if kept is not None and kept[0] is report:  # the report is held: its id is its own
                return kept[1]
        rows = page_rows(report, page, connectors)
        with self._rows_lock:
            if any(held is not report for held, _ in self._rows.values()) or len(self._rows) > 8:
                self._rows.clear()  # a new report was published: the old rows go
            self._rows[key] = (report, rows)
        return rows

    def sync_windows(self, last: Gate) -> dict[str, Any] | None:
        """The windows now, and whether the last reconcile could apply (and why not)."""
        windows = self.config.sync_windows
        if not windows:
            return None
        now = datetime.now(UTC)
        verdict = gate(windows, now)
        return {
            "may_apply_now": verdict.may_apply,
            "reason": verdict.reason,
            "last_reconcile_applied": last.may_apply,
            "last_reconcile_reason": last.reason,
            "windows": [w.describe(now) for w in windows],
        }
