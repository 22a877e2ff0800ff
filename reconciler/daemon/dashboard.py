"""The daemon's status page (`GET /`): one read-only HTML page made from the /status document.

The page is rendered here, server-side (Jinja2, autoescaped), and only here: `view` turns
/status into what the page shows (labels, problems, relative times, links) and dashboard.html
draws it. It works without JavaScript: sorting is a link per column, the filter a GET form, the
pages previous/next links, all query parameters (`?sort=&filter=&state=&offset=`) that /status
applies to every socket before it cuts the page (`status.Page`), so they work across pages. A
small inline script fetches the same URL every few seconds and swaps in each part the server
rendered again (`data-part`); it draws and works out nothing, so there is no second copy of the
view in JavaScript. Everything is in the one answer (no CDN, no other file: it works
air-gapped), and the Content-Security-Policy allows exactly the page's own script and style,
requests to this origin and nothing else. The page has no control that changes anything.

The errors come structured (/status `error_details`: kind, name, code, message, where), so
nothing parses their text. The page shows one page of sockets (`PAGE_ROWS`), never a
10,000-row document; the counts above the table are always whole.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from reconciler.connectors.connector import State
from reconciler.daemon.status import Page

__all__ = ["DEFAULT_REFRESH", "PAGE_ROWS", "page_query", "render_page", "view"]

_PACKAGE = __name__.rpartition(".")[0] or "reconciler"
DEFAULT_REFRESH = 3.0  # seconds
#: Sockets per page of the status page (the sort and the filter apply to all of them first).
PAGE_ROWS = 100
#: The table's columns: (the /status `?sort=` key, the heading).
COLUMNS = (("name", "Name"), ("type", "Type"), ("dns_name", "DNS name"), ("ports", "Ports"),
           ("state", "State"), ("connector", "Connector"), ("policies", "Policies"))
#: The page's own query parameters, kept by every link it draws (`offset` is set per link).
QUERY = ("sort", "filter", "state", "limit", "refresh")
#: Connector states (as /status names them) of a connector on its way back after an exit.
_COMING_BACK = (State.BACKOFF.name, State.EXITED.name)
#: Socket states of /status -> what the page calls them (and filters by).
SOCKET_STATES = {
    "in-sync": "in sync",
    "out-of-sync": "drifted",
    "missing": "drifted",
    "to-delete": "drifted",
    "suspended": "suspended",
    "error": "error",
}
#: Badge colour (a CSS class) per shown value; anything else is "plain".
TONES = {
    "state": {"in sync": "ok", "drifted": "warn", "suspended": "info", "error": "bad"},
    "connector": {State.RUNNING.value: "ok", State.STARTING.value: "warn", "restarting": "warn",
                  State.FATAL.value: "bad"},
    "result": {"success": "ok", "failure": "bad", "invalid": "bad"},
}
#: /status error codes the page shows elsewhere: a FATAL connector (from the connectors) and
#: the failing reconcile's own error (its own line).
_CONNECTOR_FATAL, _RECONCILE_FAILED = "connector-fatal", "reconcile-failed"
#: Where an error comes from (/status `error_details[].source`) when it is a diagnostic.
_DIAGNOSED = ("manifests", "plan")


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader(_PACKAGE, "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _asset(name: str) -> tuple[Markup, str]:
    """An inline asset (script or style) and its CSP source expression ('sha256-...')."""
    text = resources.files(_PACKAGE).joinpath("templates", name).read_text("utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return Markup(text), f"'sha256-{digest}'"  # our own file, inlined as it is


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def relative(value: Any, now: datetime) -> str:
    """'12 s ago', '3 min ago', 'in 4 min': how far an ISO 8601 time is from now."""
    when = _parse_time(value)
    if when is None:
        return ""
    seconds = (when - now).total_seconds()
    span = abs(seconds)
    if span < 1:
        return "just now"
    if span < 120:
        text = f"{span:.0f} s"
    elif span < 7200:
        text = f"{span / 60:.0f} min"
    elif span < 172800:
        text = f"{span / 3600:.0f} h"
    else:
        text = f"{span / 86400:.0f} d"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def connector_label(state: str | None, restarts: int = 0) -> str:
    """A connector's state in words: a connector coming back after an exit is 'restarting'."""
    if not state:
        return "none"
    if state in _COMING_BACK or (state == State.STARTING.name and restarts):
        return "restarting"
    return State[state].value if state in State.__members__ else state.lower()


