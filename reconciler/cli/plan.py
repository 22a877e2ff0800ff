"""`plan PATH...`: what apply would change. Parse, then `planning.run_plan` (the pipeline's
`prepare`, the renderers, the exit code). The options `apply` shares with it live here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from reconciler.cli.options import (
    allow_mass_delete_option,
    allow_replace_option,
    api_options,
    color_options,
    detailed_exitcode_option,
    env_file_option,
    friendly_errors,
    given_options,
    instance_option,
    labels_option,
    max_delete_option,
    no_policies_option,
    output_option,
    refresh_option,
    secret_root_option,
)
from reconciler.render import RENDERERS

__all__ = ["paths_argument", "plan_command", "plan_options"]

#: PATH...: manifest files or folders, `-` for stdin.
paths_argument = click.argument("paths", nargs=-1, required=True,
                                type=click.Path(exists=True, allow_dash=True))


def plan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by plan and apply."""
    options = [
        instance_option("Ownership instance id: several config repos can share one org."),
        env_file_option("KEY=VALUE lines over the environment, for secret references."),
        output_option(RENDERERS, what="the plan"),
        color_options,
        click.option("--render-to", type=click.Path(dir_okay=False), default=None,
                     metavar="FILE", help="Also write the rendering (in --output) to FILE; "
                     "the terminal then gets text."),
        click.option("--out", type=click.Path(dir_okay=False), default=None, metavar="PLANFILE",
                     help="Save the plan (no secret values) to PLANFILE for `apply PLANFILE` / "
                     "`show PLANFILE`, as terraform plan -out (not with PATH -, nor on apply "
                     "PLANFILE)."),
        max_delete_option("Refuse plans deleting more objects [default: half of ours, >= 1]."),
        allow_mass_delete_option("Allow a plan past the mass-delete guard."),
        click.option("--confirm-delete", multiple=True, metavar="NAME",
                     help="Confirm the deletion of NAME, annotated border0-reconciler/"
                     "confirm-delete (repeatable); without it, its deletion waits."),
        click.option("--deny-access-gain", is_flag=True,
                     help="Fail (exit 1, listing them) when anyone gains or widens access."),
        allow_replace_option,
        click.option("--allow-clear-credentials", is_flag=True,
                     help="Allow a write that clears upstream credentials the manifests leave "
                     "out and border0 does not answer (the plan shows (set) → (cleared))."),
        labels_option,
        no_policies_option,
        secret_root_option,
        refresh_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("plan")
@paths_argument
@api_options
@plan_options
@detailed_exitcode_option("Exit 2 when the plan has changes (0 none, 1 error).")
@click.option("--save", type=click.Path(dir_okay=False), default=None, hidden=True,
              help="Deprecated spelling of --out.")
@friendly_errors
def plan_command(paths: tuple[str, ...], **kwargs: Any) -> None:
    """Show what apply would change in border0 to match the manifests under PATHS."""
    from reconciler.cli.planning import PlanArgs, run_plan

    raise SystemExit(run_plan(PlanArgs(paths=paths, given=given_options(kwargs), **kwargs)))
