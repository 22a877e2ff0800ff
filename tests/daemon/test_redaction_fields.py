"""Redaction works on fields, not on text (issue 23, item 3).

Before: with PG_USER=app in the env file, socket names showed as `web(sensitive)` and
`(sensitive)-pg` in logs, /status and the dashboard, descriptions were garbled, and the
dashboard's inline CSS and JS were rewritten (`el.(sensitive)end`): their CSP hashes no longer
matched and the page loaded unstyled and dead. A real daemon (`run --api local`), its real
connector child, /status, /metrics, its log and the page in headless Chromium.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import wait_for
from test_dashboard_browser import browser, rows, until  # noqa: F401 - the browser fixture
from test_supervisor_daemon import Daemon

from reconciler.daemon.logs import RedactFilter
from reconciler.daemon.state import secret_values
from reconciler.manifests.loader import load

PASSWORD = "s3cret-Pw!"
ENV = f"PG_USER=app\nPG_HOST=postgres\nPG_PASSWORD={PASSWORD}\n"
MANIFESTS = """apiVersion: border0-reconciler/v1
kind: Socket
metadata:
  name: web-app
spec:
  type: http
  description: the app front end, on postgres
  connector:
    host: 127.0.0.1
    port: 9
---
apiVersion: border0-reconciler/v1
kind: Socket
metadata:
  name: app-pg
spec:
  type: database
  description: postgres of app (admin app)
  upstream:
    type: postgres
    username: {env: PG_USER}
    password: {env: PG_PASSWORD}
"""
#: A connector that says the password in its output, as a failing login might.
CONNECTOR = ('{python} -c "import time; print(\'login as app to postgres with ' + PASSWORD
             + ' refused\', flush=True); time.sleep(60)" {name}')


@pytest.fixture
def pg_daemon(tmp_path: Path) -> Iterator[Daemon]:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "sockets.yaml").write_text(MANIFESTS)
    (tmp_path / "pg.env").write_text(ENV)
    daemon = Daemon(tmp_path, "--env-file", str(tmp_path / "pg.env"),
                    "--connector-command", CONNECTOR, "--log-level", "debug")
    try:
        yield daemon
    finally:
        daemon.close()


@pytest.mark.slow
def test_usernames_and_hosts_show_unchanged_and_the_password_nowhere(pg_daemon, browser):  # noqa: F811
    daemon = pg_daemon
    status = wait_for(lambda: (s := daemon.status()) and s.get("last_success") and s, 60,
                      message="the first reconcile")
    wait_for(lambda: "refused" in daemon.output(), 30, message="the connector's output logged")
    base = f"http://{daemon.listen}"
    status_text = httpx.get(f"{base}/status").text
    metrics = httpx.get(f"{base}/metrics").text
    log = daemon.output()

    by_name = {s["name"]: s for s in status["sockets"]}
    assert set(by_name) == {"web-app", "app-pg"}
    assert by_name["web-app"]["description"] == "the app front end, on postgres"
    assert by_name["app-pg"]["description"] == "postgres of app (admin app)"
    assert "web-app" in log and "app-pg" in log
    assert "login as app to postgres with (sensitive) refused" in log  # the last-resort scrub
    for text in (status_text, metrics, log):
        assert PASSWORD not in text
        assert "web(sensitive)" not in text and "(sensitive)-pg" not in text

    browser.get(f"{base}/?refresh=0.5")
    until(browser, lambda d: set(rows(d)) == {"web-app", "app-pg"}, "both sockets in the table")
    # the script runs (it replaces the server's "Rendered" line) and the style applies
    until(browser, lambda d: d.find_element("id", "updated").text.startswith("Updated "),
          "the page's script to refresh it")
    assert browser.execute_script(
        "return getComputedStyle(document.body).fontSize") == "15px"
    refused = [e["message"] for e in browser.get_log("browser")
               if "Content Security Policy" in e["message"]]
    assert refused == []
    page = browser.page_source
    assert "the app front end, on postgres" in page and "postgres of app (admin app)" in page
    assert PASSWORD not in page and "(sensitive)" not in page


TYPED = """apiVersion: border0-reconciler/v1
kind: Socket
metadata:
  name: typed-db
spec:
  type: database
  upstream:
    serviceType: database
    databaseServiceConfiguration:
      databaseServiceType: standard
      standardDatabaseServiceConfiguration:
        hostname: db.internal
        port: 5432
        protocol: postgres
        authenticationType: username_and_password
        usernameAndPasswordAuthConfiguration:
          username: app
          password: {env: TYPED_PW}
---
apiVersion: border0-reconciler/v1
kind: Socket
metadata:
  name: cluster
spec:
  type: kubernetes
  upstream:
    serviceType: kubernetes
    kubernetesServiceConfiguration:
      kubernetesServiceType: standard
      standardKubernetesServiceConfiguration:
        server: https://k8s.internal:6443
        token: {env: K8S_TOKEN}
"""


def test_the_secrets_of_a_typed_upstream_are_scrubbed_from_the_log(tmp_path: Path) -> None:
    """A typed upstream's password and token are secret by nature, as the legacy password
    is: the last-resort scrub of the daemon's log (and of its connectors' output, fed from
    the same values) looks for them too. It knew only the legacy and basic-auth secrets."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "sockets.yaml").write_text(TYPED)
    secrets = {"TYPED_PW": "Typed-Passw0rd-4711", "K8S_TOKEN": "K8s-Token-abcdef-4711"}
    loaded = load([tmp_path / "m"], env=secrets)
    assert loaded.ok, [str(d) for d in loaded.diagnostics]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    scrub = RedactFilter()
    scrub.set_secrets(secret_values(loaded.desired))
    handler.addFilter(scrub)
    log = logging.getLogger(f"test-typed-scrub-{id(tmp_path)}")
    log.addHandler(handler)
    log.error("upstream refused login: password %s", secrets["TYPED_PW"])
    log.error("kubernetes said: bad bearer token %s", secrets["K8S_TOKEN"])
    assert out.getvalue() == ("upstream refused login: password (sensitive)\n"
                              "kubernetes said: bad bearer token (sensitive)\n")
