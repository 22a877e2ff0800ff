"""The Markdown rendering for a pull-request comment: the access review table first (who gains or
loses access: what a reviewer asks first), then conflicts, blocked changes and warnings, a summary
table, then one collapsible <details> per object; kept under GitHub's 65,536 characters with a
note that says what was cut.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from reconciler.diagnostics import MASS_DELETE
from reconciler.render.text import (
    SYMBOLS,
    conditions_text,
    deferred_line,
    principal_text,
    summary_line,
    suspended_line,
)
from reconciler.secrets import SENSITIVE

__all__ = ["MAX_CHARS", "render"]

MAX_CHARS = 65_536
_ACTIONS = ("create", "update", "replace", "delete", "attach", "detach")


def _md(text: str) -> str:
    """Free-form text made safe in a GFM table cell (and anywhere else): HTML escaped, `|`
    (which ends a cell even inside backticks) as `&#124;`, on one line."""
    return html.escape(text, quote=False).replace("|", "&#124;").replace("\n", " ")


def _code(text: str) -> str:
    """Text in a code span that a `|` or a backtick in it cannot break: `<code>`, escaped."""
    return f"<code>{_md(text)}</code>"


def _cell(value: Any, sensitive: bool = False) -> str:
    if sensitive and value is not None:
        return _code(SENSITIVE)
    if value is None:
        return "<i>(none)</i>"
    return _code(json.dumps(value, ensure_ascii=False, sort_keys=True))


_ACCESS_ICONS = {"gain": ":heavy_plus_sign: gains", "loss": ":heavy_minus_sign: loses",
                 "widened": ":arrow_up: widened", "narrowed": ":arrow_down: narrowed",
                 "changed": ":left_right_arrow: changed"}
_ACCESS_HEAD = ("| change | socket | who | access | policy | conditions |\n"
                "|---|---|---|---|---|---|\n")


def _access_row(ac: Mapping[str, Any]) -> str:
    policies = ", ".join(f"{p['name']} {p['cause']}".strip() for p in ac.get("policies") or [])
    if ac["change"] == "gain":
        conditions = conditions_text(ac["after"])
    elif ac["change"] == "loss":
        conditions = conditions_text(ac["before"])
    else:
        conditions = f"{conditions_text(ac['before'])} → {conditions_text(ac['after'])}"
    return (f"| {_ACCESS_ICONS[ac['change']]} | **{_md(ac['socket'])}** "
            f"| {_md(principal_text(ac))} | {_md(ac['action'])} | {_md(policies)} "
            f"| {_md(conditions)} |\n")


def _diagnostic(d: Mapping[str, Any], icon: str) -> str:
    where = ""
    if d.get("file"):
        where = d["file"] + "".join(f":{d[k]}" for k in ("line", "column") if d.get(k) is not None)
        where = f"{_code(where)} "
    message = _md(str(d["message"]))
    return f"- {icon} {where}{message}\n"


def _change_block(change: Mapping[str, Any]) -> str:
    action = change["action"]
    symbol = SYMBOLS[action]
    what = change["title"].removeprefix(f"{action} ")  # "socket db", "policy p to socket s"
    if change["kind"] != "attachment":  # the object's name in bold, as the text view does
        what = what.removesuffix(change["name"])
        name = html.escape(change["name"])
        title = f"<code>{symbol} {action}</code> {html.escape(what)}<b>{name}</b>"
    else:
        title = f"<code>{symbol} {action}</code> {html.escape(what)}"
    if change.get("reason"):
        title += f" — {html.escape(change['reason'])}"
    body = ""
    if change.get("blocked"):
        title += " — <b>blocked</b>"
        body = f"\n:no_entry: **Blocked:** {_md(change['blocked'])}\n"
    diffs = change.get("diffs") or []
    if diffs:
        rows = [
            f"| {_code(d['path'])} | {_cell(d['before'], d.get('sensitive', False))} "
            f"| {_cell(d['after'], d.get('sensitive', False))} |"
            for d in diffs
        ]
        body += "\n| field | before | after |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    elif change.get("source"):
        body += f"\nDeclared in {_code(change['source'])}.\n"
    else:
        body += "\nNo field changes.\n"
    return f"<details><summary>{title}</summary>\n{body}\n</details>\n\n"


def render(plan_json: Mapping[str, Any], *, max_chars: int = MAX_CHARS) -> str:
    """Markdown for a pull-request comment; never longer than `max_chars` characters."""
    summary = plan_json["summary"]
    head = [f"## border0-reconciler plan (instance `{plan_json.get('instance', 'default')}`)\n\n"]
    sections: list[tuple[str, str, list[str]]] = []
    conflicts = plan_json.get("conflicts", [])
    warnings = plan_json.get("warnings", [])
    access = plan_json.get("access_changes") or []
    changes = plan_json.get("changes", [])
    if access:
        gains = sum(1 for a in access if a["change"] != "loss" and a["change"] != "narrowed")
        sections.append(
            ("access changes", f"### :key: Access changes ({len(access)}, {gains} widening)\n\n"
             + _ACCESS_HEAD, [_access_row(a) for a in access])
        )
    elif changes:
        head.append("**Access:** no one gains or loses access.\n\n")
    if conflicts:
        guard_only = all(d.get("code") == MASS_DELETE for d in conflicts)
        title = "Refused by the mass-delete guard" if guard_only else "Conflicts"
        sections.append(
            ("conflicts", f"### :x: {title} ({len(conflicts)}): the plan cannot be applied\n\n",
             [_diagnostic(d, ":x:") for d in conflicts])
        )
    blocked = [c for c in changes if c.get("blocked")]
    if blocked:
        title = f"### :no_entry: Blocked ({len(blocked)}): the plan cannot be applied as it is\n\n"
        sections.append(
            ("blocked", title,
             [f"- :no_entry: {_code(c['title'])}: {_md(c['blocked'])}\n" for c in blocked]))
    if warnings:
        sections.append(
            ("warnings", f"### :warning: Warnings ({len(warnings)})\n\n",
             [_diagnostic(d, ":warning:") for d in warnings])
        )
    suspended = plan_json.get("suspended") or []
    if suspended:
        sections.append(
            ("suspended", f"### :pause_button: Suspended ({len(suspended)}): left as they are\n\n",
             [f"- {html.escape(suspended_line(item))}\n" for item in suspended])
        )
    deferred = plan_json.get("deferred") or []
    if deferred:
        title = (f"### :hourglass: Deferred ({len(deferred)}): planned again once the "
                 f"manifests settle ({max(d['until'] for d in deferred)})\n\n")
        sections.append(
            ("deferred", title, [f"- {html.escape(deferred_line(item))}\n" for item in deferred]))
    table = (
        "| " + " | ".join(_ACTIONS) + " |\n|" + "---:|" * len(_ACTIONS) + "\n| "
        + " | ".join(str(summary.get(a, 0)) for a in _ACTIONS) + " |\n\n"
        + (f"**{summary_line(summary, suspended, deferred)}**\n\n" if any(summary.values()) or not conflicts else "")
    )
    blocks = [_change_block(c) for c in changes]

    budget = max_chars - 400  # room for the truncation note
    out = "".join(head)
    cut: dict[str, int] = {}
    for key, title, items in sections:
        out += title
        shown = 0
        for item in items:
            if len(out) + len(item) + len(table) > budget:
                break
            out += item
            shown += 1
        if shown < len(items):
            cut[key] = len(items) - shown
        out += "\n"
    out += table
    if blocks:
        out += "### Changes\n\n"
    shown = 0
    for block in blocks:
        if len(out) + len(block) > budget:
            break
        out += block
        shown += 1
    if shown < len(blocks):
        cut["changes"] = len(blocks) - shown
    if cut:
        totals = {"access changes": len(access), "conflicts": len(conflicts),
                  "blocked": len(blocked),
                  "warnings": len(warnings), "suspended": len(suspended), "deferred": len(deferred),
                  "changes": len(changes)}
        parts = ", ".join(f"{n} of {totals[k]} {k}" for k, n in cut.items())
        out += (
            f"> [!NOTE]\n> **Truncated:** {parts} not shown, to stay under GitHub's "
            f"{MAX_CHARS:,} characters. Run `border0-reconciler plan` (or `--format json`) to "
            "see the full plan.\n"
        )
    return out
