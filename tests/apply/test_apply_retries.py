"""One retry policy per write: apply sends each create once through the client, whose own retries
(1 + max_retries_5xx attempts) are the only ones, then looks the name up so a create that was
applied but not answered is never made twice; a delete whose every answer was lost is read back
by id, and counts as done when it is gone. Real HTTP to the in-process emulator, whose fault
injector fails every POST (or DELETE), before or after running it, while reads succeed."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from documents import ENV, opts, policy_doc, socket_doc, write
from helpers import sent

from reconciler.apply import apply_plan
from reconciler.border0.inventory import fetch_actual
from reconciler.clock import ManualClock
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


class _Always(random.Random):
    """The twin's fault injector picking one kind every time (with `fail_rate` 1.0)."""

    def __init__(self, kind: str) -> None:
        super().__init__(0)
        self.kind = kind

    def choice(self, seq: Any) -> Any:
        return self.kind


def _objects(folder: Path, *, gone: bool) -> Path:
    """A socket, a policy, a connector and a token to delete (`gone`: their manifests removed),
    beside what stays (so the mass-delete guard lets the deletes through)."""
    tokens = folder.parent / "tokens"

    def connector(name: str, names: list[str]) -> dict:
        return {"apiVersion": "border0-reconciler/v1", "kind": "Connector",
                "metadata": {"name": name}, "spec": {"tokens": [
                    {"name": t, "expiresIn": "30d",
                     "destination": {"file": str(tokens / f"{name}-{t}")}} for t in names]}}

    docs = [policy_doc("ops"), socket_doc("web")]
    if not gone:
        docs += [policy_doc("old"), socket_doc("box", "ssh")]
    write(folder, docs)
    connectors = [connector("edge", ["edge-1"] if gone else ["edge-1", "edge-2"])]
    if not gone:
        connectors.append(connector("spare", []))
    (folder / "connectors.yaml").write_text(yaml.safe_dump_all(connectors, sort_keys=False))
    return folder


DELETES = ["delete connector spare", "delete policy old", "delete socket box",
           "delete token edge/edge-2"]


def _live(client: Any) -> tuple[set[str], set[str], set[str], list[str]]:
    """The twin's sockets, policies, connectors and edge's tokens, by name."""
    actual = fetch_actual(client)
    edge = client.find_connector("edge")["connector_id"]
    tokens = sorted(t["name"] for t in client.list_connector_tokens(edge))
    return set(actual.sockets), set(actual.policies), set(actual.connectors), tokens


@pytest.mark.parametrize("kind", ["500-after", "drop-after"])
def test_a_delete_applied_but_never_answered_counts_as_deleted(
    emulator, tmp_path: Path, kind: str
) -> None:
    """border0 deleted on the first attempt; every answer (that one's and the retries', which
    met 404) was lost. One read by id finds it gone: the delete is done, not `failed:`."""
    client = emulator.client(max_retries_5xx=2)
    folder = _objects(tmp_path / "m", gone=False)
    assert reconcile([folder], client, opts()).ok
    faults = emulator.app.faults
    faults.random, faults.fail_methods, faults.fail_rate = _Always(kind), {"DELETE"}, 1.0
    _objects(folder, gone=True)

    result = reconcile([folder], client, opts())

    assert result.ok, (result.error, [r.message for r in result.applied.failed])
    messages = sorted(r.message for r in result.applied.results)
    assert [m for m in messages if m.startswith("failed")] == []
    assert set(messages) >= {"deleted" + d[len("delete"):] for d in DELETES}
    status = 500 if kind == "500-after" else 0  # every answer lost: 4 deletes x 3 attempts
    assert client.request_counts[("DELETE", status)] == len(DELETES) * 3
    assert sent(client, "DELETE") == len(DELETES) * 3
    faults.fail_rate = 0.0
    assert _live(client) == ({"web"}, {"ops"}, {"edge"}, ["edge-1"])
    again = reconcile([folder], client, opts(dry_run=True))
    assert again.ok and again.plan.changes == [], again.plan.to_json()["changes"]


