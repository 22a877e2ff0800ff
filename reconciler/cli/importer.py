"""`import DIR`: write manifests for the sockets and policies border0 holds, so a repository
can adopt them. The documents come from `render.manifests`; this module writes them (all or
none: an existing file stops it unless --force) and lists the secrets to fill in. It exits 1
when an object was left out because no manifest describes it (`ImportPlan.undescribed`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli import inside
from reconciler.cli.options import api_options, friendly_errors, instance_option, output_option
from reconciler.errors import UserError

if TYPE_CHECKING:
    from reconciler.render.manifests import ImportPlan

__all__ = ["ENV_EXAMPLE", "import_command", "run_import", "write_import"]

ENV_EXAMPLE = ".env.example"


def write_import(directory: Path, plan: ImportPlan, *, force: bool = False) -> list[Path]:
    """Write the documents (all or none) and add new secret names to `.env.example`; never
    through a link, never outside `directory` (`inside.py`)."""
    from reconciler.render.manifests import to_yaml  # yaml and the model: loaded on use

    targets = {rel: directory / rel for rel in plan.documents}
    inside.check(directory, [*plan.documents, *([ENV_EXAMPLE] if plan.env_names else [])])
    existing = sorted(str(p) for p in targets.values() if p.exists())
    if existing and not force:
        more = f" (and {len(existing) - 3} more)" if len(existing) > 3 else ""
        raise UserError(
            f"not overwriting existing {', '.join(existing[:3])}{more}; nothing was written "
            "(pass --force to replace them)"
        )
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for rel in targets:
            written.append(inside.write_text(directory, rel, to_yaml(plan.documents[rel])))
        if plan.env_names:
            _merge_env_example(plan.env_names, directory)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename or directory}: {exc.strerror}") from None
    return written


def _merge_env_example(names: Iterable[str], directory: Path) -> None:
    """Add the names not listed yet; lines already there are kept as they are."""
    text = inside.read_text(directory, ENV_EXAMPLE)
    if text is None:
        text = (
            "# Secrets border0 does not give back. Copy this file outside git, fill in each "
            f"value,\n# then: border0-reconciler plan {directory} --env-file FILE\n"
        )
    listed = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    new = [n for n in dict.fromkeys(names) if n not in listed]
    if new:
        text = (text if text.endswith("\n") else text + "\n") + "".join(f"{n}=\n" for n in new)
        inside.write_text(directory, ENV_EXAMPLE, text)


@click.command("import")
@click.argument("directory", type=click.Path(file_okay=False))
@api_options
@click.option("--select", multiple=True, metavar="GLOB",
              help="Import only sockets and policies whose name matches (repeatable).")
@instance_option("Ownership instance: its objects are written as they are, unmanaged ones "
                 "get the adopt annotation, other instances' are skipped.")
@click.option("--force", is_flag=True, help="Replace manifest files that exist already.")
@output_option(what="what was written (json, yaml: the files, adoptions, skips and secrets "
               "to fill in)")
@friendly_errors
def import_command(directory: str, api: str | None, token_file: str | None, state: str | None,
                   select: tuple[str, ...], instance: str, force: bool, fmt: str) -> None:
    """Write manifests under DIRECTORY for the sockets and policies border0 holds."""
    from reconciler.border0.inventory import fetch_actual, fetch_details
    from reconciler.border0.session import open_api
    from reconciler.model import Desired

    with open_api(api, token_file, state) as client:
        actual = fetch_details(client, Desired(), fetch_actual(client), every_socket=True)
    if fmt in ("text", "markdown"):
        raise SystemExit(run_import(Path(directory), actual, instance, select, force, click.echo))
    from reconciler.render.output import structured

    raise SystemExit(run_import(Path(directory), actual, instance, select, force,
                                lambda _line: None,
                                report=lambda data: click.echo(structured(data, fmt), nl=False)))


def run_import(root: Path, actual: Any, instance: str, select: Sequence[str], force: bool,
               echo: Callable[[str], None],
               report: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Write the manifests, then say what happened (lines to `echo`, or one document to
    `report` for -o json|yaml); 0, or 1 when objects were left out that no manifest describes
    (said on stderr; a refusal raises `UserError`)."""
    from reconciler.render.manifests import plan_import

    plan = plan_import(actual, instance, select)
    if plan.documents:
        write_import(root, plan, force=force)  # refuses (and writes nothing) before any output
    if report is not None:
        report({
            "written": [str(root / rel) for rel in plan.documents],
            "adopted": [str(root / rel) for rel in plan.documents if rel in plan.adopted],
            "skipped": list(plan.skipped),
            "undescribed": list(plan.undescribed),
            "undescribed_own": list(plan.undescribed_own),
            "left_out_by_select": list(plan.unselected_own),
            "secrets_to_fill_in": list(plan.env_names),
            "env_example": str(root / ENV_EXAMPLE) if plan.env_names else None,
        })
    for line in plan.skipped:
        echo(f"skipped {line}")
    if not plan.documents:
        echo("Nothing to import" + (" (no name matches --select)" if select else "") + ".")
        return _incomplete(root, plan, instance, echo)
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
    return _incomplete(root, plan, instance, echo)


def _incomplete(root: Path, plan: ImportPlan, instance: str, echo: Callable[[str], None]) -> int:
    """1, said on stderr, when objects were left out that no manifest describes; else 0."""
    if not plan.undescribed:
        return 0
    if plan.undescribed_own:
        echo(
            f"note: instance {instance} manages {len(plan.undescribed_own)} of the objects left "
            f"out ({', '.join(plan.undescribed_own[:5])}"
            f"{', ...' if len(plan.undescribed_own) > 5 else ''}): applying {root} would "
            "delete them"
        )
    count = len(plan.undescribed)
    click.echo(
        f"error: {count} object{'s' if count != 1 else ''} left out: no manifest describes "
        f"{'them' if count != 1 else 'it'} as border0 holds {'them' if count != 1 else 'it'} "
        "(listed as skipped, with what validate would say); the manifests written are valid",
        err=True,
    )
    return 1
