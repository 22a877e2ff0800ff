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

from reconciler.diagnostics import MASS_DELETE
from reconciler.secrets import SENSITIVE

__all__ = ["SYMBOLS", "access_line", "conditions_text", "deferred_line", "format_value",
           "principal_text", "render", "summary_line"]

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


def format_value(value: Any, sensitive: bool = False) -> str:
    if sensitive and value is not None:
        return SENSITIVE
    if value is None:
        return "(none)"
    return _JSON.encode(value)


#: json.dumps with these options makes a new encoder at every call (6,000 in a plan of 1,000
#: creates).
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def summary_line(summary: Mapping[str, int], suspended: Any = (), deferred: Any = ()) -> str:
    """The plan's last line; with no changes, it says which suspended objects still differ;
    changes deferred until the manifests settle are counted, never called "No changes"."""
    waiting = len(deferred or ())
    if waiting:
        later = (f"{waiting} change{'s' if waiting != 1 else ''} deferred until the manifests "
                 "settle.")
        if not any(summary.values()):
            return f"No changes now: {later}"
        return f"{summary_line(summary, suspended)} {later}"
    if not any(summary.values()):
        held = sum(1 for item in suspended or () if item.get("differs"))
        if held:
            return (f"No changes. border0 matches the manifests, except {held} suspended "
                    f"object{'s' if held != 1 else ''} left as {'they are' if held != 1 else 'it is'}.")
        return "No changes. border0 matches the manifests."
    return (
        f"Plan: {summary['create']} to create, {summary['update']} to update, "
        f"{summary['replace']} to replace, {summary['delete']} to delete, "
        f"{summary['attach']} to attach, {summary['detach']} to detach."
    )


ACCESS_COLORS = {"gain": "green", "loss": "red", "widened": "yellow", "narrowed": "yellow",
                 "changed": "yellow"}


def principal_text(ac: Mapping[str, Any]) -> str:
    """`alice@example.com`, `domain example.com`, `group g-1`, `service account ci`."""
    kind = ac["principal_type"]
    if kind == "email":
        return ac["principal"]
    return f"{kind.replace('_', ' ')} {ac['principal']}"


def _why(ac: Mapping[str, Any]) -> str:
    policies = ac.get("policies") or []
    socket_causes = sorted({p["cause"] for p in policies if p["cause"].startswith("socket")})
    parts = [f"{p['name']} {p['cause']}".strip() if not p["cause"].startswith("socket")
             else p["name"] for p in policies]
    text = ("policy " if len(parts) == 1 else "policies ") + ", ".join(parts)
    return "; ".join([*socket_causes, text])


def _one_condition(cond: Mapping[str, Any]) -> str:
    where, when = cond.get("where") or {}, cond.get("when") or {}
    parts = []
    if where.get("allowed_ip"):
        parts.append("from " + ", ".join(where["allowed_ip"]))
    if where.get("country"):
        parts.append("in " + ", ".join(where["country"]))
    if where.get("country_not"):
        parts.append("not in " + ", ".join(where["country_not"]))
    if when.get("time_of_day_after") or when.get("time_of_day_before"):
        parts.append(f"{when.get('time_of_day_after', '00:00')}-"
                     f"{when.get('time_of_day_before', '24:00')}")
    if when.get("after"):
        parts.append(f"after {when['after']}")
    if when.get("before"):
        parts.append(f"until {when['before']}")
    if cond.get("permissions"):
        parts.append("settings " + json.dumps(cond["permissions"], sort_keys=True))
    return "; ".join(parts) or "anywhere, any time"


def conditions_text(conds: Any) -> str:
    """Where/when of the granting policies, joined with `or`; `-` when there is no grant."""
    if not conds:
        return "-"
    return " or ".join(dict.fromkeys(_one_condition(c) for c in conds))


def access_line(ac: Mapping[str, Any]) -> str:
    """`+ alice@example.com gains ssh on bastion (policy on-call)` and the like."""
    who, action, socket, change = principal_text(ac), ac["action"], ac["socket"], ac["change"]
    if change == "gain":
        return f"+ {who} gains {action} on {socket} ({_why(ac)})"
    if change == "loss":
        return f"- {who} loses {action} on {socket} ({_why(ac)})"
    return (f"~ {who}: conditions {change} for {action} on {socket} ({_why(ac)}): "
            f"{conditions_text(ac['before'])} → {conditions_text(ac['after'])}")


