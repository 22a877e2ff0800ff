"""`show FILE|NAME`: a saved plan, offline (`planning.run_show_plan`), or one socket as border0
holds it (`ls.show`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler.cli.options import (
    api_options,
    color_options,
    friendly_errors,
    instance_option,
    output_option,
    wide_option,
)
from reconciler.render import RENDERERS

__all__ = ["looks_like_file", "show_command"]


@click.command("show")
@click.argument("target", metavar="FILE|NAME")
@api_options
@output_option(RENDERERS, what="the plan or the socket")
@color_options
@instance_option()
@wide_option()
@friendly_errors
def show_command(target: str, fmt: str, no_color: bool, **api: Any) -> None:
    """Show a plan saved with `plan --out FILE` (offline), or the socket NAME."""
    if looks_like_file(target):
        from reconciler.cli.planning import run_show_plan

        raise SystemExit(run_show_plan(target, fmt, no_color))
    from reconciler.cli.ls import show

    raise SystemExit(show(target, fmt=fmt, echo=click.echo, **api))


def looks_like_file(target: str) -> bool:
    """`show TARGET`: a path (exists, or has '/' or '.'), not a socket name (a DNS label)."""
    return Path(target).exists() or "/" in target or "." in target
