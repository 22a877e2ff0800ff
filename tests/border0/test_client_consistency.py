"""The client as border0's own SDK behaves: live reads only, reads that see our writes, 429s
waited as border0 says, the SDK's token variable. Real HTTP: the emulator, or (for exact
Retry-After values the emulator does not send) a small real server on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from reconciler.border0.client import Border0Client
from reconciler.border0.errors import DeadlineExceeded, NotFound, ServerError
from reconciler.border0.session import resolve_token
from reconciler.clock import ManualClock


def test_a_deleted_socket_is_not_read_as_live(emulator):
    client = emulator.client()
    created = client.create_socket({"name": "gone", "socket_type": "ssh"})
    client.delete_socket(created["socket_id"])
    # border0 soft-deletes: by id without activeOnly the twin still answers it
    raw = client._http.get(f"socket/{created['socket_id']}")
    assert raw.status_code == 200
    with pytest.raises(NotFound):
        client.get_socket(created["socket_id"])
    assert client.find_socket("gone") is None


def test_reads_wait_out_the_read_after_write_delay(emulator_factory):
    clock = ManualClock()  # the twin's replica lags on the client's clock: no real wait
    emu = emulator_factory(read_after_write_delay_ms=800, clock=clock)
    client = emu.client(clock=clock)
    created = client.create_socket({"name": "web", "socket_type": "http", "description": "v1"})
    started = clock.monotonic()
    assert client.get_socket(created["socket_id"])["description"] == "v1"
    client.update_socket(created["socket_id"], {"name": "web", "description": "v2"})
    assert client.get_socket(created["socket_id"])["description"] == "v2"
    assert client.get_socket("web")["description"] == "v2"  # by name too
    assert [s["description"] for s in client.list_sockets()] == ["v2"]
    assert clock.monotonic() - started >= 0.8
    # a fresh client (another process) within the window reads the replica's old answer
    other = emu.client(clock=clock)
    other.update_socket(created["socket_id"], {"name": "web", "description": "v3"})
    assert emu.client(clock=clock).get_socket("web")["description"] == "v2"


def test_a_write_whose_every_answer_was_lost_is_waited_out_before_a_read(emulator_factory):
    """It may have been applied, so a read of it waits out its window as after an answered
    write: apply reads a lost create (by name) or a lost delete (by id) back (apply/runner.py),
    and a lagging replica would answer for the object as it was before."""
    clock = ManualClock()
    emu = emulator_factory(read_after_write_delay_ms=800, clock=clock)
    client = emu.client(max_retries_5xx=1, clock=clock)
    client.read_after_write_delay()  # asked now, not by a request faulted below
    emu.app.faults.fail_next(2, "500-after")  # made, then "already exists": both answers 500
    with pytest.raises(ServerError) as created:
        client.create_socket({"name": "web", "socket_type": "http"})
    assert created.value.ambiguous
    socket_id = client.find_socket("web")["socket_id"]  # not a replica's 404
    emu.app.faults.fail_next(2, "500-after")  # deleted, then 404: both answers 500
    with pytest.raises(ServerError) as deleted:
        client.delete_socket(socket_id)
    assert deleted.value.ambiguous
    with pytest.raises(NotFound):  # not a replica's copy from before the delete
        client.get_socket(socket_id)
    assert clock.monotonic() - 1_000.0 >= 1.6  # both windows were waited out


class _RateLimited(http.server.BaseHTTPRequestHandler):
    """429 with the Retry-After the test sets, once; then 200."""

    retry_after = "2"
    hits: ClassVar[list[float]] = []

    def do_GET(self) -> None:
        self.hits.append(time.monotonic())
        if len(self.hits) == 1:
            self.send_response(429)
            self.send_header("Retry-After", self.retry_after)
            body = b'{"status_code": 429, "error_message": "slow down"}'
        else:
            self.send_response(200)
            body = b"[]"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rate_limited() -> Iterator[type[_RateLimited]]:
    handler = type("Handler", (_RateLimited,), {"hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("given", "waited"), [("2", 2.0), ("0", 1.0)])
def test_retry_after_is_waited_as_given_and_at_least_a_second(rate_limited, given, waited):
    rate_limited.retry_after = given
    # backoff_max is far below Retry-After: it does not cap what border0 asks for
    clock = ManualClock()
    with Border0Client(rate_limited.url, "tok", backoff_max=0.1, deadline=10,
                       clock=clock) as client:
        assert client.list_policies() == []
    assert len(rate_limited.hits) == 2 and clock.slept == [waited]


def test_a_retry_after_beyond_the_deadline_fails_at_once(rate_limited):
    rate_limited.retry_after = "30"
    clock = ManualClock()
    with (Border0Client(rate_limited.url, "tok", deadline=3, clock=clock) as client,
          pytest.raises(DeadlineExceeded, match="deadline would pass")):
        client.list_policies()
    assert clock.slept == []  # not one second waited for an answer that cannot come in time
    assert len(rate_limited.hits) == 1


def test_token_variables_are_read_in_the_documented_order():
    assert resolve_token(None, {"BORDER0_AUTH_TOKEN": "sdk"}) == "sdk"
    assert resolve_token(None, {"BORDER0_AUTH_TOKEN": "sdk", "BORDER0_TOKEN": "tf"}) == "tf"
    assert resolve_token(None, {"BORDER0_AUTH_TOKEN": "sdk", "BORDER0_TOKEN": "tf",
                                "BORDER0_ADMIN_TOKEN": "cli"}) == "cli"
    assert resolve_token(None, {"BORDER0_ADMIN_TOKEN": " ", "BORDER0_AUTH_TOKEN": "sdk"}) == "sdk"


def test_a_404_to_put_or_delete_is_asked_again_only_inside_the_replication_window(
    emulator_factory,
):
    """As the SDK (client/api_client.go: notFoundRetryMax 3, 0.5-1 s apart): a PUT or DELETE
    that meets 404 right after a write may have reached a replica that lags; later, once."""
    clock = ManualClock()
    emu = emulator_factory(read_after_write_delay_ms=5000, clock=clock)
    client = emu.client(clock=clock)
    with pytest.raises(NotFound):  # no write yet: no window, one request
        client.update_socket("missing", {"name": "missing", "socket_type": "ssh"})
    assert client.request_counts[("PUT", 404)] == 1
    client.create_socket({"name": "w", "socket_type": "ssh"})
    clock.slept.clear()
    with pytest.raises(NotFound):
        client.update_socket("missing", {"name": "missing", "socket_type": "ssh"})
    assert client.request_counts[("PUT", 404)] == 1 + 4  # the first try and 3 more
    assert len(clock.slept) == 3 and all(0.5 <= s <= 1.0 for s in clock.slept), clock.slept
    client.delete_socket("missing")  # still 404 after the retries: gone is gone
    assert client.request_counts[("DELETE", 404)] == 4


def test_without_serverinfo_the_window_is_one_second_as_the_provider_falls_back(emulator):
    """terraform-provider-border0 border0/provider.go: defaultReadAfterWriteDelay (1 s) when
    ServerInfo fails."""
    client = emulator.client(max_retries_5xx=1)
    emulator.app.faults.fail_next(2, "500")
    assert client.read_after_write_delay() == 1.0
    assert client.request_counts[("GET", 500)] == 2


def test_serverinfo_is_asked_once_however_many_threads_ask_at_once(emulator_factory):
    """An apply's first parallel writes all need the read-after-write window: one request."""
    emu = emulator_factory(latency_ms=100, read_after_write_delay_ms=300)
    client = emu.client()
    start = threading.Barrier(10)

    def ask() -> float:
        start.wait()
        return client.read_after_write_delay()

    threads = [threading.Thread(target=lambda: answers.append(ask())) for _ in range(10)]
    answers: list[float] = []
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [0.3] * 10
    assert client.request_counts[("GET", 200)] == 1


def test_the_window_learnt_in_the_background_is_one_quiet_request(emulator_factory, monkeypatch):
    """What `apply` asks while its plan is shown: the answer serves every later ask; a command
    that ends first (a refused plan) closes its client, which lets the one request end first
    (a request blocked on a socket another thread closes would wait out its timeout), and
    nothing is announced or raised."""
    emu = emulator_factory(latency_ms=300, read_after_write_delay_ms=250)
    announced: list[str] = []
    client = emu.client()
    client.on_retry = announced.append
    client.learn_read_after_write_delay().join(10)
    assert client.read_after_write_delay() == 0.25
    assert client.request_counts[("GET", 200)] == 1
    crashed: list[object] = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    early = emu.client()
    early.on_retry = announced.append
    asking = early.learn_read_after_write_delay()
    early.close()
    asking.join(10)
    assert not asking.is_alive()
    assert announced == [] and crashed == []
