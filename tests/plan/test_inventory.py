"""The inventory of managed ids (plan/inventory.py): a socket of ours that lost its tags plans as
a repair, one that was never ours stays a conflict; the file keeps ids across processes."""

from __future__ import annotations

import json
from pathlib import Path

from documents import ours
from test_access import live_socket, world

from reconciler.model import Actual, SocketSpec
from reconciler.plan.inventory import Inventory
from reconciler.plan.planner import make_plan


def test_a_socket_in_the_inventory_that_lost_its_tags_is_repaired_not_refused() -> None:
    desired, actual = world(SocketSpec("a", "ssh"), live_socket("a", tags={}))
    refused = make_plan(desired, actual)
    assert [d.code for d in refused.conflicts] == ["not-managed"]

    plan = make_plan(desired, actual, inventory=frozenset({"id-a"}))
    assert plan.conflicts == []
    (change,) = plan.changes
    assert (change.action.value, change.name) == ("update", "a")
    assert change.reason.startswith("ownership tags lost")
    assert change.diffs[0].path == "managed_by"


def test_another_instances_socket_is_never_taken_even_if_listed() -> None:
    desired, actual = world(SocketSpec("a", "ssh"), live_socket("a", tags=ours("other")))
    plan = make_plan(desired, actual, inventory=frozenset({"id-a"}))
    assert [d.code for d in plan.conflicts] == ["owned-by-other-instance"]


def test_the_inventory_keeps_owned_ids_and_lost_ones_until_they_are_gone(tmp_path: Path) -> None:
    path = tmp_path / "state" / "inventory.json"
    inventory = Inventory(path)
    inventory.record("default", Actual(sockets={"a": live_socket("a"), "b": live_socket("b"),
                                                "x": live_socket("x", tags=ours("other"))}))
    assert inventory.ids("default") == {"id-a", "id-b"}
    assert Inventory(path).ids("default") == {"id-a", "id-b"}  # another process reads it
    # a's tags are lost: still ours; b is deleted: forgotten
    inventory.record("default", Actual(sockets={"a": live_socket("a", tags={})}))
    assert Inventory(path).ids("default") == {"id-a"}
    assert json.loads(path.read_text()) == {"instances": {"default": ["id-a"]}}
    assert Inventory(tmp_path / "none.json").ids("default") == frozenset()
