"""reconcile/apply against the real emulator over HTTP (in-process for speed, or a child process
with fault injection). No mocks: every write goes through Border0Client to the emulator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from documents import ENV, base_docs, opts, policy_doc, socket_doc, write
from helpers import sent

from reconciler.apply import apply_plan
from reconciler.border0.inventory import fetch_actual
from reconciler.clock import ManualClock
from reconciler.plan.planner import make_plan
from reconciler.plan.types import Action
from reconciler.reconcile import reconcile


def plan_of(folder: Path, client: Any, **kw: Any):
    result = reconcile([folder], client, opts(dry_run=True, **kw))
    assert result.plan is not None, result.error
    return result.plan


def test_apply_then_plan_is_empty_and_objects_are_ours(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    folder = write(tmp_path / "m", base_docs())
    result = reconcile([folder], client, opts())
    assert result.ok and result.stage == "done", result.error
    assert result.plan.summary() == {
        "create": 4, "update": 0, "replace": 0, "delete": 0, "attach": 2, "detach": 0
    }
    assert plan_of(folder, client).changes == []
    actual = fetch_actual(client)
    web = actual.sockets["web"]
    assert web.ownership.owned_by("default") and web.labels == {"team": "web"}
    assert set(web.policy_names) == {"ops"}
    assert actual.policies["ops"].ownership.owned_by("default")
    assert actual.policies["ops"].description == "ops team"
    # the re-listed state is returned for the daemon
    assert set(result.actual.sockets) == {"web", "db", "box"}


def test_edit_description_is_one_update_and_removal_one_delete(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    folder = write(tmp_path / "m", base_docs())
    assert reconcile([folder], client, opts()).ok

    docs = base_docs()
    docs[1]["spec"]["description"] = "the new web site"
    write(folder, docs)
    plan = plan_of(folder, client)
    assert [(c.action, c.name) for c in plan.changes] == [(Action.UPDATE, "web")]
    assert [(d.path, d.before, d.after) for d in plan.changes[0].diffs] == [
        ("description", "the web site", "the new web site")
    ]
    assert reconcile([folder], client, opts()).ok
    assert fetch_actual(client).sockets["web"].description == "the new web site"

    write(folder, [d for d in docs if d["metadata"]["name"] != "box"])
    plan = plan_of(folder, client)
    assert [(c.action, c.kind, c.name) for c in plan.changes] == [
        (Action.DELETE, "socket", "box")
    ]
    assert reconcile([folder], client, opts()).ok
    assert "box" not in fetch_actual(client).sockets
    assert plan_of(folder, client).changes == []


def test_unmanaged_socket_untouched_then_adopted(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    client.create_socket({"name": "legacy", "socket_type": "http", "description": "by hand",
                          "tags": {"owner": "alice"}})
    folder = write(tmp_path / "m", base_docs())
    assert reconcile([folder], client, opts()).ok
    # prune: everything of ours is gone from the manifests but one socket; legacy stays as it was
    write(folder, base_docs()[:2])
    assert reconcile([folder], client, opts(allow_mass_delete=True)).ok
    legacy = fetch_actual(client).sockets["legacy"]
    assert legacy.description == "by hand" and dict(legacy.tags) == {"owner": "alice"}

    # naming it without adopt is a conflict: nothing at all is applied
    docs = [*base_docs()[:2], socket_doc("legacy", description="managed now",
                                         labels={"owner": "alice"})]
    docs[1]["spec"]["description"] = "changed too"
    write(folder, docs)
    refused = reconcile([folder], client, opts())
    assert not refused.ok and refused.stage == "plan"
    assert "adopt" in refused.error
    after = fetch_actual(client)
    assert after.sockets["legacy"].description == "by hand"
    assert after.sockets["web"].description == "the web site"

    docs[2]["metadata"]["annotations"] = {"border0-reconciler/adopt": "true"}
    write(folder, docs)
    plan = plan_of(folder, client)
    adopt = next(c for c in plan.changes if c.name == "legacy")
    assert (adopt.action, adopt.reason) == (Action.UPDATE, "adopt")
    assert reconcile([folder], client, opts()).ok
    legacy = fetch_actual(client).sockets["legacy"]
    assert legacy.ownership.owned_by("default") and legacy.description == "managed now"
    assert plan_of(folder, client).changes == []


def test_other_instances_objects_are_a_conflict_even_with_adopt(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    folder = write(tmp_path / "m", [socket_doc("shared")])
    assert reconcile([folder], client, opts(instance="team-a")).ok
    write(folder, [socket_doc("shared", annotations={"border0-reconciler/adopt": "true"})])
    result = reconcile([folder], client, opts(instance="team-b"))
    assert not result.ok and result.stage == "plan"
    assert result.plan.conflicts[0].code == "owned-by-other-instance"
    # and team-b's empty-handed prune never sees team-a's socket
    empty = write(tmp_path / "other", [socket_doc("b-only")])
    assert reconcile([empty], client, opts(instance="team-b")).ok
    assert fetch_actual(client).sockets["shared"].ownership.instance == "team-a"


def test_empty_manifest_folder_is_refused_by_the_guard(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    folder = write(tmp_path / "m", base_docs())
    assert reconcile([folder], client, opts()).ok
    empty = tmp_path / "empty"
    empty.mkdir()
    result = reconcile([empty], client, opts())
    assert not result.ok and result.stage == "plan"
    assert "declare nothing" in result.error and "--allow-mass-delete" in result.error
    assert set(fetch_actual(client).sockets) == {"web", "db", "box"}


def test_prune_false_keeps_the_object_after_its_manifest_is_gone(emulator, tmp_path) -> None:
    client = emulator.client()
    docs = base_docs()
    docs[3]["metadata"]["annotations"] = {"border0-reconciler/prune": "false"}
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok
    write(folder, docs[:3])
    plan = plan_of(folder, client)
    assert plan.changes == []
    assert any("kept: prune disabled" in w.message for w in plan.warnings)


def test_type_change_replaces_and_reattaches(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    docs = base_docs()
    docs[3]["spec"]["policies"] = ["ops"]
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok
    old_id = fetch_actual(client).sockets["box"].socket_id
    docs[3]["spec"]["type"] = "tls"
    write(folder, docs)
    plan = plan_of(folder, client)
    assert [(c.action.value, c.name) for c in plan.changes] == [
        ("replace", "box"), ("attach", "box/ops")
    ]
    assert plan.changes[0].reason.startswith("type changed: ssh → tls; a replace: new id")
    assert reconcile([folder], client, opts(allow_replace=True)).ok
    box = fetch_actual(client).sockets["box"]
    assert box.socket_id != old_id and box.socket_type == "tls" and box.policy_names == ("ops",)
    assert plan_of(folder, client).changes == []


def test_attachment_drift_is_repaired(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    folder = write(tmp_path / "m", [*base_docs(), policy_doc("extra")])
    assert reconcile([folder], client, opts()).ok
    actual = fetch_actual(client)
    web, ops, extra = (actual.sockets["web"], actual.policies["ops"],
                       actual.policies["extra"])
    client.update_socket_policies(web.socket_id, add=[extra.policy_id], remove=[ops.policy_id])
    plan = plan_of(folder, client)
    assert sorted((c.action.value, c.name) for c in plan.changes) == [
        ("attach", "web/ops"), ("detach", "web/extra")
    ]
    assert reconcile([folder], client, opts()).ok
    assert fetch_actual(client).sockets["web"].policy_names == ("ops",)


def test_external_policy_is_attached_and_must_exist(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    client.create_policy({"name": "corp", "description": "by the security team",
                          "policy_data": {"version": "v1", "action": ["http"]},
                          "org_wide": False})
    folder = write(tmp_path / "m", [socket_doc("web", externalPolicies=["corp"])])
    assert reconcile([folder], client, opts()).ok
    assert fetch_actual(client).sockets["web"].policy_names == ("corp",)
    write(folder, [socket_doc("web", externalPolicies=["nope"])])
    result = reconcile([folder], client, opts())
    assert not result.ok and result.plan.conflicts[0].code == "unknown-policy"


def test_fetch_lists_once_not_per_object(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    docs = [socket_doc(f"s{i:03d}") for i in range(150)]
    assert reconcile([write(tmp_path / "m", docs)], client, opts()).ok
    client.request_counts.clear()
    fetch_actual(client)
    assert sent(client, "GET") <= 4  # two pages of sockets, policies (+ a short page)


@pytest.mark.timeout(180)
def test_apply_under_fail_rate_converges_without_duplicates(emulator_factory, tmp_path) -> None:
    db = str(tmp_path / "faults.db")
    emu = emulator_factory(db_path=db, fail_rate=0.3, seed=7)
    client = emu.client()
    docs = [policy_doc("ops")] + [
        socket_doc(f"web-{i:02d}", description=f"site {i}", policies=["ops"]) for i in range(20)
    ]
    folder = write(tmp_path / "m", docs)
    for _attempt in range(12):
        result = reconcile([folder], client, opts(parallelism=8))
        if result.ok and result.plan is not None and not result.plan.has_changes:
            break
    else:
        pytest.fail(f"did not converge: {result.stage} {result.error}")
    emu.stop()
    clean = emulator_factory(db_path=db)  # the same database, served without faults
    names = Counter(s["name"] for s in clean.client().list_sockets())
    assert names == Counter({f"web-{i:02d}": 1 for i in range(20)})
    assert make_plan(
        reconcile([folder], clean.client(), opts(dry_run=True)).desired,
        fetch_actual(clean.client()),
    ).changes == []


def test_org_wide_change_replaces_policy_and_converges(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    docs = base_docs()
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok
    old_id = fetch_actual(client).policies["ops"].policy_id
    docs[0]["spec"]["orgWide"] = True
    write(folder, docs)
    result = reconcile([folder], client, opts(allow_replace=True))
    assert result.ok, result.error
    assert [c.action.value for c in result.plan.changes] == ["replace", "attach", "attach"]
    after = fetch_actual(client)
    assert after.policies["ops"].policy_id != old_id and after.policies["ops"].org_wide
    assert plan_of(folder, client).changes == []


def test_a_failure_does_not_stop_independent_actions(emulator, tmp_path: Path) -> None:
    from reconciler.apply import apply_plan
    from reconciler.manifests.loader import load

    client = emulator.client()
    folder = write(tmp_path / "m", base_docs())
    desired = load([folder], env=ENV).desired
    actual = fetch_actual(client)
    plan = make_plan(desired, actual)
    # someone takes the name "web" between plan and apply
    client.create_socket({"name": "web", "socket_type": "http", "description": "by hand"})
    seen: list[str] = []
    result = apply_plan(plan, client, desired, actual, progress=lambda r: seen.append(r.message))
    assert not result.ok
    failed = {r.message.split(":")[1].strip() for r in result.failed}
    assert failed == {"create socket web", "attach policy ops to socket web"}
    assert any("socket web was not created" in m for m in seen)
    assert "created socket db" in seen and "attached policy ops to socket db" in seen
    live = fetch_actual(client)
    assert live.sockets["web"].description == "by hand"  # not ours: untouched
    assert {"db", "box"} <= set(live.sockets) and "ops" in live.policies
    # rerunning: the rest is done; the taken name is now a clear conflict
    again = reconcile([folder], client, opts())
    assert again.stage == "plan" and again.plan.conflicts[0].code == "not-managed"


def test_read_after_write_delay_is_honoured(emulator_factory, tmp_path: Path) -> None:
    clock = ManualClock()  # the client's and the twin's: the waits are counted, not timed
    emu = emulator_factory(read_after_write_delay_ms=250, clock=clock)
    client = emu.client(clock=clock)
    folder = write(tmp_path / "m", base_docs()[:2])  # policy, socket, attachment: 3 phases
    result = reconcile([folder], client, opts())
    assert result.ok and client.read_after_write_delay() == 0.25
    # The twin's replica lags on `clock`: only waits on it let the re-listing below see the
    # writes, so the client waited out (at least) one whole window after the last write.
    assert sum(clock.slept) >= 0.25, clock.slept
    assert set(result.actual.sockets) == {"web"}


def test_with_a_read_after_write_delay_every_read_sees_the_writes(
        emulator_factory, tmp_path: Path) -> None:
    """The client alone waits out border0's delay (border0/api.py): the re-list after an apply
    sees every object, and a client made after this one closed (the next command) plans nothing."""
    emu = emulator_factory(read_after_write_delay_ms=250)
    client = emu.client()
    folder = write(tmp_path / "m", base_docs()[:2])  # policy, socket, attachment: 3 phases
    result = reconcile([folder], client, opts())
    assert result.ok and client.read_after_write_delay() == 0.25, result.error
    assert set(result.actual.sockets) == {"web"} and set(result.actual.policies) == {"ops"}
    assert set(result.actual.sockets["web"].policy_names) == {"ops"}
    client.close()
    assert plan_of(folder, emu.client()).changes == []


def test_a_create_that_meets_someone_elses_object_fails_and_leaves_it(
        emulator, tmp_path: Path) -> None:
    """A failed create is looked up by name once, in apply, with the ownership check: an object
    of the same name made by hand after the plan is not taken for ours."""
    client = emulator.client()
    folder = write(tmp_path / "m", base_docs()[:2])
    prepared = reconcile([folder], client, opts(dry_run=True))
    assert [c.name for c in prepared.plan.changes if c.action is Action.CREATE] == ["ops", "web"]
    client.create_socket({"name": "web", "socket_type": "http", "description": "by hand"})
    applied = apply_plan(prepared.plan, client, prepared.desired, prepared.actual)
    failed = {r.change.name: r.message for r in applied.failed}
    assert "already exists" in failed["web"], failed
    web = fetch_actual(client).sockets["web"]
    assert web.description == "by hand" and not web.ownership.owned_by("default")