def _access_lines(plan_json: Mapping[str, Any], style: Any) -> list[str]:
    access = plan_json.get("access_changes") or []
    if not access:
        return ["Access changes: none (no one gains or loses access).", ""] if plan_json.get(
            "changes") else []
    lines = [style(f"Access changes ({len(access)}): who gains or loses access", bold=True)]
    for ac in access:
        line = access_line(ac)
        symbol, rest = line.split(" ", 1)
        lines.append(f"  {style(symbol, fg=ACCESS_COLORS[ac['change']], bold=True)} {rest}")
    lines.append("")
    return lines


def _diagnostic(d: Mapping[str, Any]) -> str:
    where = ""
    if d.get("file"):
        where = d["file"] + "".join(f":{d[k]}" for k in ("line", "column") if d.get(k) is not None)
        where += ": "
    return f"{where}{d['severity']}: {d['message']}"


def suspended_line(item: Mapping[str, Any]) -> str:
    """`socket db (manifests/db.yaml:1:1)` or with `, not in border0`."""
    notes = ["not in border0"] if not item.get("in_border0", True) else (
        ["differs from its manifest"] if item.get("differs") else [])
    where = ", ".join(([item["source"]] if item.get("source") else []) + notes)
    return f"{item['kind']} {item['name']}" + (f" ({where})" if where else "")


def _suspended_lines(plan_json: Mapping[str, Any], style: Any) -> list[str]:
    suspended = plan_json.get("suspended") or []
    if not suspended:
        return []
    lines = [style(f"Suspended ({len(suspended)}): left as they are in border0", fg="cyan",
                   bold=True)]
    lines.extend(f"  = {suspended_line(item)}" for item in suspended)
    return lines + [""]


def deferred_line(item: Mapping[str, Any]) -> str:
    """`delete socket db (removes an object)`: one deferred change of the plan JSON."""
    return f"{item['change']['title']} ({item.get('why') or item['reason']})"


def _deferred_lines(plan_json: Mapping[str, Any], style: Any) -> list[str]:
    deferred = plan_json.get("deferred") or []
    if not deferred:
        return []
    until = max(item["until"] for item in deferred)
    lines = [style(f"Deferred ({len(deferred)}) until the manifests settle, planned again at "
                   f"{until}:", fg="cyan", bold=True)]
    lines.extend(f"  … {deferred_line(item)}" for item in deferred)
    return lines + [""]


def _change_lines(change: Mapping[str, Any], style: Any) -> list[str]:
    action = change["action"]
    symbol = style(SYMBOLS[action], fg=COLORS[action], bold=True)
    reason = f"  ({change['reason']})" if change.get("reason") else ""
    what = change["title"].removeprefix(f"{action} ")  # "socket db", "policy p to socket s"
    if change["kind"] == "attachment":
        return [f"  {symbol} {action} {what}{reason}"]
    if change["kind"] == "token":  # a token's value is never in a plan: only that it changes
        token = change["name"].split("/", 1)[-1]
        line = (f"  {symbol} token {style(token, bold=True)}: {action} (sensitive)  "
                f"(connector {change.get('connector')}; {change.get('reason', '')})")
        return [line]
    what = what.removesuffix(change["name"]) + style(change["name"], bold=True)
    lines = [f"  {symbol} {what}{reason}"]
    if change.get("blocked"):
        lines.append("      " + style(f"blocked: {change['blocked']}", fg="red"))
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

    lines: list[str] = _access_lines(plan_json, style)
    blocking = plan_json.get("conflicts", [])
    refused = [d for d in blocking if d.get("code") == MASS_DELETE]
    conflicts = [d for d in blocking if d.get("code") != MASS_DELETE]
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
    lines.extend(_suspended_lines(plan_json, style))
    lines.extend(_deferred_lines(plan_json, style))
    if changes or not blocking:  # "No changes" would contradict a plan that is refused
        lines.append(style(summary_line(plan_json["summary"], plan_json.get("suspended"),
                                        plan_json.get("deferred")), bold=True))
    # that nothing can be applied is said once, by the command's error line
    return "\n".join(lines) + "\n"
