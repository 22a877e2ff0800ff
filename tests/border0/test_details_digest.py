"""Issue 26: an unchanged socket in the typed form costs no request of its own. border0 answers
neither a socket's connector links nor its typed upstream in a listing, so the reconciler tags
each socket it writes with a digest of both (`border0-reconciler/details`) and reads the two
sub-resources only for a socket whose tag does not match its manifest. Real parts: the emulator
over HTTP, `reconcile` as the CLI runs it, the requests recorded from the real client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from documents import opts, socket_doc, write
from helpers import edit_by_hand

from reconciler.reconcile import reconcile

HEAD = {"apiVersion": "border0-reconciler/v1"}
DETAILS_TAG = "border0-reconciler/details"
SUB_RESOURCES = ("/connectors", "/upstream_configurations")


def typed_docs(port: int, connectors: tuple[str, ...] = ("edge",)) -> list[dict]:
    upstream = {"serviceType": "http", "httpServiceConfiguration": {
        "httpServiceType": "standard", "standardHttpServiceConfiguration": {
            "hostname": "web.internal", "port": port, "scheme": "http",
            "hostHeader": "web.internal"}}}
    edges = [{**HEAD, "kind": "Connector", "metadata": {"name": name},
              "spec": {"description": f"the {name} hosts"}} for name in ("edge", "edge-b")]
    return [*edges, socket_doc("web", description="the web site", upstream=upstream,
                               connectors=list(connectors))]


def socket_reads(client: Any) -> list[str]:
    """Paths of the sub-resource GETs the client sends from now on."""
    seen: list[str] = []

    def hook(request: Any) -> None:
        if request.method == "GET" and request.url.path.endswith(SUB_RESOURCES) and (
                "/socket/" in request.url.path):
            seen.append(request.url.path)

    client._http.event_hooks["request"].append(hook)
    return seen


def plan(folder: Path, client: Any) -> list[dict]:
    result = reconcile([folder], client, opts(dry_run=True))
    assert result.ok and result.plan is not None, result.error
    return result.plan.to_json()["changes"]


def test_an_unchanged_typed_socket_is_planned_without_reading_its_sub_resources(
    emulator, tmp_path: Path
) -> None:
    client = emulator.client()
    folder = write(tmp_path / "m", typed_docs(8080))
    assert reconcile([folder], client, opts()).ok
    assert client.find_socket("web")["tags"][DETAILS_TAG].startswith("sha256:")
    reads = socket_reads(client)

    assert plan(folder, client) == []
    assert reads == []

    # a changed port or a changed link: the digest differs, both are read and the change shown
    for docs in (typed_docs(8081), typed_docs(8081, ("edge", "edge-b"))):
        write(folder, docs)
        changes = plan(folder, client)
        assert [(c["name"], c["action"]) for c in changes if c["kind"] == "socket"] == [
            ("web", "update")], changes
        assert sorted(p.rsplit("/", 1)[1] for p in reads) == [
            "connectors", "upstream_configurations"]
        assert reconcile([folder], client, opts()).ok
        reads.clear()
        assert plan(folder, client) == [] and reads == []


def test_a_socket_without_the_tag_is_read_and_its_drift_found(emulator, tmp_path: Path) -> None:
    """A socket written before the tag existed (or whose tag was removed) is compared field by
    field as before; a hand edit of its upstream is found and undone, and the write records
    the tag."""
    client = emulator.client()
    folder = write(tmp_path / "m", typed_docs(8080))
    assert reconcile([folder], client, opts()).ok
    live = client.find_socket("web")
    untagged = {k: v for k, v in live["tags"].items() if k != DETAILS_TAG}
    edit_by_hand(client, live, tags=untagged)
    reads = socket_reads(client)
    assert plan(folder, client) == []
    assert len(reads) == 2  # read, equal: nothing to write

    config = client.get_upstream_configuration(live["socket_id"])
    config["http_service_configuration"]["standard_http_service_configuration"]["port"] = 9999
    edit_by_hand(client, client.find_socket("web"), upstream_configuration=config)
    changes = plan(folder, client)
    assert "9999" in json.dumps(changes) and [c["action"] for c in changes] == ["update"]
    assert reconcile([folder], client, opts()).ok
    assert DETAILS_TAG in client.find_socket("web")["tags"]
    reads.clear()
    assert plan(folder, client) == [] and reads == []
