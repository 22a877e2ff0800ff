"""The command line. Thin on purpose: each command is one module of this package that parses
its flags, makes one call and returns an exit code; this module only names them.

Only the command that runs is imported (click's "LazyGroup" pattern): `validate` never loads
httpx, and `--help` loads no more than click and the command modules' own flags (each command
module imports its heavy parts inside the command). tests/cli/test_lazy_imports.py holds the line.

Exit codes are a contract (as Terraform's): 0 success, 1 error, 2 changes present (only
`plan --detailed-exitcode`). A user's mistake ends as one `error: ...` line, never a traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

from reconciler import __version__
from reconciler.cli.options import ENV_PREFIX, EXIT_ERROR, EXIT_OK, environment_names

__all__ = ["COMMANDS", "LazyGroup", "cli", "main", "program"]

#: Every command: its name and where it lives ("module:attribute"). A new command is one module
#: and one line here.
COMMANDS: Mapping[str, str] = {
    "validate": "reconciler.cli.validate:validate",
    "plan": "reconciler.cli.plan:plan_command",
    "apply": "reconciler.cli.apply:apply_command",
    "show": "reconciler.cli.show:show_command",
    "import": "reconciler.cli.importer:import_command",
    "migrate": "reconciler.cli.migrate:migrate_command",
    "ls": "reconciler.cli.ls:ls_command",
    "policies": "reconciler.cli.ls:policies_command",
    "run": "reconciler.cli.run_command:run_cmd",
    "status": "reconciler.cli.status:status_cmd",
    "emulator": "reconciler.cli.emulator:emulator_command",
    "local-connector": "reconciler.cli.local_connector:local_connector_cmd",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is asked for (click's
    documented "LazyGroup"). Each command loaded also gets the CLI's conventions:
    BORDER0_RECONCILER_<FLAG> for every flag, listed in its --help (`environment_names`)."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)  # type: ignore[arg-type]

    def _load(self, name: str) -> click.Command:
        module, _, attribute = self.lazy_commands[name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[name]} is not a click command")
        # BORDER0_RECONCILER_<FLAG>, not click's default BORDER0_RECONCILER_<COMMAND>_<FLAG>:
        # one variable per flag, whatever the command
        command.context_settings.setdefault("auto_envvar_prefix", ENV_PREFIX)
        environment_names(command)
        return command


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100,
                               "auto_envvar_prefix": ENV_PREFIX})
@click.version_option(__version__, prog_name="border0-reconciler")
def cli() -> None:
    """border0 sockets and policies as code: validate, plan, apply, and keep them running."""


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


def program() -> None:
    """The program's entry (the console script, `python -m reconciler`): `main`, then, after a
    command that built bulk data, out at once (`bulk.exit_now`)."""
    from reconciler.cli import bulk

    bulk.keep_until_exit()
    try:
        main()
    except SystemExit as exc:
        bulk.exit_now(exc.code)
        raise


if __name__ == "__main__":  # pragma: no cover
    program()
