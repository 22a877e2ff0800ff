"""Which connector tokens a reconcile reads and revokes: the connector's ownership marker names
the tokens this reconciler manages (`tokens=`, ownership.py). A token no longer declared is
revoked; one made by anyone else never is (issue 23); a connector that declares and manages
none costs no token listing (issue 26: apply at the request floor). The marker drops a token
only once its revocation succeeded, so a failed one is retried; a marker v0.2 wrote (no
`tokens=`) has v0.2's rule applied once. The twin over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from helpers import fail_every, reconciled

from reconciler.plan.connectors import V02_RULE
from reconciler.reconcile import ReconcileOptions, reconcile
from reconciler.render import render

HEAD = {"apiVersion": "border0-reconciler/v1"}


def write(folder: Path, tokens: dict[str, list[str]], description: str = "") -> Path:
    """One Connector per entry of `tokens`, declaring those token names (files under folder)."""
    docs = [
        {**HEAD, "kind": "Connector", "metadata": {"name": name}, "spec": {
            **({"description": description} if description else {}), "tokens": [
                {"name": t, "expiresIn": "30d",
                 "destination": {"file": str(folder.parent / "tokens" / f"{name}-{t}")}}
                for t in names]}}
        for name, names in tokens.items()
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "connectors.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder



def token_names(client, connector: str) -> list[str]:
    connector_id = client.find_connector(connector)["connector_id"]
    return sorted(t["name"] for t in client.list_connector_tokens(connector_id))


def test_only_tokens_we_made_are_revoked_and_a_connector_without_any_is_not_listed(
        tmp_path, emulator):
    client = emulator.client()
    folder = write(tmp_path / "m", {"edge": ["edge-1", "edge-2"], "bare": []})
    reconciled(folder, client)
    edge = client.find_connector("edge")
    assert edge["description"].endswith("tokens=edge-1,edge-2]")
    assert token_names(client, "edge") == ["edge-1", "edge-2"]
    client.create_connector_token({"connector_id": edge["connector_id"], "name": "by-hand"})
    bare = client.find_connector("bare")
    client.create_connector_token({"connector_id": bare["connector_id"], "name": "theirs"})

    write(folder, {"edge": ["edge-1"], "bare": []})
    result = reconciled(folder, client)
    assert sorted((c.kind.value, c.name, c.action.value) for c in result.plan.changes) == [
        ("connector", "edge", "update"), ("token", "edge/edge-2", "delete")]
    assert token_names(client, "edge") == ["by-hand", "edge-1"]
    assert token_names(client, "bare") == ["theirs"]
    assert client.find_connector("edge")["description"].endswith("tokens=edge-1]")

    asked: list[str] = []
    client.on_request = lambda op, code, seconds: asked.append(op)
    again = reconcile([folder], client, ReconcileOptions(dry_run=True))
    assert again.ok and not again.plan.has_changes, again.plan.to_json()["changes"]
    listed = [op for op in asked if op.endswith("/tokens")]
    assert listed == [f"GET /connector/{edge['connector_id']}/tokens"]  # never bare's


def test_a_failed_revocation_keeps_the_token_named_and_the_next_apply_revokes_it(
        tmp_path, emulator):
    client = emulator.client(max_retries_5xx=0)
    folder = write(tmp_path / "m", {"edge": ["edge-1", "edge-2"]})
    reconciled(folder, client)
    write(folder, {"edge": ["edge-1"]})
    faults = emulator.app.faults
    fail_every(faults, {"DELETE"}, "500")

    failed = reconcile([folder], client, ReconcileOptions(delete_grace=0))
    assert not failed.ok and failed.applied is not None
    assert sorted((r.change.kind.value, r.change.name) for r in failed.applied.failed) == [
        ("connector", "edge"), ("token", "edge/edge-2")]
    assert token_names(client, "edge") == ["edge-1", "edge-2"]  # alive, and still named:
    assert client.find_connector("edge")["description"].endswith("tokens=edge-1,edge-2]")

    # an update that changes more than the marker is written at once, still naming edge-2
    write(folder, {"edge": ["edge-1"]}, description="Edge hosts")
    failed = reconcile([folder], client, ReconcileOptions(delete_grace=0))
    assert not failed.ok and token_names(client, "edge") == ["edge-1", "edge-2"]
    assert client.find_connector("edge")["description"] == (
        "Edge hosts [managed-by=border0-reconciler instance=default tokens=edge-1,edge-2]")

    faults.fail_rate = 0.0  # border0 well again: the rerun plans the revocation again
    asked: list[str] = []
    client.on_request = lambda op, code, seconds: asked.append(op)
    again = reconciled(folder, client)
    client.on_request = None
    edge_id = client.find_connector("edge")["connector_id"]
    revoke = f"DELETE /connector/{edge_id}/token/"
    writes = [revoke if op.startswith(revoke) else op for op in asked if not op.startswith("GET")]
    assert writes == [revoke, "PUT /connector"]  # the marker only after the revocation
    assert sorted((c.kind.value, c.name, c.action.value) for c in again.plan.changes) == [
        ("connector", "edge", "update"), ("token", "edge/edge-2", "delete")]
    assert token_names(client, "edge") == ["edge-1"]
    assert client.find_connector("edge")["description"].endswith("tokens=edge-1]")
    after = reconcile([folder], client, ReconcileOptions(dry_run=True))
    assert after.ok and not after.plan.has_changes, after.plan.to_json()["changes"]


V02_MARKER = "[managed-by=border0-reconciler instance=default]"  # v0.2's: no tokens=


def test_a_v02_marker_has_v02s_rule_applied_once_then_only_named_tokens_are_revoked(
        tmp_path, emulator):
    client = emulator.client()
    ids = {}
    in_30_days = int((datetime.now(UTC) + timedelta(days=30)).timestamp())  # as border0's CLI
    for name, tokens in {"edge": ["edge-1", "edge-old"], "bare": ["bare-old"]}.items():
        ids[name] = client.create_connector({"name": name, "description": V02_MARKER,
                                             "built_in_ssh_service_enabled": False})[
            "connector_id"]
        for token in tokens:
            client.create_connector_token({"connector_id": ids[name], "name": token,
                                           "expires_at": in_30_days})
    folder = write(tmp_path / "m", {"edge": ["edge-1"], "bare": []})
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "edge-edge-1").write_text("v0.2 wrote it\n")  # kept: no replace

    asked: list[str] = []
    client.on_request = lambda op, code, seconds: asked.append(op)
    upgraded = reconciled(folder, client)
    client.on_request = None
    # the v0.2 marker stands until the revocations are done: one PUT per connector, no second
    writes = [op.split("/token/")[0] for op in asked if not op.startswith("GET")]
    assert sorted(writes) == sorted([f"DELETE /connector/{ids['edge']}", "PUT /connector",
                                     f"DELETE /connector/{ids['bare']}", "PUT /connector"])
    revoked = {c.name: c.reason for c in upgraded.plan.changes if c.kind.value == "token"}
    assert revoked == {"edge/edge-old": V02_RULE, "bare/bare-old": V02_RULE}
    text = render(upgraded.plan.to_json())
    assert "- token edge-old" in text and "v0.2's rule applies this once" in text, text
    assert token_names(client, "edge") == ["edge-1"] and token_names(client, "bare") == []
    assert client.find_connector("edge")["description"].endswith("tokens=edge-1]")
    assert client.find_connector("bare")["description"].endswith("tokens=]")

    for name in ("edge", "bare"):  # made by someone else under the new marker: never revoked
        client.create_connector_token({"connector_id": ids[name], "name": f"{name}-by-hand"})
    asked.clear()
    client.on_request = lambda op, code, seconds: asked.append(op)
    again = reconciled(folder, client)
    client.on_request = None
    assert not again.plan.has_changes, again.plan.to_json()["changes"]
    # bare's new marker names no token and it declares none: its tokens are not even listed
    assert [op for op in asked if op.endswith("/tokens")] == [
        f"GET /connector/{ids['edge']}/tokens"]
    assert token_names(client, "edge") == ["edge-1", "edge-by-hand"]
    assert token_names(client, "bare") == ["bare-by-hand"]