def _problems(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What needs a look, worst first: FATAL connectors, a failing reconcile, each error."""
    problems: list[dict[str, Any]] = []
    for conn in status.get("connectors") or []:
        if conn.get("state") == State.FATAL.name:
            problems.append(
                {
                    "where": f"connector {conn.get('socket')}",
                    "what": f"FATAL: {conn.get('last_error') or 'gave up restarting'}",
                }
            )
    held = status.get("held_back") or {}
    for change in held.get("changes") or []:
        problems.append(
            {
                "where": f"held back ({change.get('why')})",
                "what": f"{change.get('action')} {change.get('kind')} {change.get('name')} "
                f"until the manifests settle ({held.get('until')})",
            }
        )
    last = status.get("last_reconcile") or {}
    failing = last.get("result") == "failure"
    if failing:
        times = status.get("consecutive_failures") or 1
        problems.append(
            {
                "where": f"reconcile ({last.get('stage')})",
                "what": f"failing {times} time(s) in a row: {last.get('error') or 'failed'}",
            }
        )
    details = status.get("error_details")
    if details is None:  # a document from before error_details: each error as it is
        details = [{"code": "", "message": str(e), "where": None} for e in
                   status.get("errors") or []]
    for error in details:
        code = error.get("code")
        if code == _CONNECTOR_FATAL or (failing and code == _RECONCILE_FAILED):
            continue  # listed above
        # a problem in the manifests or the plan reads as the loader words it: "error: ..."
        what = str(error.get("message"))
        if error.get("source") in _DIAGNOSED:
            what = f"error: {what}"
        if error.get("where") or not (failing and error.get("message") == last.get("error")):
            problems.append({"where": error.get("where") or "", "what": what})
    return problems


def page_query(query: Mapping[str, str]) -> Page:
    """The /status page to ask for: the page's query, whose `state` is one of the page's
    labels (`drifted` is three /status states). A bad value shows the first page."""
    label = query.get("state")
    states = ",".join(s for s, shown in SOCKET_STATES.items() if _key(shown) == label)
    try:
        return Page.parse(query.get("limit") or str(PAGE_ROWS), query.get("offset"),
                          query.get("sort"), query.get("filter"), states)
    except ValueError:
        return Page(PAGE_ROWS)


def _key(label: str) -> str:
    return label.replace(" ", "-")


def _href(query: Mapping[str, Any], **change: Any) -> str:
    """A link to this page with `query` changed: `?sort=-ports&filter=db`."""
    kept = {k: query.get(k) for k in QUERY}
    return "?" + urlencode({k: v for k, v in {**kept, **change}.items()
                            if v is not None and v != ""})


def _columns(query: Mapping[str, Any], sort: str) -> list[dict[str, Any]]:
    """Each heading's sort link: the column sorted by says which way, its link turns it."""
    columns = []
    for key, title in COLUMNS:
        active = sort.removeprefix("-") == key
        descending = sort.startswith("-")
        columns.append({
            "key": key, "title": title,
            "order": ("descending" if descending else "ascending") if active else None,
            "href": _href(query, sort=f"-{key}" if active and not descending else key),
        })
    return columns


def _last_applied(history: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest reconcile that applied changes (any change with a result)."""
    for entry in history:
        if any(c.get("ok") is not None for c in entry.get("changes") or []):
            return entry
    return None


def view(status: Mapping[str, Any], now: datetime | None = None,
         query: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the page shows, from one /status document and the page's query."""
    now = now or datetime.now(UTC)
    query = {k: v for k, v in (query or {}).items() if k in QUERY}
    sockets = []
    for row in status.get("sockets") or []:
        state = row.get("state") or ""
        sockets.append(
            {
                **row,
                "state_key": SOCKET_STATES.get(state, state).replace(" ", "-"),
                "state_label": SOCKET_STATES.get(state, state),
                "connector_label": connector_label(
                    row.get("connector"), row.get("connector_restarts") or 0
                ),
                "failing": state == "error" or row.get("connector") == State.FATAL.name,
            }
        )
    counts = {label: 0 for label in dict.fromkeys(SOCKET_STATES.values())}
    whole = (status.get("counts") or {}).get("states")
    if whole is not None:  # every socket's, not only the page's
        for item in whole:
            if item["kind"] == "socket":
                label = SOCKET_STATES.get(item["state"], item["state"])
                counts[label] = counts.get(label, 0) + item["count"]
    else:
        for row in sockets:
            counts[row["state_label"]] = counts.get(row["state_label"], 0) + 1
    history = list(status.get("history") or [])
    suspended = status.get("suspended")
    if isinstance(suspended, (list, dict)):
        suspended = len(suspended)
    if suspended is None and counts.get("suspended"):
        suspended = counts["suspended"]
    page = status.get("page") or {}
    total = (status.get("counts") or {}).get("sockets", len(sockets))
    matched = page.get("matched", total)  # a daemon from before ?filter=: all of them
    offset = page.get("offset") or 0
    rows = page.get("limit") or PAGE_ROWS
    narrowed = bool(query.get("filter") or query.get("state"))
    previous = max(offset - rows, 0) if offset else None
    following = offset + len(sockets) if offset + len(sockets) < matched else None
    return {
        "status": status,
        "now": now.isoformat(timespec="seconds"),
        "page": {"offset": offset, "shown": len(sockets), "total": total, "matched": matched,
                 "previous": None if previous is None else _href(query, offset=previous),
                 "next": None if following is None else _href(query, offset=following)},
        # what the filter form keeps: the sort applied (a bad one was not), the refresh asked
        "query": {"filter": query.get("filter") or "", "state": query.get("state") or "",
                  "sort": page.get("sort") or "", "refresh": query.get("refresh") or ""},
        "columns": _columns(query, page.get("sort") or "name"),
        "no_match": None if sockets else
        "No socket matches the filter." if narrowed else "No sockets yet.",
        "role": status.get("role") or "leader",
        "last": status.get("last_reconcile") or {},
        "suspended": suspended,
        "sockets": sockets,
        "state_counts": counts,
        "problems": _problems(status),
        "history": history,
        "last_applied": _last_applied(history),
    }


def _refresh(value: str | None) -> float:
    """`?refresh=SECONDS` (0.5 to 3600), the default otherwise."""
    try:
        seconds = float(value) if value else DEFAULT_REFRESH
    except ValueError:
        return DEFAULT_REFRESH
    return min(max(seconds, 0.5), 3600.0) if math.isfinite(seconds) else DEFAULT_REFRESH


def render_page(
    status: Mapping[str, Any], query: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """The page's HTML and the headers it must be served with (its CSP above all)."""
    script, script_hash = _asset("dashboard.js")
    style, style_hash = _asset("dashboard.css")
    now = datetime.now(UTC)
    config = {"refresh": _refresh((query or {}).get("refresh"))}
    html = (
        _environment()
        .get_template("dashboard.html")
        .render(
            **view(status, now, query),
            config=config,
            script=script,
            style=style,
            ago=lambda value: relative(value, now),
            connector_label=connector_label,
            tone=lambda kind, value: TONES[kind].get(value, "plain"),
        )
    )
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {script_hash}; style-src {style_hash}; "
            "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return html, headers
