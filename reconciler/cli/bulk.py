"""The cyclic garbage collector kept out of the way of the bulk data `plan` and `apply` build.
(The manifests load while border0 is listed: `reconcile.observe`.)"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["bulk_gc"]


@contextmanager
def bulk_gc() -> Iterator[None]:
    """Fewer cyclic garbage collections while a command builds its large, acyclic data (parsed
    manifests, thousands of API objects): each young-generation pass that spills over walks the
    objects built so far. What is already imported is frozen out of the collector's way and
    a pass runs every 20,000 allocations instead of 700. Measured on a plan of 10,000 sockets
    (2.3-2.7 s of CPU): 0.2-0.4 s of CPU less; switching the collector off entirely saved no
    more and cost 20-40 MB more peak memory."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
