"""The local connector as a real child process: TCP forwarding, directory serving, supervision."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from helpers import cli, free_port, wait_for

from reconciler.connectors.argv import LOCAL_CONNECTOR_TEMPLATE
from reconciler.connectors.supervisor import ConnectorTarget, State, Supervisor
from reconciler.model import ConnectorSpec


@pytest.fixture
def run_connector():
    procs: list[subprocess.Popen] = []

    def run(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "local-connector", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def get(url: str, **kwargs) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5, **kwargs)
    except httpx.TransportError:
        return None


@pytest.mark.slow
def test_forwards_http_to_the_upstream_and_stops_cleanly_on_sigterm(run_connector, upstream):
    port = free_port()
    proc = run_connector("web", "--listen-port", str(port), "--host", "127.0.0.1",
                         "--port", str(upstream))
    resp = wait_for(lambda: get(f"http://127.0.0.1:{port}/hello?x=1"), timeout=15)
    assert resp.status_code == 200 and resp.text == "upstream saw /hello?x=1"
    # Both directions carry a larger body, and several connections in a row work.
    body = os.urandom(300_000).hex()
    for _ in range(3):
        echoed = httpx.post(f"http://127.0.0.1:{port}/echo", content=body, timeout=10)
        assert echoed.text == body
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert f"listening on 127.0.0.1:{port}, forwarding to 127.0.0.1:{upstream}" in err


@pytest.mark.slow
def test_unreachable_upstream_closes_the_client_and_keeps_listening(run_connector):
    port, dead = free_port(), free_port()
    proc = run_connector("web", "--listen-port", str(port), "--host", "127.0.0.1",
                         "--port", str(dead))
    wait_for(lambda: _connectable(port), timeout=15)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.recv(10) == b""  # closed: nothing to forward to
    assert proc.poll() is None
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "cannot reach 127.0.0.1" in err


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_serves_a_directory_with_httpserver(run_connector, tmp_path):
    (tmp_path / "index.html").write_text("<h1>served by the local connector</h1>")
    port = free_port()
    proc = run_connector("site", "--listen-port", str(port), "--httpserver",
                         "--httpserver-dir", str(tmp_path))
    resp = wait_for(lambda: get(f"http://127.0.0.1:{port}/index.html"), timeout=15)
    assert resp.status_code == 200 and "served by the local connector" in resp.text
    assert get(f"http://127.0.0.1:{port}/missing").status_code == 404
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert f"listening on 127.0.0.1:{port}, serving directory {tmp_path}" in err


def test_user_errors_are_one_line():
    code, _, err = cli(["local-connector", "web", "--listen-port", str(free_port())])
    assert code == 1
    assert err.strip() == "error: --port is required unless --httpserver or --sshserver is given"

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        code, _, err = cli(["local-connector", "web", "--listen-port", str(taken), "--port", "80"])
    assert code == 1
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{taken}")
    assert "Traceback" not in err


@pytest.mark.slow
def test_supervised_local_connector_carries_traffic_again_after_a_kill(upstream):
    port = free_port()
    sup = Supervisor(command_template=LOCAL_CONNECTOR_TEMPLATE, startsecs=0.3, backoff_base=0.1)
    try:
        spec = ConnectorSpec(host="127.0.0.1", port=upstream)
        sup.sync({"web": ConnectorTarget("web", spec, "http", "sid", (port,))})
        resp = wait_for(lambda: get(f"http://127.0.0.1:{port}/one"), timeout=15)
        assert resp.text == "upstream saw /one"
        first = wait_for(lambda: [s for s in sup.status() if s.state is State.RUNNING])[0]
        os.kill(first.pid, signal.SIGKILL)
        wait_for(lambda: sup.status()[0].pid not in (None, first.pid), timeout=15)
        resp = wait_for(lambda: get(f"http://127.0.0.1:{port}/two"), timeout=15)
        assert resp.text == "upstream saw /two"
        assert sup.status()[0].restarts == 1
    finally:
        sup.stop_all()
    assert get(f"http://127.0.0.1:{port}/three") is None


@pytest.mark.slow
def test_sshserver_stands_in_by_forwarding_to_the_local_sshd(run_connector, upstream):
    """The built-in ssh server is not emulated: `--sshserver` forwards to this machine's sshd,
    port 22 unless --port says otherwise (here a test server stands in for sshd)."""
    port = free_port()
    proc = run_connector("bastion", "--listen-port", str(port), "--sshserver",
                         "--host", "127.0.0.1", "--port", str(upstream))
    resp = wait_for(lambda: get(f"http://127.0.0.1:{port}/through-ssh"), timeout=15)
    assert resp.text == "upstream saw /through-ssh"
    proc.terminate()
    proc.communicate(timeout=10)

    port = free_port()
    proc = run_connector("bastion", "--listen-port", str(port), "--sshserver")
    wait_for(lambda: _connects(port), timeout=15, message="listening without --port")
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert (f"listening on 127.0.0.1:{port}, forwarding to localhost:22 "
            "(stand-in for the built-in ssh server)") in err


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
