"""A replace carries over the attachments it has no reason to remove: those an update would
have left in place (of a suspended object, made in the portal to a socket we do not manage, all
of them when policies are not managed), planned as attaches and written by apply's attach
groups, with the access review showing no loss. Against the twin over HTTP."""

from __future__ import annotations

from pathlib import Path

from documents import opts, policy_doc, socket_doc, write

from reconciler.reconcile import reconcile

ALLOW = {"border0-reconciler/allow-replace": "true"}
SUSPEND = {"border0-reconciler/suspend": "true"}


def _attached(client, socket: str) -> list[str]:
    return sorted(p["name"] for p in client.get_socket(socket)["policies"])


def _policy_requests(served: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The requests to /policy or /policies (none without policy management)."""
    return [(m, p) for m, p in served if p.split("/api/v1", 1)[-1].startswith("/polic")]


def _planned(result) -> list[tuple[str, str, str]]:
    return [(c.action.value, c.name, c.reason) for c in result.plan.changes]


def _attaches(result) -> dict[str, str]:
    return {c.name: c.reason for c in result.plan.changes if c.action.value == "attach"}


def test_policy_replace_keeps_the_attachment_of_a_suspended_socket(emulator, tmp_path: Path):
    client = emulator.client()
    pol = policy_doc("ops", annotations=ALLOW)
    pol["spec"]["orgWide"] = True
    docs = [pol, socket_doc("web", policies=["ops"]), socket_doc("box", "ssh", policies=["ops"])]
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok
    assert _attached(client, "box") == ["ops"]

    docs[2] = socket_doc("box", "ssh", policies=["ops"], annotations=SUSPEND)
    pol["spec"]["orgWide"] = False
    write(folder, docs)
    planned = reconcile([folder], client, opts(dry_run=True))
    attaches = _attaches(planned)
    assert "kept across the replace of policy ops" in attaches["box/ops"], _planned(planned)
    assert "web/ops" in attaches
    assert [a for a in planned.plan.access_changes if a.socket == "box"] == []

    assert reconcile([folder], client, opts()).ok
    assert _attached(client, "box") == ["ops"]
    assert _attached(client, "web") == ["ops"]
    assert reconcile([folder], client, opts(dry_run=True)).plan.changes == []


def test_policy_replace_keeps_an_attachment_made_in_the_portal(emulator, tmp_path: Path):
    client = emulator.client()
    pol = policy_doc("ops", annotations=ALLOW)
    pol["spec"]["orgWide"] = True
    folder = write(tmp_path / "m", [pol, socket_doc("web", policies=["ops"])])
    assert reconcile([folder], client, opts()).ok
    # a socket this reconciler does not manage, attached to ops in the portal
    other = client.create_socket({"name": "legacy", "socket_type": "ssh"})
    client.update_socket_policies(other["socket_id"], add=[client.find_policy("ops")["id"]])

    pol["spec"]["orgWide"] = False
    write(folder, [pol, socket_doc("web", policies=["ops"])])
    planned = reconcile([folder], client, opts(dry_run=True))
    assert "kept across the replace of policy ops" in _attaches(planned)["legacy/ops"]
    assert [a for a in planned.plan.access_changes if a.socket == "legacy"] == []

    assert reconcile([folder], client, opts()).ok
    assert _attached(client, "legacy") == ["ops"]
    assert reconcile([folder], client, opts(dry_run=True)).plan.changes == []


def test_socket_replace_keeps_its_attachment_to_a_suspended_policy(emulator, tmp_path: Path):
    client = emulator.client()
    docs = [policy_doc("ops"), policy_doc("legacy"),
            socket_doc("web", policies=["ops", "legacy"], annotations=ALLOW)]
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok

    docs[1] = policy_doc("legacy", annotations=SUSPEND)
    docs[2]["spec"]["type"] = "ssh"
    write(folder, docs)
    planned = reconcile([folder], client, opts(dry_run=True))
    attaches = _attaches(planned)
    assert "kept across the replace of socket web" in attaches["web/legacy"], _planned(planned)
    assert attaches["web/ops"] == "named in the manifest"
    # http lost and ssh gained by the type change, through both policies: legacy counts after
    gained = [a for a in planned.plan.access_changes if a.change == "gain"]
    assert [(a.action, [p for p, _ in a.policies]) for a in gained] == [
        ("ssh", ["legacy", "ops"])]

    assert reconcile([folder], client, opts()).ok
    assert _attached(client, "web") == ["legacy", "ops"]
    assert reconcile([folder], client, opts(dry_run=True)).plan.changes == []


def test_socket_replace_without_policy_management_keeps_portal_attachments(
    emulator, tmp_path: Path
):
    client = emulator.client()
    folder = write(tmp_path / "m", [socket_doc("web", annotations=ALLOW)])
    assert reconcile([folder], client, opts(manage_policies=False)).ok
    # policies managed in the portal: two attached to web there
    made = [client.create_policy({
        "name": name, "version": "v1", "description": "",
        "policy_data": {"version": "v1", "action": ["tls", "http"],
                        "condition": {"who": {"email": ["a@example.com"]}}}})
        for name in ("portal-ops", "portal-dev")]
    client.update_socket_policies(client.get_socket("web")["socket_id"],
                                  add=[p["id"] for p in made])

    write(folder, [socket_doc("web", "tls", annotations=ALLOW)])
    planned = reconcile([folder], client, opts(manage_policies=False, dry_run=True))
    attaches = _attaches(planned)
    assert set(attaches) == {"web/portal-ops", "web/portal-dev"}, _planned(planned)
    assert all("kept across the replace of socket web" in r for r in attaches.values())

    served = emulator.requests()  # recorded from here on
    assert reconcile([folder], client, opts(manage_policies=False)).ok
    assert _attached(client, "web") == ["portal-dev", "portal-ops"]
    # still no request to /policy or /policies: attached from the socket's side
    assert _policy_requests(served) == []
    assert reconcile([folder], client, opts(manage_policies=False,
                                            dry_run=True)).plan.changes == []


def test_no_policies_socket_replaces_attach_from_the_sockets_side(emulator, tmp_path: Path):
    """Three sockets replaced, each attached in the portal to one shared policy: from the
    policy's side would be one call, but /policy is never written without policy management."""
    client = emulator.client()
    names = ("a", "b", "c")
    folder = write(tmp_path / "m", [socket_doc(n, annotations=ALLOW) for n in names])
    assert reconcile([folder], client, opts(manage_policies=False)).ok
    pol = client.create_policy({
        "name": "portal-ops", "version": "v1", "description": "",
        "policy_data": {"version": "v1", "action": ["tls"],
                        "condition": {"who": {"email": ["a@example.com"]}}}})
    client.update_policy_sockets(pol["id"], add=[client.get_socket(n)["socket_id"]
                                                 for n in names])
    write(folder, [socket_doc(n, "tls", annotations=ALLOW) for n in names])
    served = emulator.requests()  # recorded from here on
    assert reconcile([folder], client, opts(manage_policies=False)).ok
    assert all(_attached(client, n) == ["portal-ops"] for n in names)
    assert _policy_requests(served) == []


def test_a_replace_says_which_attachments_it_does_not_make_again(emulator, tmp_path: Path):
    """What a replace loses because the manifest no longer names it (an update would detach it
    too) is in its reason, and in the access review."""
    client = emulator.client()
    docs = [policy_doc("ops"), policy_doc("extra"),
            socket_doc("web", policies=["ops", "extra"], annotations=ALLOW)]
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok

    docs[2] = socket_doc("web", "ssh", policies=["ops"], annotations=ALLOW)
    write(folder, docs)
    planned = reconcile([folder], client, opts(dry_run=True))
    replace = next(c for c in planned.plan.changes if c.action.value == "replace")
    assert "not attached again: policy extra (not named in the manifest)" in replace.reason
    assert set(_attaches(planned)) == {"web/ops"}
    assert reconcile([folder], client, opts()).ok
    assert _attached(client, "web") == ["ops"]
