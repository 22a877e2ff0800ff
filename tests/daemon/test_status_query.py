"""Sort and filter across pages (issue 25): `/status?sort=&filter=&state=&limit=&offset=` order
and narrow every socket before the page is cut, and the status page's sort links and filter form
are those parameters, so a user sorting or filtering page 1 of 10,000 sockets sees the whole
list's answer. A real daemon in this process against the emulator, over real HTTP."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from helpers import refuse_writes
from test_daemon import socket_yaml

from reconciler.daemon.dashboard import PAGE_ROWS
from reconciler.daemon.loop import Daemon, DaemonConfig
from reconciler.daemon.status import status_problems

#: 12 sockets: the ones with "blue" in their description are spread over the whole list.
NAMES = [f"s{i:02}" for i in range(12)]
BLUE = {"s01", "s05", "s10", "s11"}


def _daemon(tmp_path: Path, emulator, *, dry_run: bool = False) -> Daemon:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name in NAMES:
        colour = "blue" if name in BLUE else "green"
        (manifests / f"{name}.yaml").write_text(socket_yaml(name, f"the {colour} one"))
    return Daemon(DaemonConfig(path=str(manifests), listen=None, dry_run=dry_run),
                  emulator.client(), revision_fn=lambda p: None)


@pytest.fixture
def http(tmp_path, emulator, status_server):
    daemon = _daemon(tmp_path, emulator)
    assert daemon.reconcile_now(["start"]).ok
    return status_server(daemon.view)


def names(document: dict) -> list[str]:
    return [s["name"] for s in document["sockets"]]


def test_the_filter_applies_to_every_socket_before_the_page(http):
    first = http.get("/status", params={"filter": "BLUE", "limit": 2}).json()
    assert names(first) == ["s01", "s05"]
    assert first["page"] == {"offset": 0, "limit": 2, "sort": None, "filter": "BLUE",
                             "state": [], "matched": 4}
    assert first["counts"]["sockets"] == 12  # the counts stay whole
    second = http.get("/status", params={"filter": "blue", "limit": 2, "offset": 2}).json()
    assert names(second) == ["s10", "s11"]
    assert status_problems(first) == [] and status_problems(second) == []


def test_the_sort_orders_every_socket_before_the_page(http):
    top = http.get("/status", params={"sort": "-name", "limit": 3}).json()
    assert names(top) == ["s11", "s10", "s09"]  # not the first page's three, reversed
    by_port = http.get("/status", params={"sort": "ports"}).json()["sockets"]
    ports = [s["ports"][0] for s in by_port]
    assert ports == sorted(ports) and len(ports) == 12
    assert names(http.get("/status", params={"sort": "-ports", "limit": 1}).json()) == [
        by_port[-1]["name"]]


def test_the_state_narrows_to_those_states(http):
    assert len(http.get("/status", params={"state": "in-sync"}).json()["sockets"]) == 12
    none = http.get("/status", params={"state": "error,out-of-sync"}).json()
    assert none["sockets"] == [] and none["page"]["matched"] == 0


@pytest.mark.parametrize("query, error", [
    ({"sort": "colour"}, ("sort must be one of name, type, dns_name, ports, state, connector, "
     "policies (- in front: descending), not 'colour'")),
    ({"state": "in-sync,sideways"}, ("state must be one of in-sync, out-of-sync, missing, "
     "error, to-delete, suspended, blocked (several: comma-separated), not 'sideways'")),
])  # fmt: skip
def test_a_bad_sort_or_state_is_a_400_with_one_line(http, query, error):
    answer = http.get("/status", params=query)
    assert answer.status_code == 400 and answer.json() == {"error": error}


def rows(html: str) -> list[str]:
    body = html.split('<tbody id="socket-rows" data-part>', 1)[1].split("</tbody>", 1)[0]
    return [unescape(m) for m in re.findall(r"<strong>(.*?)</strong>", body)]


def test_the_page_sorts_and_filters_across_its_pages(http):
    """The page's own links and form are the query: a sort or filter is the whole list's."""
    html = http.get("/", params={"sort": "-name", "filter": "blue", "refresh": "5"}).text
    assert rows(html) == ["s11", "s10", "s05", "s01"]
    name_heading = re.search(r'<th scope="col" data-key="name"([^>]*)><a href="([^"]+)"', html)
    assert name_heading.group(1) == ' aria-sort="descending"'
    # the heading's link turns the order and keeps the filter (and the refresh asked for)
    assert unescape(name_heading.group(2)) == "?sort=name&filter=blue&refresh=5"
    assert 'name="filter" type="search" value="blue"' in html
    assert '<input type="hidden" name="sort" value="-name">' in html
    assert rows(http.get("/", params={"sort": "name", "filter": "blue"}).text) == [
        "s01", "s05", "s10", "s11"]


def test_the_page_s_pager_keeps_the_query(http):
    html = http.get("/", params={"limit": 2, "sort": "-name", "offset": 2}).text
    assert rows(html) == ["s09", "s08"]
    links = [unescape(h) for h in re.findall(r'<a href="(\?[^"]*offset[^"]*)"', html)]
    assert links == ["?sort=-name&limit=2&offset=0", "?sort=-name&limit=2&offset=4"]
    assert "Sockets 3–4 of 12" in html


def test_the_page_s_state_filter_is_its_own_labels(tmp_path, emulator, status_server):
    """`drifted` on the page is three /status states; in a dry run nothing is created yet."""
    daemon = _daemon(tmp_path, emulator, dry_run=True)
    daemon.reconcile_now(["start"])
    http = status_server(daemon.view)
    drifted = http.get("/", params={"state": "drifted"}).text
    assert len(rows(drifted)) == 12 and '<option value="drifted" selected>' in drifted
    in_sync = http.get("/", params={"state": "in-sync"}).text
    assert rows(in_sync) == [] and "No socket matches the filter." in in_sync
    # a bad value shows the first page, as before, rather than an error page
    assert len(rows(http.get("/", params={"sort": "x"}).text)) == min(12, PAGE_ROWS)


def test_a_reversed_sort_keeps_rows_without_the_value_last_and_pending_counts_what_failed(
        tmp_path, emulator, status_server):
    """Four creates, border0 refusing one: `/status?sort=-ports` is the highest ports first, the
    refused socket (no ports) last, as in ascending order (reversing put it first); and
    `drift_pending` is the one change not applied, not all four."""
    refuse_writes(emulator, {"bad"})
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name in ("a", "b", "c", "bad"):
        (manifests / f"{name}.yaml").write_text(socket_yaml(name, name))
    daemon = Daemon(DaemonConfig(path=str(manifests), listen=None), emulator.client(),
                    revision_fn=lambda p: None)
    assert not daemon.reconcile_now(["start"]).ok
    http = status_server(daemon.view)
    for sort in ("ports", "-ports"):
        rows = http.get("/status", params={"sort": sort}).json()["sockets"]
        assert [r["name"] for r in rows][-1] == "bad" and rows[0]["ports"], sort
    pending = [line for line in http.get("/metrics").text.splitlines()
               if line.startswith("border0_reconciler_drift_pending ")]
    assert pending == ["border0_reconciler_drift_pending 1.0"]
