"""Fault injection as a raw HTTP client sees it: latency, 500s, dropped connections, 429s."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
from helpers import wait_for

from reconciler.border0.emulator.store import Missing


def raw(emu) -> httpx.Client:
    return httpx.Client(base_url=emu.url + "/", headers={"x-access-token": emu.token})


def test_latency_is_added_and_overlaps(emulator_factory):
    emu = emulator_factory(latency_ms=1000)
    with raw(emu) as h:
        with pytest.raises(httpx.ReadTimeout):  # no answer before the latency has passed
            h.get("socket", timeout=0.2)
        assert h.get("socket").status_code == 200
    done: list[int] = []

    def one() -> None:
        with raw(emu) as h:
            done.append(h.get("policies").status_code)

    emu.app.faults.delayed_peak = 0
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert done == [200] * 8
    # Concurrent, not one after the other: the twin held more than one inside the latency.
    assert emu.app.faults.delayed_peak > 1


def test_latency_is_a_round_trip_that_the_request_runs_inside(emulator_factory):
    """A write is applied when it arrives and answered `latency_ms` after it was sent: the
    twin's own work is inside the round trip (as border0's is), not added after it."""
    emu = emulator_factory(latency_ms=3000)
    answers: list[int] = []

    def create() -> None:
        with raw(emu) as h:
            answers.append(h.post("socket", json={"name": "early", "socket_type": "ssh"},
                                  timeout=30).status_code)

    def applied() -> bool:
        try:
            return emu.store.get_socket("early")["name"] == "early"
        except Missing:
            return False

    thread = threading.Thread(target=create)
    thread.start()
    wait_for(applied, timeout=10, interval=0.01, message="the create to be applied")
    assert answers == []  # applied, and its answer still on its way
    thread.join(30)
    assert answers == [200]
    assert emu.app.faults.delayed == 0


def test_the_round_trip_starts_when_the_request_arrives_not_when_its_body_is_read(
    emulator_factory,
):
    """A body that comes slowly is inside the round trip too: the answer leaves `latency_ms`
    after the request's headers came (border0 is as far away while the body uploads)."""
    emu = emulator_factory(latency_ms=1500)
    body = b'{"name": "slow", "socket_type": "ssh"}'
    host, port = emu.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(b"POST /api/v1/socket HTTP/1.1\r\nHost: emulator\r\n"
                     b"x-access-token: " + emu.token.encode() + b"\r\n"
                     b"content-type: application/json\r\n"
                     b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
        sent = time.monotonic()
        time.sleep(1.0)  # the body is slow to come (the scenario, not a synchronisation)
        conn.sendall(body)
        answer = conn.recv(4096)
        took = time.monotonic() - sent
    assert answer.startswith(b"HTTP/1.1 200")
    assert took < 2.3  # 1.5 s from the headers; from the body it would be 2.5 s


def test_the_round_trip_starts_with_the_first_bytes_of_the_request(emulator_factory):
    """Headers that come slowly are inside the round trip too: it starts when the request's
    first bytes arrive (the server notes them, embedded.py), not once its headers are parsed."""
    emu = emulator_factory(latency_ms=1500)
    body = b'{"name": "slow-headers", "socket_type": "ssh"}'
    host, port = emu.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(b"POST /api/v1/socket HTTP/1.1\r\n")
        sent = time.monotonic()
        time.sleep(1.0)  # the headers are slow to come (the scenario, not a synchronisation)
        conn.sendall(b"Host: emulator\r\nx-access-token: " + emu.token.encode() + b"\r\n"
                     b"content-type: application/json\r\n"
                     b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer = conn.recv(4096)
        took = time.monotonic() - sent
    assert answer.startswith(b"HTTP/1.1 200")
    assert took < 2.3  # 1.5 s from the first bytes; from the whole headers it would be 2.5 s


def test_rate_limit_answers_429_with_retry_after(emulator_factory):
    emu = emulator_factory(rate_limit=3)
    with raw(emu) as h:
        statuses = [h.get("socket") for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and statuses[0].status_code == 200
    assert limited[0].headers["retry-after"] == "1"
    assert limited[0].json() == {"status_code": 429, "error_message": "rate limit exceeded"}
    assert emu.app.faults.injected["429"] == len(limited)


@pytest.mark.parametrize("kind, applied", [("500", False), ("500-after", True)])
def test_injected_500_before_or_after_the_write(emulator, kind, applied):
    emulator.app.faults.fail_next(1, kind)
    with raw(emulator) as h:
        response = h.post("socket", json={"name": "x", "socket_type": "ssh"})
        assert response.status_code == 500
        assert response.json()["error_message"] == f"injected fault ({kind})"
        assert (h.get("socket/x").status_code == 200) is applied


@pytest.mark.parametrize("kind, applied", [("drop", False), ("drop-after", True)])
def test_dropped_connection_before_or_after_the_write(emulator, kind, applied):
    emulator.app.faults.fail_next(1, kind)
    with raw(emulator) as h:
        with pytest.raises(httpx.TransportError):
            h.post("socket", json={"name": "x", "socket_type": "ssh"})
        assert (h.get("socket/x").status_code == 200) is applied


def test_a_fault_for_one_method_lets_the_others_through(emulator):
    """`fail_next(method=)` fails the next request of that method: the reads before it pass."""
    emulator.app.faults.fail_next(1, "500", method="POST")
    with raw(emulator) as h:
        assert h.get("socket/x").status_code == 404
        assert h.post("socket", json={"name": "x", "socket_type": "ssh"}).status_code == 500
        assert h.post("socket", json={"name": "x", "socket_type": "ssh"}).status_code == 200
    assert emulator.app.faults.injected["500"] == 1


def test_fail_rate_is_a_share(emulator_factory):
    emu = emulator_factory(fail_rate=0.5, seed=11)
    outcomes = []
    with raw(emu) as h:
        for _ in range(60):
            try:
                outcomes.append(h.get("serverinfo").status_code)
            except httpx.TransportError:
                outcomes.append(0)
    failed = sum(1 for s in outcomes if s != 200)
    assert 15 <= failed <= 45
    assert {0, 500} <= set(outcomes)


def test_openapi_document_is_exempt(emulator_factory):
    emu = emulator_factory(fail_rate=1.0, rate_limit=1)
    with httpx.Client() as h:
        for _ in range(5):
            assert h.get(emu.url + "/openapi.json").status_code == 200


def test_the_latency_wait_is_never_cut_short_by_more_than_it_learnt():
    """`faults.Waker` sleeps the last part of a wait in a thread (asyncio's timers wake up to
    a millisecond late) and aims early by how late the loop resumed before, bounded: whatever
    the split, a wait ends no earlier than that bound, and the first (nothing learnt yet)
    never early."""
    from reconciler.border0.emulator.faults import _MOST_AIMED_EARLY, Waker

    async def waits() -> tuple[float, list[float]]:
        loop = asyncio.get_running_loop()
        waker, early = Waker(), []
        first = loop.time() + 0.0017
        await waker.until(loop, first)
        first_early = first - loop.time()
        assert waker.aim_early > 0  # the loop resumed after the moment: the next aims earlier
        for delay in (0.0, 0.0004, 0.0017, 0.0021, 0.0103, -0.001) * 5:
            moment = loop.time() + delay
            await waker.until(loop, moment)
            early.append(moment - loop.time())
            assert 0.0 <= waker.aim_early <= _MOST_AIMED_EARLY
        return first_early, early

    first_early, early = asyncio.run(waits())
    assert first_early <= 0
    assert all(gap <= _MOST_AIMED_EARLY for gap in early)
