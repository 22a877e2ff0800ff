"""The chart's connector agents with tokens the writer keeps in Kubernetes Secrets: the writer's
Role to write them, each agent mounting its connector's Secret, sync windows and policy
management as values. Rendered by Helm's own engine (helm-python-sdk) like test_chart.py, each
object checked by kubernetes-validate, the `run` arguments parsed by the real click command."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate.utils as kv
import pytest
from test_chart import KUBE_VERSIONS, _deep_merge, ci_values, container, parse_run_args
from test_chart import render_all as rendered

from reconciler.daemon.windows import load_windows

WRITER = "demo-border0-reconciler"


def render_all(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """test_chart's render_all, every object also checked against Kubernetes' own schemas."""
    objects = rendered(chart, values)
    for obj in objects:
        for version in KUBE_VERSIONS:
            kv.validate(obj, version, strict=True)
    return objects


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, [(o["kind"], o["metadata"]["name"]) for o in objects]
    return found[0]


@pytest.mark.parametrize("kind", ["DaemonSet", "Deployment"])
def test_agents_mount_the_token_secret_the_writer_may_write(chart: Any, kind: str) -> None:
    values = ci_values("agents")
    values["connectorAgents"][0]["kind"] = kind
    objects = render_all(chart, values)

    writer = named(objects, "Deployment", WRITER)["spec"]["template"]["spec"]
    assert writer["automountServiceAccountToken"] is True  # it talks to the Kubernetes API
    params = parse_run_args(container(writer, "reconciler")["args"])
    assert params["no_connectors"] and params["no_policies"]
    role = named(objects, "Role", f"{WRITER}-token-secrets")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["edge-token"],
         "verbs": ["get", "update"]}]
    binding = named(objects, "RoleBinding", f"{WRITER}-token-secrets")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": writer["serviceAccountName"],
                                    "namespace": "border0"}]

    agent = named(objects, kind, f"{WRITER}-agent-edge")["spec"]["template"]["spec"]
    assert agent["automountServiceAccountToken"] is False  # reads the Secret as a volume
    rec = container(agent, "reconciler")
    params = parse_run_args(rec["args"])
    assert params["connectors_only"] and params["serve_connectors"] == ("edge",)
    env = {e["name"]: e.get("value") for e in rec["env"]}
    mounts = {m["mountPath"]: m for m in rec["volumeMounts"]}
    mount = mounts["/var/run/border0-reconciler/secrets/edge-token"]
    assert env["BORDER0_RECONCILER_SECRET_MOUNTS"] == "/var/run/border0-reconciler/secrets"
    assert mount["readOnly"] is True
    volume = next(v for v in agent["volumes"] if v["name"] == mount["name"])
    assert volume["secret"] == {"secretName": "edge-token", "optional": True, "defaultMode": 0o440}
    # the agent's own admin token stays the chart's border0 Secret, never the connector token's
    assert next(e for e in rec["env"] if e["name"] == "BORDER0_TOKEN")["valueFrom"][
        "secretKeyRef"]["name"] == "border0-token"


def test_without_token_secrets_no_role_and_no_kubernetes_access(chart: Any) -> None:
    values = ci_values("agents")
    values["reconciler"]["tokenSecrets"] = []
    del values["connectorAgents"][0]["tokenSecrets"]
    objects = render_all(chart, values)
    assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding")]
    writer = named(objects, "Deployment", WRITER)["spec"]["template"]["spec"]
    assert writer["automountServiceAccountToken"] is False
    agent = named(objects, "DaemonSet", f"{WRITER}-agent-edge")["spec"]["template"]["spec"]
    assert "BORDER0_RECONCILER_SECRET_MOUNTS" not in {
        e["name"] for e in container(agent, "reconciler")["env"]}


def test_token_secrets_open_the_network_policy_to_the_kubernetes_api(chart: Any) -> None:
    def api_rules(values: dict[str, Any]) -> list[dict[str, Any]]:
        values = _deep_merge(values, {"networkPolicy": {"enabled": True}})
        policy = named(render_all(chart, values), "NetworkPolicy", WRITER)
        return [r for r in policy["spec"]["egress"] if 6443 in {p["port"] for p in r["ports"]}]

    assert len(api_rules(ci_values("agents"))) == 1
    assert api_rules(_deep_merge(ci_values("agents"), {"reconciler": {"tokenSecrets": []}})) == []


def test_sync_windows_reach_the_writer_as_a_file_the_daemon_reads(
    chart: Any, tmp_path: Path
) -> None:
    windows = [{"kind": "allow", "schedule": "0 8 * * 1-5", "duration": "10h",
                "timeZone": "Europe/Amsterdam", "manualSync": True},
               {"kind": "deny", "schedule": "0 0 24 12 *", "duration": "48h"}]
    objects = render_all(chart, _deep_merge(ci_values("default"),
                                            {"reconciler": {"syncWindows": windows}}))
    config = named(objects, "ConfigMap", f"{WRITER}-sync-windows")
    writer = named(objects, "Deployment", WRITER)["spec"]["template"]["spec"]
    rec = container(writer, "reconciler")
    args = rec["args"]
    path = args[args.index("--sync-windows") + 1]
    mount = next(m for m in rec["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in writer["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == config["metadata"]["name"]
    local = tmp_path / Path(path).name
    local.write_text(config["data"][Path(path).name])
    params = parse_run_args([*args[:args.index(path)], str(local), *args[args.index(path) + 1:]])
    parsed = load_windows(params["sync_windows"])
    assert [(w.kind, w.duration) for w in parsed] == [("allow", 36000), ("deny", 172800)]
    default = named(render_all(chart, ci_values("default")), "Deployment", WRITER)
    assert "--sync-windows" not in container(default["spec"]["template"]["spec"], "reconciler")[
        "args"]


@pytest.mark.parametrize(
    "override",
    [
        {"reconciler": {"tokenSecrets": ["Bad_Name"]}},
        {"connectorAgents": [{"name": "x", "selector": "a=b", "tokenSecrets": "edge-token"}]},
        {"reconciler": {"syncWindows": [{"kind": "sometimes", "schedule": "* * * * *",
                                         "duration": "1h"}]}},
        {"reconciler": {"syncWindows": [{"kind": "allow", "schedule": "* * * * *"}]}},
    ],
)
def test_schema_rejects_bad_token_secrets_and_windows(chart: Any, override: dict) -> None:
    values = chart.merge_values(_deep_merge(ci_values("default"), override))
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


def _agent(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (agent,) = [o for o in objects if o["kind"] in ("Deployment", "DaemonSet")
                and "border0-reconciler/agent" in o["metadata"]["labels"]]
    return agent


def test_a_sync_windows_change_rolls_the_writer(chart: Any) -> None:
    """The daemon reads the windows file once at startup: a new window must change the pod
    template (a checksum), or `helm upgrade` leaves the writer on the old windows."""
    def template(kind: str, schedule: str) -> dict[str, Any]:
        window = {"kind": kind, "schedule": schedule, "duration": "10h"}
        values = _deep_merge(ci_values("default"), {"reconciler": {"syncWindows": [window]}})
        return named(render_all(chart, values), "Deployment", WRITER)["spec"]["template"]
    allow, deny = template("allow", "0 8 * * 1-5"), template("deny", "0 0 24 12 *")
    assert allow["metadata"]["annotations"]["checksum/sync-windows"] != \
        deny["metadata"]["annotations"]["checksum/sync-windows"]
    assert template("allow", "0 8 * * 1-5") == allow  # stable: no rollout without a change


@pytest.mark.parametrize("name", ["1", "0123", "yes", "off", "null", "true", "1e3"])
def test_an_agent_name_yaml_would_retype_stays_a_string_label(chart: Any, name: str) -> None:
    values = _deep_merge(ci_values("default"), {
        "reconciler": {"connectors": False},
        "connectorAgents": [{"name": name, "selector": "shard=1"}]})
    agent = _agent(render_all(chart, values))  # strict validation: labels must be strings
    assert agent["metadata"]["labels"]["border0-reconciler/agent"] == name
    assert agent["spec"]["selector"]["matchLabels"]["border0-reconciler/agent"] == name
    assert agent["spec"]["template"]["metadata"]["labels"]["border0-reconciler/agent"] == name


@pytest.mark.parametrize("secrets", [["edge.token", "edge-token"],
                                     ["a" * 49 + ".b", "a" * 49 + "-b", "a" * 253]])
def test_token_secret_volume_names_are_unique_dns_labels(chart: Any, secrets: list[str]) -> None:
    values = _deep_merge(ci_values("default"), {
        "reconciler": {"connectors": False},
        "connectorAgents": [{"name": "edge", "selector": "team=edge", "tokenSecrets": secrets}]})
    spec = _agent(render_all(chart, values))["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in container(spec, "reconciler")["volumeMounts"]}
    volumes = {v["secret"]["secretName"]: v["name"] for v in spec["volumes"] if "secret" in v}
    names = [volumes[s] for s in secrets]
    assert len(set(names)) == len(secrets), names
    for secret, name in zip(secrets, names):
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name), name
        assert name.startswith("token-" + secret[:4]), name  # readable: the Secret's name
        assert mounts[f"/var/run/border0-reconciler/secrets/{secret}"] == name


def test_agent_names_stay_unique_when_truncated(chart: Any) -> None:
    values = _deep_merge(ci_values("default"), {
        "fullnameOverride": "border0-reconciler-production-eu-west-1-cluster",  # 47 characters
        "reconciler": {"connectors": False},
        "connectorAgents": [{"name": "payments-eu", "selector": "team=payments-eu"},
                            {"name": "payments-us", "selector": "team=payments-us",
                             "kind": "DaemonSet"}]})
    objects = render_all(chart, values)
    agents = [o for o in objects if o["kind"] in ("Deployment", "DaemonSet")
              and "border0-reconciler/agent" in o["metadata"]["labels"]]
    names = [o["metadata"]["name"] for o in agents]
    assert len(set(names)) == 2, names
    for name in names:
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        assert name.startswith("border0-reconciler-production-eu-"), name
    assert [n.split("-agent-")[1][:len("payments-eu")] for n in names] == [
        "payments-eu", "payments-us"]  # the agent's name stays readable
    short = named(render_all(chart, _deep_merge(ci_values("default"), {
        "connectorAgents": [{"name": "edge", "selector": "team=edge"}]})),
        "Deployment", f"{WRITER}-agent-edge")  # a name that fits is kept as it was
    assert short["spec"]["selector"]["matchLabels"]["border0-reconciler/agent"] == "edge"


def test_agents_are_scraped_and_connector_fatal_covers_them(chart: Any) -> None:
    """The Service selects only the writer: without a PodMonitor the agents' connectors are
    never scraped, and Border0ConnectorFatal cannot fire for them."""
    values = _deep_merge(ci_values("agents"), {"serviceMonitor": {"enabled": True,
                                                                  "labels": {"release": "p"}},
                                               "prometheusRule": {"enabled": True}})
    objects = rendered(chart, values)
    agent = _agent(objects)
    (monitor,) = [o for o in objects if o["kind"] == "PodMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "p"  # found by the same Prometheus
    labels = agent["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    writer = named(objects, "Deployment", WRITER)["spec"]["template"]["metadata"]["labels"]
    assert not monitor["spec"]["selector"]["matchLabels"].items() <= writer.items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["border0"]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = [p["name"] for p in container(agent["spec"]["template"]["spec"], "reconciler")["ports"]]
    assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    (job,) = [r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    (fatal,) = [r for r in rule["spec"]["groups"][0]["rules"]
                if r["alert"] == "Border0ConnectorFatal"]
    assert f'border0_reconciler_connectors_fatal{{namespace="border0", job="{job}"}}' in \
        fatal["expr"]
    assert f'service="{WRITER}"' in fatal["expr"]  # and the writer's connectors still
    (failing,) = [r for r in rule["spec"]["groups"][0]["rules"]
                  if r["alert"] == "Border0ReconcileFailing"]
    assert job not in failing["expr"]  # agents write nothing: the writer's alerts stay its own
    without = rendered(chart, _deep_merge(ci_values("agents"), {"serviceMonitor": {
        "enabled": False}}))
    assert not [o for o in without if o["kind"] == "PodMonitor"]
