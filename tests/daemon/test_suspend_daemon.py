"""A suspended object under the daemon: left alone in border0 (writes counted in the emulator),
its connector untouched, shown as suspended in /status and /metrics; resumed without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import test_daemon_process
from helpers import edit_by_hand, wait_for
from test_daemon import RecordingSupervisor, make_daemon, metric, policy_yaml, socket_yaml

manifests = test_daemon_process.manifests

SUSPEND = "  annotations:\n    border0-reconciler/suspend: \"true\"\n"


def suspended(yaml: str) -> str:
    """The same manifest with the suspend annotation under its metadata."""
    head, rest = yaml.split("spec:\n", 1)
    return head + SUSPEND + "spec:\n" + rest


def count_writes(emulator: Any) -> list[str]:
    """Every request the emulator serves that is not a read ("METHOD path"), as it comes: an
    ASGI wrapper around the emulator's API, inside its fault layer (`emulator.app`)."""
    writes: list[str] = []
    inner = emulator.app.app

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            writes.append(f"{scope['method']} {scope['path']}")
        await inner(scope, receive, send)

    emulator.app.app = counting
    return writes


def test_a_suspended_socket_changed_by_hand_is_left_alone_then_resumed(
    emulator, tmp_path: Path, daemon_run
):
    writes = count_writes(emulator)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "team.yaml").write_text(policy_yaml("team"))
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed", policy="team"))
    client = emulator.client()
    daemon = daemon_run(manifests, emulator.url, emulator.token, "--interval", "300ms",
                        "--jitter", "0%", "--debounce", "50ms", "--delete-grace", "1s")
    wait_for(lambda: daemon.last("result") == "success", timeout=30, message="the start")

    (manifests / "web.yaml").write_text(suspended(socket_yaml("web", "managed", policy="team")))
    wait_for(lambda: [s["state"] for s in daemon.status()["sockets"]] == ["suspended"],
             timeout=30, message="web shown as suspended")
    web = client.get_socket("web")
    edit_by_hand(client, web, description="edited by hand")
    client.update_socket_policies(web["socket_id"], remove=[client.find_policy("team")["id"]])
    before = len(writes)
    start = daemon.reconciles()
    wait_for(lambda: daemon.reconciles() >= start + 3, timeout=30, message="3 intervals")
    assert daemon.last("result") == "success"
    assert writes[before:] == []  # not one write to border0 in 3 intervals
    live = client.get_socket("web")
    assert live["description"] == "edited by hand" and not live.get("policies")
    assert daemon.sample("border0_reconciler_suspended_objects", "", kind="socket") == 1
    assert daemon.status()["suspended"] == [{"kind": "socket", "name": "web"}]
    assert daemon.sample("border0_reconciler_managed_objects", "", kind="socket",
                         state="suspended") == 1

    (manifests / "web.yaml").write_text(socket_yaml("web", "managed", policy="team"))
    wait_for(lambda: client.get_socket("web")["description"] == "managed", timeout=30,
             message="resumed: the manifest applied again")
    wait_for(lambda: [p["name"] for p in client.get_socket("web").get("policies") or []]
             == ["team"], timeout=30, message="the policy attached again")
    assert len(writes) > before
    # the gauge is set once the reconcile that wrote is published (after its writes are seen)
    wait_for(lambda: daemon.sample("border0_reconciler_suspended_objects", "", kind="socket")
             == 0, timeout=30, message="the suspended gauge back to 0")


def test_a_suspended_policy_is_not_updated_and_shows_in_status(emulator, manifests):
    (manifests / "team.yaml").write_text(policy_yaml("team"))
    client = emulator.client()
    daemon = make_daemon(manifests, client)
    assert daemon.reconcile_now(["start"]).ok
    (manifests / "team.yaml").write_text(suspended(policy_yaml("team")).replace(
        "description: team access", "description: changed in git"))
    result = daemon.reconcile_now(["change"])
    assert result.ok and result.plan.changes == []
    assert client.find_policy("team")["description"].startswith("team access")
    assert daemon.status()["policies"][0]["state"] == "suspended"
    assert daemon.status()["suspended"] == [{"kind": "policy", "name": "team"}]
    assert metric(daemon, "border0_reconciler_suspended_objects", kind="policy") == 1


def test_a_suspended_sockets_connector_is_neither_started_stopped_nor_restarted(
    emulator, manifests
):
    supervisor = RecordingSupervisor()
    (manifests / "web.yaml").write_text(socket_yaml("web", "one", connector=True))
    (manifests / "api.yaml").write_text(suspended(socket_yaml("api", "x", connector=True)))
    daemon = make_daemon(manifests, emulator.client(), supervisor=supervisor)
    assert daemon.reconcile_now(["start"]).ok
    running = supervisor.syncs[-1]["web"]
    assert "api" not in supervisor.syncs[-1]  # suspended before it ever ran: not started

    # Suspended while running: a change that would restart it (another port) does not.
    (manifests / "web.yaml").write_text(
        suspended(socket_yaml("web", "two", connector=True)).replace(
            "httpserver: true", "httpserver: true\n    port: 8081"))
    assert daemon.reconcile_now(["change"]).ok
    assert supervisor.syncs[-1]["web"] == running
    # Its manifest turning the connector off does not stop it either.
    (manifests / "web.yaml").write_text(suspended(socket_yaml("web", "two")))
    assert daemon.reconcile_now(["change"]).ok
    assert supervisor.syncs[-1]["web"] == running

    (manifests / "web.yaml").write_text(socket_yaml("web", "two"))  # resumed: stopped now
    assert daemon.reconcile_now(["change"]).ok
    assert "web" not in supervisor.syncs[-1]
