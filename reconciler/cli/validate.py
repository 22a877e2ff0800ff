"""`validate PATH...`: check manifests offline. Parse, load (`manifests.loader.load`), report
(`render.validation.REPORTERS`), exit 0 or 1."""

from __future__ import annotations

import sys

import click

from reconciler.cli.options import (
    EXIT_ERROR,
    EXIT_OK,
    color_options,
    env_file_option,
    friendly_errors,
    output_option,
    secret_root_option,
    verbose_option,
)
from reconciler.render.validation import REPORTERS

__all__ = ["validate"]


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True),
                metavar="PATH...")
@click.option("--strict", is_flag=True, help="Treat plaintext secrets as errors, not warnings.")
@output_option(REPORTERS, what="the problems (text: file:line:column lines and a summary; "
               "json, yaml: a list of problems; markdown: a table)")
@env_file_option("Also resolve secret references, with KEY=VALUE lines from this file over the "
                 "environment; a missing variable or file is an error.")
@color_options
@secret_root_option
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Leave out files and folders "
              "matching PATTERN (repeatable), as .gitignore reads it: `templates`, `charts/*`.")
@click.option("--only-manifests", is_flag=True, help="Skip, unread, YAML files with no "
              "`apiVersion: border0-reconciler/...` line (Helm charts, CI files).")
@verbose_option("Also note each file skipped, on stderr.")
@friendly_errors
def validate(paths: tuple[str, ...], strict: bool, fmt: str, env_file: str | None,
             no_color: bool, secret_roots: tuple[str, ...], exclude: tuple[str, ...],
             only_manifests: bool, verbose: bool) -> None:
    """Check manifests (files or folders, read recursively) without contacting border0.

    Exit 0 when all are valid, 1 when any has an error. Every problem is listed.
    """
    from reconciler.cli.bulk import bulk_gc, keep
    from reconciler.cli.terminal import color_enabled
    from reconciler.manifests.files import environment
    from reconciler.manifests.loader import load

    env = environment(env_file) if env_file is not None else None
    with bulk_gc():
        result = load(paths, env=env, resolve_secrets=env is not None, strict=strict,
                      secret_roots=secret_roots or None, exclude=exclude,
                      only_manifests=only_manifests)
    keep(result)
    if verbose:
        for file, why in result.skipped_files:
            click.echo(f"note: skipped {file}: {why}", err=True)
    color = fmt == "text" and color_enabled(sys.stdout, no_color)
    click.echo(REPORTERS[fmt](result, color=color), color=color)
    raise SystemExit(EXIT_OK if result.ok else EXIT_ERROR)
