"""An edit among many: the daemon plans the edited file's sockets against its last listing,
reading only those sockets again (one GET each); everything else lists the organization."""

from __future__ import annotations

import logging
import re
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
