"""The terminal rendering, Terraform-like: `+ create`, `~ update`, `-/+ replace`, `- delete`,
attach/detach lines, field-level `before → after`, a summary line. Colour only when asked.

One message per outcome: a plan that is refused (conflicts, the mass-delete guard) lists why,
but says neither "No changes" nor a second "cannot be applied" line (the command's one `error:`
line says that).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

__all__ = ["SYMBOLS", "format_value", "render", "summary_line"]

SYMBOLS = {
    "create": "+",
    "update": "~",
    "replace": "-/+",
    "delete": "-",
    "attach": "+",
    "detach": "-",
}
COLORS = {
    "create": "green",
    "update": "yellow",
    "replace": "magenta",
    "delete": "red",
    "attach": "green",
    "detach": "red",
}
SENSITIVE = "(sensitive)"


def format_value(value: Any, sensitive: bool = False) -> str:
    if sensitive and value is not None:
        return SENSITIVE
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def summary_line(summary: Mapping[str, int]) -> str:
    if not any(summary.values()):
        return "No changes. border0 matches the manifests."
    return (
        f"Plan: {summary['create']} to create, {summary['update']} to update, "
        f"{summary['replace']} to replace, {summary['delete']} to delete, "
        f"{summary['attach']} to attach, {summary['detach']} to detach."
    )


def _diagnostic(d: Mapping[str, Any]) -> str:
    where = ""
    if d.get("file"):
        where = d["file"] + "".join(f":{d[k]}" for k in ("line", "column") if d.get(k) is not None)
        where += ": "
    return f"{where}{d['severity']}: {d['message']}"


def _change_lines(change: Mapping[str, Any], style: Any) -> list[str]:
    action = change["action"]
    symbol = style(SYMBOLS[action], fg=COLORS[action], bold=True)
    reason = f"  ({change['reason']})" if change.get("reason") else ""
    if change["kind"] == "attachment":
        verb, prep = ("attach", "to") if action == "attach" else ("detach", "from")
        head = f"  {symbol} {verb} policy {change['policy']} {prep} socket {change['socket']}"
        return [head + reason]
    lines = [f"  {symbol} {change['kind']} {style(change['name'], bold=True)}{reason}"]
    for diff in change.get("diffs", []):
        before = format_value(diff["before"], diff.get("sensitive", False))
        after = format_value(diff["after"], diff.get("sensitive", False))
        if action == "create":
            lines.append(f"      {diff['path']}: {after}")
        else:
            lines.append(f"      {diff['path']}: {before} → {after}")
    return lines


def render(plan_json: Mapping[str, Any], *, color: bool = False) -> str:
    """The human view of a plan's JSON form."""

    def style(text: str, **kwargs: Any) -> str:
        return click.style(text, **kwargs) if color else text

    lines: list[str] = []
    blocking = plan_json.get("conflicts", [])
    refused = [d for d in blocking if d.get("code") == "mass-delete"]
    conflicts = [d for d in blocking if d.get("code") != "mass-delete"]
    if conflicts:
        lines.append(style("Conflicts:", fg="red", bold=True))
        lines.extend(f"  {_diagnostic(d)}" for d in conflicts)
        lines.append("")
    if refused:  # a guard, not a conflict between the manifests and border0
        lines.append(style("Refused by the mass-delete guard:", fg="red", bold=True))
        lines.extend(f"  {_diagnostic(d)}" for d in refused)
        lines.append("")
    changes = plan_json.get("changes", [])
    if changes:
        lines.append(
            f"border0-reconciler will perform these actions (instance "
            f"{plan_json.get('instance', 'default')}):"
        )
        lines.append("")
        for change in changes:
            lines.extend(_change_lines(change, style))
        lines.append("")
    warnings = plan_json.get("warnings", [])
    if warnings:
        lines.append(style("Warnings:", fg="yellow", bold=True))
        lines.extend(f"  {_diagnostic(d)}" for d in warnings)
        lines.append("")
    if changes or not blocking:  # "No changes" would contradict a plan that is refused
        lines.append(style(summary_line(plan_json["summary"]), bold=True))
    # that nothing can be applied is said once, by the command's error line
    return "\n".join(lines) + "\n"
