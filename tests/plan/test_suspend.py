"""Suspend one object: the planner leaves it, and every attachment involving it, alone."""

from __future__ import annotations

import json

import jsonschema
from documents import ours
from helpers import REPO

from reconciler.manifests.loader import load
from reconciler.model import (
    Actual,
    Desired,
    LivePolicy,
    LiveSocket,
    Ownership,
    PolicySpec,
    SocketSpec,
)
from reconciler.plan.planner import make_plan
from reconciler.render import render

SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
OURS = ours()


def live_socket(name: str, description: str = "", policies: dict[str, str] | None = None):
    policies = policies or {}
    return LiveSocket(socket_id=f"id-{name}", name=name, socket_type="http",
                      description=description, upstream_type="http", tags=dict(OURS),
                      policy_ids=tuple(policies.values()), policy_names=tuple(policies))


def live_policy(name: str, description: str = "") -> LivePolicy:
    return LivePolicy(policy_id=f"pid-{name}", name=name, description=description,
                      org_wide=False, policy_data={},
                      ownership=Ownership(managed=True, instance="default"))


def test_a_suspended_socket_gets_no_update_and_no_attachment_change() -> None:
    desired = Desired(
        sockets={"web": SocketSpec("web", "http", description="new", policies=("ops",),
                                   suspend=True)},
        policies={"ops": PolicySpec("ops"), "old": PolicySpec("old")},
    )
    actual = Actual(sockets={"web": live_socket("web", "hand-edited", {"old": "pid-old"})},
                    policies={"ops": live_policy("ops"), "old": live_policy("old")})
    plan = make_plan(desired, actual)
    assert [(c.action.value, c.name) for c in plan.changes] == []
    assert plan.suspended == [{"kind": "socket", "name": "web", "in_border0": True,
                               "differs": True, "source": None}]
    text = render(plan.to_json(), "text")
    assert "= socket web (differs from its manifest)" in text
    assert "No changes. border0 matches the manifests, except 1 suspended object left as it is." \
        in text
    resumed = make_plan(Desired(sockets={"web": SocketSpec("web", "http", description="new",
                                                           policies=("ops",))},
                                policies=desired.policies), actual)
    assert [(c.action.value, c.name) for c in resumed.changes] == [
        ("update", "web"), ("attach", "web/ops"), ("detach", "web/old")]


def test_a_suspended_policy_is_not_created_updated_attached_or_detached() -> None:
    desired = Desired(
        sockets={"web": SocketSpec("web", "http", policies=("new", "ops")),
                 "api": SocketSpec("api", "http")},
        policies={"new": PolicySpec("new", suspend=True),
                  "ops": PolicySpec("ops", description="x", suspend=True)},
    )
    actual = Actual(sockets={"web": live_socket("web"),
                             "api": live_socket("api", policies={"ops": "pid-ops"})},
                    policies={"ops": live_policy("ops", "hand-edited")})
    plan = make_plan(desired, actual)
    assert plan.changes == [] and plan.ok
    assert [(s["name"], s["in_border0"], s["differs"]) for s in plan.suspended] == [
        ("new", False, True), ("ops", True, True)]


def test_a_suspended_object_that_matches_border0_does_not_differ() -> None:
    desired = Desired(sockets={"web": SocketSpec("web", "http", description="same",
                                                 policies=("ops",), suspend=True)},
                      policies={"ops": PolicySpec("ops", suspend=True)})
    actual = Actual(sockets={"web": live_socket("web", "same", {"ops": "pid-ops"})},
                    policies={"ops": live_policy("ops")})
    plan = make_plan(desired, actual)
    assert [s["differs"] for s in plan.suspended] == [False, False]
    assert "differs" not in render(plan.to_json(), "text")


def test_removing_a_suspended_manifest_prunes_it() -> None:
    """Suspension is read from the manifest: no manifest, no suspension (README says so)."""
    actual = Actual(sockets={"web": live_socket("web"), "api": live_socket("api")})
    plan = make_plan(Desired(sockets={"api": SocketSpec("api", "http")}), actual)
    assert [(c.action.value, c.name) for c in plan.changes] == [("delete", "web")]


def test_suspended_is_in_every_rendering_and_the_json_schema(tmp_path) -> None:
    (tmp_path / "web.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: web\n  annotations:\n"
        "    border0-reconciler/suspend: \"true\"\nspec:\n  type: http\n")
    loaded = load([str(tmp_path)])
    assert loaded.ok, loaded.diagnostics
    desired = loaded.desired
    assert desired.sockets["web"].suspend
    plan_json = make_plan(desired, Actual()).to_json()
    jsonschema.validate(plan_json, SCHEMA)
    assert plan_json["changes"] == [] and plan_json["suspended"][0]["name"] == "web"
    assert "Suspended (1): left as they are in border0" in render(plan_json, "text")
    assert "socket web (" in render(plan_json, "text") and "not in border0" in render(
        plan_json, "text")
    assert "Suspended (1)" in render(plan_json, "markdown")
    assert json.loads(render(plan_json, "json"))["suspended"][0]["kind"] == "socket"


def test_a_misspelt_reconciler_annotation_names_suspend(tmp_path) -> None:
    (tmp_path / "web.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: web\n  annotations:\n"
        "    border0-reconciler/suspended: \"true\"\nspec:\n  type: http\n")
    loaded = load([str(tmp_path)])
    assert any("border0-reconciler/suspend" in str(d) for d in loaded.diagnostics)
