"""`apply PATH...|PLANFILE`: make border0 match. Parse, then `planning.run_apply` (prepare, show,
confirm, `reconcile.carry_out`, the summary), then its exit code."""

from __future__ import annotations

from typing import Any

import click

from reconciler.cli.options import (
    api_options,
    dry_run_option,
    friendly_errors,
    given_options,
    parallelism_option,
    verbose_option,
)
from reconciler.cli.plan import paths_argument, plan_options

__all__ = ["apply_command"]


@click.command("apply")
@paths_argument
@api_options
@plan_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@dry_run_option("Show the plan and stop.")
@parallelism_option("Independent API writes at a time.")
@verbose_option("One line per object done (else a progress bar, or a count line every 10%).")
@friendly_errors
def apply_command(paths: tuple[str, ...], **kwargs: Any) -> None:
    """Make border0 match the manifests under PATHS, or apply a plan saved with plan --out."""
    from reconciler.cli.planning import PlanArgs, run_apply

    raise SystemExit(run_apply(PlanArgs(paths=paths, given=given_options(kwargs), **kwargs)))
