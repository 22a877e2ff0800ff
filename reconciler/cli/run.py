"""`run` and `status` behind the click layer: a small arguments object in, an exit code out.

`execute_run` builds the parts (logging, API client, supervisor, daemon) from `RunArgs` and runs
them; `execute_status` asks a running daemon for /status and prints it. The click commands in
cli.py only fill the arguments.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, TextIO

from reconciler.durations import parse_duration
from reconciler.errors import UserError
from reconciler.render.table import ELLIPSIS, WIDTH, render_table

__all__ = [
    "RunArgs",
    "execute_run",
    "execute_status",
    "format_history_table",
    "format_status_table",
    "parse_duration",
    "parse_jitter",
]

log = logging.getLogger("reconciler.daemon")


def parse_jitter(text: str, interval: float) -> float:
    """'10%' of the interval, or a duration; returned as a fraction of the interval."""
    text = str(text).strip()
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            raise ValueError(f"{text!r} is not a percentage") from None
        if not 0 <= percent <= 100:
            raise ValueError("--jitter must be between 0% and 100%")
        return percent / 100
    return min(parse_duration(text) / interval, 1.0) if interval > 0 else 0.0


@dataclass(frozen=True)
class RunArgs:
    """`run`'s options, built from its click options (cli/run_command.py), which hold every
    default: none is restated here to drift from them."""

    path: str
    api: str | None
    token_file: str | None
    state: str | None
    env_file: str | None
    instance: str
    interval: float
    jitter: str
    full_refresh_interval: float
    debounce: float
    listen: str
    history: int
    dry_run: bool
    once: bool
    log_format: str
    log_level: str
    max_delete: int | None
    allow_mass_delete: bool
    allow_replace: bool
    labels: str
    delete_grace: float
    fail_threshold: int
    unready_on_invalid: bool
    secret_roots: tuple[str, ...]
    no_policies: bool
    parallelism: int
    connector_command: str | None
    connector_startsecs: float
    connector_start_retries: int
    connector_stop_timeout: float
    notify: tuple[str, ...]
    notify_format: str
    notify_after_failures: int
    detailed_exitcode: bool
    sync_windows: str | None  # a YAML file of Argo CD-style syncWindows
    roles: Any = None  # run_roles.RoleArgs: trigger, leader election, connector agents


def _state_path(args: RunArgs) -> Any:
    """The daemon's state file (`border0.session.state_path`, as `open_api` finds it)."""
    from reconciler.border0.session import state_path

    return state_path(args.state, args.api, [args.path])


def _process_groups(args: RunArgs) -> Any:
    """The connectors' guards against orphans, their record beside the local state."""
    from reconciler.border0.session import private_state_dir
    from reconciler.connectors.process_groups import ProcessGroups

    directory = _state_path(args).parent
    try:
        private_state_dir(directory, always=args.state is None)
    except OSError as exc:
        log.warning(
            "cannot create %s (%s): what a SIGKILLed daemon's connectors leave behind is not "
            "ended at the next start", directory, exc.strerror or exc,
        )
        return ProcessGroups(None)
    return ProcessGroups(directory / "connectors.json")


def _own_files(args: RunArgs) -> tuple[str, ...]:
    """The daemon's own files, which its watch ignores should they sit in the manifests' tree:
    the state, SQLite's journal files beside it, the connectors' record and its temp file."""
    state = _state_path(args)
    record = state.parent / "connectors.json"
    return tuple(str(p) for p in (
        state, *(state.with_name(state.name + s) for s in ("-wal", "-shm", "-journal")),
        record, record.with_name(record.name + ".tmp"),
    ))


def _make_supervisor(args: RunArgs, client: Any, redactor: Any) -> Any:
    """The connector supervisor: the local connector with --api local unless told otherwise."""
    from reconciler.connectors.argv import env_for_token
    from reconciler.connectors.supervisor import LOCAL_CONNECTOR_TEMPLATE, Supervisor

    template = args.connector_command
    if template is None and args.api == "local":
        template = LOCAL_CONNECTOR_TEMPLATE
    token = client.token.value if client.token else None
    try:
        return Supervisor(
            command_template=template,
            env=dict(env_for_token(token)) or None,
            startsecs=args.connector_startsecs,
            fatal_after=args.connector_start_retries,
            stop_timeout=args.connector_stop_timeout,
            log=logging.getLogger("reconciler.connectors"),
            secrets=lambda: redactor.secrets,
            protected_paths=[
                str(p) for p in (args.path, _state_path(args), args.env_file, args.token_file)
                if p
            ],
            groups=_process_groups(args),
        )
    except ValueError as exc:  # a bad --connector-command template (TemplateError)
        raise UserError(str(exc)) from None


