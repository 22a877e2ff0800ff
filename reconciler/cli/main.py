"""The command line. Thin on purpose: parse, call one function, print, return an exit code.

Exit codes are a contract (as Terraform's): 0 success, 1 error, 2 changes present (only
`plan --detailed-exitcode`). A user's mistake ends as one `error: ...` line, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from reconciler import __version__
from reconciler.cli.importer import import_command
from reconciler.cli.ls import ls_command, policies_command
from reconciler.cli.notify import notify_options
from reconciler.cli.options import (
    ENV_PREFIX,
    EXIT_ERROR,
    EXIT_OK,
    AliasOption,
    DurationType,
    api_options,
    color_options,
    environment_names,
    friendly_errors,
    instance_option,
    no_policies_option,
    output_option,
    secret_root_option,
    wide_option,
)
from reconciler.cli.run_roles import RoleArgs, role_options
from reconciler.errors import UserError
from reconciler.render import RENDERERS
from reconciler.render.validation import REPORTERS
from reconciler.secrets import SECRETS


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100,
                               "auto_envvar_prefix": ENV_PREFIX})
@click.version_option(__version__, prog_name="border0-reconciler")
def cli() -> None:
    """border0 sockets and policies as code: validate, plan, apply, and keep them running."""


# --- validate (section owned by the validate command) ---


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True),
                metavar="PATH...")
@click.option("--strict", is_flag=True, help="Treat plaintext secrets as errors, not warnings.")
@output_option(REPORTERS, what="the problems (text: file:line:column lines and a summary; "
               "json, yaml: a list of problems; markdown: a table)")
@click.option(
    "--env-file", type=click.Path(dir_okay=False), default=None,
    help="Also resolve secret references, with KEY=VALUE lines from this file over the "
    "environment; a missing variable or file is an error.",
)
@color_options
@secret_root_option
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Leave out files and folders "
              "matching PATTERN (repeatable), as .gitignore reads it: `templates`, `charts/*`.")
@click.option("--only-manifests", is_flag=True, help="Skip, unread, YAML files with no "
              "`apiVersion: border0-reconciler/...` line (Helm charts, CI files).")
@click.option("-v", "--verbose", is_flag=True, help="Also note each file skipped, on stderr.")
@friendly_errors
def validate(paths: tuple[str, ...], strict: bool, fmt: str, env_file: str | None,
             no_color: bool, secret_roots: tuple[str, ...], exclude: tuple[str, ...],
             only_manifests: bool, verbose: bool) -> None:
    """Check manifests (files or folders, read recursively) without contacting border0.

    Exit 0 when all are valid, 1 when any has an error. Every problem is listed.
    """
    from reconciler.cli.terminal import color_enabled
    from reconciler.manifests.files import environment
    from reconciler.manifests.loader import load

    env = environment(env_file) if env_file is not None else None
    result = load(paths, env=env, resolve_secrets=env is not None, strict=strict,
                  secret_roots=secret_roots or None, exclude=exclude,
                  only_manifests=only_manifests)
    if verbose:
        for file, why in result.skipped_files:
            click.echo(f"note: skipped {file}: {why}", err=True)
    color = fmt == "text" and color_enabled(sys.stdout, no_color)
    click.echo(REPORTERS[fmt](result, color=color), color=color)
    raise SystemExit(EXIT_OK if result.ok else EXIT_ERROR)


# --- emulator (section owned by the emulator command) ---

#: The secrets border0 never reads back (emulator/rules.py), named from our one list.
_PASSWORDS = " and ".join(f.name for f in SECRETS if not f.read_back)


@cli.command("emulator")
@click.option("--listen", default="127.0.0.1:8787", show_default=True,
              help="HOST:PORT to serve on (port 0: any free port, printed on start).")
@click.option("--state", "--db", "db", cls=AliasOption, hidden_aliases=("--db",),
              type=click.Path(dir_okay=False), default=None,
              help="SQLite file holding the state [default: in memory, lost on exit].")
@click.option("--token", envvar="BORDER0_EMULATOR_TOKEN", default=None,
              help="The token clients must send [env BORDER0_EMULATOR_TOKEN; required].")
@click.option("--org", default="local", show_default=True,
              help="Organization subdomain used in dnsnames (<name>-<org>.border0.io).")
@click.option("--latency", type=click.FloatRange(min=0), default=0, metavar="MS",
              help="Add MS milliseconds to every request.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, metavar="P",
              help="Fail a share P of requests (500 or dropped connection).")
@click.option("--rate-limit", type=click.IntRange(min=0), default=0, metavar="N",
              help="At most N requests a second; beyond that 429 with Retry-After.")
@click.option("--read-after-write-delay", type=click.IntRange(min=0), default=0, metavar="MS",
              help="Reads see the state before a write for MS ms after it (a lagging "
                   "replica); /serverinfo reports it as rx_after_tx_delay_ms.")
@click.option("--secrets-on-read", type=click.Choice(["omit", "mask", "clear"]),
              envvar="BORDER0_EMULATOR_SECRETS_ON_READ", default="omit", show_default=True,
              help=f"How answers show {_PASSWORDS} "
                   "[env BORDER0_EMULATOR_SECRETS_ON_READ, also read by --api local].")
@click.option("--seed", type=int, default=None, help="Seed for the fault dice (repeatable runs).")
@click.option("--access-log", is_flag=True, help="Log one line per request.")
@friendly_errors
def emulator_command(listen: str, db: str | None, token: str | None, org: str, latency: float,
                     fail_rate: float, rate_limit: int, read_after_write_delay: int,
                     secrets_on_read: str, seed: int | None, access_log: bool) -> None:
    """Serve a border0-compatible API (sockets, policies) on SQLite, for tests and local use."""
    import sqlite3

    from reconciler.border0.session import missing_local_extra
    from reconciler.serving import parse_listen

    try:
        from reconciler.border0.emulator.server import ServeOptions, serve
    except ModuleNotFoundError as exc:
        message = missing_local_extra(exc)
        if message is None:
            raise
        raise UserError(message) from None

    if not token:
        raise UserError("the emulator needs a token: --token or BORDER0_EMULATOR_TOKEN")
    try:
        parse_listen(listen)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    options = ServeOptions(
        listen=listen, db=db, token=token, org=org, latency_ms=latency, fail_rate=fail_rate,
        rate_limit=rate_limit, read_after_write_delay_ms=read_after_write_delay,
        access_log=access_log, seed=seed, secrets_on_read=secrets_on_read,
    )
    try:
        code = serve(options)
    except sqlite3.Error as exc:
        raise UserError(f"cannot use database {db}: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    raise SystemExit(code)


# --- plan (section owned by the plan command) ---


ALLOW_REPLACE_HELP = (
    "Let a change border0 cannot make in place replace the object (new id and TCP port; "
    "sessions and recordings stay with the old id; connections drop); else apply refuses it "
    "[per object: annotation border0-reconciler/allow-replace].")
LABELS_HELP = (
    "merge: manage only the tag keys the manifests declare, keep tags set elsewhere; "
    "authoritative: a socket's tags are exactly its labels [per socket: annotation "
    "border0-reconciler/labels].")


def _plan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by plan and apply."""
    options = [
        click.option("--instance", default="default", show_default=True,
                     help="Ownership instance id: several config repos can share one org."),
        click.option("--env-file", type=click.Path(dir_okay=False), default=None,
                     help="KEY=VALUE lines over the environment, for secret references."),
        output_option(RENDERERS, what="the plan"),
        color_options,
        click.option("--render-to", type=click.Path(dir_okay=False), default=None,
                     metavar="FILE", help="Also write the rendering (in --output) to FILE; "
                     "the terminal then gets text."),
        click.option("--out", type=click.Path(dir_okay=False), default=None, metavar="PLANFILE",
                     help="Save the plan (no secret values) to PLANFILE for `apply PLANFILE` / "
                     "`show PLANFILE`, as terraform plan -out."),
        click.option("--max-delete", type=click.IntRange(min=0), default=None,
                     help="Refuse plans deleting more objects [default: half of ours, >= 1]."),
        click.option("--allow-mass-delete", is_flag=True,
                     help="Allow a plan past the mass-delete guard."),
        click.option("--confirm-delete", multiple=True, metavar="NAME",
                     help="Confirm the deletion of NAME, annotated border0-reconciler/"
                     "confirm-delete (repeatable); without it, its deletion waits."),
        click.option("--deny-access-gain", is_flag=True,
                     help="Fail (exit 1, listing them) when anyone gains or widens access."),
        click.option("--allow-replace", is_flag=True, help=ALLOW_REPLACE_HELP),
        click.option("--allow-clear-credentials", is_flag=True,
                     help="Allow a write that clears upstream credentials the manifests leave "
                     "out and border0 does not answer (the plan shows (set) → (cleared))."),
        click.option("--labels", type=click.Choice(["merge", "authoritative"]), default="merge",
                     show_default=True, help=LABELS_HELP),
        no_policies_option,
        secret_root_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


@cli.command("plan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True))
@api_options
@_plan_options
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when the plan has changes (0 none, 1 error).")
@click.option("--save", type=click.Path(dir_okay=False), default=None, hidden=True,
              help="Deprecated spelling of --out.")
@friendly_errors
def plan_command(paths: tuple[str, ...], **kwargs: Any) -> None:
    """Show what apply would change in border0 to match the manifests under PATHS."""
    from reconciler.cli.plan import PlanArgs, run_plan

    raise SystemExit(run_plan(PlanArgs(paths=paths, **kwargs)))


# --- apply (section owned by the apply command) ---


@cli.command("apply")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True))
@api_options
@_plan_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--parallelism", type=click.IntRange(min=1), default=8, show_default=True,
              help="Independent API writes at a time.")
