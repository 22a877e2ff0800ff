"""Prometheus metrics of one daemon, in a private registry (never the process-global one).

Counters and gauges the daemon sets live here as objects; numbers that other parts already
keep (the API client's request counts, the supervisor's connector states and restarts) are read
at scrape time by a collector, so they can never disagree with their source. The registry also
holds the standard `process_*` families (prometheus_client's ProcessCollector) and `build_info`.

Cardinality is bounded: `object_status` has one series per declared object, at most
`OBJECT_STATUS_LIMIT` (the objects not in sync first; `object_status_omitted` counts the rest),
and `api_request_duration_seconds` one per API operation (`border0.client.operation`: about 15).
"""

from __future__ import annotations

import heapq
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reconciler import __version__
from reconciler.connectors.connector import State
from reconciler.daemon.report import ReconcileReport

__all__ = ["CONTENT_TYPE", "OBJECT_STATUS_LIMIT", "PREFIX", "DaemonMetrics"]

PREFIX = "border0_reconciler"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The most `object_status` series (one per object): 1,000 objects are about 100 KB of scrape.
OBJECT_STATUS_LIMIT = 1000
#: API latency buckets, seconds: border0 answers in tens of milliseconds; retries take seconds.
API_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

#: Every connector state name, so a gauge exists (at 0) for the states a connector is not in.
CONNECTOR_STATES = tuple(state.name for state in State)


def _copy_counts(counts: Mapping[tuple[str, int], int]) -> list[tuple[tuple[str, int], int]]:
    """A snapshot of a Counter another thread may be adding to."""
    for _ in range(5):
        try:
            return list(counts.items())
        except RuntimeError:  # changed size during iteration
            continue
    return []


class _LiveCollector(Collector):
    """Reads API request counts and connector states from their owners at scrape time."""

    def __init__(
        self,
        request_counts: Callable[[], Mapping[tuple[str, int], int] | None],
        connectors: Callable[[], Iterable[Any]],
    ) -> None:
        self._request_counts = request_counts
        self._connectors = connectors

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}_api_requests",
            "Requests sent to the border0 API, by method and status code (0: no answer).",
            labels=["method", "code"],
        )
        for (method, code), count in sorted(_copy_counts(self._request_counts() or {})):
            requests.add_metric([str(method), str(code)], count)
        yield requests

        states = GaugeMetricFamily(
            f"{PREFIX}_connector_state",
            "1 for the state each socket's connector process is in, 0 for the others.",
            labels=["socket", "state"],
        )
        restarts = CounterMetricFamily(
            f"{PREFIX}_connector_restarts",
            "Times each socket's connector process was restarted after it exited.",
            labels=["socket"],
        )
        fatal = 0
        for status in self._connectors():
            current = status.state.name
            fatal += status.state is State.FATAL
            for state in CONNECTOR_STATES:
                states.add_metric([status.name, state], 1.0 if state == current else 0.0)
            restarts.add_metric([status.name], float(getattr(status, "restarts", 0) or 0))
        yield states
        yield restarts
        yield GaugeMetricFamily(
            f"{PREFIX}_connectors_fatal",
            "Connectors the supervisor gave up on (FATAL): SIGHUP or a fix and a reconcile "
            "starts them again.",
            value=fatal,
        )


