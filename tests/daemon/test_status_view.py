"""The read side as components: the live /status of a real daemon (against the emulator, over
HTTP) validates against schemas/status.schema.json, pages its object lists with whole counts,
and the daemon's root parts are one list started in order and stopped in reverse."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from helpers import wait_for
from test_daemon import policy_yaml, socket_yaml

from reconciler.daemon.loop import Daemon, DaemonConfig
from reconciler.daemon.status import status_problems
from reconciler.daemon.status_server import StatusServer
from reconciler.daemon.watch import ManifestWatcher
from reconciler.reconcile import ReconcileResult


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    path = tmp_path / "manifests"
    path.mkdir()
    return path


def test_live_status_is_a_status_document_with_structured_errors(emulator, manifests, status_server):
    for i in range(3):
        (manifests / f"s{i}.yaml").write_text(socket_yaml(f"s{i}", "x", policy="ops"))
    (manifests / "ops.yaml").write_text(policy_yaml("ops"))
    daemon = Daemon(DaemonConfig(path=str(manifests), listen=None), emulator.client(),
                    revision_fn=lambda p: None)
    http = status_server(daemon.view)
    assert status_problems(http.get("/status").json()) == []  # before any reconcile too

    assert daemon.reconcile_now(["start"]).ok
    (manifests / "bad.yaml").write_text("apiVersion: border0-reconciler/v1\nkind: Sockt\n")
    assert not daemon.reconcile_now(["change: bad.yaml"]).ok

    status = http.get("/status").json()
    assert status_problems(status) == []
    assert [s["state"] for s in status["sockets"]] == ["in-sync"] * 3  # the last good state
    (detail,) = status["error_details"]
    assert detail["source"] == "manifests" and detail["where"].endswith("bad.yaml:2:7")
    assert status["errors"] == [f"{detail['where']}: error: {detail['message']}"]


def test_the_check_can_fail():
    problems = status_problems({"instance": "x", "errors": [{"code": 1}]})
    assert any("required property" in p for p in problems)
    assert any(p.startswith("errors/0: ") for p in problems)


def test_status_pages_its_lists_and_always_counts_them_all(emulator, manifests, status_server):
    for i in range(12):
        (manifests / f"s{i:02}.yaml").write_text(socket_yaml(f"s{i:02}", "x"))
    daemon = Daemon(DaemonConfig(path=str(manifests), listen=None), emulator.client(),
                    revision_fn=lambda p: None)
    assert daemon.reconcile_now(["start"]).ok
    http = status_server(daemon.view)

    page = http.get("/status", params={"limit": 5, "offset": 10}).json()
    assert [s["name"] for s in page["sockets"]] == ["s10", "s11"]
    assert page["page"] == {"offset": 10, "limit": 5, "sort": None, "filter": None, "state": [],
                            "matched": 12}
    assert page["counts"]["sockets"] == 12
    assert page["counts"]["states"] == [{"kind": "socket", "state": "in-sync", "count": 12}]
    assert status_problems(page) == []
    assert len(http.get("/status").json()["sockets"]) == 12  # no limit: all, as before

    refused = http.get("/status", params={"limit": "-1"})
    assert refused.status_code == 400
    assert refused.json() == {"error": "limit must be a whole number of 0 or more, not '-1'"}


class Recorded:
    """Wraps a real part's object to record when it starts and stops."""

    def __init__(self, calls: list[str], name: str, wrapped: Any) -> None:
        self.calls, self.name, self.wrapped = calls, name, wrapped

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self.wrapped, attr)
        if attr in ("start", "stop", "shutdown"):
            def recorded(*a: Any, **kw: Any) -> Any:
                self.calls.append(f"{attr} {self.name}")
                return value(*a, **kw)
            return recorded
        return value


def test_root_parts_start_in_order_and_stop_in_reverse(manifests):
    calls: list[str] = []

    class Supervisor:
        def sync(self, targets): ...
        def status(self): return []
        def reset_fatal(self): ...
        def stop_all(self, timeout=None): calls.append("stop connectors")

    daemon = Daemon(
        DaemonConfig(path=str(manifests), listen="127.0.0.1:0", interval=3600),
        None, supervisor=Supervisor(), revision_fn=lambda p: None,
        reconcile_fn=lambda *a: ReconcileResult(True, "done"),
        watcher_factory=lambda *a, **kw: Recorded(calls, "watcher", ManifestWatcher(*a, **kw)),
        scheduler_factory=lambda: Recorded(calls, "scheduler",
                                           BackgroundScheduler(daemon=True)),
        server_factory=lambda *a, **kw: Recorded(calls, "server", StatusServer(*a, **kw)),
    )
    assert [p.name for p in daemon.parts] == ["status server", "watcher", "scheduler",
                                             "connectors"]
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    wait_for(lambda: daemon.reconciles_run >= 1, message="the first reconcile")
    assert daemon.health()[0]
    daemon.request_stop()
    thread.join(10)
    assert calls == ["start server", "start watcher", "start scheduler",
                     "stop connectors", "shutdown scheduler", "stop watcher", "stop server"]


def _daemon_classes_with_a_daemon_parent(sources: dict[str, str]) -> list[str]:
    """Classes of reconciler/daemon/ that inherit from a class defined there (a mixin, or a
    parent split off for size): the daemon is built from components it holds instead."""
    import ast

    trees = {name: ast.parse(text) for name, text in sources.items()}
    ours = {node.name for tree in trees.values() for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)}
    return [f"{name}: {node.name}({base.id})" for name, tree in trees.items()
            for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            for base in node.bases if isinstance(base, ast.Name) and base.id in ours]


def test_no_mixin_remains_in_the_daemon_package():
    package = Path(__file__).resolve().parents[2] / "reconciler" / "daemon"
    sources = {p.name: p.read_text() for p in sorted(package.glob("*.py"))}
    assert _daemon_classes_with_a_daemon_parent(sources) == []
    planted = {**sources, "parts.py": sources["parts.py"] + "\n\nclass Reads:\n    pass\n",
               "loop.py": sources["loop.py"] + "\n\nclass Bad(Reads):\n    pass\n"}
    assert _daemon_classes_with_a_daemon_parent(planted) == ["loop.py: Bad(Reads)"]
