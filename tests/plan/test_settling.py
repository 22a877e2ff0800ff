"""Which changes wait for the manifests to settle (plan/settling.py, issue 23 item 1): those that
grant access or lower a guard; narrowing and neutral changes go ahead at once."""

from __future__ import annotations

from dataclasses import replace

from test_access import OURS, live_policy, live_socket, v1, world

from reconciler.model import PolicySpec, SocketSpec, Source
from reconciler.plan.planner import make_plan
from reconciler.plan.settling import Settle
from reconciler.render import render

OFFICE = {"allowed_ip": ["10.1.0.0/16"]}
LAN = {"allowed_ip": ["10.0.0.0/8"]}
WHO = {"email": ["ops@example.com"]}


def held(*objs, incomplete=()) -> tuple[list[tuple[str, str, str]], list[str]]:
    desired, actual = world(*objs)
    plan = make_plan(desired, actual, settle=Settle(100.0, 5.0, 100.1, tuple(incomplete)))
    return ([(d.change.action.value, d.change.name, d.reason) for d in plan.deferred],
            [f"{c.action.value} {c.name}" for c in plan.changes])


def test_a_condition_removed_or_loosened_waits_and_a_narrowed_one_does_not() -> None:
    sock = (SocketSpec("ssh1", "ssh", policies=("p",)), live_socket("ssh1", policies=("p",)))
    assert held(*sock, PolicySpec("p", policy_data=v1(["ssh"], WHO)),
                live_policy("p", v1(["ssh"], WHO, OFFICE))) == ([("update", "p", "access")], [])
    assert held(*sock, PolicySpec("p", policy_data=v1(["ssh"], WHO, LAN)),
                live_policy("p", v1(["ssh"], WHO, OFFICE))) == ([("update", "p", "access")], [])
    assert held(*sock, PolicySpec("p", policy_data=v1(["ssh"], WHO, OFFICE)),
                live_policy("p", v1(["ssh"], WHO, LAN))) == ([], ["update p"])


def test_who_widened_attach_and_org_wide_wait_a_description_does_not() -> None:
    more = {"email": ["ops@example.com", "eve@example.com"]}
    assert held(SocketSpec("s", "ssh", policies=("p",)), live_socket("s", policies=("p",)),
                PolicySpec("p", policy_data=v1(["ssh"], more)),
                live_policy("p", v1(["ssh"], WHO)))[0] == [("update", "p", "access")]
    assert held(SocketSpec("s", "ssh", policies=("p",)), live_socket("s"),
                PolicySpec("p", policy_data=v1(["ssh"], WHO)),
                live_policy("p", v1(["ssh"], WHO)))[0] == [("attach", "s/p", "access")]
    assert held(live_socket("s"), SocketSpec("s", "ssh"),
                PolicySpec("all", policy_data=v1(["ssh"], WHO), org_wide=True))[0] == [
        ("create", "all", "access")]
    assert held(SocketSpec("s", "ssh", description="new"), live_socket("s")) == ([], ["update s"])


def test_new_tags_a_policys_tag_rules_select_wait_a_new_socket_does_not() -> None:
    gold = replace(live_policy("gold", v1(["ssh"], WHO), instance=None),
                   tag_rules=({"tier": "gold"},))
    spec = SocketSpec("s", "ssh", labels={"tier": "gold"})
    assert held(spec, live_socket("s"), gold) == ([("update", "s", "access")], [])
    assert held(SocketSpec("s", "ssh", labels={"tier": "silver"}),
                live_socket("s", tags={**OURS, "tier": "gold"}), gold) == ([], ["update s"])
    # as a new socket's attachments: its grants are listed, its creation goes ahead
    assert held(spec, gold) == ([], ["create s"])


def test_protection_or_recording_switched_off_waits_and_switched_on_does_not() -> None:
    live = replace(live_socket("s"), recording_enabled=True)
    assert held(SocketSpec("s", "ssh", recording=False), live)[0] == [("update", "s", "guard")]
    assert held(SocketSpec("s", "ssh", recording=True), live_socket("s")) == ([], ["update s"])


def test_every_change_of_a_file_cut_mid_write_waits() -> None:
    spec = SocketSpec("s", "ssh", description="cut mid-wo", source=Source("m/a.yaml", 3, 1))
    assert held(spec, live_socket("s"), incomplete=["m/b.yaml"]) == ([], ["update s"])
    assert held(spec, live_socket("s"), incomplete=["m/a.yaml"]) == (
        [("update", "s", "incomplete")], [])


def test_the_planner_defers_nothing_once_the_manifests_have_settled() -> None:
    objs = (SocketSpec("s", "ssh", policies=("p",)), live_socket("s"),
            PolicySpec("p", policy_data=v1(["ssh"], WHO)), live_policy("p", v1(["ssh"], WHO)))
    desired, actual = world(*objs)
    waiting = make_plan(desired, actual, settle=Settle(100.0, 5.0, 104.9))
    assert [d.change.title for d in waiting.deferred] == ["attach policy p to socket s"]
    assert waiting.changes == [] and waiting.deferred_until == 105.0
    assert [w.code for w in waiting.warnings] == ["change-held"]
    settled = make_plan(desired, actual, settle=Settle(100.0, 5.0, 105.0))
    assert settled.deferred == [] and settled.deferred_until is None
    assert [c.title for c in settled.changes] == ["attach policy p to socket s"]
    # no grace (plan, apply, --once): nothing waits, even for an mtime a little in the future
    assert make_plan(desired, actual, settle=Settle(100.0, 0.0, 99.5)).deferred == []


def test_every_view_shows_what_is_deferred_and_never_says_no_changes() -> None:
    desired, actual = world(SocketSpec("s", "ssh", description="new"), live_socket("s"),
                            live_socket("gone"))
    plan = make_plan(desired, actual, settle=Settle(100.0, 5.0, 100.1))
    assert [c.title for c in plan.changes] == ["update socket s"]
    data = plan.to_json()
    assert [(d["change"]["title"], d["reason"]) for d in data["deferred"]] == [
        ("delete socket gone", "removal")]
    text = render(data, "text")
    assert ("Deferred (1) until the manifests settle, planned again at "
            "1970-01-01T00:01:45.000+00:00:\n  … delete socket gone (removes an object)") in text
    assert text.rstrip().endswith(
        "1 to update, 0 to replace, 0 to delete, 0 to attach, 0 to detach. "
        "1 change deferred until the manifests settle.")
    markdown = render(data, "markdown")
    assert "### :hourglass: Deferred (1)" in markdown
    assert "- delete socket gone (removes an object)" in markdown
    only = make_plan(*world(live_socket("gone"), SocketSpec("s", "ssh"), live_socket("s")),
                     settle=Settle(100.0, 5.0, 100.1)).to_json()
    assert "No changes. border0 matches" not in render(only, "text")
    assert render(only, "text").rstrip().endswith(
        "No changes now: 1 change deferred until the manifests settle.")
