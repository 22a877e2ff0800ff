"""The chart's production shapes: replicas with leader election (Role for Leases, flags wired),
the trigger endpoint's Secret, and connector agents as a DaemonSet or per-shard Deployments.
Rendered by Helm's own engine like tests/packaging/test_chart.py, whose helpers it reuses; the
rendered `run` arguments are parsed by the real click command."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
from test_chart import _deep_merge, ci_values, container, parse_run_args, render_all

AGENTS = [
    {"name": "payments", "selector": "team=payments", "kind": "DaemonSet",
     "nodeSelector": {"zone": "payments"}},
    {"name": "rest", "selector": "team!=payments"},
]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, [(o["kind"], o["metadata"]["name"]) for o in objects]
    return found[0]


def test_replicas_with_leader_election_get_a_lease_role_and_the_flags(chart: Any) -> None:
    objects = render_all(chart, ci_values("ha"))
    deployment = named(objects, "Deployment", "demo-border0-reconciler")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    spec = deployment["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is True
    rec = container(spec, "reconciler")
    params = parse_run_args(rec["args"])
    assert params["leader_elect"] and params["lease_namespace"] == "border0"
    assert params["lease_name"] == "demo-border0-reconciler"
    assert (params["lease_duration"], params["renew_deadline"], params["retry_period"]) == (
        15.0, 10.0, 2.0)  # seconds: the flags are durations
    assert params["no_connectors"] and not params["connectors_only"]
    assert params["trigger_token_file"] == "/etc/border0-reconciler/trigger/token"
    env = {e["name"]: e for e in rec["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # every replica (and agent) keys secret fingerprints with the one Secret's key
    assert env["BORDER0_RECONCILER_FINGERPRINT_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "border0-reconciler-fingerprint-key", "key": "key"}
    agent = next(o for o in objects if o["kind"] == "DaemonSet")
    assert "BORDER0_RECONCILER_FINGERPRINT_KEY" in {
        e["name"] for e in container(agent["spec"]["template"]["spec"], "reconciler")["env"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["trigger-token"]["secret"]["secretName"] == "border0-reconciler-trigger"
    role = named(objects, "Role", "demo-border0-reconciler-leader-election")
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "create", "update"]}]
    binding = named(objects, "RoleBinding", "demo-border0-reconciler-leader-election")
    assert binding["subjects"][0]["name"] == spec["serviceAccountName"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_a_single_writer_keeps_recreate_and_no_kubernetes_access(chart: Any) -> None:
    objects = render_all(chart, ci_values("default"))
    deployment = named(objects, "Deployment", "demo-border0-reconciler")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    spec = deployment["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding", "DaemonSet")]
    params = parse_run_args(container(spec, "reconciler")["args"])
    assert not params["leader_elect"] and params["trigger_token_file"] is None
    assert "BORDER0_RECONCILER_FINGERPRINT_KEY" not in {
        e["name"] for e in container(spec, "reconciler")["env"]}  # the state folder's key file


def test_connector_agents_render_as_daemonset_and_deployment(chart: Any) -> None:
    values = _deep_merge(ci_values("default"), {"connectorAgents": AGENTS,
                                                "reconciler": {"connectors": False}})
    objects = render_all(chart, values)
    service = next(o for o in objects if o["kind"] == "Service")
    writer = named(objects, "Deployment", "demo-border0-reconciler")
    assert parse_run_args(container(writer["spec"]["template"]["spec"], "reconciler")["args"])[
        "no_connectors"]
    for agent, kind in (("payments", "DaemonSet"), ("rest", "Deployment")):
        obj = named(objects, kind, f"demo-border0-reconciler-agent-{agent}")
        template = obj["spec"]["template"]
        assert obj["spec"]["selector"]["matchLabels"].items() <= template["metadata"][
            "labels"].items()
        # the Service (the writer's /status) never selects an agent
        assert not service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
        spec = template["spec"]
        params = parse_run_args(container(spec, "reconciler")["args"])
        selector = next(a["selector"] for a in AGENTS if a["name"] == agent)
        assert params["connectors_only"] and params["connector_selector"] == selector
        assert not params["leader_elect"] and not params["dry_run"]
        assert spec["automountServiceAccountToken"] is False
        assert any(c["name"] == "git-sync" for c in spec["containers"])  # its own manifests
    daemonset = named(objects, "DaemonSet", "demo-border0-reconciler-agent-payments")
    assert daemonset["spec"]["template"]["spec"]["nodeSelector"] == {"zone": "payments"}
    shard = named(objects, "Deployment", "demo-border0-reconciler-agent-rest")
    assert shard["spec"]["replicas"] == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"connectorAgents": [AGENTS[1], AGENTS[1]]}, "the name rest is used twice"),
        ({"replicaCount": 3}, "replicaCount > 1 needs leaderElection.enabled"),
    ],
)
def test_render_refuses_unsafe_shapes(chart: Any, override: dict, message: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        chart.render(_deep_merge(ci_values("default"), override), name="demo", namespace="b")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "agent",
    [
        {"name": "x", "selector": "team=a", "kind": "StatefulSet"},
        {"name": "x"},
        {"name": "Bad_Name", "selector": "team=a"},
        {"name": "x", "selector": "team"},
    ],
)
def test_schema_rejects_bad_agents(chart: Any, agent: dict) -> None:
    values = chart.merge_values(_deep_merge(ci_values("default"), {"connectorAgents": [agent]}))
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


def test_an_agent_serves_named_connectors_and_policies_can_be_left_unmanaged(chart: Any) -> None:
    """connectorAgents[].connectors -> `--connector NAME` (one `border0 connector start` each,
    docs/connectors.md); reconciler.managePolicies: false -> `--no-policies`."""
    agent = {"name": "edge", "selector": "team=edge", "kind": "Deployment",
             "connectors": ["edge", "edge-b"]}
    values = _deep_merge(ci_values("default"), {
        "connectorAgents": [agent], "reconciler": {"connectors": False,
                                                   "managePolicies": False}})
    objects = render_all(chart, values)
    obj = named(objects, "Deployment", "demo-border0-reconciler-agent-edge")
    params = parse_run_args(container(obj["spec"]["template"]["spec"], "reconciler")["args"])
    assert params["connectors_only"] and params["serve_connectors"] == ("edge", "edge-b")
    writer = named(objects, "Deployment", "demo-border0-reconciler")
    assert parse_run_args(container(writer["spec"]["template"]["spec"], "reconciler")["args"])[
        "no_policies"]
    default = render_all(chart, ci_values("default"))
    writer = named(default, "Deployment", "demo-border0-reconciler")
    assert "--no-policies" not in container(writer["spec"]["template"]["spec"], "reconciler")[
        "args"]
