"""The daemon's debounce and delete grace on an injected clock (reconciler/clock.py): a 10-minute
grace is checked at its edges without a moment of waiting."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from reconciler.clock import ManualClock
from reconciler.daemon.settle import Settling


def result(**fields: Any) -> Any:
    """A reconcile's result, with only the fields Settling reads (reconcile.ReconcileResult)."""
    return SimpleNamespace(**{"unstable": [], "snapshot": None, "changed_at": 0.0,
                              "deferred_until": None, **fields})


def test_manifests_changing_while_read_are_read_again_after_the_debounce() -> None:
    clock = ManualClock()
    settling = Settling(debounce=0.5, clock=clock)
    assert settling.after(result(unstable=["web.yaml"])) is True  # nothing to publish
    assert settling.wait_for() == 0.5
    clock.advance(0.49)
    assert settling.take_due() is None
    clock.advance(0.02)
    assert settling.take_due() == "manifests changed while being read"
    assert settling.take_due() is None and settling.wait_for() is None  # once


def test_deferred_deletions_run_again_when_the_grace_is_over() -> None:
    clock = ManualClock()
    settling = Settling(debounce=0.5, clock=clock)
    grace_end = clock.time() + 600  # --delete-grace 10m, on the wall clock as reconcile sets it
    assert settling.after(result(deferred_until=grace_end, snapshot="s", changed_at=1.0)) is False
    assert settling.snapshot == "s" and settling.changed_at == 1.0
    assert 600 <= settling.wait_for() <= 600.1
    clock.advance(600)
    assert settling.take_due() is None  # the grace ends now; the run is just after it
    clock.advance(0.06)
    assert settling.take_due() == "deferred deletions"
