"""One retry policy per write: apply sends each create once through the client, whose own retries
(1 + max_retries_5xx attempts) are the only ones, then looks the name up so a create that was
applied but not answered is never made twice. Real HTTP to the in-process emulator, whose fault
injector fails every POST (before or after running it) while reads succeed."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from documents import ENV, opts, socket_doc, write
from helpers import sent

from reconciler.apply import apply_plan
from reconciler.border0.inventory import fetch_actual
from reconciler.manifests.loader import load
from reconciler.plan.planner import make_plan
from reconciler.reconcile import reconcile

NAMES = [f"site-{i}" for i in range(8)]


def test_a_failing_create_is_sent_at_most_one_plus_max_retries_and_never_twice(
    emulator, tmp_path: Path
) -> None:
    client = emulator.client(max_retries_5xx=2)
    folder = write(tmp_path / "m", [socket_doc(n, description=n) for n in NAMES])
    desired = load([folder], env=ENV).desired
    actual = fetch_actual(client)
    plan = make_plan(desired, actual)
    faults = emulator.app.faults
    faults.random = random.Random(5)
    faults.fail_methods = {"POST"}
    faults.fail_rate = 1.0

    # one at a time, so the seeded injector picks the same kinds on every run
    result = apply_plan(plan, client, desired, actual, parallelism=1)

    # every POST fails, so each create is tried exactly as often as the client's policy allows
    assert sent(client, "POST") == len(NAMES) * (1 + client.max_retries_5xx)
    live = Counter(s["name"] for s in client.list_sockets())
    assert set(live.values()) <= {1}, f"duplicates: {live}"
    created = {r.change.name for r in result.results if r.ok}
    # an attempt that ran before its answer was lost made the socket: the lookup counts it created
    assert created == set(live) and created, (created, live, faults.injected)
    failed = {r.change.name for r in result.results if not r.ok}
    assert failed == set(NAMES) - created and failed  # the creates that never ran: reported

    faults.fail_rate = 0.0  # the user reruns once border0 is well again
    again = reconcile([folder], client, opts())
    assert again.ok, again.error
    assert Counter(s["name"] for s in client.list_sockets()) == Counter(NAMES)
