"""The status page's server-side render (what a browser without JavaScript gets), over real HTTP
on a loopback port. The browser itself is in test_dashboard_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from test_status_server import Source

from reconciler.daemon.status_server import StatusServer

VOID = {"meta", "link", "input", "br", "img", "hr", "source", "wbr"}


class Page(HTMLParser):
    """The page parsed: each element with an id -> its text; the attributes of every tag."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stack: list[tuple[str, str | None]] = []
        self.text: dict[str, str] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._raw: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self.handle_data(" ")  # words in two elements stay two words
        if tag in ("script", "style"):
            self._raw = []
        if tag not in VOID:
            self.stack.append((tag, attributes.get("id")))
            if attributes.get("id"):
                self.text[attributes["id"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if self._raw is not None and tag in ("script", "style"):
            attrs = next(a for t, a in reversed(self.tags) if t == tag)
            if tag == "style":
                self.styles.append("".join(self._raw))
            elif attrs.get("type") != "application/json":
                self.scripts.append("".join(self._raw))
            self._raw = None
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._raw is not None and data != " ":
            self._raw.append(data)
        for _, element_id in self.stack:
            if element_id:
                self.text[element_id] += data

    def words(self, element_id: str) -> str:
        return " ".join(self.text[element_id].split())


STATUS: dict[str, Any] = {
    "version": "0.1.0", "instance": "prod", "path": "/git/manifests", "dry_run": False,
    "ready": False, "revision": "3f9c0123456789abcdef", "consecutive_failures": 3,
    "next_resync": "2030-01-01T00:05:00.000+00:00", "next_retry": None,
    "last_reconcile": None,  # set below: the newest history entry
    "sockets": [
        {"name": "web", "type": "http", "dns_name": "web-prod.border0.io", "ports": [20001],
         "description": "the <b>web</b>", "state": "in-sync", "policies": ["ops", "staff"],
         "connector": "RUNNING", "connector_restarts": 0, "connector_error": None},
        {"name": "db", "type": "database", "dns_name": "db-prod.border0.io", "ports": [20002],
         "description": "", "state": "out-of-sync", "policies": [], "connector": "BACKOFF",
         "connector_restarts": 2, "connector_error": "killed by signal 9"},
        {"name": "box", "type": "ssh", "dns_name": None, "ports": [], "description": "",
         "state": "error", "policies": ["ops"], "connector": "FATAL", "connector_restarts": 5,
         "connector_error": "cannot start: no border0 binary; gave up after 5 failed starts"},
    ],
    "connectors": [
        {"socket": "box", "state": "FATAL", "restarts": 5, "since": "2030-01-01T00:00:00.000+00:00",
         "last_error": "cannot start: no border0 binary; gave up after 5 failed starts"},
    ],
    "errors": ["sockets/bad.yaml:3:1: error: kind: 'Sockt' is not one of Socket, Policy",
               "listing border0 failed: 503 Service Unavailable"],
    "history": [
        {"time": "2030-01-01T00:01:00.000+00:00", "trigger": "retry", "result": "failure",
         "stage": "fetch", "revision": "3f9c0123456789abcdef", "duration_seconds": 2.5,
         "summary": None, "changes": [], "drift": 0, "drift_corrected": [],
         "error": "listing border0 failed: 503 Service Unavailable"},
        {"time": "2030-01-01T00:00:00.000+00:00", "trigger": "interval", "result": "success",
         "stage": "done", "revision": "3f9c0123456789abcdef", "duration_seconds": 0.2,
         "summary": {"update": 1}, "drift": 1, "error": None,
         "changes": [{"action": "update", "kind": "socket", "name": "web", "ok": True,
                      "title": "update socket web"},
                     {"action": "attach", "kind": "attachment", "name": "web/ops", "ok": False,
                      "title": "attach policy ops to socket web", "message": "failed: 500"}],
         "drift_corrected": [{"action": "update", "kind": "socket", "name": "web",
                              "title": "update socket web"}],
         "access_changes": [{"socket": "web", "change": "gain", "principal_type": "email",
                             "principal": "eve@example.com", "action": "http",
                             "policies": [{"name": "ops", "cause": "attached"}],
                             "before": None, "after": [{}]}]},
    ],
}  # fmt: skip
STATUS["last_reconcile"] = STATUS["history"][0]
STATUS.update({
    "role": "leader", "last_success": None, "data_as_of": None, "stale": False, "reconciles": 2,
    "triggers": 2, "in_flight": None, "held_back": None, "sync_windows": None,
    "counts": {"sockets": 3, "policies": 0, "states": [
        {"kind": "socket", "state": s, "count": 1} for s in ("error", "in-sync", "out-of-sync")]},
    "page": {"offset": 0, "limit": None}, "policies": [], "blocked": [],
    "error_details": [
        {"source": "manifests", "kind": None, "name": None, "code": "schema",
         "message": "kind: 'Sockt' is not one of Socket, Policy", "where": "sockets/bad.yaml:3:1"},
        {"source": "reconcile", "kind": None, "name": None, "code": "reconcile-failed",
         "message": "listing border0 failed: 503 Service Unavailable", "where": None},
    ],
})
STATUS["connectors"][0].update({"pid": None, "last_exit_code": 1})
for _i, _row in enumerate(STATUS["sockets"]):
    _row["socket_id"] = f"id-{_i}"


def test_the_page_reads_what_the_status_schema_defines():
    from reconciler.daemon.status import status_problems

    assert status_problems({**STATUS, "suspended": []}) == []  # (left out: an older daemon)


@pytest.fixture(scope="module")
def server():
    """One server for the module (stopping one takes up to a second)."""
    source = Source()
    redact = lambda s: s.replace("hunter2", "(sensitive)")
    served = StatusServer(source, "127.0.0.1:0", redact=redact)
    host, port = served.bind()
    served.start()
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=5) as client:
        yield source, client
    served.stop()


@pytest.fixture
def page(server):
    source, client = server
    source.data = json.loads(json.dumps(STATUS))  # a fresh copy for each test
    return source, client


def test_the_first_render_shows_everything_without_javascript(page):
    _, client = page
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>(3 problems) border0-reconciler · prod</title>" in response.text
    html = Page(response.text)
    assert html.words("role") == "leader"  # no leader election yet: /status names no role
    assert html.words("ready") == "not ready"
    assert html.words("revision") == "3f9c01234567"
    assert html.words("last").startswith("failure retry,")
    assert "reconciling now" not in html.words("last")
    assert html.words("next").startswith("in ")  # 2030
    assert ("dd", {"id": "suspended", "data-part": None, "hidden": None}) in html.tags  # none
    rows = [a for t, a in html.tags if t == "tr" and "data-state" in a]
    assert [r["data-state"] for r in rows] == ["in-sync", "drifted", "error"]
    sockets = html.words("socket-rows")
    assert "web the <b>web</b> http web-prod.border0.io 20001 in sync running ops, staff" in sockets
    assert "db database db-prod.border0.io 20002 drifted restarting 2 restarts killed by signal 9" \
        in sockets  # fmt: skip
    assert "box ssh - - error fatal 5 restarts cannot start: no border0 binary" in sockets
    assert [a.get("class") for a in rows] == [None, None, "failing"]

    problems = html.words("problem-list")
    assert "connector box: FATAL: cannot start: no border0 binary" in problems
    assert "reconcile (fetch): failing 3 time(s) in a row: listing border0 failed: 503" in problems
    assert "sockets/bad.yaml:3:1: error: kind: 'Sockt' is not one of Socket, Policy" in problems
    assert problems.count("listing border0 failed") == 1
    assert ("code", {}) in html.tags  # the file:line:column set apart

    history = html.words("history")
    assert "failure retry · 2.5 s · 0 change(s) · 0 drift corrected · 3f9c01234567" in history
    assert "update socket web attach policy ops to socket web — failed: failed: 500" in history
    assert "Drift corrected update socket web" in history
    assert "gain: email eve@example.com — http on web" in history
    assert html.words("access").endswith("gain email eve@example.com http web ops")


def test_a_role_and_a_suspended_count_from_status_are_shown(page):
    source, client = page
    source.data.update(role="follower", suspended=["web", "db"], in_flight={"trigger": "SIGHUP"})
    html = Page(client.get("/").text)
    assert html.words("last").endswith("; reconciling now SIGHUP")
    assert html.words("role") == "follower" and html.words("suspended") == "2"
    assert ("dt", {"id": "suspended-term", "data-part": None}) in html.tags


def test_an_invalid_reconcile_s_own_error_is_a_problem(page):
    source, client = page
    error = "--instance must be a DNS label, got 'Bad Name'"
    source.data.update(connectors=[], errors=[error], consecutive_failures=0, error_details=[
        {"source": "reconcile", "kind": None, "name": None, "code": "reconcile-failed",
         "message": error, "where": None}])
    source.data["last_reconcile"] = {**STATUS["history"][0], "result": "invalid", "error": error}
    html = Page(client.get("/").text)
    assert html.words("problem-list") == error


def test_changes_held_back_until_the_files_settle_are_problems(page):
    source, client = page
    source.data.update(connectors=[], errors=[], error_details=[], held_back={
        "until": "2030-01-01T00:00:05.000+00:00",
        "changes": [{"kind": "policy", "name": "office", "action": "update", "why": "access"}]})
    html = Page(client.get("/").text)
    assert "held back (access): update policy office until the manifests settle " \
        "(2030-01-01T00:00:05.000+00:00)" in html.words("problem-list")  # fmt: skip


def test_the_page_loads_nothing_from_elsewhere_and_runs_only_its_own_script(page):
    _, client = page
    response = client.get("/")
    html = Page(response.text)
    policy = response.headers["content-security-policy"]
    csp = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert csp["default-src"] == "'none'" and csp["connect-src"] == "'self'"

    def digest(text: str) -> str:
        return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"

    [script], [style] = html.scripts, html.styles
    assert csp["script-src"] == digest(script) and csp["style-src"] == digest(style)
    assert not re.search(r"https?://", response.text)  # no CDN, no other origin
    assert all("src" not in attrs for _, attrs in html.tags)
    hrefs = {a["href"] for t, a in html.tags if "href" in a}
    assert {h for h in hrefs if not h.startswith("?")} == {"data:,", "status"}  # else itself
    assert all("style" not in attrs for _, attrs in html.tags)  # the CSP would block them
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_the_page_changes_nothing(page):
    source, client = page
    before = json.dumps(source.data, sort_keys=True)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.request(method, "/").status_code == 405
    html = Page(client.get("/").text)
    forms = [a for t, a in html.tags if t == "form"]
    # the filter asks for this page again: no action, no POST
    assert forms == [{"class": "filters", "id": "filters", "method": "get"}]
    assert {a.get("type") for t, a in html.tags if t == "button"} == {"submit"}
    assert json.dumps(source.data, sort_keys=True) == before


def test_values_are_escaped_and_secrets_redacted(page):
    source, client = page
    source.data["sockets"][0]["description"] = '<img src=x onerror="alert(1)">'
    source.data["history"][0]["trigger"] = "change: </script><script>alert(2)</script>"
    source.data["sockets"][1]["connector_error"] = "exit: password hunter2 rejected"
    text = client.get("/").text
    assert "<img src=x" not in text and "&lt;img src=x onerror=" in text
    assert "<script>alert(2)" not in text
    assert "hunter2" not in text and "password (sensitive) rejected" in text


@pytest.mark.parametrize("given, used", [("0.1", 0.5), ("abc", 3.0), ("20", 20.0), ("nan", 3.0),
                                         ("1e9", 3600.0), (None, 3.0)])  # fmt: skip
def test_the_refresh_interval_is_bounded(page, given, used):
    _, client = page
    html = client.get("/", params={"refresh": given} if given else None).text
    config = re.search(r'<script type="application/json" id="dashboard-config">(.*?)<', html)
    assert json.loads(config.group(1))["refresh"] == used


def test_the_page_shows_one_page_of_sockets_and_counts_them_all(page):
    from reconciler.daemon.dashboard import PAGE_ROWS

    source, client = page
    row = STATUS["sockets"][0]
    source.data.update(
        sockets=[{**row, "name": f"s{i:04}"} for i in range(PAGE_ROWS)],
        counts={"sockets": 10_000, "policies": 0,
                "states": [{"kind": "socket", "state": "in-sync", "count": 10_000}]},
        page={"offset": 400, "limit": PAGE_ROWS})
    html = Page(client.get("/", params={"offset": 400}).text)
    assert (source.page.offset, source.page.limit) == (400, PAGE_ROWS)  # never all 10,000
    assert html.words("socket-count") == "10000"
    shown = f"Sockets 401–{400 + PAGE_ROWS} of 10000 previous next"
    assert html.words("pager") == shown  # (a daemon from before `matched`: the whole count)
    assert {a["href"] for t, a in html.tags if t == "a"} >= {
        f"?offset={400 - PAGE_ROWS}", f"?offset={400 + PAGE_ROWS}"}
    assert html.text["socket-rows"].count("s0") == PAGE_ROWS


def test_the_view_has_one_home_and_the_script_only_swaps_it_in(page):
    """The refresh asks for this page again and replaces each `data-part` with the server's
    rendering: the script draws nothing, formats no time, labels no state."""
    source, client = page
    first = Page(client.get("/").text)
    parts = [a["id"] for t, a in first.tags if "data-part" in a]
    assert len(parts) == len(set(parts)) and {"socket-rows", "problems", "history"} <= set(parts)
    # what it shows is the server's: relative times, labels, problems
    assert first.words("next").startswith("in ") and "running" in first.words("socket-rows")
    source.data["sockets"][0]["state"] = "error"
    again = Page(client.get("/").text)
    assert again.words("socket-rows").startswith(
        "web the <b>web</b> http web-prod.border0.io 20001 error running")
    [script] = first.scripts
    for drawing in ("createElement", "relative", "Date.parse", "innerHTML", "FATAL", "RegExp",
                    "toLocale", "textContent = `${"):
        assert drawing not in script, drawing
    assert "data-part" in script and "replaceWith" in script
    assert client.get("/", params={"view": "json"}).headers["content-type"].startswith(
        "text/html")  # the JSON copy of the view is gone: one view
