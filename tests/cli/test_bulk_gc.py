"""`bulk_gc`: no cyclic collection while validate, plan and apply build their data (each pass
would walk everything built so far and free none of it), the collector as it was after."""

from __future__ import annotations

import gc

from reconciler.cli.bulk import bulk_gc


def test_no_collection_runs_inside_and_the_collector_is_as_it_was_after() -> None:
    runs: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            runs.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with bulk_gc():
            assert not gc.isenabled()
            runs.clear()  # one may have run before the block
            kept = [[i] for i in range(100_000)]  # 140 default thresholds' worth of objects
            inside = list(runs)
        assert inside == [] and len(kept) == 100_000
        assert gc.isenabled()
        assert gc.get_freeze_count() >= 100_000  # what the command built: out of the way

        gc.disable()  # a caller that had it off: still off after
        with bulk_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
        gc.callbacks.remove(count)
