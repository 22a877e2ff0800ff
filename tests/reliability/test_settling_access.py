"""Access only narrows until the files settle (issue 23, item 1).

Before: a policy file cut just before its `where: {allowed_ip: ...}` and left so for 3 s was
applied within about 2 s: border0 held the policy without its IP restriction. The real daemon
(the `run` command in this process), real file events and the emulator over HTTP, polled
every 100 ms.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from test_partial_manifests import last, records
from test_reliability import socket_yaml

POLICY = """apiVersion: border0-reconciler/v1
kind: Policy
metadata:
  name: office
spec:
  description: the office only
  policyData:
    version: v1
    action: [http]
    condition:
      who:
        email: [ops@example.com]
      where:
        allowed_ip: [10.1.0.0/16]
"""


def where_of(emulator: Any) -> Any:
    for policy in emulator.client().list_policies():
        if policy["name"] == "office":
            return (policy.get("policy_data", {}).get("condition") or {}).get("where")
    return "absent"


def write_in_place(path: Path, text: str) -> None:
    with open(path, "r+", encoding="utf-8") as f:  # as an editor or a paused copy leaves it
        f.truncate(0)
        f.write(text)


@pytest.mark.timeout(240)
@pytest.mark.slow  # in this process, but the scenario is 6 s of a paused writer
def test_a_policy_cut_before_its_where_never_reaches_border0(daemon_run, emulator, tmp_path
                                                            ) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "web.yaml").write_text(socket_yaml("web", policies=("office",)))
    path = folder / "office.yaml"
    path.write_text(POLICY)
    daemon = daemon_run(folder, emulator.url, emulator.token, "--debounce", "200ms",
                        "--delete-grace", "5s", "--interval", "1h")
    daemon.wait(lambda: where_of(emulator) == {"allowed_ip": ["10.1.0.0/16"]}
                and last(daemon, 0, "success"), 90, "the first apply")
    served = emulator.requests()  # every request from here on, in order (the twin's own log)
    start = len(served)

    cut = time.time()
    write_in_place(path, POLICY[: POLICY.index("      where:")])  # ends in a newline: valid YAML
    daemon.wait(lambda: records(daemon, "held back until the manifests settle", cut), 30,
                "the widened policy to be held back")
    message = records(daemon, "held back until the manifests settle", cut)[0]["message"]
    assert "update policy office (grants access)" in message
    held = daemon.status()["held_back"]
    assert {"kind": "policy", "name": "office", "action": "update", "why": "access"} in (
        held["changes"])
    assert 'border0_reconciler_changes_held_back{why="access"} 1.0' in daemon.http.get(
        "/metrics").text
    # the writer stays paused for 3 s (the scenario, not a synchronisation)
    wait_for(lambda: time.time() >= cut + 3, timeout=10, message="3 s to pass")
    assert where_of(emulator) == {"allowed_ip": ["10.1.0.0/16"]}

    done = time.time()
    write_in_place(path, POLICY)
    daemon.wait(lambda: last(daemon, done, "success") and not daemon.status()["held_back"], 60,
                "the whole file read, nothing held back")
    wait_for(lambda: time.time() >= cut + 6, timeout=10, message="the grace window to end")
    # border0's log, not a poller's samples: the policy was never written in the whole window
    # (the restored file is the policy border0 already has)
    written = [(m, path) for m, path in served[start:] if m not in ("GET", "HEAD")]
    assert not [w for w in written if "/polic" in w[1]], written
    assert where_of(emulator) == {"allowed_ip": ["10.1.0.0/16"]}
