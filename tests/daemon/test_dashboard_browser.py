"""The status page in a real browser: headless Chromium (Debian's `chromium` and its
`chromium-driver`) driven by selenium, over a real daemon (`run examples/ --api local`).

Skipped, with the reason, when Chromium is not installed, except in CI (CI=true), where
.ci/run installs it and the test must run. BORDER0_DASHBOARD_SCREENSHOT=FILE saves a screenshot
of the whole page.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import httpx
import pytest
from helpers import copy_examples, free_port_range, wait_for
from test_supervisor_daemon import Daemon

from reconciler.border0.api_json import socket_create_body
from reconciler.border0.emulator.store import Store
from reconciler.manifests.loader import load, read_env_file
from reconciler.secrets import load_fingerprint_key, use_fingerprint_key

#: Chromium offline: no first-run, sync, component or background requests (this machine and
#: CI have no internet), no GPU, no sandbox (CI runs as root).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
)  # fmt: skip
SOCKETS = {"analytics-db", "bastion", "docs", "grafana", "mqtt", "orders-db", "portal", "web",
           # examples/connectors: served by `border0 connector start`, no process of ours
           "billing-db", "cache", "cluster", "intranet", "jump", "lab-desktop", "windows-admin"}
BROKEN = "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: broken\n" \
    "spec:\n  type: htp\n"  # fmt: skip


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromedriver must be installed in CI (.ci/run does it)")
        pytest.skip("headless Chromium is not installed: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The system chromedriver, by path: selenium's own driver manager would go online.
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def examples_daemon(tmp_path: Path) -> Iterator[Daemon]:
    copy_examples(tmp_path / "manifests")
    # The sockets exist already, on free ports of their own: the local connectors listen on
    # them, and a fresh state hands out 20000+ as other tests' states do.
    env = read_env_file(str(tmp_path / "manifests" / "demo.env"))
    desired = load([tmp_path / "manifests"], env=env).desired
    store = Store(str(tmp_path / "local.db"), port_range=free_port_range(len(desired.sockets)))
    # fingerprinted with the key the daemon will find beside its state (tmp_path), as if it
    # had created them
    use_fingerprint_key(load_fingerprint_key(tmp_path, {}))
    try:
        for spec in desired.sockets.values():
            store.create_socket(socket_create_body(spec, "default"))
    finally:
        use_fingerprint_key(os.urandom(32))
        store.close()
    # startsecs 1 s: a restarted connector stays "restarting" (backoff 1 s + 1 s) long enough
    # for a page that refreshes every 0.5 s to show it.
    daemon = Daemon(tmp_path, "--env-file", str(tmp_path / "manifests" / "demo.env"),
                    "--connector-startsecs", "1s")  # fmt: skip
    try:
        yield daemon
    finally:
        daemon.close()


#: The rows shown (not filtered out) as the user reads them, in their order, read in one go:
#: the page re-renders while the test reads.
ROWS_JS = """return [...document.querySelectorAll('#socket-rows tr')].filter(r => !r.hidden)
  .map(r => [...r.cells].map(c => c.innerText.trim()));"""


def rows(driver) -> dict[str, list[str]]:
    """Socket name -> its cells' text, for the rows shown, in the table's order."""
    return {cells[0].splitlines()[0]: cells for cells in driver.execute_script(ROWS_JS)}


def text(driver, selector: str) -> str:
    """The visible text of the element `selector` (closed <details> content is not visible)."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector).text


def server_rows(html: str) -> list[str]:
    """The socket rows of the server-rendered page, as text, sorted."""
    body = html.split('<tbody id="socket-rows" data-part>', 1)[1].split("</tbody>", 1)[0]
    return sorted(" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split())
                  for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL))  # fmt: skip


