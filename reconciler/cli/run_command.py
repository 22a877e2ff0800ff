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
)
from reconciler.cli.run_roles import RoleArgs, role_options

__all__ = ["run_cmd"]


@click.command("run")
@click.argument("path", type=click.Path(file_okay=True, dir_okay=True))
@api_options
@env_file_option("KEY=VALUE lines added to the environment secrets are read from.",
                 must_exist=True)
@instance_option("This reconciler's instance id (its ownership tag).")
@click.option("--interval", type=DurationType(), default="5m", show_default=True,
              help="Resync with border0 this often, repairing drift (Go durations: 500ms, "
              "30s, 1m30s, 2h).")
@click.option("--jitter", default="10%", show_default=True,
              help="Delay each resync by up to this much: a percentage of --interval or a duration.")
@click.option("--full-refresh-interval", type=DurationType(), default="1h", show_default=True,
              help="Also read every declared socket's links and typed upstream this often (and "
              "after a failed reconcile), trusting no details tag: finds portal edits the "
              "fast resync does not (as plan --refresh=full); 0: at every reconcile.")
@click.option("--debounce", type=DurationType(), default="100ms", show_default=True,
              help="Wait for this much quiet after a file change before reconciling.")
@listen_option("HOST:PORT for the dashboard (/) and /healthz /readyz /metrics /status "
               "('' to serve nothing).")
@click.option("--history", type=click.IntRange(1, 1000), default=20, show_default=True,
              metavar="N", help="Reconciles kept in /status and shown by `status --history`.")
@dry_run_option("Observe only: plan and report drift, change nothing.")
@click.option("--once", is_flag=True, help="Reconcile once and exit: 0 success, 1 failure.")
@detailed_exitcode_option("With --once: exit 2 when the plan had changes (drift; with --dry-run, "
                          "left as it is), 0 none, 1 error.")
@click.option("--sync-windows", type=click.Path(dir_okay=False, exists=True), default=None,
              metavar="FILE", help="Apply only inside these sync windows (YAML, Argo CD's "
              "syncWindows: kind allow|deny, schedule, duration, timeZone, manualSync); outside "
              "them the daemon plans and reports, and writes nothing.")
@click.option("--log-format", type=click.Choice(["text", "json", "flux"]), default="text",
              show_default=True,
              help="json: our keys (time, level, logger, message, fields); flux: Flux's keys "
              "(ts, level, logger, msg, fields), for the same log pipelines.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@max_delete_option("Refuse a plan that deletes more than N objects.")
@allow_mass_delete_option("Allow a plan that deletes most objects.")
@allow_replace_option
@labels_option
@click.option("--unready-on-invalid", is_flag=True,
              help="/readyz answers 503 while the manifests are invalid [default: ready, the "
              "last good state stays in force].")
@click.option("--delete-grace", type=DurationType(), default="5s", show_default=True,
              help="Defer deletes, and changes that grant access or lower a guard, until the "
              "manifests have been unchanged this long (0: off).")
@click.option("--fail-threshold", type=click.IntRange(min=1), default=3, show_default=True,
              help="/readyz answers 503 after this many failed or blocked reconciles in a row.")
@secret_root_option
@no_policies_option
@parallelism_option("API writes in flight at once.", most=64)
@click.option("--connector-command", default=None,
              help="Connector command template [default: border0 socket connect ...; "
              "the local connector with --api local].")
@click.option("--connector-startsecs", type=DurationType(), default="3s", show_default=True,
              help="A connector must stay up this long to count as started.")
@click.option("--connector-stop-timeout", type=DurationType(), default="10s", show_default=True,
              help="Wait this long for a connector to stop before killing it.")
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
