"""The HTTP endpoints over real HTTP on a loopback port, and the `status` table."""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from typing import Any

import httpx
import pytest
from helpers import wait_for
from prometheus_client.parser import text_string_to_metric_families

from reconciler.cli.run import format_status_table
from reconciler.daemon.metrics import DaemonMetrics
from reconciler.daemon.status_server import StatusServer
from reconciler.serving import ListenError, parse_listen


class Source:
    """A StatusSource whose answers the test sets."""

    def __init__(self) -> None:
        self.healthy = True
        self.ready = False
        self.metrics = DaemonMetrics(request_counts=lambda: {("GET", 200): 3, ("PUT", 0): 1})
        self.data: dict[str, Any] = {"sockets": [], "note": "password hunter2 here"}

    def health(self):
        return self.healthy, {"loop_heartbeat_age_seconds": 0.1}

    def readiness(self):
        return self.ready, {"consecutive_failures": 0}

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def status(self, page=None):
        self.page = page
        return self.data


@pytest.fixture
def served():
    source = Source()
    server = StatusServer(
        source, "127.0.0.1:0", redact=lambda s: s.replace("hunter2", "(sensitive)")
    )
    host, port = server.bind()
    server.start()
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=5) as client:
        yield source, client, server
    server.stop()


def test_healthz_and_readyz_answer_200_or_503(served):
    source, client, _ = served
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    source.ready = True
    assert client.get("/readyz").json()["status"] == "ready"
    source.healthy = False
    assert client.get("/healthz").status_code == 503


def test_metrics_parse_as_prometheus_text(served):
    source, client, _ = served
    source.metrics.reconciles.labels("success").inc()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert "border0_reconciler_reconciles" in families
    samples = {
        (s.labels.get("method"), s.labels.get("code")): s.value
        for s in families["border0_reconciler_api_requests"].samples
        if s.name.endswith("_total")
    }
    assert samples == {("GET", "200"): 3, ("PUT", "0"): 1}
    # Ours are prefixed; process_* are prometheus_client's standard process metrics.
    assert all(name.startswith(("border0_reconciler_", "process_")) for name in families)
    assert "process_cpu_seconds" in families


def test_status_is_json_and_redacted(served):
    _, client, _ = served
    body = client.get("/status")
    assert body.json()["note"] == "password (sensitive) here"
    assert "hunter2" not in body.text


def test_stop_frees_the_port(served):
    _, _, server = served
    host, port = server.address
    server.stop()
    assert not server.is_alive()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))


def test_binding_a_busy_port_is_an_error_at_start():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        server = StatusServer(Source(), f"127.0.0.1:{port}")
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            server.bind()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9479", ("127.0.0.1", 9479)), (":80", ("127.0.0.1", 80)), ("[::1]:0", ("::1", 0))],
)
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9479", "host:", "host:http", "h:70000"])
def test_parse_listen_rejects(text):
    with pytest.raises(ValueError):
        parse_listen(text)


def test_status_table_has_the_socket_ls_columns_plus_name_state_and_connector():
    long_description = "a description far too long to show in a table that fits 120 columns"
    status = {
        "instance": "default",
        "path": "/m",
        "ready": True,
        "last_reconcile": {"time": "t", "result": "success", "revision": "abc",
                           "trigger": "change: modified /git/current/" + "m" * 120 + ".yaml"},
        "sockets": [
            {
                "name": "analytics-db",
                "socket_id": "6fb21ee7-e5db-4ff9-b54c-f9aebcbf6fd6",
                "dns_name": "analytics-db-local.border0.io",
                "ports": [80, 443],
                "type": "database",
                "description": long_description,
                "state": "out-of-sync",
                "connector": "RUNNING",
            }
        ],
        "errors": ["a.yaml:1:1: error: bad"],
    }
    table = format_status_table(status)
    header = next(line for line in table.splitlines() if "SOCKET ID" in line)
    cells = [c.strip() for c in header.strip("│ ").split("│")]
    assert cells == [
        "NAME",
        "SOCKET ID",
        "DNS NAME",
        "PORT(S)",
        "TYPE",
        "DESCRIPTION",
        "STATE",
        "CONNECTOR",
    ]
    assert all(len(line) <= 120 for line in table.splitlines()), table
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert "analytics-db │" in rows[1] and "a descript…" in rows[1]
    assert "80, 443" in table and "RUNNING" in table and "revision abc" in table
    assert "error: a.yaml:1:1: error: bad" in table
    wide = format_status_table(status, wide=True)
    assert long_description in wide and "6fb21ee7-e5db-4ff9-b54c-f9aebcbf6fd6" in wide
    assert "m" * 120 + ".yaml" in wide


def test_status_command_without_a_daemon_is_one_clear_error():
    from helpers import cli

    code, out, err = cli(["status", "--listen", "127.0.0.1:9"])  # nothing listens there
    assert code == 1 and out == ""
    assert err.startswith("error: cannot read the daemon's status at http://127.0.0.1:9/status")
    assert "Traceback" not in err


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.settimeout(10)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF or reset), False while it is open."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    finally:
        sock.setblocking(True)
    return data == b"" or b"HTTP/1.1" in data and _closed_by_server(sock)


@pytest.fixture
def guarded():
    """A status server with short timeouts (the defaults are READ_TIMEOUT=10 s,
    KEEP_ALIVE_TIMEOUT=5 s, MAX_CONNECTIONS=64)."""
    server = StatusServer(Source(), "127.0.0.1:0", read_timeout=1.0, keep_alive_timeout=1.0,
                          max_connections=8)
    address = server.bind()
    server.start()
    yield address
    server.stop()


def test_idle_and_slow_header_connections_are_closed_within_the_timeout(guarded):
    """Issue 12 #5: 7 connections, silent or sending their headers a byte at a time, stayed
    open for 120 s and more. Each is closed once the request has not arrived in 1 s."""
    silent = [_connect(guarded) for _ in range(4)]
    slow = [_connect(guarded) for _ in range(3)]
    header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    for i in range(len(header)):  # about 0.02 s a byte: the head never completes in time
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.sendall(header[i:i + 1])
        if all(_closed_by_server(s) for s in silent + slow):
            break
        time.sleep(0.02)
    assert all(_closed_by_server(s) for s in silent + slow)
    for sock in silent + slow:
        sock.close()


def test_an_idle_keep_alive_connection_is_closed_and_a_prompt_one_is_served(guarded):
    conn = http.client.HTTPConnection(*guarded, timeout=5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().read()
    sock = conn.sock
    time.sleep(0.5)  # within the keep-alive timeout: served on the same connection
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    assert conn.sock is sock and not _closed_by_server(sock)
    wait_for(lambda: _closed_by_server(sock), timeout=3, message="idle keep-alive closed")
    conn.close()


def test_requests_beyond_the_connection_limit_get_503_at_once(guarded):
    held = [_connect(guarded) for _ in range(8)]
    wait_for(lambda: httpx.get(f"http://{guarded[0]}:{guarded[1]}/healthz",
                               timeout=5).status_code == 503, timeout=5)
    for sock in held:
        sock.close()
    wait_for(lambda: httpx.get(f"http://{guarded[0]}:{guarded[1]}/healthz",
                               timeout=5).status_code == 200, timeout=5)
