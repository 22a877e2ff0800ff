"""The chart with everything an SRE turns on (ci/sre-values.yaml): a PodDisruptionBudget, a
NetworkPolicy, the ServiceMonitor and the PrometheusRule, anti-affinity for the replicas, the
image by digest. Rendered by Helm's engine, validated strictly, linted (test_chart.py runs both
over every ci/*-values.yaml), and the alert rules checked and unit-tested with promtool.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate.utils as kv
import pytest
import yaml
from test_chart import KUBE_VERSIONS, ci_values, pod, render
from tools import promtool

DIGEST = "sha256:4f6d2a0f9b8c7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a2918070f6e"


@pytest.fixture(scope="module")
def sre(chart: Any) -> dict[str, Any]:
    return render(chart, ci_values("sre"))


def test_every_option_renders_and_passes_strict_validation(sre: dict[str, Any]) -> None:
    assert {"PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "PrometheusRule",
            "Deployment", "Role", "RoleBinding"} <= set(sre)
    for kind in ("PodDisruptionBudget", "NetworkPolicy", "Deployment"):
        for version in KUBE_VERSIONS:
            kv.validate(sre[kind], version, strict=True)


def test_the_image_is_pinned_by_digest(chart: Any, sre: dict[str, Any]) -> None:
    (rec,) = [c for c in pod(sre)["containers"] if c["name"] == "reconciler"]
    assert rec["image"] == f"registry.example.com/border0-reconciler@{DIGEST}"
    values = ci_values("sre")
    values["image"]["tag"] = "0.2.0"
    both = pod(render(chart, values))["containers"][0]["image"]
    assert both == f"registry.example.com/border0-reconciler:0.2.0@{DIGEST}"
    values["image"]["digest"] = "latest"
    with pytest.raises(Exception, match="digest"):  # the schema wants sha256:<64 hex>
        render(chart, values)


def test_replicas_spread_over_nodes_and_a_budget_keeps_one(chart: Any,
                                                           sre: dict[str, Any]) -> None:
    anti = pod(sre)["affinity"]["podAntiAffinity"]
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    selector = sre["Deployment"]["spec"]["selector"]["matchLabels"]
    assert term["podAffinityTerm"] == {"topologyKey": "kubernetes.io/hostname",
                                       "labelSelector": {"matchLabels": selector}}
    assert sre["PodDisruptionBudget"]["spec"] == {"minAvailable": 1,
                                                  "selector": {"matchLabels": selector}}
    values = ci_values("sre")
    values["podAntiAffinity"] = "hard"
    hard = pod(render(chart, values))["affinity"]["podAntiAffinity"]
    assert hard["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == \
        "kubernetes.io/hostname"
    values["affinity"] = {"nodeAffinity": {}}  # the user's own affinity wins
    assert pod(render(chart, values))["affinity"] == {"nodeAffinity": {}}
    # One replica: no anti-affinity, and the default budget allows a drain.
    default = render(chart, {**ci_values("default"), "podDisruptionBudget": {"enabled": True}})
    assert "affinity" not in pod(default)
    assert default["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_a_budget_of_max_unavailable_zero_is_kept(chart: Any) -> None:
    """0 (no voluntary eviction at all) is a value, not "unset": it must not become 1."""
    values = {**ci_values("default"), "podDisruptionBudget": {"enabled": True,
                                                              "maxUnavailable": 0}}
    assert render(chart, values)["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 0


def test_network_policy_allows_dns_the_api_and_git_only(chart: Any,
                                                        sre: dict[str, Any]) -> None:
    spec = sre["NetworkPolicy"]["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "demo"}}
    assert spec["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}],
                                "from": ci_values("sre")["networkPolicy"]["ingressFrom"]}]
    ports = [sorted(p["port"] for p in rule["ports"]) for rule in spec["egress"]]
    assert ports == [[53, 53], [22, 443], [443, 6443]]  # DNS; API + git (ssh); the Lease
    # https git, no leader election: DNS and 443 only.
    values = {**ci_values("default"), "networkPolicy": {"enabled": True}}
    egress = render(chart, values)["NetworkPolicy"]["spec"]["egress"]
    assert [sorted(p["port"] for p in rule["ports"]) for rule in egress] == [[53, 53], [443]]


def rule_groups(sre: dict[str, Any], tmp_path: Path) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(sre["PrometheusRule"]["spec"]))
    return rules


@pytest.mark.slow  # promtool, a process
def test_promtool_check_rules_passes(sre: dict[str, Any], tmp_path: Path) -> None:
    tool = promtool()
    rules = rule_groups(sre, tmp_path)
    checked = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout
    alerts = {r["alert"] for g in sre["PrometheusRule"]["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"Border0ReconcileFailing", "Border0DriftUnrepaired",
                      "Border0ConnectorFatal", "Border0NotLeader", "Border0ManifestsInvalid"}
    broken = tmp_path / "broken.yaml"
    broken.write_text(rules.read_text().replace("> 0", "> > 0", 1))
    assert subprocess.run([tool, "check", "rules", str(broken)], capture_output=True,
                          timeout=60, check=False).returncode != 0


@pytest.mark.slow  # promtool, a process
def test_the_alerts_fire_when_they_should(sre: dict[str, Any], tmp_path: Path) -> None:
    """promtool's rule unit tests: series as the ServiceMonitor labels them, and when each
    alert fires (and that a blip shorter than its `for` does not)."""
    tool = promtool()
    rule_groups(sre, tmp_path)
    target = 'namespace="border0", service="demo-border0-reconciler"'
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'border0_reconciler_consecutive_failures{{{target}, pod="a"}}',
                 "values": "0 1 2 3 3 3 3 3 3 3 3 3 3 3 3"},
                {"series": f'border0_reconciler_leader{{{target}, pod="a"}}',
                 "values": "1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"},
                {"series": f'border0_reconciler_leader{{{target}, pod="b"}}',
                 "values": "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"},
                {"series": f'border0_reconciler_connectors_fatal{{{target}, pod="a"}}',
                 "values": "0 2 2 0 0 0 0 0 0 0 0 0 0 0 0"},
            ],
            "alert_rule_test": [
                {"eval_time": "14m", "alertname": "Border0ReconcileFailing",
                 "exp_alerts": [{"exp_labels": {"severity": "critical", "team": "platform",
                                                "namespace": "border0", "pod": "a"},
                                 "exp_annotations": {
                                     "summary": "border0-reconciler cannot reconcile (border0 "
                                                "unreachable or refusing)",
                                     "description": "a failed 3 reconciles in a row talking to "
                                                    "border0; its /status and logs say why."}}]},
                {"eval_time": "12m", "alertname": "Border0ReconcileFailing", "exp_alerts": []},
                {"eval_time": "18m", "alertname": "Border0NotLeader",
                 "exp_alerts": [{"exp_labels": {"severity": "critical", "team": "platform",
                                                "namespace": "border0"},
                                 "exp_annotations": {
                                     "summary": "no border0-reconciler replica is the leader",
                                     "description": "No replica in border0 has held the Lease "
                                                    "for a while, so nothing is written to "
                                                    "border0."}}]},
                {"eval_time": "4m", "alertname": "Border0ConnectorFatal", "exp_alerts": []},
            ],
        }],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    tested = subprocess.run([tool, "test", "rules", "tests.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
