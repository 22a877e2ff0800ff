"""Connectors across hosts: one writer (`--no-connectors`) and two connector agents
(`--connectors-only` with disjoint selectors) over examples/, against one standalone emulator
process. Every connector runs exactly once: the local-connector processes under our three
daemons are counted per socket from /proc.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO, cli, copy_examples, wait_for
from test_daemon import RecordingSupervisor, socket_yaml
from test_daemon_process import daemon_process  # noqa: F401 - the fixture

from reconciler.connectors.argv import LOCAL_CONNECTOR_TEMPLATE
from reconciler.daemon.agent import Selector, observe_for
from reconciler.daemon.loop import Daemon, DaemonConfig

PLATFORM = {"bastion", "docs", "portal", "web"}  # team=platform in examples/sockets/
OTHERS = {"analytics-db", "grafana", "mqtt", "orders-db"}
#: examples/connectors/ (team=edge): served by `connector start`, no legacy process of their own
EDGE = {"billing-db", "cache", "cluster", "intranet", "jump", "lab-desktop", "windows-admin"}
WRITES = ("created ", "updated ", "replaced ", "deleted ", "attached ", "detached ")


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def connector_processes(*roots: int) -> dict[str, list[int]]:
    """socket name -> pids of `reconciler local-connector NAME` processes under `roots`."""
    per_socket: dict[str, list[int]] = {}
    for root in roots:
        for pid in descendants(root):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [w.decode() for w in argv if w]
            if "local-connector" in words:
                name = words[words.index("local-connector") + 1]
                per_socket.setdefault(name, []).append(root)
    return per_socket


@pytest.mark.slow
def test_one_writer_and_two_agents_run_every_connector_exactly_once(
    tmp_path, emulator_process, daemon_process  # noqa: F811
):
    emulator = emulator_process()
    copy_examples(tmp_path / "manifests")
    common = ("--env-file", str(tmp_path / "manifests" / "demo.env"),
              "--connector-command", LOCAL_CONNECTOR_TEMPLATE, "--connector-startsecs", "0.3s")

    def start(*extra: str):
        return daemon_process(tmp_path / "manifests", emulator.url, emulator.token,
                              *common, *extra)

    writer = start("--no-connectors")
    wait_for(lambda: writer.last("result") == "success", timeout=30, message="the writer")
    platform = start("--connectors-only", "--connector-selector", "team=platform")
    others = start("--connectors-only", "--connector-selector", "team!=platform")

    def running(daemon) -> set[str]:
        return {c["socket"] for c in daemon.status()["connectors"] if c["state"] == "RUNNING"}

    wait_for(lambda: running(platform) == PLATFORM and running(others) == OTHERS, timeout=40,
             message="each agent's connectors RUNNING")
    processes = connector_processes(writer.proc.pid, platform.proc.pid, others.proc.pid)
    assert sorted(processes) == sorted(PLATFORM | OTHERS)
    for name, roots in processes.items():
        assert len(roots) == 1, f"{name} runs {len(roots)} times"
        expected = platform if name in PLATFORM else others
        assert roots == [expected.proc.pid], name
    # the writer runs none; the agents write nothing and plan nothing
    assert writer.status()["connectors"] == []
    for agent, names in ((platform, PLATFORM), (others, OTHERS)):
        status = agent.status()
        assert status["role"] == "agent"
        assert {s["name"] for s in status["sockets"]} == (
            names if agent is platform else names | EDGE)
        assert status["last_reconcile"]["summary"] is None
        assert not [m for m in agent.messages() if m.startswith(WRITES)]
        assert agent.http.get("/readyz").status_code == 200
        code, out, _ = cli(["status", "--listen", agent.http.base_url.netloc.decode()])
        assert code == 0 and "role agent" in out.splitlines()[0], out


@pytest.mark.slow
def test_an_agent_makes_no_writes_even_when_border0_differs(
    tmp_path, emulator_process, daemon_process  # noqa: F811
):
    """With no writer running, border0 stays empty: the agent only reads, and starts nothing."""
    emulator = emulator_process()
    copy_examples(tmp_path / "manifests")
    agent = daemon_process(tmp_path / "manifests", emulator.url, emulator.token,
                           "--env-file", str(tmp_path / "manifests" / "demo.env"),
                           "--connectors-only", "--connector-command", LOCAL_CONNECTOR_TEMPLATE)
    wait_for(lambda: agent.last("result") == "success", timeout=30)
    assert emulator.client().list_sockets() == []
    assert agent.status()["connectors"] == []


def test_bad_agent_flags_are_one_line_errors(tmp_path):
    for args, needle in (
        (["--connectors-only", "--connector-selector", "team"], "--connector-selector"),
        (["--connector-selector", "team=a"], "needs --connectors-only"),
        (["--connectors-only", "--no-connectors"], "exclude each other"),
        (["--connector", "edge"], "need --connectors-only"),
        (["--connectors-only", "--connector-start-command", "x {nope}"], "needs --connector"),
        (["--connectors-only", "--connector", "edge", "--connector-start-command", "x {nope}"],
         "connector start command"),
    ):
        code, _, err = cli(["run", str(REPO / "examples"), "--api", "local",
                            "--state", str(tmp_path / "s.db"), *args])
        assert code != 0 and needle in err and len(err.strip().splitlines()) == 1, err


def test_selectors_read_like_kubernetes_equality_selectors():
    from reconciler.daemon.agent import parse_selector

    payments = parse_selector("team=payments, env!=dev")
    assert payments.matches({"team": "payments"})  # != matches a missing label
    assert payments.matches({"team": "payments", "env": "prod"})
    assert not payments.matches({"team": "payments", "env": "dev"})
    assert not payments.matches({"team": "data"})
    assert parse_selector("example.com/tier==gold").matches({"example.com/tier": "gold"})
    assert parse_selector("").matches({})


def test_an_agent_keeps_a_connector_while_its_sockets_delete_waits(emulator, tmp_path):
    """A file emptied for a moment (an editor writing in place): the writer defers the
    socket's delete and keeps its connector; an agent, which plans nothing, stopped it at once
    while the socket was still in border0. It now holds for the same grace, looks again when
    the grace ends, and lets the connector go once the writer has deleted the socket.
    In-process daemons; the supervisor is the test stand-in that records what each is asked
    to run (tests/daemon/test_daemon.py)."""
    root = tmp_path / "m"
    root.mkdir()
    (root / "a.yaml").write_text(socket_yaml("web", "w", connector=True))
    (root / "b.yaml").write_text(socket_yaml("api", "a", connector=True))
    client = emulator.client()
    config = {"path": str(root), "listen": None, "interval": 3600, "delete_grace": 1.0}
    writer_runs, agent_runs = RecordingSupervisor(), RecordingSupervisor()
    writer = Daemon(DaemonConfig(**config), client, supervisor=writer_runs,
                    revision_fn=lambda path: None)
    agent = Daemon(DaemonConfig(**config, role="agent"), emulator.client(),
                   supervisor=agent_runs, reconcile_fn=observe_for(Selector()),
                   revision_fn=lambda path: None)
    assert writer.reconcile_now(["start"]).ok and agent.reconcile_now(["start"]).ok
    assert set(agent_runs.syncs[-1]) == {"web", "api"}

    (root / "b.yaml").write_text("")
    assert [d.change.title for d in writer.reconcile_now(["edit"]).plan.deferred] == [
        "delete socket api"]
    held = agent.reconcile_now(["edit"])
    assert client.find_socket("api") is not None
    assert set(agent_runs.syncs[-1]) == set(writer_runs.syncs[-1]) == {"web", "api"}
    assert held.deferred_until is not None  # the agent looks again when the grace ends

    wait_for(lambda: writer.reconcile_now(["grace over"]).ok
             and client.find_socket("api") is None, 10, message="the writer's delete")
    assert agent.reconcile_now(["grace over"]).ok
    assert set(agent_runs.syncs[-1]) == {"web"}
