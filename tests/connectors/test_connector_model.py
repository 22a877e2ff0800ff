"""Border0's connector model end to end, against the twin over HTTP: a Connector with a token
(written 0600), sockets bound to it with typed upstreams, and an agent (`run --connectors-only`)
that runs one stand-in `border0 connector start` (tests/standin_connector.py) with that
connector's token and never the admin token; a revoked token stops it, a reconcile that
rotates the token brings it back.
"""

from __future__ import annotations

import http.server
import json
import stat
import sys
import threading
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import PYTHON, REPO, cli, copy_examples, reconciled, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
from test_connector_agents import descendants
from test_daemon_process import daemon_process  # noqa: F401 - the fixture

from reconciler.reconcile import ReconcileOptions, reconcile

HEAD = {"apiVersion": "border0-reconciler/v1"}
STANDIN = REPO / "tests" / "standin_connector.py"


def http_upstream(hostname: str, port: int) -> dict:
    return {"serviceType": "http", "httpServiceConfiguration": {
        "httpServiceType": "standard", "standardHttpServiceConfiguration": {
            "hostname": hostname, "port": port, "scheme": "http", "hostHeader": hostname}}}


def tls_upstream(port: int) -> dict:
    return {"serviceType": "tls", "tlsServiceConfiguration": {
        "tlsServiceType": "standard",
        "standardTlsServiceConfiguration": {"hostname": "127.0.0.1", "port": port}}}


def manifests(folder: Path, upstream: int, bound: tuple[str, ...] = ("web", "cache"),
              token_file: Path | None = None) -> Path:
    token_file = token_file or folder.parent / "tokens" / "edge.token"
    docs = [
        {**HEAD, "kind": "Connector", "metadata": {"name": "edge"}, "spec": {
            "description": "the edge hosts",
            "tokens": [{"name": "edge-1", "expiresIn": "30d",
                        "destination": {"file": str(token_file)}}]}},
        {**HEAD, "kind": "Socket", "metadata": {"name": "web"}, "spec": {
            "type": "http", "connectors": ["edge"] if "web" in bound else [],
            "upstream": http_upstream("127.0.0.1", upstream)}},
        {**HEAD, "kind": "Socket", "metadata": {"name": "cache"}, "spec": {
            "type": "tls", "connectors": ["edge"] if "cache" in bound else [],
            "upstream": tls_upstream(upstream)}},
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder



def test_apply_creates_the_connector_its_token_file_and_the_bound_sockets(
    tmp_path, emulator, upstream
):
    client = emulator.client()
    folder = manifests(tmp_path / "m", upstream)
    first = reconciled(folder, client)
    summary = first.plan.summary()
    assert (summary["create"], summary["update"]) == (4, 0)  # connector, token, two sockets
    token_file = tmp_path / "tokens" / "edge.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token and token not in json.dumps(first.plan.to_json())

    [connector] = client.list_all_connectors()
    assert connector["name"] == "edge"
    for name, config in (("web", http_upstream("127.0.0.1", upstream)),
                         ("cache", tls_upstream(upstream))):
        socket_id = client.get_socket(name)["socket_id"]
        assert [c["connector_id"] for c in client.list_connectors(socket_id)] == [
            connector["connector_id"]]
        live = client.get_upstream_configuration(socket_id)
        assert live["service_type"] == config["serviceType"]
        block = f"{config['serviceType']}_service_configuration"
        assert live[block][f"standard_{block}"]["port"] == upstream
    [listed] = client.list_connector_tokens(connector["connector_id"])
    assert listed["name"] == "edge-1" and "token" not in {k for k, v in listed.items() if v}

    second = reconcile([folder], client, ReconcileOptions(dry_run=True))
    assert second.ok and not second.plan.has_changes, second.plan.to_json()["changes"]
    code, out, err = cli(["plan", str(folder), "--api", emulator.url],
                         env={"BORDER0_ADMIN_TOKEN": emulator.token})
    assert code == 0 and "No changes." in out, (out, err)


def test_a_lost_token_file_means_a_new_token_and_the_old_one_revoked(tmp_path, emulator):
    client = emulator.client()
    folder = manifests(tmp_path / "m", 9)
    reconciled(folder, client)
    token_file = tmp_path / "tokens" / "edge.token"
    connector_id = client.list_all_connectors()[0]["connector_id"]
    [old] = client.list_connector_tokens(connector_id)
    token_file.unlink()
    code, out, _ = cli(["plan", str(folder), "--api", emulator.url],
                       env={"BORDER0_ADMIN_TOKEN": emulator.token})
    assert code == 0 and "-/+ token edge-1: replace (sensitive)" in out, out
    assert f"destination {token_file} is missing" in out
    reconciled(folder, client)
    [new] = client.list_connector_tokens(connector_id)
    assert new["id"] != old["id"] and token_file.read_text().strip()


def test_with_policies_off_no_request_touches_policies(tmp_path, emulator):
    client = emulator.client()
    folder = manifests(tmp_path / "m", 9)
    (folder / "p.yaml").write_text(yaml.safe_dump({**HEAD, "kind": "Policy", "metadata": {
        "name": "ops"}, "spec": {"policyData": {"version": "v1", "action": ["http"],
                                                "condition": {"who": {"email": ["a@b.c"]}}}}}))
    seen: list[str] = []
    client._http.event_hooks["request"].append(lambda request: seen.append(request.url.path))
    result = reconcile([folder], client, ReconcileOptions(manage_policies=False))
    assert result.ok, result.error
    assert seen and not [p for p in seen if "/policies" in p or "/policy" in p], seen
    assert any(w.code == "policies-not-managed" for w in result.plan.warnings)
    assert client.list_policies() == []


def standin_processes(root: int) -> list[int]:
    found = []
    for pid in descendants(root):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"standin_connector.py") for a in argv):
            found.append(pid)
    return found


