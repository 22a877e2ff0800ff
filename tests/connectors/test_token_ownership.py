"""Which connector tokens a reconcile reads and revokes: the connector's ownership marker names
the tokens this reconciler manages (`tokens=`, ownership.py). A token no longer declared is
revoked; one made by anyone else never is (issue 23); a connector that declares and manages
none costs no token listing (issue 26: apply at the request floor). The twin over HTTP."""

from __future__ import annotations

from pathlib import Path

import yaml

from reconciler.reconcile import ReconcileOptions, reconcile

HEAD = {"apiVersion": "border0-reconciler/v1"}


def write(folder: Path, tokens: dict[str, list[str]]) -> Path:
    """One Connector per entry of `tokens`, declaring those token names (files under folder)."""
    docs = [
        {**HEAD, "kind": "Connector", "metadata": {"name": name}, "spec": {"tokens": [
            {"name": t, "expiresIn": "30d",
             "destination": {"file": str(folder.parent / "tokens" / f"{name}-{t}")}}
            for t in names]}}
        for name, names in tokens.items()
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "connectors.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def applied(folder: Path, client) -> object:
    result = reconcile([folder], client, ReconcileOptions(delete_grace=0))
    assert result.ok, (result.error, [str(d) for d in result.diagnostics])
    return result


def token_names(client, connector: str) -> list[str]:
    connector_id = client.find_connector(connector)["connector_id"]
    return sorted(t["name"] for t in client.list_connector_tokens(connector_id))


def test_only_tokens_we_made_are_revoked_and_a_connector_without_any_is_not_listed(
        tmp_path, emulator):
    client = emulator.client()
    folder = write(tmp_path / "m", {"edge": ["edge-1", "edge-2"], "bare": []})
    applied(folder, client)
    edge = client.find_connector("edge")
    assert edge["description"].endswith("tokens=edge-1,edge-2]")
    assert token_names(client, "edge") == ["edge-1", "edge-2"]
    client.create_connector_token({"connector_id": edge["connector_id"], "name": "by-hand"})
    bare = client.find_connector("bare")
    client.create_connector_token({"connector_id": bare["connector_id"], "name": "theirs"})

    write(folder, {"edge": ["edge-1"], "bare": []})
    result = applied(folder, client)
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