@click.option("-v", "--verbose", is_flag=True,
              help="One line per object done (else a progress bar, or a count line every 10%).")
@friendly_errors
def apply_command(paths: tuple[str, ...], **kwargs: Any) -> None:
    """Make border0 match the manifests under PATHS, or apply a plan saved with plan --out."""
    from reconciler.cli.plan import PlanArgs, run_apply

    raise SystemExit(run_apply(PlanArgs(paths=paths, **kwargs)))



# --- import, ls, policies (their own modules: cli/importer.py, cli/ls.py) ---

cli.add_command(import_command)
cli.add_command(ls_command)
cli.add_command(policies_command)


# --- show (saved-plan branch: plan_cli; socket branch: the ls/show commands) ---


@cli.command("show")
@click.argument("target", metavar="FILE|NAME")
@api_options
@output_option(RENDERERS, what="the plan or the socket")
@color_options
@instance_option
@wide_option
@friendly_errors
def show_command(target: str, fmt: str, no_color: bool, **api: Any) -> None:
    """Show a plan saved with `plan --out FILE` (offline), or the socket NAME."""
    from reconciler.cli.plan import looks_like_file, run_show_plan

    if looks_like_file(target):
        raise SystemExit(run_show_plan(target, fmt, no_color))
    from reconciler.cli.ls import show

    raise SystemExit(show(target, fmt=fmt, echo=click.echo, **api))


