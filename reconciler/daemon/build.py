"""The one builder of a production daemon (`run`): the loop with its root parts in one list
(parts.py), wired by keyword, so the CLI only builds the settings and calls `run()`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reconciler.clock import SYSTEM, Clock
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.logs import RedactFilter
from reconciler.daemon.loop import Daemon

__all__ = ["build_daemon"]

#: The daemon retries whole reconciles with its own backoff: each request's retries stay short.
REQUEST_RETRIES_5XX, REQUEST_BACKOFF_MAX, REQUEST_DEADLINE = 1, 2.0, 60.0


def build_daemon(
    config: DaemonConfig,
    client: Any,
    *,
    redactor: RedactFilter,
    supervisor: Any = None,
    reporter: Any = None,
    routes: Callable[..., Sequence[Any]] | Sequence[Any] = (),
    reconcile_fn: Callable[..., Any] | None = None,
    lease: Any = None,
    signals: bool = True,
    clock: Clock = SYSTEM,
) -> Daemon:
    """A daemon for `run`: signal handling, the lease elector with `lease`, the status server,
    the notifier, the watcher, the scheduler and the connectors as its root parts. `routes`:
    the extra routes, or a function of (trigger, accepting) that makes them (trigger.py)."""
    client.max_retries_5xx = min(client.max_retries_5xx, REQUEST_RETRIES_5XX)
    client.backoff_max = min(client.backoff_max, REQUEST_BACKOFF_MAX)
    client.deadline = min(client.deadline, REQUEST_DEADLINE)
    extra = {"reconcile_fn": reconcile_fn} if reconcile_fn is not None else {}
    return Daemon(config, client, supervisor=supervisor, redactor=redactor, reporter=reporter,
                  routes=routes, lease=lease, signals=signals, clock=clock, **extra)
