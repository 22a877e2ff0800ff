"""A replace without its allowance under the daemon: the rest of the plan is applied; the object
is reported as blocked in /status, in the managed_objects gauge and by one notification."""

from __future__ import annotations

from pathlib import Path

import test_daemon
from documents import policy_doc, socket_doc, write
from test_daemon import make_daemon, metric
from test_notify import reporter_for

receiver = __import__("test_notify").receiver  # fixture, shared

PROTECTED = "  protected:\n    username: admin\n    password: {env: PROTECT_PW}\n"


def protected(yaml: str, allow: bool = False) -> str:
    head, rest = yaml.split("spec:\n", 1)
    if allow:
        head = head.replace("metadata:\n", "metadata:\n  annotations:\n"
                            "    border0-reconciler/allow-replace: \"true\"\n", 1)
    return head + "spec:\n" + PROTECTED + rest


def test_a_blocked_replace_is_reported_and_the_rest_is_applied(
    emulator, receiver, tmp_path: Path
) -> None:
    r = receiver()
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(test_daemon.socket_yaml("web", "one"))
    (manifests / "docs.yaml").write_text(test_daemon.socket_yaml("docs", "one"))
    client = emulator.client()
    daemon = make_daemon(manifests, client, env={"PROTECT_PW": "a-long-enough-password"})
    daemon.reporter = reporter_for(r.url)
    assert daemon.reconcile_now(["start"]).ok
    web_id = client.get_socket("web")["socket_id"]

    (manifests / "web.yaml").write_text(protected(test_daemon.socket_yaml("web", "one")))
    (manifests / "docs.yaml").write_text(test_daemon.socket_yaml("docs", "two"))
    result = daemon.reconcile_now(["change"])
    # a blocked object fails the reconcile (it counts, issue 23) though the rest was applied
    assert not result.ok and result.stage == "apply", result.error
    assert "1 object blocked, the rest applied" in result.error
    assert [(b.kind, b.name) for b in result.blocked] == [("socket", "web")]
    assert client.get_socket("docs")["description"] == "two"  # the rest was applied
    assert client.get_socket("web")["socket_id"] == web_id  # not replaced
    assert daemon.status()["blocked"] == [{"kind": "socket", "name": "web"}]
    assert {s["name"]: s["state"] for s in daemon.status()["sockets"]} == {
        "docs": "in-sync", "web": "blocked"}
    assert metric(daemon, "border0_reconciler_managed_objects", kind="socket",
                  state="blocked") == 1
    assert not daemon.reconcile_now(["interval"]).ok  # still blocked: not sent twice

    (manifests / "web.yaml").write_text(
        protected(test_daemon.socket_yaml("web", "one"), allow=True))
    assert daemon.reconcile_now(["allowed"]).ok
    assert client.get_socket("web")["socket_id"] != web_id
    assert daemon.status()["blocked"] == []
    daemon.reporter.stop()
    events = [b for b in r.bodies if b["event"] == "objects_blocked"]
    assert len(events) == 1, r.bodies
    assert "socket web needs a replace (new id and TCP port; sessions and recordings stay " \
        "with the old id; connections drop)" in events[0]["details"][0]


def test_a_policy_it_may_not_manage_is_set_aside_and_never_attached(
    emulator, tmp_path: Path
) -> None:
    """The manifests declare policy `ops` (one person) and attach it to `web`; border0 already
    holds someone else's `ops`, granting a whole domain. The daemon sets the policy aside, as
    the command line refuses it, and attaches it nowhere: it attached the foreign, broader
    policy to the managed socket, and its access review did not show the gain."""
    client = emulator.client()
    client.create_policy({"name": "ops", "description": "theirs", "org_wide": False,
                          "version": "v1", "policy_data": {
                              "version": "v1", "action": ["http"],
                              "condition": {"who": {"domain": ["example.com"]}}}})
    manifests = tmp_path / "m"
    write(manifests, [policy_doc("ops", "ops team"), socket_doc("web", policies=["ops"])])
    daemon = make_daemon(manifests, client)
    result = daemon.reconcile_now(["start"])
    assert not result.ok and "1 object blocked, the rest applied" in (result.error or "")
    assert [(b.kind, b.name) for b in result.blocked] == [("policy", "ops")]
    assert client.get_socket("web")["policies"] == []  # created, without the foreign policy
    assert client.find_policy("ops")["description"] == "theirs"  # left alone
    assert result.plan is not None and result.plan.access_changes == []
