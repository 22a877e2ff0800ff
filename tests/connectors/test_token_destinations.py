"""Connector token destinations besides a file: a Kubernetes Secret the reconciler writes, and
the agent token store (`destination: {agent: true}`), against the twin over HTTP.

No Kubernetes API server can run on these machines: the Secret tests run lightkube against
tests/connectors/kube_secrets_endpoint.py, a small fake of the API server's core/v1 Secrets over
real HTTP on 127.0.0.1, reached through a kubeconfig as a cluster would be.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
import yaml
from helpers import PYTHON, cli, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kube_secrets_endpoint import SecretsEndpoint
from test_connector_model import STANDIN, environ, http_upstream, standin_processes
from test_daemon_process import daemon_process  # noqa: F401 - the fixture

from reconciler.connectors.agents import read_token
from reconciler.manifests.loader import load
from reconciler.reconcile import ReconcileOptions, reconcile

HEAD = {"apiVersion": "border0-reconciler/v1"}


def manifests(folder: Path, destination: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "edge.yaml").write_text(yaml.safe_dump({**HEAD, "kind": "Connector", "metadata": {
        "name": "edge"}, "spec": {"tokens": [{"name": "edge-1", "expiresIn": "30d",
                                              "destination": destination}]}}))
    return folder


@pytest.fixture
def kube(tmp_path, monkeypatch):
    endpoint = SecretsEndpoint()
    config = endpoint.kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.delenv("BORDER0_RECONCILER_SECRET_MOUNTS", raising=False)
    yield endpoint
    endpoint.close()


def tokens(client) -> list[dict]:
    [connector] = client.list_all_connectors()
    return client.list_connector_tokens(connector["connector_id"])


def run(args: list[str], emulator) -> tuple[int, str, str]:
    return cli([*args, "--api", emulator.url], env={"BORDER0_ADMIN_TOKEN": emulator.token})


def test_a_secret_destination_is_written_and_a_lost_secret_means_a_new_token_and_the_old_revoked(
    tmp_path, emulator, kube
):
    kube.put_value("edge-token", {"ca.crt": "kept"})  # someone else's key in the same Secret
    folder = manifests(tmp_path / "m", {"kubernetesSecret": {"name": "edge-token"}})
    client = emulator.client()

    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    value = kube.value("edge-token")
    assert value and kube.value("edge-token", "ca.crt") == "kept"
    assert value not in out + err
    [first] = tokens(client)
    assert read_token(load([folder]).desired.connectors["edge"]) == value  # the agent's read

    code, out, err = run(["plan", str(folder)], emulator)
    assert code == 0 and "No changes." in out, (out, err)

    kube.secrets.clear()  # the Secret deleted (kubectl delete secret edge-token)
    code, out, err = run(["plan", str(folder)], emulator)
    assert code == 0 and "-/+ token edge-1: replace (sensitive)" in out, (out, err)
    assert "destination Kubernetes Secret edge-token (key token) is missing" in out

    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    [second] = tokens(client)  # the old one revoked
    assert second["id"] != first["id"]
    assert kube.value("edge-token") not in (None, value)
    assert kube.secrets[("border0", "edge-token")]["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "border0-reconciler"}
    assert value not in out + err and kube.value("edge-token") not in out + err


def test_a_secret_that_cannot_be_written_fails_in_one_line_and_leaves_no_live_token(
    tmp_path, emulator, kube
):
    kube.forbidden.add("edge-token")
    folder = manifests(tmp_path / "m", {"kubernetesSecret": {"name": "edge-token",
                                                             "namespace": "agents"}})
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code != 0
    assert "cannot write the Kubernetes Secret edge-token: 403" in out + err, (out, err)
    assert "Traceback" not in out + err
    assert tokens(emulator.client()) == []  # the new token was revoked at once
    assert kube.secrets == {}


def test_without_a_kubernetes_api_the_plan_warns_and_leaves_the_token_alone(
    tmp_path, emulator, kube, monkeypatch
):
    folder = manifests(tmp_path / "m", {"kubernetesSecret": {"name": "edge-token"}})
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    # a second live token of the name (a POST border0 carried out but answered 500): with the
    # Secret unreadable, which one it holds is unknown, so neither is revoked nor a new one made
    client = emulator.client()
    [connector] = client.list_all_connectors()
    client.create_connector_token({"connector_id": connector["connector_id"], "name": "edge-1"})
    code, out, err = cli(["plan", str(folder), "--api", emulator.url],
                         env={"BORDER0_ADMIN_TOKEN": emulator.token,
                              "KUBECONFIG": str(tmp_path / "nowhere")})
    assert code == 0, (out, err)
    assert "connector edge, token edge-1: no Kubernetes configuration found" in out + err
    assert "No changes." in out  # not replaced on a guess
    assert "Traceback" not in out + err


def test_an_agent_only_token_goes_to_the_agent_store_and_nowhere_else(tmp_path, emulator):
    folder = manifests(tmp_path / "m", {"agent": True})
    client = emulator.client()
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    store = folder / ".border0-reconciler" / "agent-tokens" / "edge"
    stored = store / "edge-1.token"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    # every folder the store needed is made 0700: none lists the connectors and tokens
    for made in (store, store.parent, store.parent.parent):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
    value = stored.read_text().strip()
    assert value and value not in out + err
    assert read_token(load([folder]).desired.connectors["edge"]) == value
    [first] = tokens(client)

    stored.unlink()
    code, out, err = run(["plan", str(folder), "-o", "json"], emulator)
    assert code == 0, (out, err)
    [change] = json.loads(out)["changes"]
    assert change["action"] == "replace" and "agent token store" in change["reason"], change
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    [second] = tokens(client)
    assert second["id"] != first["id"] and stored.read_text().strip() not in ("", value)


def test_the_agent_store_can_be_moved_and_a_pod_reads_its_mounted_secret(
    tmp_path, emulator, kube, monkeypatch
):
    store = tmp_path / "agent-tokens"
    monkeypatch.setenv("BORDER0_RECONCILER_AGENT_TOKENS", str(store))
    folder = manifests(tmp_path / "m", {"agent": True})
    assert reconcile([folder], emulator.client(), ReconcileOptions()).ok
    assert (store / "edge" / "edge-1.token").read_text().strip()
    assert not (folder / ".border0-reconciler").exists()

    # an agent pod of the chart: the Secret mounted, read without the Kubernetes API
    mounts = tmp_path / "secrets"
    (mounts / "edge-token").mkdir(parents=True)
    (mounts / "edge-token" / "token").write_text("mounted-value\n")
    monkeypatch.setenv("BORDER0_RECONCILER_SECRET_MOUNTS", str(mounts))
    kube.put_value("edge-token", {"token": "api-value"})
    spec = load([manifests(tmp_path / "k", {"kubernetesSecret": {"name": "edge-token"}})])
    assert read_token(spec.desired.connectors["edge"]) == "mounted-value"
    (mounts / "edge-token" / "token").unlink()  # not synced yet: no token, no API call
    assert read_token(spec.desired.connectors["edge"]) is None
    monkeypatch.delenv("BORDER0_RECONCILER_SECRET_MOUNTS")
    assert read_token(spec.desired.connectors["edge"]) == "api-value"


@pytest.mark.slow  # a real agent process and its connector process
@pytest.mark.parametrize("where", ["agent", "secret"])
def test_an_agent_runs_its_connector_with_the_token_from_the_store_or_the_secret(
    tmp_path, emulator, upstream, kube, daemon_process, where  # noqa: F811
):
    """The agent (`run --connectors-only --connector edge`) gives the stand-in connector the
    token the writer put in the agent token store or the Secret (read through the API); the
    destination lost, the writer's next apply makes a new token and the agent restarts its
    connector with it."""
    destination = {"agent": True} if where == "agent" else {
        "kubernetesSecret": {"name": "edge-token"}}
    folder = manifests(tmp_path / "m", destination)
    (folder / "web.yaml").write_text(yaml.safe_dump({**HEAD, "kind": "Socket", "metadata": {
        "name": "web"}, "spec": {"type": "http", "connectors": ["edge"],
                                 "upstream": http_upstream("127.0.0.1", upstream)}}))
    client = emulator.client()
    assert reconcile([folder], client, ReconcileOptions()).ok
    store = folder / ".border0-reconciler" / "agent-tokens" / "edge" / "edge-1.token"

    def written() -> str | None:
        if where == "agent":
            return store.read_text().strip() if store.exists() else None
        return kube.value("edge-token")

    state = tmp_path / "standin"
    state.mkdir()
    agent = daemon_process(
        folder, emulator.url, emulator.token, "--connectors-only", "--connector", "edge",
        "--interval", "1s", "--connector-startsecs", "1s",
        "--connector-start-command", f"{PYTHON} {STANDIN} --state {state}/{{name}}.json")
    served = state / "edge.json"
    wait_for(lambda: served.exists() and set(json.loads(served.read_text())) == {"web"},
             timeout=30, message="the stand-in serving web")
    [pid] = standin_processes(agent.proc.pid)
    first = written()
    assert first and environ(pid)["BORDER0_TOKEN"] == first
    assert first not in json.dumps(agent.status())

    store.unlink() if where == "agent" else kube.secrets.clear()  # the destination lost
    assert reconcile([folder], client, ReconcileOptions()).ok  # a new token, the old revoked
    second = written()
    assert second and second != first and len(tokens(client)) == 1

    def serving_with_the_new_token() -> bool:
        pids = standin_processes(agent.proc.pid)
        return len(pids) == 1 and environ(pids[0]).get("BORDER0_TOKEN") == second

    wait_for(serving_with_the_new_token, timeout=30, message="the connector restarted")


@pytest.mark.parametrize("destination", [
    {"agent": False},
    {"agent": True, "file": "edge.token"},
    {"kubernetesSecret": {"name": "Edge_Token"}},
    {"kubernetesSecret": {"name": "edge-token", "namespace": "Not A Namespace"}},
    {"kubernetesSecret": {"key": "token"}},
])
def test_a_bad_destination_is_refused_with_file_and_line(tmp_path, destination):
    result = load([manifests(tmp_path / "m", destination)])
    assert not result.ok
    [error] = [d for d in result.diagnostics if d.severity.value == "error"]
    assert error.file and error.file.endswith("edge.yaml") and error.line, str(error)
    assert "destination" in str(error), str(error)


def test_two_tokens_with_one_destination_are_refused_before_anything_is_made(
        tmp_path, emulator):
    """A copy-pasted Connector whose token names the same file, or the same key of the same
    Secret, as another's: each new token would overwrite the other's value, which exists only
    at creation, and the next plan would see a value there and say nothing. validate names
    both, at the second one's line; apply makes nothing."""
    folder = tmp_path / "m"
    folder.mkdir()
    secret = {"kubernetesSecret": {"name": "border0-tokens", "namespace": "agents"}}
    for name, destinations in (("edge", [{"file": "shared.token"}, secret]),
                               ("edge-b", [{"file": "./shared.token"}, secret])):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({**HEAD, "kind": "Connector",
            "metadata": {"name": name}, "spec": {"tokens": [
                {"name": f"{name}-{i}", "destination": d}
                for i, d in enumerate(destinations)]}}, sort_keys=False))
    code, out, err = cli(["validate", str(folder)])
    assert code == 1, (out, err)
    second = folder / "edge.yaml"  # read after edge-b.yaml
    assert [line for line in (out + err).splitlines() if "also the destination" in line] == [
        (f"{second}:9:7: error: spec.tokens[0].destination: {folder / 'shared.token'} is also "
        "the destination of connector 'edge-b' token 'edge-b-0'; each token needs its own (a "
        "token's value exists only at creation)"),
        (f"{second}:12:7: error: spec.tokens[1].destination: Kubernetes Secret "
        "agents/border0-tokens (key token) is also the destination of connector 'edge-b' token "
        "'edge-b-1'; each token needs its own (a token's value exists only at creation)")]
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 1 and emulator.client().list_all_connectors() == []
    assert not (folder / "shared.token").exists()


def test_a_malformed_token_record_is_read_as_none(tmp_path, emulator):
    """The record beside a token file holding JSON of another shape (`{"tokens": 5}`, edited by
    hand or half-restored): read as no record, as an unreadable one is, not an internal error
    on every plan and apply."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "edge.yaml").write_text(yaml.safe_dump({**HEAD, "kind": "Connector", "metadata": {
        "name": "edge"}, "spec": {"tokens": [{"name": "edge-1", "expiresIn": "30d",
                                              "destination": {"file": "edge.token"}}]}}))
    assert run(["apply", str(folder), "--auto-approve"], emulator)[0] == 0
    for malformed in ({"tokens": 5}, {"tokens": "edge-1"}, [1, 2], {"tokens": [5, None]}):
        (folder / "edge.token.token-id").write_text(json.dumps(malformed))
        code, out, err = run(["plan", str(folder)], emulator)
        assert code == 0 and "No changes." in out, (malformed, out, err)
        assert run(["apply", str(folder), "--auto-approve"], emulator)[0] == 0
