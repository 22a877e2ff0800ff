"""Access a policy gives through its `tag_rules` (every socket whose tags match one rule) is
access like an attachment's: the access review lists it, `--deny-access-gain` refuses it and the
daemon holds the change that grants it. Against the twin over HTTP, as a user meets it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from documents import opts, socket_doc, write
from helpers import cli

from reconciler.plan.types import DeferReason
from reconciler.reconcile import reconcile

ALICE = {"email": ["alice@example.com"]}
#: A policy made in the portal: http for alice on every socket tagged tier=gold.
GOLD = {"name": "gold", "description": "by the security team", "org_wide": False,
        "version": "v1", "tag_rules": [{"tier": "gold"}],
        "policy_data": {"version": "v1", "action": ["http"], "condition": {"who": ALICE}}}
GOLD_DOC = {"apiVersion": "border0-reconciler/v1", "kind": "Policy", "metadata": {"name": "gold"},
            "spec": {"description": "gold tier", "policyData": copy.deepcopy(GOLD["policy_data"])}}


def review(plan: Any) -> list[tuple[str, str, str, str, tuple[tuple[str, str], ...]]]:
    return [(a.change, a.principal, a.action, a.socket, a.policies) for a in plan.access_changes]


def apply_denying_gains(emulator: Any, folder: Path, tmp_path: Path) -> tuple[int, str]:
    code, _, err = cli(["apply", str(folder), "--api", emulator.url, "--auto-approve",
                          "--deny-access-gain"], env={"BORDER0_TOKEN": emulator.token},
                         cwd=tmp_path)
    assert "Traceback" not in err, err
    return code, err


def test_a_label_a_portal_policy_selects_grants_access(emulator: Any, tmp_path: Path) -> None:
    client = emulator.client()
    client.create_policy(copy.deepcopy(GOLD))
    folder = write(tmp_path / "m", [socket_doc("web", labels={"tier": "silver"})])
    assert reconcile([folder], client, opts()).ok
    write(folder, [socket_doc("web", labels={"tier": "gold"})])  # silver -> gold

    plan = reconcile([folder], client, opts(dry_run=True)).plan
    assert review(plan) == [
        ("gain", "alice@example.com", "http", "web", (("gold", "selected by tag_rules"),))]
    assert [(c.title, c.widens_access) for c in plan.changes] == [("update socket web", True)]
    assert plan.to_json()["access_changes"][0]["policies"] == [
        {"name": "gold", "cause": "selected by tag_rules"}]

    # the daemon holds it until the manifests settle; --deny-access-gain refuses it
    held = reconcile([folder], client, opts(delete_grace=60)).plan
    assert [(d.change.title, d.reason) for d in held.deferred] == [
        ("update socket web", DeferReason.ACCESS)]
    code, err = apply_denying_gains(emulator, folder, tmp_path)
    assert code == 1 and "+ alice@example.com gains http on web (policy gold selected by " \
        "tag_rules)" in err
    assert client.get_socket("web")["tags"]["tier"] == "silver"

    # applied, then taken back: a loss, which the gate lets through
    assert reconcile([folder], client, opts()).ok
    write(folder, [socket_doc("web", labels={"tier": "silver"})])
    plan = reconcile([folder], client, opts(dry_run=True)).plan
    assert review(plan) == [
        ("loss", "alice@example.com", "http", "web", (("gold", "no longer selected by tag_rules"),))]
    assert apply_denying_gains(emulator, folder, tmp_path)[0] == 0
    assert client.get_socket("web")["tags"]["tier"] == "silver"


def test_a_managed_policy_widened_counts_the_sockets_its_tag_rules_select(
    emulator: Any, tmp_path: Path
) -> None:
    client = emulator.client()
    policy = copy.deepcopy(GOLD_DOC)
    folder = write(tmp_path / "m", [policy, socket_doc("web", labels={"tier": "gold"})])
    assert reconcile([folder], client, opts()).ok
    # the security team makes the managed policy select gold sockets (web is not attached)
    live = client.find_policy("gold")
    client.update_policy(live["id"], {"name": "gold", "version": "v1",
                                      "description": live["description"],
                                      "policy_data": live["policy_data"],
                                      "tag_rules": [{"tier": "gold"}]})
    policy["spec"]["policyData"]["condition"]["who"] = {"domain": ["example.com"]}
    write(folder, [policy, socket_doc("web", labels={"tier": "gold"})])

    plan = reconcile([folder], client, opts(dry_run=True)).plan
    assert review(plan) == [
        ("gain", "example.com", "http", "web", (("gold", "changed"),)),
        ("loss", "alice@example.com", "http", "web", (("gold", "changed"),)),
    ]
    assert [(c.title, c.widens_access) for c in plan.changes] == [("update policy gold", True)]
    held = reconcile([folder], client, opts(delete_grace=60)).plan
    assert [(d.change.title, d.reason) for d in held.deferred] == [
        ("update policy gold", DeferReason.ACCESS)]
    code, err = apply_denying_gains(emulator, folder, tmp_path)
    assert code == 1 and "+ domain example.com gains http on web (policy gold changed)" in err
    assert client.find_policy("gold")["policy_data"]["condition"]["who"] == ALICE
