"""One retry policy per write: apply sends each create once through the client, whose own retries
are the only ones, then looks the name up so a create that was applied but not answered is never
made twice. A POST that got no answer is not sent again (border0-go retries only 404, 429 and
5xx, client/api_client.go `request`): a lost create is found by name, and a token whose answer
(its value) was lost is left for the next plan to replace. A delete whose every answer was lost
is read back by id, and counts as done when it is gone. Real HTTP to the in-process emulator,
whose fault injector fails chosen POSTs (or every DELETE), before or after running them, while
reads succeed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from documents import ENV, opts, policy_doc, socket_doc, write
from helpers import cli, fail_every, sent

from reconciler.apply import apply_plan
from reconciler.border0.inventory import fetch_actual
from reconciler.clock import ManualClock
from reconciler.manifests.loader import load
from reconciler.plan.planner import make_plan
from reconciler.reconcile import reconcile

HEAD = {"apiVersion": "border0-reconciler/v1"}
#: Per create, in plan order, what border0 does to each of its POSTs (None: answers it);
#: the client makes 1 + max_retries_5xx = 3 attempts at most.
FAULTS: dict[str, tuple[str | None, ...]] = {
    "site-0": ("500", "500", "500"),  # every attempt refused: failed, nothing made
    "site-1": ("drop",),  # no answer, not sent again: failed (it was never made)
    "site-2": ("drop-after",),  # made, no answer, not sent again: found by name
    "site-3": ("500-after", "500", "500"),  # made by the first attempt: found by name
    "site-4": ("500", "drop-after"),  # made by the second, whose answer was lost
    "site-5": ("500", "drop"),  # never made: failed
    "site-6": ("500-after", None),  # the retry meets "already exists": found by name
    "site-7": (None,),
}
MADE = {"site-2", "site-3", "site-4", "site-6", "site-7"}


def test_a_failing_create_is_sent_at_most_one_plus_max_retries_and_never_after_no_answer(
    emulator, tmp_path: Path
) -> None:
    client = emulator.client(max_retries_5xx=2)
    folder = write(tmp_path / "m", [socket_doc(n, description=n) for n in FAULTS])
    desired = load([folder], env=ENV).desired
    actual = fetch_actual(client)
    plan = make_plan(desired, actual)
    kinds = [kind for attempts in FAULTS.values() for kind in attempts]
    assert None not in kinds[:-2]  # the answered POSTs are the last ones
    for kind in kinds[:-2]:
        emulator.app.faults.fail_next(1, kind, method="POST")

    # one at a time: the POSTs meet their faults in plan order
    result = apply_plan(plan, client, desired, actual, parallelism=1)

    assert sent(client, "POST") == len(kinds)  # a POST without an answer was sent once
    live = Counter(s["name"] for s in client.list_sockets())
    assert live == Counter(MADE), f"duplicates or strays: {live}"
    # an attempt that ran before its answer was lost made the socket: the lookup counts it created
    assert {r.change.name for r in result.results if r.ok} == MADE
    failed = {r.change.name: r for r in result.results if not r.ok}
    assert set(failed) == set(FAULTS) - MADE  # the creates that never ran: reported
    assert all(r.temporary for r in failed.values())  # a rerun finishes them
    assert "not sent again" in failed["site-1"].message, failed["site-1"].message

    again = reconcile([folder], client, opts())  # the user reruns once border0 is well again
    assert again.ok, again.error
    assert Counter(s["name"] for s in client.list_sockets()) == Counter(list(FAULTS))


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
    fail_every(faults, {"DELETE"}, kind)
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
    fail_every(faults, {"DELETE"}, "500")
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
    fail_every(faults, {"DELETE"}, "500-after")
    write(folder, [socket_doc("web")])
    clock.slept.clear()

    result = reconcile([folder], client, opts())

    assert result.ok, [r.message for r in result.applied.failed]
    assert [r.message for r in result.applied.results] == ["deleted socket box"]
    assert client.request_counts[("DELETE", 500)] == 3
    assert sum(clock.slept) >= 5.0  # the window after the last lost attempt was waited out
    faults.fail_rate = 0.0
    assert set(fetch_actual(client).sockets) == {"web"}


# --- through the CLI: what the user sees -------------------------------------------------------


def run(args: list[str], emulator) -> tuple[int, str, str]:
    return cli([*args, "--api", emulator.url], env={"BORDER0_ADMIN_TOKEN": emulator.token})


def connector_manifests(folder: Path, tokens: list[dict]) -> Path:
    """A connector `edge` (with `tokens`), a policy and a socket it serves."""
    folder.mkdir(parents=True, exist_ok=True)
    tls = {"serviceType": "tls", "tlsServiceConfiguration": {
        "tlsServiceType": "standard",
        "standardTlsServiceConfiguration": {"hostname": "127.0.0.1", "port": 6379}}}
    docs = [
        {**HEAD, "kind": "Connector", "metadata": {"name": "edge"}, "spec": {"tokens": tokens}},
        {**HEAD, "kind": "Policy", "metadata": {"name": "ops"}, "spec": {
            "policyData": {"version": "v1", "action": ["tls"],
                           "condition": {"who": {"email": ["ops@example.com"]}}}}},
        {**HEAD, "kind": "Socket", "metadata": {"name": "cache"}, "spec": {
            "type": "tls", "connectors": ["edge"], "policies": ["ops"], "upstream": tls}},
    ]
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def test_creates_whose_answers_were_dropped_are_made_once_and_reported_created(
    tmp_path, emulator
):
    """border0 makes the connector, the policy and the socket, and each answer is lost: each POST
    is sent once, each object found by name is ours, and the apply succeeds."""
    folder = connector_manifests(tmp_path / "m", [])
    emulator.app.faults.fail_next(3, "drop-after", method="POST")
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    assert emulator.app.faults.injected["drop-after"] == 3
    assert "Apply complete: 4 actions succeeded." in err, (out, err)
    client = emulator.client()
    assert [c["name"] for c in client.list_all_connectors()] == ["edge"]
    assert [p["name"] for p in client.list_policies()] == ["ops"]
    assert [s["name"] for s in client.list_sockets()] == ["cache"]
    code, out, err = run(["plan", str(folder), "--detailed-exitcode"], emulator)
    assert code == 0 and "No changes." in out, (out, err)


def test_a_token_whose_answer_was_dropped_is_made_once_and_replaced_by_the_next_apply(
    tmp_path, emulator
):
    """`POST /connector/token` carried out, its answer (the token's only copy) lost: not sent
    again, so border0 holds one token of the name, whose value nobody has. The apply fails and
    says so; the next plan replaces that token (its destination is missing) and converges."""
    folder = connector_manifests(tmp_path / "m", [])
    assert run(["apply", str(folder), "--auto-approve"], emulator)[0] == 0
    token_file = tmp_path / "edge.token"
    connector_manifests(folder, [{"name": "edge-1", "destination": {"file": str(token_file)}}])
    emulator.app.faults.fail_next(1, "drop-after", method="POST")
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 1, (out, err)
    assert "failed: create token edge/edge-1" in out + err and "not sent again" in out + err
    assert "Run apply again to finish." in out + err
    client = emulator.client()
    [connector] = client.list_all_connectors()
    [orphan] = client.list_connector_tokens(connector["connector_id"])  # one, not two
    assert orphan["name"] == "edge-1" and not token_file.exists()

    code, out, err = run(["plan", str(folder), "--detailed-exitcode"], emulator)
    assert code == 2 and "-/+ token edge-1: replace (sensitive)" in out, (out, err)
    assert run(["apply", str(folder), "--auto-approve"], emulator)[0] == 0
    [live] = client.list_connector_tokens(connector["connector_id"])
    assert live["id"] != orphan["id"]
    assert emulator.store.connector_of_token(token_file.read_text().strip())
    code, out, err = run(["plan", str(folder), "--detailed-exitcode"], emulator)
    assert code == 0 and "No changes." in out, (out, err)
