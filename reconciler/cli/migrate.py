"""`migrate PATH...`: rewrite legacy Socket manifests to the typed upstream in place, comments and key order kept (ruamel.yaml round-trip),
or only show it (`--check`, `--diff`). The rewrite of one document is `manifests.upgrade`'s;
this module finds the files, reads them all before writing any (a bad file stops it with
nothing written) and reports. Guide: docs/migration.md."""

from __future__ import annotations

import difflib
import io
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from reconciler.cli.options import friendly_errors, output_option
from reconciler.errors import UserError

__all__ = ["migrate_command", "run_migrate"]


@dataclass
class _File:
    path: Path
    before: str
    after: str = ""
    migrated: list[str] = field(default_factory=list)
    left: list[tuple[str, int, str]] = field(default_factory=list)  # (name, line, why)


_ITEM = re.compile(r"^( *)- ")


def _yaml(text: str) -> Any:
    """A round-trip parser that writes the file back in its own style: block lists indented
    as its first one is (`key:` then `  - a`, or `- a` under the key), a leading `---` kept."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the user wrote on one
    offset, previous = 2, ""
    for line in text.splitlines():
        item = _ITEM.match(line)
        if item and previous.rstrip().endswith(":"):
            offset = max(0, len(item.group(1)) - (len(previous) - len(previous.lstrip())))
            break
        if line.strip() and not line.lstrip().startswith("#"):
            previous = line
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    yaml.explicit_start = next((ln for ln in text.splitlines() if ln.strip() and not
                                ln.startswith("#")), "").startswith("---")
    return yaml


def _read(path: Path, connector: str | None) -> _File:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from reconciler.manifests.upgrade import upgrade_socket

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    found = _File(path, text)
    yaml = _yaml(text)
    try:
        docs = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UserError(f"{where}: not valid YAML: {exc.problem}; nothing was migrated") from None
    except YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}; nothing was migrated") from None
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        result = upgrade_socket(doc, connector)
        if result.changed:
            found.migrated.append(result.name)
        elif result.reason:
            line = doc.lc.line + 1 if hasattr(doc, "lc") else 1
            found.left.append((result.name, line, result.reason))
    if found.migrated:
        out = io.StringIO()
        yaml.dump_all(docs, out)
        found.after = out.getvalue()
    return found


def _write_all(changed: list[_File]) -> None:
    """Every new text into a temporary file beside its file first (the file's mode kept), then
    each renamed over its file: a failure before the renames leaves every file as it was."""
    temps: list[tuple[str, Path]] = []
    try:
        for f in changed:
            fd, tmp = tempfile.mkstemp(dir=f.path.parent, prefix=f".{f.path.name}.",
                                       suffix=".tmp")
            temps.append((tmp, f.path))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f.after)
            os.chmod(tmp, f.path.stat().st_mode & 0o7777)
    except OSError as exc:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write beside {exc.filename or temps[-1][1]}: {exc.strerror}; "
                        "nothing was migrated") from None
    for tmp, path in temps:
        os.replace(tmp, path)


def _diff(f: _File) -> str:
    return "".join(difflib.unified_diff(f.before.splitlines(keepends=True),
                                        f.after.splitlines(keepends=True),
                                        str(f.path), f"{f.path} (migrated)"))


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def run_migrate(paths: tuple[str, ...], *, connector: str | None = None, check: bool = False,
                diff: bool = False, echo: Callable[..., None] = click.echo,
                report: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Migrate (or with check/diff only show) the legacy sockets under `paths`: 0, or 1 when
    check/diff found something to rewrite. Lines go to `echo`, or one document to `report`
    (-o json|yaml). A bad path or file raises `UserError` before anything is written."""
    from reconciler.manifests.files import discover

    problems: list[str] = []
    files = discover(paths, lambda p, msg, err: problems.append(f"{p}: {msg}") if err else None)
    if problems:
        raise UserError(f"{problems[0]}; nothing was migrated")
    found = [_read(path, connector) for path in files]  # every file read before any write
    changed = [f for f in found if f.migrated]
    left = [(f.path, *item) for f in found for item in f.left]
    if not (check or diff):
        _write_all(changed)
    if report is not None:
        report({
            "written": not (check or diff),
            "migrated": [{"file": str(f.path), "sockets": f.migrated,
                          **({"diff": _diff(f)} if diff else {})} for f in changed],
            "left_in_the_legacy_form": [{"file": str(path), "line": line, "socket": name,
                                         "reason": why} for path, name, line, why in left],
        })
    else:
        for f in changed:
            if diff:
                echo(_diff(f), nl=False)
            else:
                echo(f"{'would migrate' if check else 'migrated'} {f.path}: "
                     f"{', '.join(f.migrated)}")
        for path, name, line, why in left:
            echo(f"{path}:{line}: left in the legacy form: {name}: {why}")
        sockets = sum(len(f.migrated) for f in changed)
        if not sockets:
            rest = f"; {_count(len(left), 'socket')} left in the legacy form" if left else ""
            echo(f"Nothing to migrate{rest}.")
        else:
            rest = f"; {len(left)} left in the legacy form" if left else ""
            echo(f"{'Would migrate' if check or diff else 'Migrated'} "
                 f"{_count(sockets, 'socket')} in {_count(len(changed), 'file')}{rest} "
                 "(docs/migration.md).")
    return 1 if (check or diff) and changed else 0


@click.command("migrate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--connector", default=None, metavar="NAME",
              help="Also move legacy-mode sockets (spec.connector) to this connector "
              "(spec.connectors: [NAME]); without it they keep their `socket connect`.")
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a socket would be "
              "migrated.")
@click.option("--diff", is_flag=True, help="Change nothing; print the rewrite as a unified "
              "diff and exit 1 if there is one.")
@output_option(what="what was migrated (json, yaml: the files, their sockets and those left "
               "in the legacy form, with why)")
@friendly_errors
def migrate_command(paths: tuple[str, ...], connector: str | None, check: bool,
                    diff: bool, fmt: str) -> None:
    """Rewrite legacy sockets under PATHS to the typed upstream, comments kept."""
    report = None
    if fmt in ("json", "yaml"):
        from reconciler.render.output import structured

        def report(data: dict[str, Any]) -> None:
            click.echo(structured(data, fmt), nl=False)
    raise SystemExit(run_migrate(paths, connector=connector, check=check, diff=diff,
                                 report=report))
