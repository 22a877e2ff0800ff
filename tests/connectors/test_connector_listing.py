"""Connectors where a person looks: `ls --connectors`, `show CONNECTOR`, the connectors of
`show SOCKET`, and the plan's access review when a socket loses its last connector. Against
the twin over HTTP, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from helpers import cli

from reconciler.reconcile import ReconcileOptions, reconcile

HEAD = {"apiVersion": "border0-reconciler/v1"}


def http_upstream(port: int) -> dict:
    return {"serviceType": "http", "httpServiceConfiguration": {
        "httpServiceType": "standard", "standardHttpServiceConfiguration": {
            "hostname": "127.0.0.1", "port": port, "scheme": "http",
            "hostHeader": "127.0.0.1"}}}


def manifests(folder: Path, bound: tuple[str, ...] = ("web", "cache")) -> Path:
    docs = [
        {**HEAD, "kind": "Connector", "metadata": {"name": "edge"}, "spec": {
            "description": "the edge hosts", "tokens": [{
                "name": "edge-1", "expiresIn": "30d",
                "destination": {"file": str(folder.parent / "tokens" / "edge.token")}}]}},
        {**HEAD, "kind": "Policy", "metadata": {"name": "web-users"}, "spec": {"policyData": {
            "version": "v1", "action": ["http"], "condition": {"who": {"email": ["ann@x.io"]}}}}},
    ]
    for name, port in (("web", 8080), ("cache", 8081)):
        docs.append({**HEAD, "kind": "Socket", "metadata": {"name": name}, "spec": {
            "type": "http", "connectors": ["edge"] if name in bound else [],
            "policies": ["web-users"] if name == "web" else [],
            "upstream": http_upstream(port)}})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def run(args: list[str], emulator) -> tuple[int, str, str]:
    return cli([*args, "--api", emulator.url], env={"BORDER0_ADMIN_TOKEN": emulator.token})


def test_ls_and_show_name_the_sockets_each_connector_serves_and_its_tokens(tmp_path, emulator):
    folder = manifests(tmp_path / "m")
    result = reconcile([folder], emulator.client(), ReconcileOptions())
    assert result.ok, result.error
    token = (tmp_path / "tokens" / "edge.token").read_text().strip()

    code, out, err = run(["ls", "--connectors", "-o", "json"], emulator)
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["name"], row["sockets"], row["managed"]) == ("edge", ["cache", "web"], "this")
    [listed] = row["tokens"]
    assert listed["name"] == "edge-1" and listed["expires_at"]
    code, out, err = run(["ls", "--connectors"], emulator)
    assert code == 0 and "cache, web" in out and "edge-1" in out, (out, err)
    assert token not in out

    code, out, err = run(["show", "edge"], emulator)
    assert code == 0, err
    assert out.startswith("connector edge")
    assert "SOCKETS      cache, web" in out and "edge-1 (expires " in out
    assert token not in out
    code, out, err = run(["show", "web"], emulator)
    assert code == 0 and "CONNECTORS   edge" in out, (out, err)
    code, out, err = run(["show", "nothing-here"], emulator)
    assert code != 0 and "no socket or connector named 'nothing-here'" in out + err
    assert "Traceback" not in out + err


def test_a_socket_losing_its_last_connector_is_named_in_the_access_review(tmp_path, emulator):
    folder = manifests(tmp_path / "m")
    assert reconcile([folder], emulator.client(), ReconcileOptions()).ok
    manifests(folder, bound=("cache",))  # web: spec.connectors: []

    code, out, err = run(["plan", str(folder), "-o", "json"], emulator)
    assert code == 0, err
    plan = json.loads(out)
    [loss] = plan["access_changes"]
    assert (loss["socket"], loss["change"], loss["principal"]) == ("web", "loss", "ann@x.io")
    assert "no connector serves it" in json.dumps(loss)
    assert any(w["message"].startswith("socket web: no connector serves it after this plan "
                                       "(it had edge)") for w in plan["warnings"]), plan["warnings"]

    code, out, err = run(["plan", str(folder)], emulator)
    assert code == 0 and "ann@x.io" in out and "no connector serves it" in out, (out, err)

    # one of two connectors dropped is no loss: the socket is still served
    manifests(folder, bound=("web", "cache"))
    code, out, err = run(["plan", str(folder), "-o", "json"], emulator)
    assert code == 0 and json.loads(out)["access_changes"] == [], out
