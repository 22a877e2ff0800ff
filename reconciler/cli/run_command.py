"""`run PATH`: the daemon. Parse, then `run.execute_run` (which builds and runs it), then its exit
code. The flags of the production roles (trigger, leader election, agents) come from
`run_roles.role_options`, the notification flags from `notify.notify_options`."""

from __future__ import annotations

from typing import Any

import click

from reconciler.cli.notify import notify_options
from reconciler.cli.options import (
    DurationType,
    allow_mass_delete_option,
    allow_replace_option,
    api_options,
    detailed_exitcode_option,
    dry_run_option,
    env_file_option,
    friendly_errors,
    instance_option,
    labels_option,
    listen_option,
    max_delete_option,
    no_policies_option,
    parallelism_option,
    secret_root_option,
    setting_option,
)
from reconciler.cli.run_roles import RoleArgs, role_options

__all__ = ["run_cmd"]


@click.command("run")
@click.argument("path", type=click.Path(file_okay=True, dir_okay=True))
@api_options
@env_file_option("KEY=VALUE lines added to the environment secrets are read from.",
                 must_exist=True)
@instance_option("This reconciler's instance id (its ownership tag).")
@setting_option("--interval", name="interval", type=DurationType())
@setting_option("--jitter", name="jitter")
@setting_option("--full-refresh-interval", name="full_refresh_interval", type=DurationType())
@setting_option("--debounce", name="debounce", type=DurationType())
@listen_option("HOST:PORT for the dashboard (/) and /healthz /readyz /metrics /status "
               "('' to serve nothing).")
@setting_option("--history", name="history", type=click.IntRange(1, 1000), metavar="N")
@dry_run_option("Observe only: plan and report drift, change nothing.")
@click.option("--once", is_flag=True, help="Reconcile once and exit: 0 success, 1 failure.")
@detailed_exitcode_option("With --once: exit 2 when the plan had changes (drift; with --dry-run, "
                          "left as it is), 0 none, 1 error.")
@click.option("--sync-windows", type=click.Path(dir_okay=False, exists=True), default=None,
              metavar="FILE", help="Apply only inside these sync windows (YAML, Argo CD's "
              "syncWindows: kind allow|deny, schedule, duration, timeZone, manualSync); outside "
              "them the daemon plans and reports, and writes nothing.")
@setting_option("--log-format", name="log_format", type=click.Choice(["text", "json", "flux"]))
@setting_option("--log-level", name="log_level",
                type=click.Choice(["debug", "info", "warning", "error"]))
@max_delete_option("Refuse a plan that deletes more than N objects.")
@allow_mass_delete_option("Allow a plan that deletes most objects.")
@allow_replace_option
@labels_option
@click.option("--unready-on-invalid", is_flag=True,
              help="/readyz answers 503 while the manifests are invalid [default: ready, the "
              "last good state stays in force].")
@setting_option("--delete-grace", name="delete_grace", type=DurationType())
@setting_option("--fail-threshold", name="fail_threshold", type=click.IntRange(min=1))
@secret_root_option
@no_policies_option
@parallelism_option("API writes in flight at once.", most=64)
@click.option("--connector-command", default=None,
              help="Connector command template [default: border0 socket connect ...; "
              "the local connector with --api local].")
@setting_option("--connector-startsecs", name="connector_startsecs", type=DurationType())
@setting_option("--connector-start-retries", name="connector_start_retries",
                type=click.IntRange(min=1))
@setting_option("--connector-stop-timeout", name="connector_stop_timeout", type=DurationType())
@notify_options
@role_options
@friendly_errors
def run_cmd(path: str, **options: Any) -> None:
    """Keep border0 matching the manifests under PATH, and the connectors running.

    Reconciles at start, on every file change (debounced), every --interval, and on SIGHUP.
    SIGTERM/SIGINT finish the reconcile in flight, stop the connectors and exit 0.
    """
    from reconciler.cli.run import RunArgs, execute_run

    raise SystemExit(execute_run(RunArgs(path=path, roles=RoleArgs.pop_from(options), **options)))