# --- run (section owned by the run command) ---


@cli.command("run")
@click.argument("path", type=click.Path(file_okay=True, dir_okay=True))
@api_options
@click.option("--env-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="KEY=VALUE lines added to the environment secrets are read from.")
@click.option("--instance", default="default", show_default=True,
              help="This reconciler's instance id (its ownership tag).")
@click.option("--interval", type=DurationType(), default="5m", show_default=True,
              help="Resync with border0 this often, repairing drift (Go durations: 500ms, "
              "30s, 1m30s, 2h).")
@click.option("--jitter", default="10%", show_default=True,
              help="Delay each resync by up to this much: a percentage of --interval or a duration.")
@click.option("--debounce", type=DurationType(), default="100ms", show_default=True,
              help="Wait for this much quiet after a file change before reconciling.")
@click.option("--listen", default="127.0.0.1:9479", show_default=True,
              help="HOST:PORT for the dashboard (/) and /healthz /readyz /metrics /status "
              "('' to serve nothing).")
@click.option("--history", type=click.IntRange(1, 1000), default=20, show_default=True,
              metavar="N", help="Reconciles kept in /status and shown by `status --history`.")
@click.option("--dry-run", is_flag=True, help="Observe only: plan and report drift, change nothing.")
@click.option("--once", is_flag=True, help="Reconcile once and exit: 0 success, 1 failure.")
@click.option("--detailed-exitcode", is_flag=True,
              help="With --once: exit 2 when the plan had changes (drift; with --dry-run, left "
              "as it is), 0 none, 1 error.")
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
@click.option("--max-delete", type=click.IntRange(min=0), default=None,
              help="Refuse a plan that deletes more than N objects.")
@click.option("--allow-mass-delete", is_flag=True, help="Allow a plan that deletes most objects.")
@click.option("--allow-replace", is_flag=True, help=ALLOW_REPLACE_HELP)
@click.option("--labels", type=click.Choice(["merge", "authoritative"]), default="merge",
              show_default=True, help=LABELS_HELP)
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
@click.option("--parallelism", type=click.IntRange(1, 64), default=8, show_default=True,
              help="API writes in flight at once.")
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


# --- status (section owned by the status command) ---


@cli.command("status")
@click.option("--listen", default="127.0.0.1:9479", show_default=True,
              help="HOST:PORT the daemon serves /status on.")
@output_option(what="the status (text: a table, as `border0 socket ls`)")
@click.option("--wide", is_flag=True, help="Do not cut long cells to fit 120 columns.")
@click.option("--history", is_flag=True, envvar=f"{ENV_PREFIX}_STATUS_HISTORY",
              allow_from_autoenv=False,  # BORDER0_RECONCILER_HISTORY is run's --history N
              help="Show the last reconciles (time, trigger, result, changes, drift corrected).")
@friendly_errors
def status_cmd(listen: str, fmt: str, wide: bool, history: bool) -> None:
    """Show what a running daemon reports: each socket, its state and its connector."""
    from reconciler.cli.run import execute_status

    raise SystemExit(execute_status(listen, fmt, sys.stdout, wide=wide, history=history))


# --- local-connector (section owned by the local-connector command) ---


@cli.command("local-connector")
@click.argument("name")
@click.option("--listen-port", type=click.IntRange(1, 65535), required=True,
              help="Port to listen on: the socket's allocated port (socket_tcp_ports[0]).")
@click.option("--listen-host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--host", default="localhost", show_default=True, help="Upstream host to forward to.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Upstream port to forward to (required unless --httpserver or --sshserver).")
@click.option("--httpserver", is_flag=True, help="Serve a directory over HTTP instead of forwarding.")
@click.option("--sshserver", is_flag=True,
              help="Stand-in for the built-in ssh server: forward to this machine's sshd "
              "(--host, --port default 22).")
@click.option("--httpserver-dir", "--httpserver_dir", "httpserver_dir",
              type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory for --httpserver [default: an empty temporary one].")
@friendly_errors
def local_connector_cmd(name: str, listen_port: int, listen_host: str, host: str,
                        port: int | None, httpserver: bool, sshserver: bool,
                        httpserver_dir: str | None) -> None:
    """A local stand-in for `border0 socket connect`, used with --api local.

    Listens on LISTEN_HOST:LISTEN_PORT and forwards TCP to HOST:PORT, or serves a directory
    with --httpserver. Runs until SIGTERM (exit 0).
    """
    from reconciler.connectors.local import LocalConnectorOptions, run_local_connector
    from reconciler.serving import ListenError

    if sshserver and port is None:
        port = 22
    if port is None and not httpserver:
        raise UserError("--port is required unless --httpserver or --sshserver is given")
    opts = LocalConnectorOptions(
        name=name, listen_port=listen_port, host=host, port=port, httpserver=httpserver,
        httpserver_dir=httpserver_dir, listen_host=listen_host, sshserver=sshserver,
    )
    try:
        code = run_local_connector(opts)
    except ListenError as exc:
        raise UserError(str(exc)) from None
    raise SystemExit(code)


def _conventions(group: click.Group) -> None:
    """Every command reads BORDER0_RECONCILER_<FLAG> (not click's default
    BORDER0_RECONCILER_<COMMAND>_<FLAG>: one variable per flag, whatever the command) and
    lists it in --help."""
    for command in group.commands.values():
        command.context_settings.setdefault("auto_envvar_prefix", ENV_PREFIX)
        environment_names(command)


_conventions(cli)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Usage errors exit 1, not click's 2: 2 means "changes" to scripts that use
    `plan --detailed-exitcode`, so a mistyped flag must never look like a pending change."""
    try:
        code = cli.main(args=argv, prog_name="border0-reconciler", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(EXIT_ERROR) from None
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        raise SystemExit(EXIT_ERROR) from None
    raise SystemExit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