class DaemonMetrics:
    """The metric objects of one daemon; `render()` is the /metrics body."""

    def __init__(
        self,
        *,
        request_counts: Callable[[], Mapping[tuple[str, int], int] | None] = lambda: None,
        connectors: Callable[[], Iterable[Any]] = lambda: (),
    ) -> None:
        # `*_created` timestamps double the series and say nothing a scraper needs.
        disable_created_metrics()
        self._objects_shown: list[Any] | None = None  # set_objects' last series
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconciles = Counter(
            f"{PREFIX}_reconciles", "Reconciles run, by result.", ["result"], registry=r
        )
        for result in ("success", "failure", "invalid"):
            self.reconciles.labels(result)
        self.duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Time one reconcile took (load, fetch, plan, apply).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "Unix time of the last successful reconcile (0: none yet).",
            registry=r,
        )
        self.managed_objects = Gauge(
            f"{PREFIX}_managed_objects",
            "Objects the manifests declare, by kind and state.",
            ["kind", "state"],
            registry=r,
        )
        self.suspended_objects = Gauge(
            f"{PREFIX}_suspended_objects",
            "Declared objects annotated border0-reconciler/suspend, left as they are, by kind.",
            ["kind"],
            registry=r,
        )
        for kind in ("socket", "policy"):
            self.suspended_objects.labels(kind)
        self.drift_corrections = Counter(
            f"{PREFIX}_drift_corrections",
            "Changes applied although the manifests had not changed: drift made outside git.",
            registry=r,
        )
        self.drift_pending = Gauge(
            f"{PREFIX}_drift_pending",
            "Changes the last reconcile found but did not apply (--dry-run, or failed).",
            registry=r,
        )
        self.manifest_errors = Gauge(
            f"{PREFIX}_manifest_errors",
            "Errors in the manifests at the last reconcile: found at load, or refused at "
            "planning (0: valid).",
            registry=r,
        )
        self.ready = Gauge(
            f"{PREFIX}_ready", "1 when the daemon is ready (see /readyz), else 0.", registry=r
        )
        self.consecutive_failures = Gauge(
            f"{PREFIX}_consecutive_failures",
            "Reconciles in a row that failed (border0 unreachable, a write failed, an object "
            "blocked); invalid manifests (at load or refused at planning) count in "
            "manifest_errors instead.",
            registry=r,
        )
        self.leader = Gauge(
            f"{PREFIX}_leader",
            "1 when this replica may write (the Lease holder, or no --leader-elect), else 0.",
            registry=r,
        )
        self.held_back = Gauge(
            f"{PREFIX}_changes_held_back",
            "Changes the last reconcile held back until the manifests settle, by why: access "
            "(grants access), guard (lowers one), incomplete (cut file), removal.",
            ["why"],
            registry=r,
        )
        for why in ("access", "guard", "incomplete", "removal"):
            self.held_back.labels(why)
        self.blocked_objects = Gauge(
            f"{PREFIX}_blocked_objects",
            "Declared objects the last reconcile could not change: they belong to someone else "
            "(the rest of the plan was applied; the reconcile counts as failed).",
            registry=r,
        )
        self.object_status = Gauge(
            f"{PREFIX}_object_status",
            "1 for each declared object, labelled with its sync state (in-sync, out-of-sync, "
            f"missing, error, to-delete, suspended); at most {OBJECT_STATUS_LIMIT} objects, "
            "those not in sync first.",
            ["kind", "name", "state"],
            registry=r,
        )
        self.object_status_omitted = Gauge(
            f"{PREFIX}_object_status_omitted",
            f"Objects left out of object_status (over {OBJECT_STATUS_LIMIT}); managed_objects "
            "counts them all.",
            registry=r,
        )
        self.api_latency = Histogram(
            f"{PREFIX}_api_request_duration_seconds",
            "Time each HTTP attempt to the border0 API took, by operation (method and route).",
            ["operation"],
            buckets=API_BUCKETS,
            registry=r,
        )
        Info(f"{PREFIX}_build", "The reconciler's version and Python's.", registry=r).info(
            {"version": __version__, "python_version": platform.python_version()})
        ProcessCollector(registry=r)  # process_cpu_seconds_total, _resident_memory_bytes, ...
        r.register(_LiveCollector(request_counts, connectors))

    def publish(self, report: ReconcileReport) -> None:
        """One reconcile's figures, as its report (`report.summarize`) tells them."""
        step = report.step
        self.reconciles.labels(step.outcome).inc()
        self.duration.observe(report.run.duration)
        self.manifest_errors.set(report.manifest_errors)
        self.drift_pending.set(report.pending)
        self.drift_corrections.inc(len(report.drift.corrected))
        self.consecutive_failures.set(step.failures)
        for why, number in report.held_counts.items():
            self.held_back.labels(why).set(number)
        self.blocked_objects.set(len(report.blocked))
        if report.last_success is not None and step.outcome == "success":
            self.last_success.set(report.run.wall)
        if step.keep:
            self.set_managed(report.counts)
            self.set_objects(report.states)

    def set_managed(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Replace the managed_objects series with `counts` ((kind, state) -> number)."""
        self.managed_objects.clear()
        for (kind, state), number in counts.items():
            self.managed_objects.labels(kind, state).set(number)
        for kind in ("socket", "policy"):
            self.suspended_objects.labels(kind).set(counts.get((kind, "suspended"), 0))

    def observe_request(self, operation: str, status: int, seconds: float) -> None:
        """The API client's `on_request` hook: one HTTP attempt's latency."""
        self.api_latency.labels(operation).observe(seconds)

    def set_objects(self, states: Mapping[tuple[str, str], str]) -> None:
        """Replace the object_status series: (kind, name) -> state, bounded."""
        # the objects not in sync first, then the first in-sync ones by name: a partial sort
        # (10,000 sockets in sync are not sorted to keep 1,000 of them)
        ranked = sorted((key, state) for key, state in states.items() if state != "in-sync")
        room = OBJECT_STATUS_LIMIT - len(ranked)
        if room > 0:
            ranked += [(key, "in-sync") for key in heapq.nsmallest(
                room, (key for key, state in states.items() if state == "in-sync"))]
        ranked = ranked[:OBJECT_STATUS_LIMIT]
        self.object_status_omitted.set(max(0, len(states) - OBJECT_STATUS_LIMIT))
        if ranked == self._objects_shown:  # an edit that changed no state: the same series
            return
        self._objects_shown = ranked
        self.object_status.clear()
        for (kind, name), state in ranked:
            self.object_status.labels(kind, name, state).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
