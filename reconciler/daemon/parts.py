"""The daemon's root parts (kopf's root tasks): objects with `name`, `start`, `alive` and `stop`,
held in one list that `root_parts` builds. The loop (loop.py) starts them in order, looks for one
that died between reconciles, and stops them in reverse order: the connectors before the status
server (so their last states can still be read), the lease after the connectors (a new leader
starts its own only once ours are gone), the signal handlers last.

Each part holds what it needs, passed in by keyword: none reads the daemon's attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.connectors.wakeup import Wakeup
from reconciler.daemon.config import FULL_REFRESH, DaemonConfig
from reconciler.daemon.signals import SignalFlags

__all__ = [
    "LeasePart",
    "NotifierPart",
    "Part",
    "SchedulerPart",
    "ServerPart",
    "SignalsPart",
    "SupervisorPart",
    "WatcherPart",
    "next_resync",
    "root_parts",
]

log = logging.getLogger("reconciler.daemon")


class Part(Protocol):
    name: str

    def start(self) -> None: ...
    def alive(self) -> bool: ...
    def stop(self) -> None: ...


class SignalsPart:
    """SIGTERM/SIGINT stop, SIGHUP reconciles now: the handlers only set flags (signals.py)."""

    name = "signals"

    def __init__(self, flags: SignalFlags, wake: Wakeup) -> None:
        self.flags, self.wake = flags, wake

    def start(self) -> None:
        self.flags.install(self.wake)

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        pass  # the process is ending: a second signal still exits at once (signals.py)


class LeasePart:
    """Campaigns for the Kubernetes Lease while the daemon runs; hands it back at the end."""

    name = "lease elector"

    def __init__(self, elector: Any) -> None:
        self.elector = elector

    def start(self) -> None:
        config = self.elector.config
        log.info("leader election", extra={"lease": f"{config.namespace}/{config.name}",
                                           "identity": config.identity})
        self.elector.start()

    def alive(self) -> bool:
        return True  # losing the lease is the loop's concern (`leader.lost`), not a death

    def stop(self) -> None:
        self.elector.stop(release=True)


class ServerPart:
    """/healthz /readyz /metrics /status and the status page, served from the status view."""

    name = "status server"

    def __init__(self, factory: Callable[..., Any], view: Any, listen: str,
                 redact: Callable[[str], str], routes: Sequence[Any]) -> None:
        self.factory, self.view, self.listen = factory, view, listen
        self.redact, self.routes = redact, tuple(routes)
        self.server: Any = None

    def start(self) -> None:
        extra = {"routes": self.routes} if self.routes else {}
        self.server = self.factory(self.view, self.listen, self.redact, **extra)
        host, port = self.server.bind()
        self.server.start()
        log.info("serving the status page (/) and /healthz /readyz /metrics /status",
                 extra={"listen": f"{host}:{port}"})

    def alive(self) -> bool:
        return self.server is None or self.server.is_alive()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


class NotifierPart:
    """Notifications: delivers the reporter's messages and watches the connectors for FATAL."""

    name = "notifications"

    def __init__(self, reporter: Any, connectors: Callable[[], list[Any]]) -> None:
        self.reporter, self.connectors = reporter, connectors

    def start(self) -> None:
        self.reporter.start(self.connectors)

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        self.reporter.stop()


class WatcherPart:
    """watchdog on the manifests' path: each change is a trigger."""

    name = "watcher"

    def __init__(self, factory: Callable[..., Any], config: DaemonConfig,
                 trigger: Callable[[str], None]) -> None:
        self.factory, self.config, self.trigger = factory, config, trigger
        self.watcher: Any = None

    def start(self) -> None:
        cfg = self.config
        self.watcher = self.factory(cfg.path, lambda reason: self.trigger(f"change: {reason}"),
                                    debounce=cfg.debounce, ignore=cfg.own_files)
        self.watcher.start()

    def check(self) -> None:
        """Look for changes the events missed (the interval calls it)."""
        if self.watcher is not None:
            self.watcher.check()

    def alive(self) -> bool:
        return self.watcher is None or self.watcher.is_alive()

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()


