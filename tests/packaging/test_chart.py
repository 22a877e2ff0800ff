"""The Helm chart, rendered by Helm's own engine (helm-python-sdk embeds Helm's Go SDK).

Each value set of charts/border0-reconciler/ci/ is rendered, its objects checked for what makes
the pod work (args, probes, git-sync env, mounts, securityContext) and validated with
kubernetes-validate --strict against the Kubernetes versions the chart supports.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import helm_python as helm  # helm-python-sdk: Helm 4's Go SDK, no helm binary
import kubernetes_validate.utils as kv
import pytest
import yaml
from helpers import cli
from packaging.version import Version

CHART = Path(__file__).resolve().parents[2] / "charts" / "border0-reconciler"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion), the first with native
# sidecars on by default, and the newest schema kubernetes-validate ships.
KUBE_VERSIONS = ("1.25.0", "1.29.0", kv.latest_version())
NATIVE_SIDECAR_MIN = "1.29.0"
RESTRICTED = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def ci_values(name: str) -> dict[str, Any]:
    return yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())


def render_all(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate the values against the schema as `helm install` does, render: every object."""
    chart.validate_schema(chart.merge_values(values))
    rendered = chart.render(values, name="demo", namespace="border0", is_install=True)
    return [doc for path, text in rendered.items() if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def render(chart: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Validate the values against the schema as `helm install` does, render, index by kind."""
    chart.validate_schema(chart.merge_values(values))
    rendered = chart.render(values, name="demo", namespace="border0", is_install=True)
    objects: dict[str, Any] = {}
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            objects["NOTES"] = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                assert doc["kind"] not in objects, f"two objects of kind {doc['kind']}"
                objects[doc["kind"]] = doc
    return objects


def pod(objects: dict[str, Any]) -> dict[str, Any]:
    return objects["Deployment"]["spec"]["template"]["spec"]


def container(spec: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    group = spec.get("initContainers" if init else "containers", [])
    found = [c for c in group if c["name"] == name]
    assert len(found) == 1, f"{name} in {[c['name'] for c in group]}"
    return found[0]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def mounts_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in c.get("volumeMounts", [])}


def assert_reconciler(spec: dict[str, Any], manifest_path: str) -> dict[str, Any]:
    rec = container(spec, "reconciler")
    args = rec["args"]
    assert args[:2] == ["run", manifest_path]
    assert args[args.index("--listen") + 1] == "0.0.0.0:9479"
    assert rec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert rec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert rec["ports"] == [{"name": "http", "containerPort": 9479, "protocol": "TCP"}]
    assert RESTRICTED.items() <= rec["securityContext"].items()
    mounts = mounts_of(rec)
    assert mounts["/tmp"]["name"] == "tmp"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert all(m.get("readOnly") for path, m in mounts.items() if path != "/tmp")
    return rec


def assert_git_sync(c: dict[str, Any], repo: str, ref: str) -> dict[str, Any]:
    env = env_of(c)
    assert c["image"].startswith("registry.k8s.io/git-sync/git-sync:v4.")
    assert env["GITSYNC_REPO"] == repo
    assert env["GITSYNC_REF"] == ref
    assert env["GITSYNC_ROOT"] == "/git"
    assert env["GITSYNC_LINK"] == "repo"
    assert RESTRICTED.items() <= c["securityContext"].items()
    mounts = mounts_of(c)
    assert mounts["/git"]["name"] == "git" and not mounts["/git"].get("readOnly")
    assert mounts["/tmp"]["name"] == "git-sync-tmp"
    return env


def test_defaults_git_sync_sidecar(chart: Any) -> None:
    objects = render(chart, ci_values("default"))
    assert set(objects) == {"NOTES", "Deployment", "Service", "ServiceAccount"}
    deploy = objects["Deployment"]
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    spec = pod(objects)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == objects["ServiceAccount"]["metadata"]["name"]

    rec = assert_reconciler(spec, "/git/repo")
    assert env_of(rec)["BORDER0_TOKEN"] == {
        "secretKeyRef": {"name": "border0-token", "key": "token"}
    }
    assert "--dry-run" not in rec["args"]
    assert mounts_of(rec)["/git"] == {"name": "git", "mountPath": "/git", "readOnly": True}

    # A one-time init sync, then a plain sidecar that keeps syncing.
    init = container(spec, "git-sync-init", init=True)
    assert "restartPolicy" not in init
    assert assert_git_sync(init, "https://github.com/example/border0-config.git", "main")[
        "GITSYNC_ONE_TIME"
    ] == "true"
    sidecar = container(spec, "git-sync")
    env = assert_git_sync(sidecar, "https://github.com/example/border0-config.git", "main")
    assert "GITSYNC_ONE_TIME" not in env
    assert env["GITSYNC_PERIOD"] == "30s"
    assert env["GITSYNC_HTTP_BIND"] == ":9480"
    assert not any(k.startswith(("GITSYNC_PASSWORD", "GITSYNC_SSH")) for k in env)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["git"] == {"name": "git", "emptyDir": {}}
    assert "git-secret" not in volumes

    service = objects["Service"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert "kubectl -n border0 get pods" in objects["NOTES"]
    assert "/status" in objects["NOTES"]
    assert "http://127.0.0.1:9479/ in a browser: the status page" in objects["NOTES"]


def test_native_sidecar(chart: Any) -> None:
    spec = pod(render(chart, ci_values("native-sidecar")))
    assert [c["name"] for c in spec["containers"]] == ["reconciler"]
    (sync,) = spec["initContainers"]
    assert sync["name"] == "git-sync"
    assert sync["restartPolicy"] == "Always"
    env = assert_git_sync(sync, "https://github.com/example/border0-config.git", "production")
    assert "GITSYNC_ONE_TIME" not in env
    # The reconciler starts only once the first sync is published.
    assert sync["startupProbe"]["httpGet"] == {"path": "/", "port": "git-sync"}
    assert_reconciler(spec, "/git/repo/border0/manifests")


def test_configmap_source_and_created_token_secret(chart: Any) -> None:
    values = ci_values("configmap")
    objects = render(chart, values)
    spec = pod(objects)
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["reconciler"]
    rec = assert_reconciler(spec, "/manifests")
    configmap = objects["ConfigMap"]
    assert configmap["data"] == values["manifests"]["configMap"]["files"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["manifests"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert "git" not in volumes
    secret = objects["Secret"]
    assert env_of(rec)["BORDER0_TOKEN"] == {
        "secretKeyRef": {"name": secret["metadata"]["name"], "key": "token"}
    }
    assert secret["data"] == {"token": "bm90LWEtcmVhbC10b2tlbg=="}  # base64 of the value
    annotations = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert set(annotations) == {"checksum/token", "checksum/manifests"}
    # Another manifest changes the checksum, so the pod rolls.
    values["manifests"]["configMap"]["files"]["more.yaml"] = "kind: Policy\n"
    again = render(chart, values)["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert again["checksum/manifests"] != annotations["checksum/manifests"]


def test_existing_configmap_is_not_created(chart: Any) -> None:
    values = ci_values("configmap")
    values["manifests"]["configMap"] = {"enabled": True, "name": "my-manifests"}
    objects = render(chart, values)
    assert "ConfigMap" not in objects
    volumes = {v["name"]: v for v in pod(objects)["volumes"]}
    assert volumes["manifests"]["configMap"]["name"] == "my-manifests"


def test_service_monitor_and_reconciler_options(chart: Any) -> None:
    objects = render(chart, ci_values("servicemonitor"))
    monitor = objects["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"] == objects["Service"]["spec"]["selector"]
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["border0"]}
    rec = container(pod(objects), "reconciler")
    args = rec["args"]
    assert "--dry-run" in args
    assert args[args.index("--instance") + 1] == "staging"
    assert args[args.index("--interval") + 1] == "10m"
    assert env_of(rec)["BORDER0_TOKEN"] == {
        "secretKeyRef": {"name": "border0-token", "key": "admin-token"}
    }
    assert "Secret" not in objects
    assert "DRY RUN" in objects["NOTES"]


def test_ssh_credentials_and_scheduling(chart: Any) -> None:
    values = ci_values("ssh")
    spec = pod(render(chart, values))
    for sync in (container(spec, "git-sync-init", init=True), container(spec, "git-sync")):
        env = assert_git_sync(sync, "git@github.com:example/border0-config.git", "main")
        assert env["GITSYNC_SSH_KEY_FILE"] == "/etc/git-secret/ssh"
        assert env["GITSYNC_SSH_KNOWN_HOSTS"] == "true"
        assert env["GITSYNC_SSH_KNOWN_HOSTS_FILE"] == "/etc/git-secret/known_hosts"
        assert "GITSYNC_PASSWORD_FILE" not in env
        assert mounts_of(sync)["/etc/git-secret"] == {
            "name": "git-secret", "mountPath": "/etc/git-secret", "readOnly": True
        }
    secret = {v["name"]: v for v in spec["volumes"]}["git-secret"]["secret"]
    assert secret["secretName"] == "git-ssh"
    assert secret["defaultMode"] == 0o440
    assert secret["items"] == [
        {"key": "ssh", "path": "ssh"}, {"key": "known_hosts", "path": "known_hosts"}
    ]
    rec = container(spec, "reconciler")
    # The git secret stays with git-sync.
    assert "/etc/git-secret" not in mounts_of(rec)
    args = rec["args"]
    assert args[args.index("--connector-command") + 1] == values["reconciler"]["connectorCommand"]
    assert args[args.index("--max-delete") + 1] == "5"
    assert rec["envFrom"] == values["extraEnvFrom"]
    assert spec["nodeSelector"] == values["nodeSelector"]
    assert spec["tolerations"] == values["tolerations"]
    assert spec["affinity"] == values["affinity"]


def test_https_credentials(chart: Any) -> None:
    spec = pod(render(chart, ci_values("https")))
    env = assert_git_sync(
        container(spec, "git-sync"), "https://github.com/example/border0-config.git", "main"
    )
    assert env["GITSYNC_USERNAME"] == "x-access-token"
    assert env["GITSYNC_PASSWORD_FILE"] == "/etc/git-secret/password"
    assert not any(k.startswith("GITSYNC_SSH") for k in env)
    secret = {v["name"]: v for v in spec["volumes"]}["git-secret"]["secret"]
    assert secret["items"] == [{"key": "token", "path": "password"}]


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_every_object_passes_kubernetes_validate_strict(chart: Any, values_file: Path) -> None:
    objects = render(chart, yaml.safe_load(values_file.read_text()))
    native = bool(pod(objects).get("initContainers", [{}])[0].get("restartPolicy"))
    checked = 0
    for kind, obj in objects.items():
        if kind in ("NOTES", "ServiceMonitor", "PodMonitor", "PrometheusRule"):  # CRDs
            continue
        for version in KUBE_VERSIONS:
            if native and Version(version) < Version(NATIVE_SIDECAR_MIN):
                continue
            kv.validate(obj, version, strict=True)
            checked += 1
    assert checked >= 3 * 2


def test_strict_validation_catches_a_misplaced_field(chart: Any) -> None:
    """The check above can fail: a field in the wrong place is an error under --strict."""
    deploy = render(chart, ci_values("default"))["Deployment"]
    deploy["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(deploy, kv.latest_version(), strict=True)


def test_kubernetes_validate_cli_strict_on_rendered_files(
    chart: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The `kubernetes-validate --strict` command line agrees on a rendered release (its
    `main`, the console script's entry, in this process with its argv)."""
    from kubernetes_validate.__main__ import main

    rendered = chart.render(ci_values("native-sidecar"), name="demo", namespace="border0")
    files = []
    for path, text in rendered.items():
        if path.endswith(".yaml") and text.strip():
            files.append(tmp_path / Path(path).name)
            files[-1].write_text(text)
    monkeypatch.setattr(sys, "argv", ["kubernetes-validate", "--strict", "--no-warn",
                                      *map(str, files)])
    code = main()
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.count("INFO") == 3, out  # Deployment, Service, ServiceAccount


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_helm_lint_has_no_error(values_file: Path) -> None:
    report = helm.lint(
        CHART, yaml.safe_load(values_file.read_text()), strict=True, kube_version="v1.31.0"
    )
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_helm_lint_of_bare_defaults_has_no_error() -> None:
    """Lint mode turns the chart's `fail` checks into log lines, so bare defaults lint clean;
    the render tests below show those checks stop an install."""
    report = helm.lint(CHART, None, strict=True, kube_version="v1.31.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_helm_lint_reports_a_broken_template(tmp_path: Path) -> None:
    """The lint check can fail: a copy of the chart with a template error is reported."""
    broken = tmp_path / "border0-reconciler"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("{{ .Values.nothing.here }\n")
    report = helm.lint(broken, yaml.safe_load(CI_VALUES[0].read_text()))
    assert report["errors"] or any(m["severity"] == 3 for m in report["messages"])


def test_native_sidecar_refused_before_kubernetes_1_29(capfd: pytest.CaptureFixture[str]) -> None:
    """Before 1.29 the API server would drop restartPolicy and the pod would hang in Init.
    Only lint takes a Kubernetes version here, and lint logs a template's `fail` (on stderr,
    from Helm's Go logger) instead of failing, so the message is read there."""
    values = ci_values("native-sidecar")
    capfd.readouterr()
    helm.lint(CHART, values, kube_version="v1.29.0")
    assert "nativeSidecar needs" not in capfd.readouterr().err
    helm.lint(CHART, values, kube_version="v1.28.0")
    assert "gitSync.nativeSidecar needs Kubernetes >= 1.29 (this cluster: v1.28.0)" in (
        capfd.readouterr().err
    )


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"gitSync": {"nativeSidecar": "yes"}}, "nativeSidecar"),  # wrong type
        ({"gitSync": {"repoUrl": "https://x"}}, "repoUrl"),  # unknown key
        ({"serviceMonitor": {"enable": True}}, "enable"),  # typo of enabled
        ({"replicaCount": -1}, "replicaCount"),
        ({"reconciler": {"interval": "five minutes"}}, "interval"),
        ({"reconciler": {"interval": "1h30m"}}, "interval"),  # `run --interval` takes one unit
        ({"reconciler": {"fullRefreshInterval": "hourly"}}, "fullRefreshInterval"),
        ({"gitSync": {"auth": {"type": "token"}}}, "type"),
        ({"border0": {"existingSecret": 42}}, "existingSecret"),
        ({"unknownTopLevel": 1}, "unknownTopLevel"),
    ],
)
def test_schema_rejects_invalid_values(chart: Any, override: dict, fragment: str) -> None:
    values = chart.merge_values(_deep_merge(ci_values("default"), override))
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"border0": {"existingSecret": "t"}}, "gitSync.repo is required"),
        ({"gitSync": {"repo": "https://x/y.git"}}, "border0 token missing"),
        (
            {"gitSync": {"repo": "https://x/y.git", "auth": {"type": "ssh"}},
             "border0": {"token": "t"}},
            "gitSync.auth.existingSecret is required",
        ),
        (
            {"gitSync": {"repo": "https://x/y.git"}, "border0": {"token": "t"},
             "manifests": {"configMap": {"enabled": True, "name": "m"}}},
            "choose one manifest source",
        ),
        (  # a second writer without a lease
            {"gitSync": {"repo": "https://x/y.git"}, "border0": {"token": "t"},
             "replicaCount": 2},
            "replicaCount > 1 needs leaderElection.enabled",
        ),
    ],
)
def test_render_fails_with_a_clear_message(chart: Any, values: dict, message: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        chart.render(values, name="demo", namespace="border0")
    assert message in str(caught.value)


def test_defaults_in_values_yaml_pass_the_schema(chart: Any) -> None:
    chart.validate_schema(chart.values)
    schema = chart.schema
    assert schema["additionalProperties"] is False
    for name in ("gitSync", "serviceMonitor", "border0", "reconciler", "manifests"):
        assert schema["properties"][name]["additionalProperties"] is False
    for key in ("repo", "ref", "nativeSidecar"):
        assert key in schema["properties"]["gitSync"]["properties"]
    assert "existingSecret" in schema["properties"]["border0"]["properties"]


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- the ConfigMap source and the sidecar example, read as the kubelet mounts them ------------

EXAMPLE = CHART.parents[1] / "examples" / "kubernetes" / "app-with-reconciler.yaml"


def mount_configmap(data: dict[str, str], root: Path) -> Path:
    """Lay out a ConfigMap volume as the kubelet does: a timestamped dir, the `..data` symlink
    to it, and one symlink per key, so an update swaps `..data` atomically."""
    root.mkdir()
    stamp = root / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir()
    for key, text in data.items():
        (stamp / key).write_text(text)
    (root / "..data").symlink_to(stamp.name)
    for key in data:
        (root / key).symlink_to(f"..data/{key}")
    return root


def validate_cli(path: Path) -> SimpleNamespace:
    code, out, err = cli(["validate", str(path)])
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def test_chart_configmap_mount_holds_valid_manifests(chart: Any, tmp_path: Path) -> None:
    configmap = render(chart, ci_values("configmap"))["ConfigMap"]
    result = validate_cli(mount_configmap(configmap["data"], tmp_path / "manifests"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 socket, 1 policy in 2 files" in result.stdout  # `..` entries are not read twice


def example_objects() -> dict[str, Any]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(EXAMPLE.read_text()) if doc}


def test_sidecar_example_passes_kubernetes_validate_strict() -> None:
    objects = example_objects()
    assert set(objects) == {"ConfigMap", "Deployment"}
    for obj in objects.values():
        for version in KUBE_VERSIONS:
            kv.validate(obj, version, strict=True)


@pytest.mark.slow
def test_sidecar_example_exposes_the_app_on_localhost(tmp_path: Path) -> None:
    objects = example_objects()
    spec = objects["Deployment"]["spec"]["template"]["spec"]
    assert objects["Deployment"]["spec"]["replicas"] == 1
    app = container(spec, "whoami")
    rec = container(spec, "border0-reconciler")
    assert rec["args"][:2] == ["run", "/manifests"]
    assert rec["args"][rec["args"].index("--listen") + 1] == "0.0.0.0:9479"
    assert rec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert rec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # Pod-level settings (runAsNonRoot, seccompProfile) apply to the container too.
    effective = {**spec["securityContext"], **rec["securityContext"]}
    assert RESTRICTED.items() <= effective.items()
    assert mounts_of(rec)["/tmp"]["name"] == "tmp"
    volumes = {v["name"]: v for v in spec["volumes"]}
    configmap = objects["ConfigMap"]
    assert volumes[mounts_of(rec)["/manifests"]["name"]]["configMap"]["name"] == (
        configmap["metadata"]["name"]
    )
    # The socket's connector points at the app's port on localhost (the pod's shared network).
    (manifest_file,) = configmap["data"]
    docs = list(yaml.safe_load_all(configmap["data"][manifest_file]))
    (socket,) = [d for d in docs if d["kind"] == "Socket"]
    assert socket["spec"]["connector"]["host"] == "localhost"
    assert socket["spec"]["connector"]["port"] == app["ports"][0]["containerPort"]
    result = validate_cli(mount_configmap(configmap["data"], tmp_path / "manifests"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 socket, 1 policy" in result.stdout


# --- the chart speaks the CLI the package really has ------------------------------------------


def parse_run_args(args: list[str]) -> dict[str, Any]:
    """Parse `run` arguments with the real click command (flags, types, choices) and the
    daemon's own parsers for what click leaves as text."""
    from reconciler.cli.main import cli
    from reconciler.cli.run import parse_duration
    from reconciler.connectors.argv import validate_template

    assert args[0] == "run"
    command = cli.get_command(None, "run")  # type: ignore[arg-type]
    params = command.make_context("run", list(args[1:])).params
    assert parse_duration(params["interval"]) > 0
    if params["connector_command"]:
        validate_template(params["connector_command"])
    return params


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_rendered_args_are_accepted_by_the_run_command(chart: Any, values_file: Path) -> None:
    rec = container(pod(render(chart, yaml.safe_load(values_file.read_text()))), "reconciler")
    params = parse_run_args(rec["args"])
    assert params["listen"] == "0.0.0.0:9479"
    assert params["log_format"] == "json"


def test_example_args_are_accepted_by_the_run_command() -> None:
    spec = example_objects()["Deployment"]["spec"]["template"]["spec"]
    params = parse_run_args(container(spec, "border0-reconciler")["args"])
    assert params["path"] == "/manifests" and params["instance"] == "whoami"


def test_arg_check_can_fail(chart: Any) -> None:
    import click

    values = _deep_merge(ci_values("default"), {"reconciler": {"extraArgs": ["--no-such-flag"]}})
    rec = container(pod(render(chart, values)), "reconciler")
    with pytest.raises(click.UsageError):
        parse_run_args(rec["args"])


@pytest.mark.parametrize("interval", ["300ms", "45s", "5m", "1.5h"])
def test_intervals_the_schema_accepts_parse(chart: Any, interval: str) -> None:
    from reconciler.cli.run import parse_duration

    values = _deep_merge(ci_values("default"), {"reconciler": {"interval": interval}})
    chart.validate_schema(chart.merge_values(values))
    assert parse_duration(interval) > 0


@pytest.mark.parametrize(("value", "seconds"), [(None, 3600.0), ("15m", 900.0), ("0", 0.0)])
def test_full_refresh_interval_reaches_the_run_command(
    chart: Any, value: str | None, seconds: float
) -> None:
    """`reconciler.fullRefreshInterval` (default 1h) is `run --full-refresh-interval`; 0 makes
    every reconcile a full refresh."""
    override = {} if value is None else {"reconciler": {"fullRefreshInterval": value}}
    values = _deep_merge(ci_values("default"), override)
    chart.validate_schema(chart.merge_values(values))
    rec = container(pod(render(chart, values)), "reconciler")
    assert parse_run_args(rec["args"])["full_refresh_interval"] == seconds
