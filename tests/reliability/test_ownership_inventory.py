"""Ownership survives a tag-less write (issue 23, item 2).

Before: one PUT of a managed socket without its tags (the portal, a script, `border0 socket
update`) ended every later reconcile "invalid: not created by border0-reconciler": the whole plan
was blocked, while /readyz answered 200, consecutive_failures stayed 0 and /status went on
showing "in sync". The real daemon (the `run` command in this process), real files, the
emulator over HTTP.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from documents import ours, socket_doc, write
from test_partial_manifests import last

from reconciler.border0.api_json import socket_create_body
from reconciler.model import SocketSpec


def docs(**descriptions: str) -> list[dict]:
    return [socket_doc(name, description=text) for name, text in descriptions.items()]


def described(emulator, name: str) -> str:
    return emulator.client().get_socket(name)["description"]


@pytest.mark.timeout(300)
def test_a_tag_less_write_is_repaired_and_a_foreign_socket_blocks_only_itself(
    daemon_run, emulator, tmp_path: Path
) -> None:
    folder, state = tmp_path / "m", tmp_path / "state"
    write(folder, docs(a="socket a", b="socket b", c="socket c"))
    daemon = daemon_run(folder, emulator.url, emulator.token, "--debounce", "200ms",
                        "--interval", "1h", "--delete-grace", "0", "--state",
                        str(state / "local.db"))
    daemon.wait(lambda: last(daemon, 0, "success"), 90, "the first apply")
    client = emulator.client()
    a_id = client.get_socket("a")["socket_id"]
    assert a_id in json.loads((state / "inventory.json").read_text())["instances"]["default"]

    # someone writes `a` back without its tags, and edits `b` by hand
    current = client.get_socket("a")
    client.update_socket(a_id, {"name": "a", "socket_type": current["socket_type"],
                                "description": current["description"], "tags": {}})
    assert client.get_socket("a")["tags"] == {}
    b = client.get_socket("b")
    client.update_socket(b["socket_id"], {"name": "b", "socket_type": b["socket_type"],
                                          "description": "edited by hand", "tags": b["tags"]})
    since = time.time()
    daemon.send_signal(signal.SIGHUP)  # the next reconcile
    # the reconcile after the signal: its log records (a status entry's start time, compared
    # with this process's clock, missed it in loaded full runs)
    daemon.wait(lambda: any(r.get("trigger") == "SIGHUP" and r.get("message") == "reconcile succeeded"
                            for r in daemon.records), 60, "the next reconcile to succeed")
    assert described(emulator, "b") == "socket b"  # the other change applied
    assert ours().items() <= client.get_socket("a")["tags"].items()  # ... and a's tags repaired
    assert client.get_socket("a")["socket_id"] == a_id  # the same socket, not a new one
    drift = {r["message"]: r for r in daemon.records
             if str(r.get("message")).startswith("drift corrected")}
    assert "ownership tags lost" in drift["drift corrected: update socket a"]["reason"]
    assert "drift corrected: update socket b" in drift
    assert daemon.status()["consecutive_failures"] == 0
    assert daemon.http.get("/readyz").status_code == 200

    # a socket of another instance, named in the manifests, blocks only itself
    client.create_socket(socket_create_body(SocketSpec("d", "http", description="theirs"),
                                            "other"))
    assert client.get_socket("d")["tags"]["border0-reconciler/instance"] == "other"
    since = time.time()
    write(folder, docs(a="socket a", b="socket b", c="socket c, edited", d="ours?"))
    daemon.wait(lambda: last(daemon, since, "failure"), 60, "a failed (blocked) reconcile")
    assert described(emulator, "c") == "socket c, edited"  # applied all the same
    assert described(emulator, "d") == "theirs"  # never touched
    info = last(daemon, since)
    assert "1 object blocked, the rest applied" in info["error"]
    assert "managed by another instance" in info["error"]
    status = daemon.status()
    assert {s["name"]: s["state"] for s in status["sockets"]}["d"] == "blocked"
    assert status["stale"] is False  # what it shows was read by this very attempt
    metrics = daemon.http.get("/metrics").text
    assert "border0_reconciler_blocked_objects 1.0" in metrics

    # each blocked reconcile counts (retried with backoff); 503 after the third
    for _ in range(3):
        if daemon.status()["consecutive_failures"] >= 3:
            break
        before = daemon.status()["consecutive_failures"]
        daemon.send_signal(signal.SIGHUP)
        daemon.wait(lambda before=before: daemon.status()["consecutive_failures"] > before, 60,
                    "one more failure")
    assert daemon.http.get("/readyz").status_code == 503
    gauge = next(line for line in daemon.http.get("/metrics").text.splitlines()
                 if line.startswith("border0_reconciler_consecutive_failures "))
    assert float(gauge.split()[1]) >= 3

    # the manifests stop naming it: ready again
    since = time.time()
    write(folder, docs(a="socket a", b="socket b", c="socket c, edited"))
    daemon.wait(lambda: last(daemon, since, "success"), 60, "a passing reconcile")
    daemon.wait(lambda: daemon.http.get("/readyz").status_code == 200, 30, "ready again")
    assert daemon.status()["consecutive_failures"] == 0
    assert described(emulator, "d") == "theirs"

    # a plan refused before reaching border0: what /status shows is older than the attempt
    since = time.time()
    write(folder, [*docs(a="socket a", b="socket b"),
                   socket_doc("c", description="socket c, edited", policies=["nope"])])
    daemon.wait(lambda: last(daemon, since, "invalid"), 60, "the refused plan")
    status = daemon.status()
    assert status["stale"] is True and status["data_as_of"] < status["last_reconcile"]["time"]
