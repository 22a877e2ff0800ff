"""The daemon's root parts around the loop (see loop.py): the status server, notifications,
the watcher and the interval scheduler are started here, watched for an unexpected death and
stopped in stages (connectors before the server, so their last states can still be read)."""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from reconciler import __version__

__all__ = ["RootParts"]

log = logging.getLogger("reconciler.daemon")


class RootParts:
    """Start, watch and stop the root parts of `Daemon` (loop.py), which sets their factories."""

    def _on_interval(self) -> None:
        if self.watcher is not None:
            self.watcher.check()
        self.trigger("interval")

    def _start_parts(self) -> None:
        cfg = self.config
        if cfg.listen:
            extra = {"routes": self._routes} if self._routes else {}
            self.server = self._server_factory(self, cfg.listen, self.redactor.redact, **extra)
            host, port = self.server.bind()
            self.server.start()
            log.info(
                "serving the status page (/) and /healthz /readyz /metrics /status",
                extra={"listen": f"{host}:{port}"},
            )
        if self.reporter is not None:
            self.reporter.start(self._connector_statuses)
        self.watcher = self._watcher_factory(cfg.path, self._on_change, debounce=cfg.debounce,
                                             ignore=cfg.own_files)
        self.watcher.start()
        self.scheduler = self._scheduler_factory()
        self.scheduler.add_job(
            self._on_interval,
            IntervalTrigger(seconds=cfg.interval, jitter=cfg.interval * cfg.jitter or None),
            id="resync",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        for index, window in enumerate(cfg.sync_windows):
            self.scheduler.add_job(self._on_window, window.trigger, args=(window,),
                                   id=f"sync-window-{index}", coalesce=True,
                                   misfire_grace_time=None)
        self.scheduler.start()
        log.info("daemon started", extra={
            "path": cfg.path, "instance": cfg.instance, "interval": cfg.interval,
            "debounce": cfg.debounce, "dry_run": cfg.dry_run, "version": __version__,
        })

    def _on_window(self, window: Any) -> None:
        """A sync window opened: an allow window lets held changes out now; a deny window
        lets them out when it closes (a one-off job then)."""
        if window.kind == "allow":
            self.trigger(f"sync window opened: {window}")
            return
        from datetime import UTC, datetime, timedelta

        from apscheduler.triggers.date import DateTrigger

        closes = datetime.now(UTC) + timedelta(seconds=window.duration, milliseconds=10)
        self.scheduler.add_job(self.trigger, DateTrigger(closes), args=(
            f"sync window closed: {window}",), misfire_grace_time=None)

    def _on_change(self, reason: str) -> None:
        self.trigger(f"change: {reason}")

    def _dead_root_part(self) -> str | None:
        if self.watcher is not None and not self.watcher.is_alive():
            return "watcher"
        if self.scheduler is not None and not self.scheduler.running:
            return "scheduler"
        if self.server is not None and not self.server.is_alive():
            return "status server"
        return None

    def _shutdown(self) -> None:
        log.info("stopping")
        for name, stop in (
            ("watcher", lambda: self.watcher and self.watcher.stop()),
            (
                "scheduler",
                lambda: (
                    self.scheduler
                    and self.scheduler.running
                    and self.scheduler.shutdown(wait=False)
                ),
            ),
            (
                "connectors",
                lambda: self.supervisor and self.supervisor.stop_all(self.config.stop_timeout),
            ),
            ("status server", lambda: self.server and self.server.stop()),
            ("notifications", lambda: self.reporter and self.reporter.stop()),
        ):
            try:
                stop()
            except Exception:
                log.exception("stopping %s failed", name)
        log.info("stopped")