def state_of(agent) -> str:
    return next(c for c in agent.status()["connectors"] if c["socket"] == "connector/edge")[
        "state"]


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.slow
def test_an_agent_runs_one_connector_with_its_token_and_a_revoked_token_is_reported_and_healed(
    tmp_path, emulator, upstream, daemon_process  # noqa: F811
):
    client = emulator.client()
    folder = manifests(tmp_path / "m", upstream)
    reconciled(folder, client)
    token_file = tmp_path / "tokens" / "edge.token"
    state = tmp_path / "standin"
    state.mkdir()
    hooks: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hooks.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, args=(0.05,), daemon=True).start()
    agent = daemon_process(
        folder, emulator.url, emulator.token, "--connectors-only", "--connector", "edge",
        "--interval", "1s",
        "--connector-start-command", f"{PYTHON} {STANDIN} --state {state}/{{name}}.json",
        "--connector-startsecs", "2s", "--connector-start-retries", "2", "--notify", f"http://127.0.0.1:{hook.server_port}/h")
    served = state / "edge.json"
    wait_for(lambda: set(json.loads(served.read_text())) == {"web", "cache"}, timeout=30,
             message="the stand-in serving both bound sockets")

    # exactly one connector process, with the connector's token and no admin token anywhere
    [pid] = standin_processes(agent.proc.pid)
    env = environ(pid)
    assert env["BORDER0_TOKEN"] == token_file.read_text().strip()
    assert env["BORDER0_API"] == emulator.url
    assert "BORDER0_ADMIN_TOKEN" not in env and "BORDER0_AUTH_TOKEN" not in env
    assert not [k for k, v in env.items() if emulator.token in v]
    ports = json.loads(served.read_text())
    answer = httpx.get(f"http://127.0.0.1:{ports['web']}/hello", timeout=5)
    assert answer.text == "upstream saw /hello"
    wait_for(lambda: state_of(agent) == "RUNNING", timeout=20, message="RUNNING")
    status = agent.status()
    assert emulator.token not in json.dumps(status) and env["BORDER0_TOKEN"] not in json.dumps(
        status)

    # a socket whose binding is removed is no longer served
    reconciled(manifests(folder, upstream, bound=("web",)), client)
    wait_for(lambda: set(json.loads(served.read_text())) == {"web"}, timeout=20,
             message="cache no longer served")

    # revoked in border0: the stand-in cannot authenticate, the agent reports it
    connector_id = client.list_all_connectors()[0]["connector_id"]
    [token] = client.list_connector_tokens(connector_id)
    client.delete_connector_token(connector_id, token["id"])
    wait_for(lambda: state_of(agent) in ("BACKOFF", "FATAL"), timeout=20,
             message="the connector failing")
    wait_for(lambda: "authentication failed" in (next(
        c for c in agent.status()["connectors"] if c["socket"] == "connector/edge"
    ).get("last_error") or ""), timeout=20)
    wait_for(lambda: agent.sample("border0_reconciler_connector_state", "",
                                  socket="connector/edge", state="FATAL") == 1, timeout=60,
             message="the FATAL state in /metrics")
    wait_for(lambda: any(h.get("event") == "connector_fatal" for h in hooks), timeout=60,
             message="a connector_fatal notification")
    assert all(env["BORDER0_TOKEN"] not in json.dumps(h) for h in hooks)

    # a reconcile that rotates the token brings it back
    rotated = reconciled(folder, client)
    assert [(c.kind.value, c.action.value) for c in rotated.plan.changes] == [
        ("token", "create")]
    wait_for(lambda: state_of(agent) == "RUNNING", timeout=30,
             message="the connector running again with the new token")
    [pid] = standin_processes(agent.proc.pid)
    assert environ(pid)["BORDER0_TOKEN"] == token_file.read_text().strip()
    hook.shutdown()


def test_the_examples_apply_cleanly_and_their_links_match_the_manifests(tmp_path, emulator):
    """examples/: two connectors with tokens, sockets of 7 upstream kinds (one served by both
    connectors, references from:env:/from:file:); applied, read back, then nothing to plan."""

    from reconciler.manifests.files import read_env_file
    from reconciler.manifests.loader import load

    examples = tmp_path / "examples"
    copy_examples(examples, "ci", "kubernetes")
    env = read_env_file(examples / "demo.env")
    client = emulator.client()
    result = reconcile([examples], client, ReconcileOptions(env=env))
    assert result.ok, (result.error, [str(d) for d in result.diagnostics])
    for token in ("edge", "edge-b"):
        assert stat.S_IMODE((examples / ".border0-reconciler" / "tokens" / f"{token}.token")
                            .stat().st_mode) == 0o600
    desired = load([examples], env=env).desired
    for name, spec in desired.sockets.items():
        if spec.connectors is None:
            continue
        socket_id = client.get_socket(name)["socket_id"]
        assert sorted(c["connector_name"] for c in client.list_connectors(socket_id)) == sorted(
            spec.connectors), name
        live = client.get_upstream_configuration(socket_id)
        assert live["service_type"] == spec.upstream_config["service_type"], name
    assert sorted(desired.sockets["billing-db"].connectors) == ["edge", "edge-b"]
    again = reconcile([examples], client, ReconcileOptions(env=env, dry_run=True))
    assert again.ok and not again.plan.has_changes, again.plan.to_json()["changes"]
