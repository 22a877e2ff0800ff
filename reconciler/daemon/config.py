"""The daemon's settings (`run`'s flags) and what derives from them: each reconcile's options
and the backoff. Every default is `reconciler.settings.DEFAULTS`', as the flags' are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.backoff import backoff
from reconciler.manifests.cache import ParseCache
from reconciler.ownership import DEFAULT_INSTANCE
from reconciler.reconcile import ReconcileOptions
from reconciler.settings import DEFAULTS

__all__ = ["FULL_REFRESH", "DaemonConfig"]

#: The trigger of the full-refresh schedule (parts.SchedulerPart), as /status shows it.
FULL_REFRESH = "full refresh"


@dataclass(frozen=True)
class DaemonConfig:
    path: str
    instance: str = DEFAULT_INSTANCE
    interval: float = DEFAULTS.interval
    #: Seconds between full refreshes (`--full-refresh-interval`): reconciles that read every
    #: declared socket's links and typed upstream, trusting no details tag; 0: every reconcile.
    full_refresh_interval: float = DEFAULTS.full_refresh_interval
    jitter: float = DEFAULTS.jitter  # a fraction of the interval
    debounce: float = DEFAULTS.debounce
    listen: str | None = DEFAULTS.listen
    dry_run: bool = False
    max_delete: int | None = None
    allow_mass_delete: bool = False
    allow_replace: bool = False
    labels_authoritative: bool = False
    parallelism: int = DEFAULTS.parallelism
    env: Mapping[str, str] | None = None
    backoff_base: float = DEFAULTS.backoff_base
    backoff_max: float = DEFAULTS.backoff_max
    fail_threshold: int = DEFAULTS.fail_threshold
    unready_on_invalid: bool = False  # /readyz 503 while the manifests are invalid
    stop_timeout: float = DEFAULTS.connector_stop_timeout
    heartbeat_stale: float = DEFAULTS.heartbeat_stale
    role: str = "leader"  # "agent" with --connectors-only; a leader elector decides otherwise
    #: Off unless asked: `run` passes its --delete-grace (DEFAULTS.delete_grace); a daemon
    #: built in code (tests, benchmarks) applies deletes at once, as `apply` does.
    delete_grace: float = 0.0
    secret_roots: tuple[str, ...] | None = None
    history: int = DEFAULTS.history  # reconciles kept for /status
    #: the daemon's own files (state, WAL, record): never a reason to reconcile (watch.py)
    own_files: tuple[str, ...] = ()
    state_dir: str | None = None  # where the inventory lives; None: in memory only
    sync_windows: tuple[Any, ...] = ()  # windows.SyncWindow: when writes are allowed
    manage_policies: bool = True  # --no-policies: no policy is read or written
    #: The agent role's `border0 connector start` processes (connectors/agents.py): the
    #: command template, the connectors it serves (None: every declared one) and what their
    #: environment gets besides their token (BORDER0_API). None: no such processes.
    connector_start: str | None = None
    serve_connectors: tuple[str, ...] | None = None
    connector_env: Mapping[str, str] | None = None

    def reconcile_options(
        self, parse_cache: ParseCache | None = None, **run: Any
    ) -> ReconcileOptions:
        """One reconcile's options under these settings; `run` adds what varies per run
        (delete_grace, known_snapshot, changed_at)."""
        return ReconcileOptions(
            instance=self.instance,
            dry_run=self.dry_run,
            max_delete=self.max_delete,
            allow_mass_delete=self.allow_mass_delete,
            allow_replace=self.allow_replace,
            labels_authoritative=self.labels_authoritative,
            parallelism=self.parallelism,
            env=self.env,
            secret_roots=self.secret_roots,
            parse_cache=parse_cache,
            isolate_conflicts=True,
            manage_policies=self.manage_policies,
            **run,
        )

    def full_refresh(self, reasons: Sequence[str], failed_before: bool) -> bool:
        """Whether this reconcile is a full refresh: its schedule fired, every reconcile is one
        (interval 0), or the last reconcile failed (what it read or wrote may be anything)."""
        return self.full_refresh_interval <= 0 or FULL_REFRESH in reasons or failed_before

    def backoff(self, failures: int) -> float:
        """Seconds before retrying after `failures` failures in a row: 1, 2, 4 ... capped."""
        return min(backoff(failures, base=self.backoff_base, cap=self.backoff_max), self.interval)