def until(driver, predicate, message: str, timeout: float = 20.0):
    """Wait for predicate(driver) with a deadline; an element replaced by a refresh while it
    was read counts as "not yet"."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.wait import WebDriverWait

    wait = WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,))  # fmt: skip
    return wait.until(lambda d: predicate(d), message=message)


def accessibility_violations(driver) -> list[str]:
    """axe-core's WCAG 2 A and AA rules (labels, contrast, table headers, landmarks...) run in
    the page: one line per violation and element."""
    from axe_selenium_python import Axe

    axe = Axe(driver)
    axe.inject()
    results = axe.run(options='{"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa"]}}')
    return [f"{v['id']} ({v['impact']}): {v['help']}: {node['target']}"
            for v in results["violations"] for node in v["nodes"]]  # fmt: skip


@pytest.mark.slow
def test_the_page_follows_the_daemon_in_a_real_browser(examples_daemon, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    daemon, driver = examples_daemon, browser
    wait_for(daemon.status, timeout=20, message="the daemon's status server")
    driver.get(f"http://{daemon.listen}/?refresh=0.5")
    # waited for, not read at once: under a full suite's load the first read once came before
    # the page's title was there
    until(driver, lambda d: d.title == "border0-reconciler · default", "the page's title")

    # every socket, with its type, DNS name, port, state, connector and policies
    until(driver, lambda d: set(rows(d)) == SOCKETS, "every socket in the table")
    until(driver, lambda d: rows(d)["web"][5] == "running", "web's connector running", 30)
    # waited for too, not read at once: in one run under load (a full suite beside it) the
    # connector was running while the row still showed no policy
    until(driver, lambda d: rows(d)["web"][6] == "engineers, on-call", "web's policies", 30)
    web = rows(driver)["web"]
    assert web[1:3] == ["http", "web-local.border0.io"] and web[3].isdigit()
    assert web[4] == "in sync" and web[5] == "running" and web[6] == "engineers, on-call"

    # filter by text and by state, sort by a column: the server's answer for every socket
    driver.find_element(By.ID, "filter-text").send_keys("db")
    until(driver, lambda d: set(rows(d)) == {"analytics-db", "billing-db", "orders-db"},
          "text filter")
    assert "filter=db" in driver.current_url  # the query, so a reload or a link keeps it
    driver.find_element(By.ID, "filter-text").clear()
    driver.find_element(By.ID, "filter-text").send_keys("\b")  # fires input on an empty box
    Select(driver.find_element(By.ID, "filter-state")).select_by_visible_text("error")
    until(driver, lambda d: not rows(d) and d.find_element(By.ID, "no-match").is_displayed(),
          "no socket in error")  # fmt: skip
    Select(driver.find_element(By.ID, "filter-state")).select_by_visible_text("all")
    until(driver, lambda d: set(rows(d)) == SOCKETS, "filters cleared")
    driver.find_element(By.CSS_SELECTOR, 'th[data-key="ports"] a').click()
    until(driver, lambda d: d.find_element(By.CSS_SELECTOR, 'th[data-key="ports"]')
          .get_attribute("aria-sort") == "ascending", "sorted by port")  # fmt: skip
    ports = [int(cells[3]) for cells in rows(driver).values()]
    assert ports == sorted(ports) and set(rows(driver)) == SOCKETS

    # a connector killed by hand: restarting, then running again with one restart
    os.kill(daemon.connector("web")["pid"], signal.SIGKILL)
    until(driver, lambda d: rows(d)["web"][5].startswith("restarting"), "web restarting")
    until(driver, lambda d: rows(d)["web"][5].startswith("running 1 restart"), "web running again")
    assert "killed by signal 9" in rows(driver)["web"][5]

    # an invalid manifest: its file:line:column among the problems, the last good state kept
    broken = tmp_path / "manifests" / "sockets" / "broken.yaml"
    broken.write_text(BROKEN)
    problems = until(driver, lambda d: d.find_element(By.ID, "problems").is_displayed()
                     and text(d, "#problem-list"), "the invalid manifest among the problems")
    assert "manifests/sockets/broken.yaml:6:9: error: spec.type: 'htp' is not one of" in problems
    assert driver.title == "(1 problem) border0-reconciler · default"
    assert set(rows(driver)) == SOCKETS
    newest = until(driver, lambda d: text(d, "#history > li:first-child summary"), "history")
    assert "invalid" in newest and "change" in newest

    # each reconcile expands to its changes (kept open across refreshes); the first one
    # created the policies and attached them
    first = "#history > li:last-child"
    until(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"{first} summary").click() or True,
          "a click on the first reconcile")  # fmt: skip
    details = until(driver, lambda d: text(d, f"{first} div.detail"), "the first one expanded")
    assert "create policy engineers" in details
    assert "attach policy engineers to socket web" in details
    violations = accessibility_violations(driver)  # problems, a restart, an opened reconcile
    assert violations == [], violations
    shot = os.environ.get("BORDER0_DASHBOARD_SCREENSHOT")
    if shot:  # the whole page, a problem showing
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, height + 120)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(shot)

    # the fix: the problem goes, a new reconcile tops the history, the expanded one stays open
    broken.unlink()
    until(driver, lambda d: not d.find_element(By.ID, "problems").is_displayed(), "fixed")
    until(driver, lambda d: "success" in text(d, "#history > li:first-child summary"), "success")
    assert text(driver, f"{first} div.detail") == details

    # the script renders the rows as the server does (the same page without JavaScript)
    served = httpx.get(f"http://{daemon.listen}/", timeout=10).text
    shown = [" ".join(" ".join(cells).split()) for cells in rows(driver).values()]
    assert sorted(shown) == server_rows(served)

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors

    # the daemon gone: the page says its data is no longer current
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=20) == 0
    stale = until(driver, lambda d: "Not updated" in text(d, "#updated") and text(d, "#updated"),
                  "the page to say it is stale")  # fmt: skip
    assert "Retrying every 0.5 s" in stale and set(rows(driver)) == SOCKETS  # last data kept
