"""An edit among many: the daemon plans the edited file's sockets against its last listing,
reading only those sockets again (one GET each); everything else lists the organization."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import edit_by_hand

from reconciler.daemon.loop import Daemon, DaemonConfig

HEADER = "apiVersion: border0-reconciler/v1\n"


def sockets_yaml(*named: tuple[str, str]) -> str:
    return "---\n".join(
        f"{HEADER}kind: Socket\nmetadata:\n  name: {name}\nspec:\n  type: http\n"
        f"  description: {description}\n  policies: [team]\n"
        for name, description in named
    )


POLICY = (
    f"{HEADER}kind: Policy\nmetadata:\n  name: team\nspec:\n  policyData:\n    version: v1\n"
    "    action: [http]\n    condition:\n      who:\n        email: [a@example.com]\n"
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    root.mkdir()
    (root / "a.yaml").write_text(sockets_yaml(("a1", "one"), ("a2", "two")))
    (root / "b.yaml").write_text(sockets_yaml(("b1", "three")))
    (root / "policy.yaml").write_text(POLICY)
    return root


def sent_paths(caplog: pytest.LogCaptureFixture) -> list[str]:
    """`GET /sockets`, `GET /socket/b1`: what the client sent since the log was cleared."""
    found = (re.match(r"(\w+ \S+) -> ", r.getMessage()) for r in caplog.records)
    return [m[1] for m in found if m]


def daemon_for(tree: Path, client: Any, **config: Any) -> Daemon:
    return Daemon(DaemonConfig(path=str(tree), listen=None, interval=3600, **config), client)


def test_an_edit_reads_only_the_edited_files_sockets_and_applies_it(emulator, tree, caplog):
    client = emulator.client()
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).focused is None  # the first run lists everything
    caplog.set_level(logging.DEBUG, logger="reconciler.border0")
    caplog.clear()

    (tree / "b.yaml").write_text(sockets_yaml(("b1", "edited")))
    result = daemon.reconcile_now(["change: modified"])

    assert result.ok and result.focused == ("b1",)
    sent = sent_paths(caplog)
    assert "GET /sockets" not in sent  # no page of the listing
    assert sent.count("GET /socket/b1") == 2  # before planning, and after writing
    assert client.get_socket("b1")["description"] == "edited"
    assert {s["name"] for s in daemon.status()["sockets"]} == {"a1", "a2", "b1"}


def test_a_socket_removed_from_an_edited_file_is_deleted_and_the_others_stay(emulator, tree):
    client = emulator.client()
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "a.yaml").write_text(sockets_yaml(("a1", "one")))
    result = daemon.reconcile_now(["change: modified"])

    assert result.ok and result.focused == ("a2",)  # a1 is declared as it was: not read again
    assert client.find_socket("a2") is None
    assert client.find_socket("a1") is not None and client.find_socket("b1") is not None


def test_the_mass_delete_guard_counts_the_whole_desired_set(emulator, tree):
    client = emulator.client()
    daemon = daemon_for(tree, client, max_delete=1)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "a.yaml").write_text("# emptied\n")
    result = daemon.reconcile_now(["change: modified"])

    assert not result.ok and "refusing to delete 2 objects" in (result.error or "")
    assert client.find_socket("a1") is not None and client.find_socket("a2") is not None


def test_drift_elsewhere_waits_for_the_interval_which_lists_everything(emulator, tree):
    client = emulator.client()
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok
    edit_by_hand(client, client.get_socket("a1"), description="by hand")

    (tree / "b.yaml").write_text(sockets_yaml(("b1", "edited")))
    assert daemon.reconcile_now(["change: modified"]).focused == ("b1",)
    assert client.get_socket("a1")["description"] == "by hand"  # not read: a1's file is as it was

    result = daemon.reconcile_now(["interval"])
    assert result.ok and result.focused is None
    assert client.get_socket("a1")["description"] == "one"


def test_after_a_failed_reconcile_the_next_edit_lists_everything(emulator, tree):
    client = emulator.client()
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "b.yaml").write_text("kind: Socket\n")  # invalid: nothing is planned
    assert not daemon.reconcile_now(["change: modified"]).ok
    (tree / "b.yaml").write_text(sockets_yaml(("b1", "fixed")))
    result = daemon.reconcile_now(["change: modified"])

    assert result.ok and result.focused is None
    assert client.get_socket("b1")["description"] == "fixed"


def test_an_edited_policy_file_lists_everything(emulator, tree):
    client = emulator.client()
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "policy.yaml").write_text(POLICY.replace("a@example.com", "b@example.com"))
    result = daemon.reconcile_now(["change: modified"])

    assert result.ok and result.focused is None


def socket_yaml(name: str, description: str, policies: str = "[team]") -> str:
    return (f"{HEADER}kind: Socket\nmetadata:\n  name: {name}\nspec:\n  type: http\n"
            f"  description: {description}\n  policies: {policies}\n")


def big_tree(root: Path, files: int = 20, per_file: int = 3) -> Path:
    """`files` files of `per_file` sockets (f00s0, f00s1, ...) and the policy."""
    root.mkdir()
    for f in range(files):
        (root / f"f{f:02d}.yaml").write_text("---\n".join(
            socket_yaml(f"f{f:02d}s{i}", f"socket {f} {i}") for i in range(per_file)))
    (root / "policy.yaml").write_text(POLICY)
    return root


def test_an_edit_among_many_files_writes_only_the_socket_it_changed(emulator, tmp_path, caplog):
    client = emulator.client()
    tree = big_tree(tmp_path / "manifests")
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok
    caplog.set_level(logging.DEBUG, logger="reconciler.border0")
    caplog.clear()

    text = (tree / "f07.yaml").read_text()
    (tree / "f07.yaml").write_text(text.replace("socket 7 1", "edited"))
    result = daemon.reconcile_now(["change: modified"])

    assert result.ok and result.focused == ("f07s1",)  # its file's other sockets are as they were
    assert [c.name for c in result.plan.changes] == ["f07s1"]
    sent = sent_paths(caplog)
    assert [p for p in sent if not p.startswith("GET ")] == [
        f"PUT /socket/{client.get_socket('f07s1')['socket_id']}"]  # one write
    socket_id = client.get_socket("f07s1")["socket_id"]
    assert "GET /socket/f07s1" in sent  # read again before planning
    assert all("f07s1" in p or socket_id in p for p in sent)  # no other socket, no listing
    assert client.get_socket("f07s1")["description"] == "edited"
    rows = {row["name"]: row for row in daemon.status()["sockets"]}
    assert len(rows) == 60 and rows["f07s1"]["description"] == "edited"
    assert rows["f07s0"]["description"] == "socket 7 0"
    assert {row["state"] for row in rows.values()} == {"in-sync"}


def test_emptying_one_file_of_many_deletes_its_sockets_guarded_by_the_whole_desired_set(
        emulator, tmp_path):
    """The mass-delete guard counts what the daemon manages in all (2 deletes of 60 pass the
    default limit of half), not the edited file alone (2 of 2, and nothing left declared)."""
    client = emulator.client()
    tree = big_tree(tmp_path / "manifests", per_file=2)
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "f03.yaml").write_text("# moved elsewhere\n")
    result = daemon.reconcile_now(["change: modified"])

    assert result.ok and result.focused == ("f03s0", "f03s1")
    assert client.find_socket("f03s0") is None and client.find_socket("f03s1") is None
    assert client.find_socket("f04s0") is not None
    assert len(daemon.status()["sockets"]) == 38


def test_a_delete_in_an_edit_keeps_its_grace_window_and_the_next_edit_lists_everything(
        emulator, tree, caplog):
    client = emulator.client()
    daemon = daemon_for(tree, client, delete_grace=3600)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "a.yaml").write_text(sockets_yaml(("a1", "one")))
    result = daemon.reconcile_now(["change: modified"])
    assert result.ok and result.focused == ("a2",)
    assert [d.change.name for d in result.plan.deferred] == ["a2"]
    assert client.find_socket("a2") is not None  # waits for the manifests to settle

    caplog.set_level(logging.DEBUG, logger="reconciler.border0")
    caplog.clear()
    (tree / "b.yaml").write_text(sockets_yaml(("b1", "edited")))
    result = daemon.reconcile_now(["change: modified"])
    assert result.ok and result.focused is None and "GET /sockets" in sent_paths(caplog)
    assert [d.change.name for d in result.plan.deferred] == ["a2"]  # still shown, still waiting
    assert client.find_socket("a2") is not None
    assert client.get_socket("b1")["description"] == "edited"


def test_after_a_failed_write_the_next_edit_lists_everything(emulator, tree):
    client = emulator.client(max_retries_5xx=1)  # a failed write fails at once
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok

    emulator.app.faults.fail_methods = {"PUT"}
    emulator.app.faults.fail_rate = 1.0
    (tree / "b.yaml").write_text(sockets_yaml(("b1", "edited")))
    failed = daemon.reconcile_now(["change: modified"])
    assert not failed.ok and failed.focused == ("b1",)
    states = {row["name"]: row["state"] for row in daemon.status()["sockets"]}
    assert states == {"a1": "in-sync", "a2": "in-sync", "b1": "error"}

    emulator.app.faults.fail_rate = 0.0
    (tree / "a.yaml").write_text(sockets_yaml(("a1", "one"), ("a2", "edited")))
    result = daemon.reconcile_now(["change: modified"])
    assert result.ok and result.focused is None
    assert client.get_socket("b1")["description"] == "edited"  # the full plan finds it too
    assert client.get_socket("a2")["description"] == "edited"


def test_a_dry_run_daemon_plans_in_full_while_changes_wait(emulator, tree):
    """An edit plans only its own sockets; a plan that left changes unapplied (a dry run, a
    closed sync window) is followed by a full one, so the report still shows them."""
    client = emulator.client()
    assert daemon_for(tree, client).reconcile_now(["start"]).ok  # border0 as declared
    daemon = daemon_for(tree, client, dry_run=True)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "a.yaml").write_text(sockets_yaml(("a1", "new one"), ("a2", "two")))
    first = daemon.reconcile_now(["change: modified"])
    assert first.focused == ("a1",) and [c.name for c in first.plan.changes] == ["a1"]

    (tree / "b.yaml").write_text(sockets_yaml(("b1", "new three")))
    second = daemon.reconcile_now(["change: modified"])
    assert second.focused is None
    assert sorted(c.name for c in second.plan.changes) == ["a1", "b1"]
    assert client.get_socket("a1")["description"] == "one"


def test_policies_attached_and_detached_in_an_edit_are_as_a_full_listing_reads_them(
        emulator, tree):
    """An edit reads its sockets again but not the policies' list: their attachments are
    taken from the sockets' answers, and the interval's full listing agrees with them."""
    client = emulator.client()
    (tree / "ops.yaml").write_text(POLICY.replace("name: team", "name: ops"))
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "b.yaml").write_text(socket_yaml("b1", "three", "[team, ops]"))
    attached = daemon.reconcile_now(["change: modified"])
    assert attached.ok and attached.focused == ("b1",)
    assert set(attached.actual.sockets["b1"].policy_names) == {"team", "ops"}
    assert daemon.reconcile_now(["interval"]).plan.changes == []

    (tree / "a.yaml").write_text(sockets_yaml(("a1", "one"), ("a2", "two")).replace(
        "policies: [team]", "policies: [ops]", 1))
    moved = daemon.reconcile_now(["change: modified"])
    assert moved.ok and moved.focused == ("a1",)
    assert moved.actual.sockets["a1"].policy_names == ("ops",)
    team = moved.actual.policies["team"]
    assert moved.actual.sockets["a1"].socket_id not in team.socket_ids
    assert daemon.reconcile_now(["interval"]).plan.changes == []


def test_an_edited_connector_file_lists_everything(emulator, tree):
    client = emulator.client()
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "b.yaml").write_text(sockets_yaml(("b1", "three")) + "---\n" + HEADER
                                 + "kind: Connector\nmetadata:\n  name: edge\nspec:\n"
                                 "  description: an edge\n")
    result = daemon.reconcile_now(["change: modified"])
    assert result.ok, result.error
    assert result.focused is None


def test_an_edit_is_compared_with_the_manifests_as_loaded_not_with_the_commands_defaults(
        emulator, tree):
    """--allow-replace and --labels authoritative change every socket's spec as planned; the
    edit is still found by comparing the files' sockets as they were loaded."""
    client = emulator.client()
    daemon = daemon_for(tree, client, allow_replace=True, labels_authoritative=True)
    assert daemon.reconcile_now(["start"]).ok

    (tree / "b.yaml").write_text(sockets_yaml(("b1", "edited")))
    result = daemon.reconcile_now(["change: modified"])
    assert result.ok and result.focused == ("b1",)
    assert client.get_socket("b1")["description"] == "edited"