class SchedulerPart:
    """APScheduler: the interval with jitter, the full refreshes', and the sync windows'
    openings and closings."""

    name = "scheduler"

    def __init__(self, factory: Callable[[], Any], config: DaemonConfig,
                 trigger: Callable[[str], None], watcher: WatcherPart | None = None) -> None:
        self.factory, self.config, self.trigger, self.watcher = factory, config, trigger, watcher
        self.scheduler: Any = None

    def start(self) -> None:
        cfg = self.config
        self.scheduler = self.factory()
        self.scheduler.add_job(
            self._on_interval,
            IntervalTrigger(seconds=cfg.interval, jitter=cfg.interval * cfg.jitter or None),
            id="resync", coalesce=True, max_instances=1, misfire_grace_time=None,
        )
        if cfg.full_refresh_interval > 0:  # 0: every reconcile is one (DaemonConfig)
            self.scheduler.add_job(
                self.trigger,
                IntervalTrigger(seconds=cfg.full_refresh_interval,
                                jitter=cfg.full_refresh_interval * cfg.jitter or None),
                args=(FULL_REFRESH,), id="full-refresh", coalesce=True, max_instances=1,
                misfire_grace_time=None,
            )
        for index, window in enumerate(cfg.sync_windows):
            self.scheduler.add_job(self._on_window, window.trigger, args=(window,),
                                   id=f"sync-window-{index}", coalesce=True,
                                   misfire_grace_time=None)
            if window.kind == "deny":  # open already (a restart during a freeze): its close
                self._when_closed(window)
        self.scheduler.start()

    def _on_interval(self) -> None:
        if self.watcher is not None:
            self.watcher.check()
        self.trigger("interval")

    def _on_window(self, window: Any) -> None:
        """A sync window opened: an allow window lets held changes out now; a deny window
        lets them out when it closes (a one-off job then)."""
        if window.kind == "allow":
            self.trigger(f"sync window opened: {window}")
            return
        self._when_closed(window)

    def _when_closed(self, window: Any) -> None:
        """A one-off job at the close of the deny window open now (none when it is closed)."""
        closes = window.closes_at(datetime.now(UTC))
        if closes is not None:
            self.scheduler.add_job(self._on_close, DateTrigger(closes + timedelta(
                milliseconds=10)), args=(window,), misfire_grace_time=None)

    def _on_close(self, window: Any) -> None:
        """Reconcile once the deny window closed; if its schedule fired again meanwhile (a
        firing within its duration keeps it open), wait for that close instead."""
        if window.closes_at(datetime.now(UTC)) is not None:
            self._when_closed(window)
            return
        self.trigger(f"sync window closed: {window}")

    def next_resync(self) -> str | None:
        return next_resync(self.scheduler)

    def alive(self) -> bool:
        return self.scheduler is None or self.scheduler.running

    def stop(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)


class SupervisorPart:
    """The connectors: the supervisor starts its thread at the first sync; stopped within
    their stop timeout."""

    name = "connectors"

    def __init__(self, supervisor: Any, stop_timeout: float) -> None:
        self.supervisor, self.stop_timeout = supervisor, stop_timeout

    def start(self) -> None:
        pass

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        self.supervisor.stop_all(self.stop_timeout)


def next_resync(scheduler: Any) -> str | None:
    """When the interval fires next (its jitter included), ISO 8601; None when not running."""
    get_job = getattr(scheduler, "get_job", None)
    when = getattr(get_job("resync"), "next_run_time", None) if get_job else None
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def root_parts(
    config: DaemonConfig,
    *,
    trigger: Callable[[str], None],
    view: Any,
    redact: Callable[[str], str],
    connectors: Callable[[], list[Any]],
    watcher_factory: Callable[..., Any],
    scheduler_factory: Callable[[], Any],
    server_factory: Callable[..., Any],
    routes: Sequence[Any] = (),
    supervisor: Any = None,
    reporter: Any = None,
    elector: Any = None,
    signals: tuple[SignalFlags, Wakeup] | None = None,
) -> list[Part]:
    """The one list of the daemon's root parts, in start order (stopped in reverse)."""
    parts: list[Part] = []
    if signals is not None:
        parts.append(SignalsPart(*signals))
    if elector is not None:
        parts.append(LeasePart(elector))
    if config.listen:
        parts.append(ServerPart(server_factory, view, config.listen, redact, routes))
    if reporter is not None:
        parts.append(NotifierPart(reporter, connectors))
    watcher = WatcherPart(watcher_factory, config, trigger)
    parts += [watcher, SchedulerPart(scheduler_factory, config, trigger, watcher)]
    if supervisor is not None:
        parts.append(SupervisorPart(supervisor, config.stop_timeout))
    return parts
