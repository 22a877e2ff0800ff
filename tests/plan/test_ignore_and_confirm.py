"""`spec.ignoreFields` (plan/ignore.py) and the confirm-delete annotation, through the one
pipeline against the in-process emulator over real HTTP, with changes made out-of-band the way
the portal makes them (`edit_by_hand`)."""

from __future__ import annotations

from pathlib import Path

from documents import opts, policy_doc, socket_doc, write
from helpers import edit_by_hand

from reconciler.manifests.loader import load
from reconciler.reconcile import reconcile


def _changes(result) -> list[tuple[str, str, str]]:
    return [(c.action.value, c.kind, c.name) for c in result.plan.changes]


def test_an_ignored_field_changed_out_of_band_every_time_is_not_drift(
    emulator, tmp_path: Path
) -> None:
    client = emulator.client()
    web = socket_doc("web", description="from git", labels={"team": "web", "cost": "a"},
                     ignoreFields=["/spec/description", "/metadata/labels/cost"])
    folder = write(tmp_path / "m", [web])
    assert reconcile([folder], client, opts()).ok
    assert client.get_socket("web")["description"] == "from git"  # created as declared

    for round_ in range(3):  # something else rewrites it, again and again
        edit_by_hand(client, client.get_socket("web"), description=f"autoscaler {round_}",
                     tags={**client.get_socket("web")["tags"], "cost": f"c{round_}"})
        result = reconcile([folder], client, opts())
        assert result.ok and _changes(result) == []
    assert client.get_socket("web")["description"] == "autoscaler 2"

    # an update for another reason writes border0's value of the ignored fields back
    web["metadata"]["labels"]["team"] = "platform"
    write(tmp_path / "m", [web])
    result = reconcile([folder], client, opts())
    assert _changes(result) == [("update", "socket", "web")]
    assert [d.path for d in result.plan.changes[0].diffs] == ["labels.team"]
    live = client.get_socket("web")
    assert live["description"] == "autoscaler 2"
    assert (live["tags"]["team"], live["tags"]["cost"]) == ("platform", "c2")

    # the same manifest without ignoreFields: the out-of-band change is drift again
    del web["spec"]["ignoreFields"]
    write(tmp_path / "m", [web])
    result = reconcile([folder], client, opts(dry_run=True))
    assert [d.path for d in result.plan.changes[0].diffs] == ["description", "labels.cost"]


def test_ignore_fields_under_a_policys_policy_data(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    ops = policy_doc("ops")
    ops["spec"]["ignoreFields"] = ["/spec/policyData/condition/who"]
    folder = write(tmp_path / "m", [ops])
    assert reconcile([folder], client, opts()).ok
    live = client.find_policy("ops")
    data = {**live["policy_data"], "condition": {"who": {"email": ["oncall@example.com"]}}}
    client.update_policy(live["id"], {"name": "ops", "description": live["description"],
                                      "policy_data": data, "version": "v1"})
    assert _changes(reconcile([folder], client, opts())) == []


def test_ignore_fields_are_json_pointers_the_schema_knows(tmp_path: Path) -> None:
    web = socket_doc("web", ignoreFields=["/spec/type"])
    result = load([write(tmp_path / "m", [web])])
    assert not result.ok
    assert "spec.ignoreFields[0]" in result.diagnostics[0].message


def test_a_deletion_waits_for_a_confirmation_naming_it(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    keep = socket_doc("keep")
    guarded = socket_doc("vault", annotations={"border0-reconciler/confirm-delete": "true"})
    ops = policy_doc("ops", annotations={"border0-reconciler/confirm-delete": "true"})
    folder = write(tmp_path / "m", [keep, guarded, ops])
    assert reconcile([folder], client, opts()).ok
    assert client.get_socket("vault")["tags"]["border0-reconciler/confirm-delete"] == "true"

    write(tmp_path / "m", [keep])  # both manifests removed
    waiting = reconcile([folder], client, opts(allow_mass_delete=True))
    assert waiting.ok and _changes(waiting) == []
    assert sorted(w.code for w in waiting.plan.warnings) == ["delete-unconfirmed"] * 2
    assert "apply --confirm-delete vault" in " ".join(w.message for w in waiting.plan.warnings)
    assert client.find_socket("vault") is not None

    done = reconcile([folder], client, opts(allow_mass_delete=True,
                                            confirm_delete=frozenset({"vault"})))
    assert _changes(done) == [("delete", "socket", "vault")]
    assert client.find_socket("vault") is None and client.find_policy("ops") is not None
