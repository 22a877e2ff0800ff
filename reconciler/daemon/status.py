"""The daemon's status document (`/status`, the status page, `border0-reconciler status`):
plain data built from what the loop published, nothing that holds a secret."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from reconciler import __version__
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.outcome import is_ready
from reconciler.daemon.state import (
    blocked_objects,
    connector_errors,
    fatal_connectors,
    iso_time,
    socket_rows,
    suspended_objects,
)

__all__ = ["StatusReads", "next_resync", "next_retry", "status_document"]

log = logging.getLogger("reconciler.daemon")


class StatusReads:
    """The daemon's read side, called from the status server's thread: health, readiness,
    metrics and the status document, from what the loop published (`Daemon` in loop.py)."""

    def _connector_statuses(self) -> list[Any]:
        if self.supervisor is None:
            return []
        try:
            return list(self.supervisor.status())
        except Exception:
            log.exception("reading connector status failed")
            return []

    def health(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self._heartbeat
        dead = self._dead_part or self._dead_root_part()
        ok = age <= self.config.heartbeat_stale and dead is None and not self._stop.is_set()
        return ok, {"loop_heartbeat_age_seconds": round(age, 3), "dead_part": dead}

    def leads(self) -> bool:
        """Without leader election always; with it, while the lease is held and fresh."""
        return self.leader is None or self.leader.is_leader()

    @property
    def role(self) -> str:
        return self.config.role if self.leader is None else self.leader.role

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        ok = is_ready(self._succeeded_once, self._failures, self.config, self._invalid)
        if not self.leads():  # a follower stands by: ready, or a rollout would never finish
            ok = not (self.leader is not None and self.leader.lost)
        return ok, {
            "role": self.role,
            "last_success": iso_time(self._last_success),
            "consecutive_failures": self._failures,
            "fail_threshold": self.config.fail_threshold,
            "invalid_manifests": self._invalid,
            "unready_on_invalid": self.config.unready_on_invalid,
            # shown, not counted against readiness: the reconciler itself still works
            "fatal_connectors": [f["socket"] for f in fatal_connectors(self._connector_statuses())],
        }

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def status(self) -> dict[str, Any]:
        connectors = self._connector_statuses()
        with self._lock:
            errors, states = list(self._errors), dict(self._states)
            desired, actual = self._last_good_desired, self._last_actual
            history = self.history.entries()
        ready, readiness = self.readiness()
        return status_document(
            self.config, role=self.role,
            lease=self.leader.describe() if self.leader is not None else None, ready=ready, consecutive_failures=readiness["consecutive_failures"],
            revision=self._revision, history=history, last_success=self._last_success_info,
            reconciles=self.reconciles_run, triggers=self._triggers, in_flight=self._in_flight,
            next_resync=next_resync(self.scheduler), next_retry=next_retry(self._retry_at),
            states=states, desired=desired, actual=actual, connectors=connectors, errors=errors,
            held_back=self._held, data_as_of=self._kept_at, attempt_at=self._attempt_at,
            sync_windows=self.sync_windows_status(),
        )

    def sync_windows_status(self) -> dict[str, Any] | None:
        """The windows now, and whether the last reconcile could apply (and why not)."""
        windows = self.config.sync_windows
        if not windows:
            return None
        from datetime import datetime

        from reconciler.daemon.windows import gate

        now = datetime.now(UTC)
        verdict = gate(windows, now)
        return {
            "may_apply_now": verdict.may_apply,
            "reason": verdict.reason,
            "last_reconcile_applied": self._gate.may_apply,
            "last_reconcile_reason": self._gate.reason,
            "windows": [w.describe(now) for w in windows],
        }


def status_document(
    config: DaemonConfig,
    *,
    role: str,
    lease: dict[str, Any] | None,
    ready: bool,
    consecutive_failures: int,
    revision: str | None,
    history: list[dict[str, Any]],
    last_success: dict[str, Any] | None,
    reconciles: int,
    triggers: int,
    in_flight: dict[str, Any] | None,
    next_resync: str | None,
    next_retry: str | None,
    states: Mapping[tuple[str, str], str],
    desired: Any,
    actual: Any,
    connectors: list[Any],
    errors: list[str],
    held_back: dict[str, Any] | None = None,
    data_as_of: float | None = None,
    attempt_at: float | None = None,
    sync_windows: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "version": __version__,
        "instance": config.instance,
        "path": config.path,
        "dry_run": config.dry_run,
        "role": role,
        **({"lease": lease} if lease is not None else {}),
        "ready": ready,
        "revision": revision,
        "last_reconcile": history[0] if history else None,
        "last_success": last_success,
        "consecutive_failures": consecutive_failures,
        # the sockets and policies below as the last reconcile that reached border0 saw them;
        # stale when a later attempt did not (it failed or was refused)
        "data_as_of": iso_time(data_as_of),
        "stale": data_as_of is not None and attempt_at is not None and attempt_at > data_as_of,
        "reconciles": reconciles,
        "triggers": triggers,
        "in_flight": in_flight,
        "next_resync": next_resync,
        "next_retry": next_retry,
        #: changes waiting for the manifests to settle (plan/settling.py), None when none are
        "held_back": held_back,
        "sync_windows": sync_windows,
        "sockets": socket_rows(states, desired, actual, connectors),
        "policies": [
            {
                "name": name,
                "policy_id": getattr(actual.policies.get(name), "policy_id", None)
                if actual
                else None,
                "state": state,
            }
            for (kind, name), state in sorted(states.items())
            if kind == "policy"
        ],
        "connectors": [
            {
                "socket": c.name,
                "state": getattr(c.state, "name", str(c.state)),
                "pid": getattr(c, "pid", None),
                "restarts": getattr(c, "restarts", 0),
                "last_exit_code": getattr(c, "last_exit_code", None),
                "since": iso_time(getattr(c, "since", None)),
                "last_error": getattr(c, "last_error", None),
            }
            for c in connectors
        ],
        "suspended": suspended_objects(states),
        "blocked": blocked_objects(states),
        "errors": errors + connector_errors(connectors),
        "history": history,
    }


def next_resync(scheduler: Any) -> str | None:
    """When the interval fires next (its jitter included), ISO 8601; None when not running."""
    get_job = getattr(scheduler, "get_job", None)
    when = getattr(get_job("resync"), "next_run_time", None) if get_job else None
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def next_retry(retry_at: float | None) -> str | None:
    """When a failed reconcile is retried (the backoff), ISO 8601; None when none is due."""
    if retry_at is None:
        return None
    return iso_time(time.time() + max(0.0, retry_at - time.monotonic()))