def _connector_start(roles: Any) -> dict[str, Any]:
    """The agent role's `connector start` settings (DaemonConfig fields) for the Connectors
    named by --connector; none otherwise (two agents must not both serve one by default)."""
    if not roles.connectors_only or not roles.serve_connectors:
        return {}
    from reconciler.connectors.agents import CONNECTOR_START_TEMPLATE

    return {"connector_start": roles.connector_start_command or CONNECTOR_START_TEMPLATE,
            "serve_connectors": tuple(roles.serve_connectors)}


def execute_run(args: RunArgs) -> int:
    """Run the daemon (or one reconcile with --once); the exit code."""

    from reconciler.border0.session import open_api
    from reconciler.cli.notify import make_reporter
    from reconciler.cli.run_roles import RoleArgs, check, prepare
    from reconciler.daemon.build import build_daemon
    from reconciler.daemon.config import DaemonConfig
    from reconciler.daemon.logs import setup_logging
    from reconciler.daemon.windows import load_windows
    from reconciler.manifests.files import environment
    from reconciler.serving import ListenError

    roles_args = args.roles or RoleArgs()
    check(roles_args, once=args.once, dry_run=args.dry_run)
    if args.detailed_exitcode and not args.once:
        raise UserError("--detailed-exitcode needs --once (a daemon does not exit with a plan)")
    windows = load_windows(args.sync_windows) if args.sync_windows else ()

    if args.interval <= 0:
        raise UserError("--interval must be more than 0")
    try:
        jitter = parse_jitter(args.jitter, args.interval)
        env = environment(args.env_file) if args.env_file else None
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from None
    redactor = setup_logging(args.log_format, args.log_level)
    config = DaemonConfig(
        path=args.path,
        instance=args.instance,
        interval=args.interval,
        jitter=jitter,
        full_refresh_interval=args.full_refresh_interval,
        debounce=args.debounce,
        listen=args.listen or None,
        history=args.history,
        dry_run=args.dry_run,
        max_delete=args.max_delete,
        allow_mass_delete=args.allow_mass_delete,
        allow_replace=args.allow_replace,
        labels_authoritative=args.labels == "authoritative",
        parallelism=args.parallelism,
        env=env,
        stop_timeout=args.connector_stop_timeout,
        role="agent" if roles_args.connectors_only else "leader",
        delete_grace=args.delete_grace,
        fail_threshold=args.fail_threshold,
        state_dir=str(_state_path(args).parent),
        secret_roots=tuple(args.secret_roots) or None,
        own_files=_own_files(args),
        unready_on_invalid=args.unready_on_invalid,
        sync_windows=windows,
        manage_policies=not args.no_policies,
        **_connector_start(roles_args),
    )
    roles = prepare(roles_args)
    redactor.add_secrets(roles.secrets)
    # before the API: a bad --notify is a usage error
    reporter = make_reporter(args.notify, args.notify_format, args.notify_after_failures,
                             args.instance, redactor)
    with open_api(args.api, args.token_file, args.state, env=env, near=[args.path]) as client:
        if client.token:
            redactor.add_secrets([client.token.value])
        if config.connector_start is not None:  # the connectors talk to the API we talk to
            config = dataclasses.replace(config, connector_env={"BORDER0_API": client.base_url})
        supervisor = None
        if not args.dry_run and not args.once and not roles_args.no_connectors:
            supervisor = _make_supervisor(args, client, redactor)
        daemon = build_daemon(config, client, redactor=redactor, supervisor=supervisor,
                              reporter=reporter, routes=roles.routes,
                              reconcile_fn=roles.reconcile_fn, lease=roles.lease,
                              signals=not args.once)
        if args.once:
            return daemon.run_once(args.detailed_exitcode)
        try:
            return daemon.run()
        except ListenError as exc:
            raise UserError(str(exc)) from None


# --- status ---------------------------------------------------------------------------------

COLUMNS = (
    "NAME", "SOCKET ID", "DNS NAME", "PORT(S)", "TYPE", "DESCRIPTION", "STATE", "CONNECTOR",
)
#: Cut first to fit 120 columns: (column, minimum width).
SHRINK = (("DESCRIPTION", 11), ("SOCKET ID", 9), ("DNS NAME", 16), ("NAME", 12))


def _row(socket: dict[str, Any]) -> list[str]:
    return [
        socket.get("name") or "-",
        socket.get("socket_id") or "-",
        socket.get("dns_name") or "-",
        ", ".join(str(p) for p in socket.get("ports") or []) or "-",
        socket.get("type") or "-",
        socket.get("description") or "",
        socket.get("state") or "-",
        socket.get("connector") or "-",
    ]


