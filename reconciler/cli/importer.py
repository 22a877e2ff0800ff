"""`import DIR`: write manifests for the sockets and policies border0 holds, so a repository
can adopt them. The documents come from `render.manifests`; this module writes them (all or
none: an existing file stops it unless --force) and lists the secrets to fill in."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.options import api_options, friendly_errors
from reconciler.errors import UserError

if TYPE_CHECKING:
    from reconciler.render.manifests import ImportPlan

__all__ = ["ENV_EXAMPLE", "import_command", "run_import", "write_import"]

ENV_EXAMPLE = ".env.example"


def write_import(directory: Path, plan: ImportPlan, *, force: bool = False) -> list[Path]:
    """Write the documents (all or none) and add new secret names to `.env.example`."""
    from reconciler.render.manifests import to_yaml  # yaml and the model: loaded on use

    targets = {rel: directory / rel for rel in plan.documents}
    existing = sorted(str(p) for p in targets.values() if p.exists())
    if existing and not force:
        more = f" (and {len(existing) - 3} more)" if len(existing) > 3 else ""
        raise UserError(
            f"not overwriting existing {', '.join(existing[:3])}{more}; nothing was written "
            "(pass --force to replace them)"
        )
    written = []
    try:
        for rel, path in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(to_yaml(plan.documents[rel]), encoding="utf-8")
            written.append(path)
        if plan.env_names:
            _merge_env_example(directory / ENV_EXAMPLE, plan.env_names, directory)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename or directory}: {exc.strerror}") from None
    return written


def _merge_env_example(path: Path, names: Iterable[str], directory: Path) -> None:
    """Add the names not listed yet; lines already there are kept as they are."""
    text = path.read_text(encoding="utf-8") if path.exists() else (
        "# Secrets border0 does not give back. Copy this file outside git, fill in each value,\n"
        f"# then: border0-reconciler plan {directory} --env-file FILE\n"
    )
    listed = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    new = [n for n in dict.fromkeys(names) if n not in listed]
    if new:
        text = (text if text.endswith("\n") else text + "\n") + "".join(f"{n}=\n" for n in new)
        path.write_text(text, encoding="utf-8")


@click.command("import")
@click.argument("directory", type=click.Path(file_okay=False))
@api_options
@click.option("--select", multiple=True, metavar="GLOB",
              help="Import only sockets and policies whose name matches (repeatable).")
@click.option("--instance", default="default", show_default=True,
              help="Ownership instance: its objects are written as they are, unmanaged ones "
              "get the adopt annotation, other instances' are skipped.")
@click.option("--force", is_flag=True, help="Replace manifest files that exist already.")
@friendly_errors
def import_command(directory: str, api: str | None, token_file: str | None, state: str | None,
                   select: tuple[str, ...], instance: str, force: bool) -> None:
    """Write manifests under DIRECTORY for the sockets and policies border0 holds."""
    from reconciler.border0.inventory import fetch_actual, fetch_details
    from reconciler.border0.session import open_api
    from reconciler.model import Desired
    from reconciler.plan.planner import check_instance

    if check_instance(instance):
        raise UserError(check_instance(instance))
    with open_api(api, token_file, state) as client:
        actual = fetch_details(client, Desired(), fetch_actual(client), every_socket=True)
    raise SystemExit(run_import(Path(directory), actual, instance, select, force, click.echo))


def run_import(root: Path, actual: Any, instance: str, select: Sequence[str], force: bool,
               echo: Callable[[str], None]) -> int:
    """Write the manifests, then say what happened; 0 (a refusal raises `UserError`)."""
    from reconciler.render.manifests import plan_import

    plan = plan_import(actual, instance, select)
    if plan.documents:
        write_import(root, plan, force=force)  # refuses (and writes nothing) before any output
    for line in plan.skipped:
        echo(f"skipped {line}")
    if not plan.documents:
        echo("Nothing to import" + (" (no name matches --select)" if select else "") + ".")
        return 0
    for rel in plan.documents:
        echo(f"wrote {root / rel}" + (" (adopt)" if rel in plan.adopted else ""))
    sockets = sum(1 for d in plan.documents.values() if d["kind"] == "Socket")
    connectors = sum(1 for d in plan.documents.values() if d["kind"] == "Connector")
    policies = len(plan.documents) - sockets - connectors
    also = (f", {connectors} connector{'s' if connectors != 1 else ''} (declare their tokens: "
            "tokens are never imported)" if connectors else "")
    echo(
        f"Imported {sockets} socket{'s' if sockets != 1 else ''} and "
        f"{policies} polic{'ies' if policies != 1 else 'y'}{also}"
        f" into {root} ({len(plan.adopted)} to adopt, {len(plan.skipped)} skipped)."
    )
    if plan.unselected_own:
        echo(
            f"note: --select leaves out {len(plan.unselected_own)} object(s) instance {instance} "
            f"manages ({', '.join(plan.unselected_own[:5])}"
            f"{', ...' if len(plan.unselected_own) > 5 else ''}): applying {root} alone "
            "would delete them unless their manifests are in the same PATH"
        )
    if plan.env_names:
        echo(
            f"{len(plan.env_names)} secret{'s' if len(plan.env_names) != 1 else ''} to fill in "
            f"(border0 does not give them back): {root / ENV_EXAMPLE}\n"
            f"Next: fill in a copy of it, then border0-reconciler plan {root} --env-file FILE"
        )
    return 0
