"""Apply at the request floor: what stands between an apply and requests x latency / parallelism
(docs/performance.md, "Apply at the request floor"). Against the emulator over HTTP; its
fault injector counts the requests inside their round trip at once."""

from __future__ import annotations

import time
from pathlib import Path

from documents import socket_doc, write
from helpers import cli

from reconciler.border0.inventory import fetch_actual


def test_sockets_policies_and_connectors_are_listed_in_one_round_trip(emulator_factory):
    emu = emulator_factory(latency_ms=300)
    client = emu.client()
    announced: list[str] = []
    client.on_retry = announced.append
    emu.app.faults.delayed_peak = 0
    emu.app.faults.fail_next(3, "500")  # border0 fails all three: one retry, told once
    actual = fetch_actual(client)
    assert actual.sockets == {} and actual.policies == {} and actual.connectors == {}
    assert client.request_counts[("GET", 200)] == 3
    assert emu.app.faults.delayed_peak == 3  # all three in flight at once, not one after
    assert announced == [f"border0 API answered 500, retrying 1/{client.max_retries_5xx}..."]


def _arrivals(emu) -> list[tuple[float, str, str]]:
    """(when, METHOD, path) of every request as it starts to run (inside the fault layer, so
    when it arrived: the latency is the answer's)."""
    seen: list[tuple[float, str, str]] = []
    inner = emu.app.faults.app

    async def recording(scope, receive, send) -> None:
        if scope["type"] == "http":
            seen.append((time.monotonic(), scope["method"], scope["path"]))
        await inner(scope, receive, send)

    emu.app.faults.app = recording
    return seen


def test_the_read_after_write_window_takes_no_slot_from_the_first_writes(
    emulator_factory, tmp_path: Path
) -> None:
    """`/serverinfo` is asked while the plan is shown, once: with `--parallelism 2` both
    creates go out together (asked in front of them, it made the second wait a round trip)."""
    emu = emulator_factory(latency_ms=400)
    seen = _arrivals(emu)
    folder = write(tmp_path / "m", [socket_doc("a"), socket_doc("b")])
    code, _, err = cli(["apply", str(folder), "--api", emu.url, "--auto-approve",
                        "--parallelism", "2"], env={"BORDER0_ADMIN_TOKEN": emu.token},
                       cwd=tmp_path)
    assert code == 0, err
    posts = [when for when, method, _ in seen if method == "POST"]
    assert len(posts) == 2
    assert abs(posts[1] - posts[0]) < 0.2  # the same round trip, not one after the other
    assert [path for _, _, path in seen].count("/api/v1/serverinfo") == 1
