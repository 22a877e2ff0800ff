"""Reporters of `validate`: what a manifest check found, as text for people or JSON for tools.

Chosen from `REPORTERS` by format name, as the plan renderers are from `RENDERERS`. Each takes
the loader's result (`manifests.loader.LoadResult`) and returns the whole output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from reconciler.render.output import structured
from reconciler.render.table import markdown_table

if TYPE_CHECKING:
    from reconciler.manifests.loader import LoadResult

__all__ = ["REPORTERS", "json_report", "markdown_report", "text_report", "yaml_report"]


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def text_report(result: LoadResult, *, color: bool = False) -> str:
    """file:line:column lines (errors red, warnings yellow) and a one-line summary."""
    lines: list[str] = []

    def add(text: str, fg: str) -> None:
        lines.append(click.style(text, fg=fg) if color else text)

    for diagnostic in result.diagnostics:
        add(str(diagnostic), "red" if diagnostic.severity.value == "error" else "yellow")
    errors = sum(1 for d in result.diagnostics if d.severity.value == "error")
    warnings = len(result.diagnostics) - errors
    counts = (
        f"{_plural(len(result.desired.sockets), 'socket')}, "
        f"{_plural(len(result.desired.policies), 'policy', 'policies')} "
        + (f"and {_plural(len(result.desired.connectors), 'connector')} "
           if result.desired.connectors else "")
        + f"in {_plural(len(result.files), 'file')}"
    )
    skipped = f", {result.skipped} other documents skipped" if result.skipped else ""
    if result.ok:
        add(f"ok: {counts} ({_plural(warnings, 'warning')}{skipped})", "green")
    else:
        add(f"invalid: {_plural(errors, 'error')}, {_plural(warnings, 'warning')} "
            f"in {_plural(len(result.files), 'file')}", "red")
    return "\n".join(lines)


def json_report(result: LoadResult, *, color: bool = False) -> str:
    """A list of problems for tools (`Diagnostic.to_json()` each)."""
    return json.dumps([d.to_json() for d in result.diagnostics], indent=2)


def yaml_report(result: LoadResult, *, color: bool = False) -> str:
    """The same list as `json_report`, in YAML."""
    return structured([d.to_json() for d in result.diagnostics], "yaml").rstrip("\n")


def markdown_report(result: LoadResult, *, color: bool = False) -> str:
    """A table of the problems (for a pull-request comment), then the summary line."""
    rows = [(d.location() or "-", d.severity.value, d.code or "-", d.message)
            for d in result.diagnostics]
    table = markdown_table(("WHERE", "SEVERITY", "CODE", "PROBLEM"), rows) + "\n" if rows else ""
    return table + text_report(result, color=False).splitlines()[-1]


REPORTERS: dict[str, Callable[..., str]] = {
    "text": text_report, "json": json_report, "yaml": yaml_report, "markdown": markdown_report,
}
