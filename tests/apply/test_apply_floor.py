"""Apply at the request floor: what stands between an apply and requests x latency / parallelism
(docs/performance.md, "Apply at the request floor"). Against the emulator over HTTP; its
fault injector counts the requests inside their round trip at once."""

from __future__ import annotations

from reconciler.border0.inventory import fetch_actual


def test_policies_and_connectors_are_listed_side_by_side_after_the_sockets(emulator_factory):
    emu = emulator_factory(latency_ms=300)
    client = emu.client()
    emu.app.faults.delayed_peak = 0
    actual = fetch_actual(client)
    assert actual.sockets == {} and actual.policies == {} and actual.connectors == {}
    assert client.request_counts[("GET", 200)] == 3
    # the sockets alone (border0 answers: a retry would be announced once), then one round
    # trip for the other two, not one each
    assert emu.app.faults.delayed_peak == 2
