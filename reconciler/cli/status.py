"""`status`: ask a running daemon for /status and print it. Parse, then `run.execute_status`,
then its exit code."""

from __future__ import annotations

import sys

import click

from reconciler.cli.options import (
    ENV_PREFIX,
    friendly_errors,
    listen_option,
    output_option,
    wide_option,
)

__all__ = ["status_cmd"]


@click.command("status")
@listen_option("HOST:PORT the daemon serves /status on.")
@output_option(what="the status (text: a table, as `border0 socket ls`)")
@wide_option("Do not cut long cells to fit 120 columns.")
@click.option("--history", is_flag=True, envvar=f"{ENV_PREFIX}_STATUS_HISTORY",
              allow_from_autoenv=False,  # BORDER0_RECONCILER_HISTORY is run's --history N
              help="Show the last reconciles (time, trigger, result, changes, drift corrected).")
@friendly_errors
def status_cmd(listen: str, fmt: str, wide: bool, history: bool) -> None:
    """Show what a running daemon reports: each socket, its state and its connector."""
    from reconciler.cli.run import execute_status

    raise SystemExit(execute_status(listen, fmt, sys.stdout, wide=wide, history=history))
