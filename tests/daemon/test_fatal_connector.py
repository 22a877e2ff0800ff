"""A connector that goes FATAL is visible everywhere: `status` (its table and reason), /status
errors, /readyz, /metrics, and one notification. Real parts: the emulator over HTTP, the real
supervisor spawning a connector command that cannot start (no such binary, like a host without
`border0`), the real status server, a real webhook receiver, `status` as a child process."""

from __future__ import annotations

import httpx
import pytest
import test_notify
from helpers import cli, wait_for
from test_daemon import socket_yaml

from reconciler.connectors.supervisor import Supervisor
from reconciler.daemon.loop import Daemon, DaemonConfig

receiver = test_notify.receiver  # a fixture, shared


@pytest.mark.slow
def test_a_fatal_connector_is_shown_in_status_readyz_metrics_and_notified_once(
    emulator, tmp_path, running, receiver
):
    hook = receiver()
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(socket_yaml("web", "x", connector=True))
    supervisor = Supervisor(command_template=f"{tmp_path}/no-such-dir/border0 socket connect {{name}}",
                            fatal_after=1, startsecs=0.2)
    config = DaemonConfig(path=str(manifests), listen="127.0.0.1:0", interval=0.3, jitter=0)
    daemon = running(Daemon(config, emulator.client(), supervisor=supervisor,
                            reporter=test_notify.reporter_for(hook.url)))
    wait_for(lambda: daemon.server is not None and daemon.server.address, message="listening")
    host, port = daemon.server.address
    http = httpx.Client(base_url=f"http://{host}:{port}", timeout=10)

    status = wait_for(lambda: (s := http.get("/status").json())["errors"] and s, timeout=15,
                      message="the FATAL connector in /status errors")
    assert status["errors"][0].startswith("connector web is FATAL: ")
    assert "no-such-dir" in status["errors"][0] or "No such file" in status["errors"][0]
    assert status["sockets"][0]["connector"] == "FATAL"
    assert http.get("/readyz").json()["fatal_connectors"] == ["web"]
    assert "border0_reconciler_connectors_fatal 1.0" in http.get("/metrics").text

    page = http.get("/").text  # the status page: one problem, not one per place it is listed
    assert page.count("FATAL: cannot start") == 1 and "(1 problem)" in page

    code, out, err = cli(["status", "--listen", f"{host}:{port}"])
    assert code == 0, err
    assert "FATAL" in out and "error: connector web is FATAL: " in out

    wait_for(lambda: hook.events("connector_fatal"), message="the FATAL notification")
    start = daemon.reconciles_run
    wait_for(lambda: daemon.reconciles_run >= start + 3, message="three more reconciles")
    daemon.reporter.notifier.stop()
    assert len(hook.events("connector_fatal")) == 1  # once, not once per reconcile
    message = hook.events("connector_fatal")[0]
    assert message["sockets"] == ["web"] and message["details"][0].startswith("web: cannot start")
    http.close()
