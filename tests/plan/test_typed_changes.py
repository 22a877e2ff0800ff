"""Stages pass types, not strings: a change says it adopts or widens access as a flag, a conflict
names its object as a subject, every view words a change by its `title` from the plan JSON, and
the mass-delete guard is one named code."""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import pytest
from helpers import REPO
from test_access import live_policy as access_policy
from test_access import live_socket as access_socket
from test_access import v1, world
from test_plan import actual, desired, live_policy, live_socket

from reconciler.model import PolicySpec, SocketSpec
from reconciler.ownership import Instance, InvalidInstance
from reconciler.plan import saved
from reconciler.plan.guard import MASS_DELETE
from reconciler.plan.planner import check_instance, make_plan
from reconciler.plan.settling import Settle
from reconciler.plan.types import Action, DeferReason
from reconciler.render import render

SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())


def test_an_adopted_object_is_flagged_whatever_its_reason_says() -> None:
    live = live_socket("legacy", description="old", tags={"team": "x"})
    spec = SocketSpec("legacy", "http", description="new", labels={"team": "x"}, adopt=True)
    plan = make_plan(desired(spec, PolicySpec("mine")), actual(live, live_policy("mine")))
    (change,) = [c for c in plan.changes if c.name == "legacy"]
    assert change.adopting and change.reason.startswith("adopt")
    edited = make_plan(desired(PolicySpec("mine", description="new")),
                       actual(live_policy("mine", description="old")))
    assert [c.adopting for c in edited.changes] == [False]
    # a view reading the flag is not fooled by a reason that happens to start with the word
    worded = replace(edited.changes[0], reason="adopted by hand earlier")
    assert not worded.adopting
    data = plan.to_json()
    jsonschema.validate(data, SCHEMA)
    assert [c.get("adopting") for c in data["changes"]] == [True]


def test_a_change_that_widens_access_is_flagged_and_that_flag_holds_it_back() -> None:
    who = {"email": ["ops@example.com"]}
    more = {"email": ["ops@example.com", "eve@example.com"]}
    sock = (SocketSpec("s", "ssh", policies=("p",)), access_socket("s", policies=("p",)))
    plan = make_plan(*world(*sock, PolicySpec("p", policy_data=v1(["ssh"], more)),
                             access_policy("p", v1(["ssh"], who))))
    assert [(c.name, c.widens_access) for c in plan.changes] == [("p", True)]
    assert plan.to_json()["changes"][0]["widens_access"] is True
    narrowed = make_plan(*world(*sock, PolicySpec("p", policy_data=v1(["ssh"], who)),
                                 access_policy("p", v1(["ssh"], more))))
    assert [(c.name, c.widens_access) for c in narrowed.changes] == [("p", False)]
    # held back by the flag: the narrowing change goes ahead
    unsettled = Settle(100.0, 5.0, 100.1)
    held = make_plan(*world(*sock, PolicySpec("p", policy_data=v1(["ssh"], more)),
                            access_policy("p", v1(["ssh"], who))), settle=unsettled)
    assert [(d.change.name, d.reason) for d in held.deferred] == [("p", DeferReason.ACCESS)]
    assert held.changes == []
    narrowing = make_plan(*world(*sock, PolicySpec("p", policy_data=v1(["ssh"], who)),
                                 access_policy("p", v1(["ssh"], more))), settle=unsettled)
    assert narrowing.deferred == [] and [c.name for c in narrowing.changes] == ["p"]


def test_conflicts_name_their_object_as_a_subject() -> None:
    plan = make_plan(desired(SocketSpec("web", "http", policies=("nope",))), actual())
    (conflict,) = plan.conflicts
    assert conflict.code == "unknown-policy" and conflict.subject == ("socket", "web")
    theirs = make_plan(desired(SocketSpec("legacy", "http")),
                       actual(live_socket("legacy", tags={"team": "x"})))
    assert [d.subject for d in theirs.conflicts] == [("socket", "legacy")]


def test_every_view_words_a_change_by_its_title() -> None:
    plan = make_plan(desired(SocketSpec("web", "http", policies=("ops",)), PolicySpec("ops")),
                     actual(live_socket("web"), live_policy("ops")))
    (attach,) = plan.changes
    assert attach.action is Action.ATTACH
    assert attach.title == "attach policy ops to socket web"
    data = plan.to_json()
    data["changes"][0]["title"] = "attach policy ops to socket web (as the plan says)"
    assert "attach policy ops to socket web (as the plan says)" in render(data, "text")
    assert "policy ops to socket web (as the plan says)" in render(data, "markdown")


def test_a_plan_saved_before_titles_gets_them_when_read(tmp_path) -> None:
    plan = make_plan(desired(SocketSpec("web", "http")), actual())
    data = plan.to_json()
    for change in data["changes"]:
        del change["title"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"kind": saved.KIND, "format_version": "1", "paths": ["m"],
                                "instance": "default", "salt": "s", "desired_fingerprint": "d",
                                "actual_fingerprint": "a", "base": None, "plan": data}))
    assert [c["title"] for c in saved.read(path).plan["changes"]] == ["create socket web"]


def test_the_mass_delete_guard_is_one_named_code_that_counts_only_deletes_planned_now() -> None:
    mine = [live_socket(n) for n in ("a", "b", "c")]
    plan = make_plan(desired(SocketSpec("a", "http")), actual(*mine))
    assert [d.code for d in plan.conflicts] == [MASS_DELETE]
    assert "Refused" in render(plan.to_json(), "markdown")
    deferred = make_plan(desired(SocketSpec("a", "http")), actual(*mine),
                         settle=Settle(100.0, 5.0, 100.1))
    assert deferred.conflicts == [] and deferred.changes == []
    assert {d.reason for d in deferred.deferred} == {DeferReason.REMOVAL}
    data = deferred.to_json()
    jsonschema.validate(data, SCHEMA)
    assert [(d["change"]["title"], d["reason"], d["until"]) for d in data["deferred"]] == [
        ("delete socket b", "removal", "1970-01-01T00:01:45.000+00:00"),
        ("delete socket c", "removal", "1970-01-01T00:01:45.000+00:00")]


def test_the_instance_name_rule_has_one_home() -> None:
    assert Instance("ci-1.eu") == "ci-1.eu" and Instance(Instance("x")) == "x"
    for bad in ("", "has space", "x" * 64, "ünï"):
        with pytest.raises(InvalidInstance, match="1 to 63 letters") as refused:
            Instance(bad)
        assert check_instance(bad) == str(refused.value)
    assert check_instance("ci") is None
    # the plan keeps a plain str: YAML and JSON renderings dump it as any other
    assert type(make_plan(desired(), actual(), instance="ci").to_json()["instance"]) is str
    with pytest.raises(ValueError, match="invalid instance 'has space'"):
        make_plan(desired(), actual(), instance="has space")


def test_isolation_is_decided_by_the_planner_the_rest_of_the_plan_stays_applicable() -> None:
    theirs = live_socket("legacy", tags={"team": "x"})  # border0 holds it, unmanaged
    specs = desired(SocketSpec("legacy", "http"), SocketSpec("web", "http"))
    refused = make_plan(specs, actual(theirs))
    assert not refused.ok and refused.isolated == []
    isolated = make_plan(specs, actual(theirs), isolate_conflicts=True)
    assert isolated.ok and [c.title for c in isolated.changes] == ["create socket web"]
    assert [(b.kind, b.name) for b in isolated.isolated] == [("socket", "legacy")]
    assert str(isolated.isolated[0]) == refused.conflicts[0].message
