"""Options several commands share (click decorators), so each is defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["api_options", "plan_options", "secret_root_option"]


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
        help="File holding the border0 token [else env BORDER0_ADMIN_TOKEN, then BORDER0_TOKEN].",
    )(func)
    func = click.option(
        "--state",
        type=click.Path(dir_okay=False),
        default=None,
        help="SQLite file of the embedded emulator with --api local "
        "[default .border0-reconciler/local.db].",
    )(func)
    return func


#: `{file: PATH}` secrets are read only under these folders (and the manifests' own).
secret_root_option = click.option(
    "--secret-root", "secret_roots", multiple=True, type=click.Path(file_okay=False),
    envvar="BORDER0_SECRET_ROOTS", help="Folder secret files may be read from, repeatable "
    "[env BORDER0_SECRET_ROOTS; default /var/run/secrets, /run/secrets, /etc/secrets; "
    "the manifests' folder always].")


def plan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by plan and apply."""
    options = [
        click.option("--instance", default="default", show_default=True,
                     help="Ownership instance id: several config repos can share one org."),
        click.option("--env-file", type=click.Path(dir_okay=False), default=None,
                     help="KEY=VALUE lines over the environment, for secret references."),
        click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
                     default="text", show_default=True, help="How to show the plan."),
        click.option("--out", type=click.Path(dir_okay=False), default=None,
                     help="Also write the rendering to FILE (the terminal gets text)."),
        click.option("--no-color", is_flag=True, help="No colour even on a terminal."),
        click.option("--max-delete", type=click.IntRange(min=0), default=None,
                     help="Refuse plans deleting more objects [default: half of ours, >= 1]."),
        click.option("--allow-mass-delete", is_flag=True,
                     help="Allow a plan past the mass-delete guard."),
        secret_root_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func