def test_a_delete_border0_never_ran_is_still_reported_failed(emulator, tmp_path: Path) -> None:
    """Every DELETE answered 500 without running: the read finds each object still there, so
    each delete's own failure stands (and edge's marker, which waits for its token's
    revocation, is not written)."""
    client = emulator.client(max_retries_5xx=1)
    folder = _objects(tmp_path / "m", gone=False)
    assert reconcile([folder], client, opts()).ok
    box = client.find_socket("box")["socket_id"]
    served = emulator.requests()
    faults = emulator.app.faults
    faults.random, faults.fail_methods, faults.fail_rate = _Always("500"), {"DELETE"}, 1.0
    _objects(folder, gone=True)

    result = reconcile([folder], client, opts())

    assert not result.ok
    failed = {r.change.title: r.message for r in result.applied.failed}
    assert sorted(failed) == sorted([*DELETES, "update connector edge"])
    assert failed["delete socket box"] == (
        f"failed: delete socket box: DELETE /socket/{box}: 500 injected fault (500)")
    assert all(r.temporary for r in result.applied.failed)  # "Run apply again to finish."
    # each was read back once after its answers were lost, and found there
    assert served.count(("GET", f"/api/v1/socket/{box}")) == 1
    faults.fail_rate = 0.0
    assert _live(client) == ({"web", "box"}, {"ops", "old"}, {"edge", "spare"},
                             ["edge-1", "edge-2"])


def test_a_lost_delete_whose_read_fails_too_is_reported_failed(emulator, tmp_path: Path) -> None:
    """Applied, every answer lost, and the read back fails as well: nothing is known, so the
    delete's failure is reported; the next plan finds it gone."""
    client = emulator.client(max_retries_5xx=1)
    folder = write(tmp_path / "m", [socket_doc("web"), socket_doc("box", "ssh")])
    assert reconcile([folder], client, opts()).ok
    write(folder, [socket_doc("web")])
    desired = load([folder], env=ENV).desired
    actual = fetch_actual(client)
    plan = make_plan(desired, actual)
    assert [c.title for c in plan.changes] == ["delete socket box"]
    client.read_after_write_delay()  # asked already, not by the requests faulted below
    emulator.app.faults.fail_next(2, "500-after")  # the DELETE's two attempts
    emulator.app.faults.fail_next(2, "500")  # the GET that reads it back, twice

    result = apply_plan(plan, client, desired, actual, parallelism=1)

    box = actual.sockets["box"].socket_id
    assert [r.message for r in result.results] == [
        f"failed: delete socket box: DELETE /socket/{box}: 500 injected fault (500-after)"]
    assert client.request_counts[("GET", 500)] == 2  # it was read back, and that failed
    assert "box" not in fetch_actual(client).sockets
    assert make_plan(desired, fetch_actual(client)).changes == []


def test_the_read_after_a_lost_delete_is_not_answered_by_a_lagging_replica(
    emulator_factory, tmp_path: Path
) -> None:
    """border0 answers reads from replicas that lag its writes (`/serverinfo`): read back at
    once, a socket deleted by a lost attempt is still there. The client waits out the window of
    a write whose answers were lost too, so the read sees it gone."""
    clock = ManualClock()  # the client's and the twin's: the waits are counted, not timed
    emu = emulator_factory(read_after_write_delay_ms=5_000, clock=clock)
    client = emu.client(max_retries_5xx=2, clock=clock)
    folder = write(tmp_path / "m", [socket_doc("web"), socket_doc("box", "ssh")])
    assert reconcile([folder], client, opts()).ok
    faults = emu.app.faults
    faults.random, faults.fail_methods, faults.fail_rate = _Always("500-after"), {"DELETE"}, 1.0
    write(folder, [socket_doc("web")])
    clock.slept.clear()

    result = reconcile([folder], client, opts())

    assert result.ok, [r.message for r in result.applied.failed]
    assert [r.message for r in result.applied.results] == ["deleted socket box"]
    assert client.request_counts[("DELETE", 500)] == 3
    assert sum(clock.slept) >= 5.0  # the window after the last lost attempt was waited out
    faults.fail_rate = 0.0
    assert set(fetch_actual(client).sockets) == {"web"}
