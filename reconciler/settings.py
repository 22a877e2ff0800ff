"""Every default of the daemon and the commands, stated once, with its unit and its help.

The click options (cli/options.py `setting_option`, cli/run_command.py, cli/run_roles.py,
cli/notify.py) show these defaults, and the containers built from the flags (`DaemonConfig`,
`ReconcileOptions`, `PlanArgs`, `RoleArgs`, `LeaseConfig`, the supervisor, the watcher, the
notifier, the logging) take them as their field defaults, so no container restates a number to
drift from the flag (tests/test_settings.py holds every one to this). Values are in the
containers' units: seconds for durations, a fraction of the interval for the jitter;
cli/options.py `flag_text` gives what `--help` shows.

Cheap on purpose (the standard library only, at the bottom of the import layers):
`border0-reconciler --help` imports it (tests/cli/test_lazy_imports.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["DEFAULTS", "FRACTION", "SECONDS", "Defaults", "help_of", "unit_of"]

#: Units (field metadata "unit"): "s" durations (Go syntax on the flag), "fraction" the jitter.
SECONDS, FRACTION = "s", "fraction"


def _setting(default: Any, help: str = "", unit: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "unit": unit})


@dataclass(frozen=True)
class Defaults:
    """The defaults; `DEFAULTS` is the one instance."""

    # --- run: when to reconcile
    interval: float = _setting(
        300.0, "Resync with border0 this often, repairing drift (Go durations: 500ms, 30s, "
        "1m30s, 2h).", SECONDS)
    jitter: float = _setting(
        0.1, "Delay each resync by up to this much: a percentage of --interval or a duration.",
        FRACTION)
    full_refresh_interval: float = _setting(
        3600.0, "Also read every declared socket's links and typed upstream this often (and "
        "after a failed reconcile), trusting no details tag: finds portal edits the fast resync "
        "does not (as plan --refresh=full); 0: at every reconcile.", SECONDS)
    #: docs/commands.md documented 100 ms; DaemonConfig and the watcher had said 0.3 s.
    debounce: float = _setting(
        0.1, "Wait for this much quiet after a file change before reconciling.", SECONDS)
    delete_grace: float = _setting(
        5.0, "Defer deletes, and changes that grant access or lower a guard, until the "
        "manifests have been unchanged this long (0: off).", SECONDS)
    # --- run: what it serves and keeps
    listen: str = _setting("127.0.0.1:9479")
    history: int = _setting(20, "Reconciles kept in /status and shown by `status --history`.")
    fail_threshold: int = _setting(
        3, "/readyz answers 503 after this many failed or blocked reconciles in a row.")
    #: /healthz fails when the loop has not turned for this long (no flag).
    heartbeat_stale: float = _setting(180.0, unit=SECONDS)
    #: The retry after a failed reconcile: base * 2^(n-1), capped (no flags).
    backoff_base: float = _setting(1.0, unit=SECONDS)
    backoff_max: float = _setting(60.0, unit=SECONDS)
    log_format: str = _setting(
        "text", "json: our keys (time, level, logger, message, fields); flux: Flux's keys "
        "(ts, level, logger, msg, fields), for the same log pipelines.")
    log_level: str = _setting("info")
    # --- writes
    parallelism: int = _setting(8)
    labels: str = _setting("merge")
    refresh: str = _setting("fast")
    # --- connectors
    connector_startsecs: float = _setting(
        3.0, "A connector must stay up this long to count as started.", SECONDS)
    connector_start_retries: int = _setting(
        5, "Failed starts in a row (each shorter than --connector-startsecs) before a "
        "connector is FATAL: not started again until its target changes or SIGHUP.")
    connector_stop_timeout: float = _setting(
        10.0, "Wait this long for a connector to stop before killing it.", SECONDS)
    #: A connector's restart backoff (supervisord's): base * 2^(n-1), capped (no flags).
    connector_backoff_base: float = _setting(1.0, unit=SECONDS)
    connector_backoff_max: float = _setting(60.0, unit=SECONDS)
    # --- notifications
    notify_format: str = _setting("json", "Body of --notify URLs without a slack+ prefix.")
    notify_after_failures: int = _setting(
        3, "Notify after this many reconciles in a row fail talking to border0 (invalid "
        "manifests: at once).")
    # --- leader election (a Kubernetes Lease; client-go's defaults)
    lease_name: str = _setting("border0-reconciler")
    lease_duration: float = _setting(
        15.0, "How long followers wait after the last renewal before taking over.", SECONDS)
    renew_deadline: float = _setting(
        10.0, "A leader that has not renewed for this long stops writing and exits.", SECONDS)
    retry_period: float = _setting(
        2.0, "How often to renew, or to try to acquire, the lease.", SECONDS)


DEFAULTS = Defaults()
_FIELDS = {f.name: f for f in fields(Defaults)}


def unit_of(name: str) -> str | None:
    return _FIELDS[name].metadata["unit"]


def help_of(name: str) -> str:
    return _FIELDS[name].metadata["help"]