def _head(status: dict[str, Any], *, wide: bool) -> list[str]:
    last = status.get("last_reconcile") or {}
    head = [
        # the path last: a long one is cut, never the readiness, dry run or role before it
        f"instance {status.get('instance')}  ready {'yes' if status.get('ready') else 'no'}"
        + ("  (dry run)" if status.get("dry_run") else "")
        + (f"  role {status['role']}" if status.get("role", "leader") != "leader" else "")
        + f"  path {status.get('path')}",
        (
            f"last reconcile {last.get('result') or '-'}  at {last.get('time') or '-'}  "
            f"revision {last.get('revision') or '-'}  trigger {last.get('trigger') or '-'}"
        ),
    ]
    windows = status.get("sync_windows")
    if windows:
        head.append("sync windows: " + ("applying" if windows.get("may_apply_now") else
                                        f"not applying: {windows.get('reason')}"))
    if not wide:  # a long path or trigger is cut like a table cell
        head = [line if len(line) <= WIDTH else line[: WIDTH - 1] + ELLIPSIS for line in head]
    return head


def _errors(status: dict[str, Any]) -> list[str]:
    errors = [f"error: {e}" for e in status.get("errors") or []]
    return [""] + errors if errors else []


def format_status_table(status: dict[str, Any], *, wide: bool = False,
                        markdown: bool = False) -> str:
    """/status as `border0 socket ls` draws it, plus NAME, STATE and CONNECTOR, and a summary;
    fitted to 120 columns unless `wide` (or `markdown`)."""
    rows = [_row(s) for s in status.get("sockets") or []]
    table = render_table(COLUMNS, rows, width=None if wide else WIDTH, shrink=SHRINK,
                         snap=("SOCKET ID",), markdown=markdown)
    return "\n".join(_head(status, wide=wide) + ["", table.rstrip("\n")] + _errors(status)) + "\n"


HISTORY_COLUMNS = (
    "TIME",
    "TRIGGER",
    "REVISION",
    "RESULT",
    "DURATION",
    "CHANGES",
    "DRIFT CORRECTED",
)

#: Changes named per history row; the rest are counted (`--format json` has them all).
HISTORY_NAMED = 3


def _named(changes: list[dict[str, Any]], omitted: int = 0) -> str:
    """'update socket web, create policy ops (failed) and 4 more'; '-' for none."""
    names = [
        (c.get("title") or f"{c.get('action')} {c.get('kind')} {c.get('name')}")
        + (" (failed)" if c.get("ok") is False else "")
        for c in changes[:HISTORY_NAMED]
    ]
    more = max(len(changes) - HISTORY_NAMED, 0) + omitted
    return (", ".join(names) or "-") + (f" and {more} more" if more else "")


def _history_row(entry: dict[str, Any]) -> list[str]:
    changes = _named(entry.get("changes") or [], entry.get("changes_omitted") or 0)
    return [
        entry.get("time") or "-",
        entry.get("trigger") or "-",
        (entry.get("revision") or "-")[:12],
        entry.get("result") or "-",
        f"{entry.get('duration_seconds', 0):.3f}s",
        changes,
        _named(entry.get("drift_corrected") or []),
    ]


def format_history_table(status: dict[str, Any], *, wide: bool = False,
                         markdown: bool = False) -> str:
    """The daemon's last reconciles, newest first: when, why, what changed, what drift it
    corrected; the error of each one that failed under it."""
    rows: list[list[str]] = []
    failures: list[str] = []
    for entry in status.get("history") or []:
        rows.append(_history_row(entry))
        if entry.get("error"):
            failures.append(f"{entry.get('time')}: {entry.get('result')}: {entry['error']}")
    table = render_table(HISTORY_COLUMNS, rows, width=None,  # names are the point: never cut
                         markdown=markdown)
    tail = [""] + failures if failures else []
    return "\n".join(_head(status, wide=wide) + ["", table.rstrip("\n")] + tail) + "\n"


def execute_status(
    listen: str, fmt: str, out: TextIO, *, wide: bool = False, history: bool = False
) -> int:
    import httpx

    from reconciler.render.output import MACHINE_FORMATS, structured
    from reconciler.serving import parse_listen

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/status"
    try:
        response = httpx.get(url, timeout=10.0)
        response.raise_for_status()
        status = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise UserError(f"cannot read the daemon's status at {url}: {exc}") from None
    from reconciler.daemon.status import status_problems

    problems = status_problems(status)
    if problems:
        raise UserError(f"{url} is not a border0-reconciler status document "
                        f"(schemas/status.schema.json): {problems[0]}")
    if fmt in MACHINE_FORMATS:
        out.write(structured(status.get("history") or [] if history else status, fmt))
    else:
        table = format_history_table if history else format_status_table
        out.write(table(status, wide=wide, markdown=fmt == "markdown"))
    return 0
