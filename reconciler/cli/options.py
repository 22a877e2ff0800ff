"""What every command shares: exit codes, the one-line error handler, and every option that more
than one command takes, each declared here once (its flag, type and default). Where a flag means
something narrower in one command, that command passes its own help text, nothing else. Command
modules import these; nothing here imports them.

Only click and small modules are imported at the top: `border0-reconciler --help` loads every
command module (for its one-line help), and so this one."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from typing import Any

import click

from reconciler.border0.errors import Border0Error
from reconciler.errors import UserError
from reconciler.settings import DEFAULTS, FRACTION, SECONDS, help_of, unit_of

__all__ = [
    "DAEMON_LISTEN", "ENV_PREFIX", "EXIT_CHANGES", "EXIT_ERROR", "EXIT_OK", "AliasOption",
    "DurationType", "allow_mass_delete_option", "allow_replace_option", "api_options",
    "color_options", "detailed_exitcode_option", "document_written", "dry_run_option",
    "env_file_option", "environment_names", "fail", "flag_text", "friendly_errors",
    "given_options", "instance_option", "labels_option",
    "list_format_option", "listen_option", "max_delete_option", "no_policies_option",
    "output_option", "parallelism_option", "refresh_option", "secret_root_option",
    "setting_option", "state_option", "verbose_option", "wide_option",
]

#: Every flag is also read from BORDER0_RECONCILER_<FLAG> (click's auto_envvar_prefix).
ENV_PREFIX = "BORDER0_RECONCILER"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

#: What click.option(...) returns: it decorates a command function.
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def fail(message: str, code: int = EXIT_ERROR) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


#: `click.Context.meta` key: the command has printed its document on stdout already.
_DOCUMENT_WRITTEN = "border0_reconciler.document_written"


def document_written() -> None:
    """Say that stdout holds the command's document (a plan refused after it was shown): a
    failure after this prints no error document, so stdout stays one document."""
    click.get_current_context().meta[_DOCUMENT_WRITTEN] = True


def _machine_failure(fmt: object, exc: BaseException) -> None:
    """In a machine format (`-o json|yaml`) stdout still parses when the command fails: it
    holds the error and the diagnostics behind it (a `diagnostics` attribute on the error),
    unless it holds the command's own document already (`document_written`)."""
    from reconciler.render.output import MACHINE_FORMATS, error_document, structured

    if fmt not in MACHINE_FORMATS:
        return
    context = click.get_current_context(silent=True)
    if context is not None and context.meta.get(_DOCUMENT_WRITTEN):
        return
    diagnostics = [d.to_json() for d in getattr(exc, "diagnostics", None) or ()]
    click.echo(structured(error_document(str(exc), diagnostics), str(fmt)), nl=False)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every exception into one line on stderr and exit code 1 (no traceback); with
    `-o json` or `-o yaml` also an error document on stdout.

    Set BORDER0_RECONCILER_DEBUG=1 to see the traceback of an unexpected error.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (SystemExit, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.ClickException:
            raise
        except (UserError, Border0Error) as exc:
            _machine_failure(kwargs.get("fmt"), exc)
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get("BORDER0_RECONCILER_DEBUG"):
                raise
            _machine_failure(kwargs.get("fmt"), RuntimeError(
                f"internal error ({type(exc).__name__})"))
            fail(
                f"internal error ({type(exc).__name__}); "
                "set BORDER0_RECONCILER_DEBUG=1 to see the traceback"
            )

    return wrapper


def given_options(names: Iterable[str]) -> frozenset[str]:
    """Which of the current command's `names` were given (on the command line or in the
    environment), not left to their defaults."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return frozenset(n for n in names if ctx.get_parameter_source(n) in given)


def state_option(help: str, dest: str = "state") -> Decorator:
    """`--state FILE` (old spelling `--db`, hidden): the emulator's SQLite file."""
    return click.option("--state", "--db", dest, cls=AliasOption, hidden_aliases=("--db",),
                        type=click.Path(dir_okay=False), default=None, help=help)


def api_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that talks to border0."""
    func = click.option(
        "--api",
        envvar="BORDER0_API",
        default=None,
        help="border0 API base URL, or 'local' for the embedded emulator "
        "[env BORDER0_API; default https://api.border0.com/api/v1].",
    )(func)
    func = click.option(
        "--token-file",
        type=click.Path(dir_okay=False),
        default=None,
        help="File holding the border0 token [else env BORDER0_ADMIN_TOKEN, BORDER0_TOKEN, "
        "BORDER0_AUTH_TOKEN].",
    )(func)
    return state_option("SQLite file of the embedded emulator with --api local "
                        "[default .border0-reconciler/local.db].")(func)



def instance_option(
    help: str = "Ownership instance: MANAGED says this, other (its id) or unmanaged.",
) -> Decorator:
    """`--instance ID`: whose objects are ours (the ownership tag), checked here once by
    `ownership.Instance`, so the commands get a valid one and check nothing themselves."""
    from reconciler.ownership import DEFAULT_INSTANCE

    return click.option("--instance", default=DEFAULT_INSTANCE, show_default=True, help=help,
                        callback=_instance)


def _instance(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """`ownership.Instance` holds the rule; a bad one is the usual one-line error, exit 1.
    The valid name goes on as a plain str: YAML's safe dumper (`-o yaml`) refuses str
    subclasses."""
    from reconciler.ownership import Instance, InvalidInstance

    try:
        return str(Instance(value))
    except InvalidInstance as exc:
        fail(str(exc))
        raise  # not reached: fail() exits


def env_file_option(help: str, *, must_exist: bool = False) -> Decorator:
    """`--env-file FILE`: KEY=VALUE lines over the environment (`manifests.files.environment`).
    `must_exist`: checked when the flags are read (`run`), not when the file is."""
    return click.option("--env-file", type=click.Path(dir_okay=False, exists=must_exist),
                        default=None, help=help)


def wide_option(help: str = "Do not cut cells to fit 120 columns.") -> Decorator:
    return click.option("--wide", is_flag=True, help=help)


#: Where a daemon serves its dashboard and /status, and where `status` asks.
DAEMON_LISTEN = DEFAULTS.listen


def flag_text(name: str) -> Any:
    """A setting's default as its flag takes it: `5m` for 300 s, `10%` for a 0.1 jitter."""
    from reconciler.durations import format_duration

    value = getattr(DEFAULTS, name)
    unit = unit_of(name)
    if unit == SECONDS:
        return format_duration(value)
    if unit == FRACTION:
        return f"{value * 100:g}%"
    return value


def setting_option(*decls: str, name: str, **kwargs: Any) -> Decorator:
    """An option whose default (and help, unless given) is `reconciler.settings`' `name`,
    shown in `--help`: the flag states no default of its own."""
    kwargs.setdefault("help", help_of(name) or None)
    return click.option(*decls, name, default=flag_text(name), show_default=True, **kwargs)


def listen_option(help: str, default: str = DAEMON_LISTEN) -> Decorator:
    """`--listen HOST:PORT` (`serving.parse_listen` reads it)."""
    return click.option("--listen", default=default, show_default=True, help=help)


def max_delete_option(help: str) -> Decorator:
    """`--max-delete N`: the mass-delete guard's bound [default: the planner's]."""
    return click.option("--max-delete", type=click.IntRange(min=0), default=None, help=help)


def allow_mass_delete_option(help: str) -> Decorator:
    return click.option("--allow-mass-delete", is_flag=True, help=help)


ALLOW_REPLACE_HELP = (
    "Let a change border0 cannot make in place replace the object (new id and TCP port; "
    "sessions and recordings stay with the old id; connections drop); else apply refuses it "
    "[per object: annotation border0-reconciler/allow-replace].")
LABELS_HELP = (
    "merge: manage only the tag keys the manifests declare, keep tags set elsewhere; "
    "authoritative: a socket's tags are exactly its labels [per socket: annotation "
    "border0-reconciler/labels].")

allow_replace_option = click.option("--allow-replace", is_flag=True, help=ALLOW_REPLACE_HELP)
labels_option = setting_option("--labels", name="labels",
                               type=click.Choice(["merge", "authoritative"]), help=LABELS_HELP)


def dry_run_option(help: str) -> Decorator:
    return click.option("--dry-run", is_flag=True, help=help)


def detailed_exitcode_option(help: str) -> Decorator:
    """`--detailed-exitcode`: exit EXIT_CHANGES (2) when there are changes, as Terraform's."""
    return click.option("--detailed-exitcode", is_flag=True, help=help)


def parallelism_option(help: str, *, most: int | None = None) -> Decorator:
    """`--parallelism N`: API writes in flight at once (`apply.apply_plan`)."""
    return setting_option("--parallelism", name="parallelism", type=click.IntRange(1, most),
                          help=help)


#: `--refresh fast|full`: whether a plan trusts each socket's border0-reconciler/details tag
#: (ReconcileOptions.full_refresh; docs/performance.md).
refresh_option = setting_option(
    "--refresh", name="refresh", type=click.Choice(["fast", "full"]),
    help="fast: a socket whose details tag matches its manifest is compared as last written, "
    "without reading its links and typed upstream; full: read them for every declared socket "
    "(finds portal edits that left the tag alone; two requests per socket).")


def verbose_option(help: str) -> Decorator:
    return click.option("-v", "--verbose", is_flag=True, help=help)


class AliasOption(click.Option):
    """An option with old spellings that still work but are left out of `--help`
    (`--format` for `-o/--output`, `--db` for `--state`)."""

    def __init__(self, *args: Any, hidden_aliases: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_aliases = hidden_aliases

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        opts = self.opts
        self.opts = [o for o in opts if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = opts


_FORMAT_ALIASES = {"table": "text"}


class OutputChoice(click.Choice):
    """A format name; `table` (status's old name for text) is still accepted."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return super().convert(_FORMAT_ALIASES.get(value, value), param, ctx)


def output_option(formats: Any = None, *, what: str = "the output") -> Callable[..., Any]:
    """`-o/--output` (old spelling `--format`, hidden), its choices from a renderer registry."""
    from reconciler.render.output import OUTPUT_FORMATS

    return click.option(
        "-o", "--output", "--format", "fmt", cls=AliasOption, hidden_aliases=("--format",),
        type=OutputChoice(list(formats or OUTPUT_FORMATS)), default="text", show_default=True,
        help=f"How to print {what}: json and yaml print data only (errors too, as a document "
        "with the diagnostics), for tools.")


list_format_option = output_option(what="the rows")


class DurationType(click.ParamType):
    """A duration in Go's syntax (`1m30s`, `500ms`, `2h`), from a flag or its environment
    variable, as seconds."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        from reconciler.durations import parse_duration

        if isinstance(value, float):
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _set_color(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from reconciler.cli.terminal import set_color_mode

    set_color_mode(value or "auto")


def color_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--color auto|always|never` and `--no-color` (= never); NO_COLOR, FORCE_COLOR apply."""
    func = click.option("--no-color", is_flag=True,
                        help="No colour even on a terminal (as --color never, NO_COLOR).")(func)
    return click.option(
        "--color", type=click.Choice(["auto", "always", "never"]), default="auto",
        show_default=True, expose_value=False, callback=_set_color, is_eager=True,
        help="auto: on a terminal unless NO_COLOR is set (FORCE_COLOR: also off one).")(func)


def environment_names(command: click.Command) -> None:
    """Every option of `command` is settable as BORDER0_RECONCILER_<FLAG> and says so in
    `--help`. click's auto_envvar_prefix names a variable after the parameter; where that is
    not the flag (`fmt` for `--output`), the flag's name is set as the variable."""
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in (None, "help", "version"):
            continue
        if param.hidden or not param.expose_value and param.name != "color":
            continue
        longs = [o for o in param.opts if o.startswith("--")]
        if not longs or not param.allow_from_autoenv:  # its own variable only, if any
            param.show_envvar = bool(param.envvar)
            continue
        name = f"{ENV_PREFIX}_{longs[0][2:].upper().replace('-', '_')}"
        auto = f"{ENV_PREFIX}_{param.name.upper()}"
        if param.envvar:  # its own variable first (BORDER0_API), then ours
            own = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar)
            param.envvar = list(dict.fromkeys([*own, name]))
        elif name != auto:
            param.envvar = name
        param.show_envvar = True

#: `{file: PATH}` secrets are read only under these folders (and the manifests' own).
secret_root_option = click.option(
    "--secret-root", "secret_roots", multiple=True, type=click.Path(file_okay=False),
    envvar="BORDER0_SECRET_ROOTS", help="Folder secret files may be read from, repeatable "
    "[env BORDER0_SECRET_ROOTS; default /var/run/secrets, /run/secrets, /etc/secrets; "
    "the manifests' folder always].")

#: Organizations whose access is granted elsewhere (Tailscale PAM: border0's docs say to manage
#: only connectors and sockets there) turn policy management off.
no_policies_option = click.option(
    "--no-policies", "no_policies", is_flag=True, envvar="BORDER0_RECONCILER_NO_POLICIES",
    help="Do not manage border0 policies: no request reads or writes /policies or /policy; "
    "kind: Policy manifests and spec.policies are ignored [env BORDER0_RECONCILER_NO_POLICIES].")
