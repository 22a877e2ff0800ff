"""What an SRE scrapes and ships, from a real daemon process: the metric families (standard
`process_*`, `build_info`, per-object sync state, API latency by operation) pass
`promtool check metrics`; JSON logs carry kind, name, action, revision and duration_ms as fields,
in our keys or Flux's; readiness can include invalid manifests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from test_daemon import socket_yaml
from test_daemon_process import DaemonProcess, daemon_process  # noqa: F401 - the fixture
from tools import promtool

from reconciler import __version__
from reconciler.daemon.metrics import OBJECT_STATUS_LIMIT, DaemonMetrics


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """Manifests in a git checkout (so reconciles carry its revision)."""
    repo = tmp_path / "repo"
    (repo / "m").mkdir(parents=True)
    (repo / "m" / "web.yaml").write_text(socket_yaml("web", "Web"))
    (repo / "m" / "docs.yaml").write_text(socket_yaml("docs", "Docs"))
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "manifests", cwd=repo)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()
    return repo / "m", head


def samples(daemon: DaemonProcess, family: str) -> list[Any]:
    return list(daemon.metrics()[family].samples)


@pytest.mark.slow
def test_metrics_families_pass_promtool_and_say_what_an_sre_needs(
    emulator: Any, checkout: tuple[Path, str], daemon_process: Any  # noqa: F811
) -> None:
    tool = promtool()
    path, _ = checkout
    daemon: DaemonProcess = daemon_process(path, emulator.url, emulator.token)
    wait_for(lambda: daemon.last("result") == "success", timeout=30, message="a reconcile")
    text = daemon.http.get("/metrics").text
    checked = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    families = daemon.metrics()
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds"} \
        <= set(families)
    (build,) = samples(daemon, "border0_reconciler_build_info")
    assert build.name == "border0_reconciler_build_info" and build.value == 1
    assert build.labels["version"] == __version__
    status = {(s.labels["kind"], s.labels["name"]): s.labels["state"]
              for s in samples(daemon, "border0_reconciler_object_status")}
    assert status == {("socket", "web"): "in-sync", ("socket", "docs"): "in-sync"}
    latency = {s.labels["operation"] for s in samples(daemon, "border0_reconciler_api_request_"
                                                       "duration_seconds")
               if s.name.endswith("_count") and s.value > 0}
    assert {"GET /sockets", "POST /socket"} <= latency
    assert not any("web" in op or "docs" in op for op in latency)  # ids are {id}: bounded

    checked = subprocess.run([tool, "check", "metrics"], input=text.replace(
        "# TYPE border0_reconciler_object_status gauge", "# TYPE border0-bad gauge"),
        capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode != 0  # promtool can fail


def test_object_status_is_bounded() -> None:
    metrics = DaemonMetrics()
    states = {("socket", f"s{n:05d}"): "in-sync" for n in range(OBJECT_STATUS_LIMIT + 50)}
    states[("socket", "s99999")] = "error"
    metrics.set_objects(states)
    text = metrics.render().decode()
    assert text.count("border0_reconciler_object_status{") == OBJECT_STATUS_LIMIT
    assert 'name="s99999",state="error"' in text  # not in sync: kept first
    assert "border0_reconciler_object_status_omitted 51.0" in text


@pytest.mark.parametrize("fmt", ["json", "flux"])
@pytest.mark.slow
def test_json_logs_carry_the_object_and_revision_as_fields(
    emulator: Any, checkout: tuple[Path, str], daemon_process: Any, fmt: str  # noqa: F811
) -> None:
    path, head = checkout
    daemon: DaemonProcess = daemon_process(path, emulator.url, emulator.token,
                                           "--log-format", fmt)
    message, time_key = ("message", "time") if fmt == "json" else ("msg", "ts")
    # /status says success before the reader of the daemon's stdout may have its lines: wait for
    # both (the summary line is logged after the objects' lines).
    wait_for(lambda: daemon.last("result") == "success" and any(
        r.get(message) == "reconcile succeeded" for r in list(daemon.records)),
        timeout=30, message="a reconcile, status and log")
    created = [r for r in daemon.records if r.get("action") == "create"]
    assert {(r["kind"], r["name"]) for r in created} == {("socket", "web"), ("socket", "docs")}
    for record in created:
        assert record["revision"] == head
        assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
        assert record[message].startswith("created socket ") and time_key in record
        assert record["level"] == "info"
    (summary,) = [r for r in daemon.records if r.get(message) == "reconcile succeeded"]
    assert summary["revision"] == head and summary["duration_ms"] > 0
    other = "msg" if fmt == "json" else "message"
    assert not any(other in r for r in daemon.records)


@pytest.mark.parametrize("unready", [False, True], ids=["default", "unready-on-invalid"])
def test_readiness_with_invalid_manifests(
    emulator: Any, tmp_path: Path, daemon_run: Any, unready: bool
) -> None:
    path = tmp_path / "m"
    path.mkdir()
    (path / "web.yaml").write_text(socket_yaml("web", "Web"))
    args = ["--debounce", "50ms", *(["--unready-on-invalid"] if unready else [])]
    daemon = daemon_run(path, emulator.url, emulator.token, *args)
    wait_for(lambda: daemon.http.get("/readyz").status_code == 200, timeout=30,
             message="ready")
    (path / "bad.yaml").write_text(socket_yaml("bad", "Bad").replace("type: http", "type: htp"))
    wait_for(lambda: daemon.last("result") == "invalid", timeout=30, message="invalid seen")
    answer = daemon.http.get("/readyz")
    assert answer.json()["invalid_manifests"] is True
    assert answer.status_code == (503 if unready else 200)
    assert daemon.sample("border0_reconciler_ready", "") == (0 if unready else 1)
    (path / "bad.yaml").unlink()
    wait_for(lambda: daemon.http.get("/readyz").status_code == 200, timeout=30,
             message="ready again once valid")


def test_the_client_reports_each_attempt_by_operation(emulator: Any) -> None:
    client = emulator.client()
    seen: list[tuple[str, int, float]] = []
    client.on_request = lambda op, code, seconds: seen.append((op, code, seconds))
    client.create_socket({"name": "web", "socket_type": "http"})
    client.get_socket("web")
    with pytest.raises(Exception, match="404"):  # a 404 is one attempt too
        client.get_socket("nope")
    ops = [(op, code) for op, code, _ in seen]
    assert ("POST /socket", 200) in ops and ("GET /socket/{id}", 200) in ops
    assert ("GET /socket/{id}", 404) in ops
    assert all(seconds >= 0 for _, _, seconds in seen)
