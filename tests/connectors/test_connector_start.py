"""`border0 connector start` targets under the real supervisor: each child gets its own
connector token as BORDER0_TOKEN and never the admin token (read back from /proc), its output
is redacted, and a rotated token restarts that child alone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import wait_for

from reconciler.connector_model import ConnectorKindSpec, LiveConnector, TokenSpec
from reconciler.connectors.agents import connector_start_targets, render_start
from reconciler.connectors.supervisor import State, Supervisor
from reconciler.model import Actual, Desired

ADMIN = "admin-token-6c1f2a9e"
SLEEPER = "import os, time; print('token is ' + os.environ.get('BORDER0_TOKEN', ''), flush=True)"\
    "; time.sleep(600)"


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def desired_and_actual(tmp_path: Path, tokens: dict[str, str]) -> tuple[Desired, Actual]:
    connectors, live = {}, {}
    for name, value in tokens.items():
        file = tmp_path / f"{name}.token"
        file.write_text(value + "\n")
        connectors[name] = ConnectorKindSpec(name, tokens=(TokenSpec("t", file=str(file)),))
        live[name] = LiveConnector(f"id-{name}", name)
    return Desired(connectors=connectors), Actual(connectors=live)


@pytest.mark.slow
def test_children_get_their_connector_token_and_never_the_admin_token(tmp_path, monkeypatch):
    monkeypatch.setenv("BORDER0_AUTH_TOKEN", ADMIN)  # in our environment under any name ...
    monkeypatch.setenv("SOME_URL", f"https://x?token={ADMIN}")
    desired, actual = desired_and_actual(tmp_path, {"edge": "conn-token-edge-1",
                                                    "lab": "conn-token-lab-1"})
    template = f"{sys.executable} -c \"{SLEEPER}\""
    targets = connector_start_targets(desired, actual, template=template,
                                      env={"BORDER0_API": "http://127.0.0.1:1/api/v1"})
    assert sorted(targets) == ["connector/edge", "connector/lab"]
    assert "conn-token" not in repr(targets)
    supervisor = Supervisor(env={"BORDER0_ADMIN_TOKEN": ADMIN, "BORDER0_TOKEN": ADMIN},
                            startsecs=0.2, backoff_base=0.05)
    try:
        supervisor.sync(targets)

        def running() -> dict:
            return {s.name: s for s in supervisor.status() if s.state is State.RUNNING}

        wait_for(lambda: len(running()) == 2, message="both connectors running")
        pids = {name: s.pid for name, s in running().items()}
        for name, pid in pids.items():
            env = environ(pid)
            assert env["BORDER0_TOKEN"] == f"conn-token-{name.split('/')[1]}-1"
            assert env["BORDER0_API"] == "http://127.0.0.1:1/api/v1"
            assert "BORDER0_ADMIN_TOKEN" not in env and "BORDER0_AUTH_TOKEN" not in env
            assert not [k for k, v in env.items() if ADMIN in v], env
        # the connector token in the child's output is redacted (it is a secret too)
        assert supervisor.redact("token is conn-token-edge-1") == "token is (sensitive)"

        # rotation: only the edge connector restarts, with its new token
        (tmp_path / "edge.token").write_text("conn-token-edge-2\n")
        supervisor.sync(connector_start_targets(desired, actual, template=template,
                                                env={"BORDER0_API": "http://127.0.0.1:1/api/v1"}))
        wait_for(lambda: running().get("connector/edge") is not None
                 and running()["connector/edge"].pid != pids["connector/edge"],
                 message="edge restarted")
        assert running()["connector/lab"].pid == pids["connector/lab"]
        assert environ(running()["connector/edge"].pid)["BORDER0_TOKEN"] == "conn-token-edge-2"
    finally:
        supervisor.stop_all(timeout=5)


def test_which_connectors_an_agent_serves(tmp_path):
    desired, actual = desired_and_actual(tmp_path, {"edge": "a-1", "lab": "b-1"})
    assert list(connector_start_targets(desired, actual, serve={"lab"})) == ["connector/lab"]
    (tmp_path / "lab.token").write_text("")  # no token yet: not started
    assert list(connector_start_targets(desired, actual)) == ["connector/edge"]
    gone = Actual(connectors={})  # not in border0 (yet)
    assert connector_start_targets(desired, gone) == {}
    assert render_start("border0 connector start --name {name}", "edge", "id-1") == (
        "border0", "connector", "start", "--name", "edge")