def _rewrite_keeping_size_and_mtime(path: Path, text: str) -> None:
    """`cp -p` or `rsync -a --inplace` from a staging copy: the same file (inode) rewritten in
    place, the same size, the source's modification time (here the file's own, put back)."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    with path.open("r+") as out:
        out.write(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _aged(tree: Path) -> None:
    """Every file and the folder an hour old (outside the parse cache's racy window)."""
    old = time.time_ns() - 3600 * 10**9
    for path in (tree, *tree.iterdir()):
        os.utime(path, ns=(old, old))


def test_a_rewrite_keeping_size_and_mtime_is_an_edit_with_its_grace(emulator, tree):
    """Only the change time tells such a rewrite: the load read the new text, but the daemon's
    snapshot (size, mtime, inode) said "no file changed", so the focused plan was empty (border0
    kept the old description while /status said in sync), and a socket removed so was deleted
    at the next interval, within the delete grace."""
    _aged(tree)
    client = emulator.client()
    daemon = daemon_for(tree, client, delete_grace=30)
    assert daemon.reconcile_now(["start"]).ok
    a = tree / "a.yaml"
    _rewrite_keeping_size_and_mtime(a, sockets_yaml(("a1", "ONE"), ("a2", "two")))
    assert daemon.reconcile_now([f"change: modified {a}"]).ok
    assert client.get_socket("a1")["description"] == "ONE"

    one = sockets_yaml(("a1", "ONE"))  # a2 removed, padded to the same size
    _rewrite_keeping_size_and_mtime(a, one + "#" * (a.stat().st_size - len(one) - 1) + "\n")
    result = daemon.reconcile_now([f"change: modified {a}"])
    assert result.plan is not None and [d.change.title for d in result.plan.deferred] == [
        "delete socket a2"]
    daemon.reconcile_now(["interval"])  # seconds later: well within the 30 s grace
    assert client.find_socket("a2") is not None


def test_an_edit_after_a_policy_was_deleted_by_hand_fails_then_the_retry_heals_it(
        emulator, tree):
    """The policy `team` deleted in the portal since the last full listing: an edit's plan,
    made against that listing, attaches to a policy that is gone and fails (nothing is
    reported in sync); the reconcile after a failure lists everything, makes the policy again
    and attaches every socket that names it."""
    client = emulator.client(max_retries_5xx=1)
    daemon = daemon_for(tree, client)
    assert daemon.reconcile_now(["start"]).ok
    gone = next(p for p in client.list_policies() if p["name"] == "team")
    client.delete_policy(gone["id"])

    (tree / "b.yaml").write_text(sockets_yaml(("b1", "edited")))
    failed = daemon.reconcile_now(["change: modified"])
    assert not failed.ok and failed.focused == ("b1",)
    assert failed.applied is not None
    b1 = failed.actual.sockets["b1"].socket_id
    expected = (f"failed: attach policy team to socket b1: PUT /socket/{b1}/policy: 404 policy "
                f"{gone['id']} not found")
    assert [r.message for r in failed.applied.failed] == [expected]
    assert {r["name"]: r["state"] for r in daemon.status()["sockets"]}["b1"] == "error"

    healed = daemon.reconcile_now(["retry"])
    assert healed.ok and healed.focused is None
    team = next(p for p in client.list_policies() if p["name"] == "team")
    assert team["id"] != gone["id"]
    for name in ("a1", "a2", "b1"):
        assert [p["name"] for p in client.get_socket(name)["policies"]] == ["team"]
    assert client.get_socket("b1")["description"] == "edited"
    assert daemon.reconcile_now(["interval"]).plan.changes == []
