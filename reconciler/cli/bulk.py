"""The bulk data `validate`, `plan` and `apply` build (parsed manifests, tens of thousands of
API objects): the cyclic garbage collector kept out of its way while it is built, and the
process left without freeing it object by object. (The manifests load while border0 is
listed: `reconcile.observe`.)"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["bulk_gc", "exit_now", "keep", "keep_until_exit"]

#: What the command built, held until the process ends (`keep_until_exit`); None: not held.
_kept: list[object] | None = None


@contextmanager
def bulk_gc() -> Iterator[None]:
    """No cyclic garbage collection while a command builds its large, acyclic data (parsed
    manifests, tens of thousands of API objects): each pass walks the objects built so far
    and frees none of them (reference counting frees what the command lets go). Measured by
    gc.callbacks on a no-op plan with the collector running every 20,000 allocations: 0.2 s
    of CPU at 10,000 sockets, 2.5-2.9 s at 100,000; off, the peak grows by 5 MB and 46 MB
    (the cycles left are small: a page's answer is freed on its own, `Border0Client._decode`).
    The collector is on again, as it was, when the command's work is done, with what exists
    then frozen out of its way: else the first allocation after would start a collection of
    everything the command built (1.2 s at 100,000 sockets, for nothing)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def keep_until_exit() -> None:
    """The program (`cli.main.program`, not a test calling `main`) leaves by `exit_now`: what
    a command passes to `keep` is held until then."""
    global _kept
    _kept = []


def keep(*objects: object) -> None:
    """Hold `objects` until the process ends, when it ends by `exit_now`: freeing a plan of
    10,000 sockets when the command returns costs 45 ms of CPU (about 0.5 s at 100,000),
    for memory the operating system takes back at once."""
    if _kept is not None:
        _kept.extend(objects)


def exit_now(code: object) -> None:
    """End the process with exit status `code` without freeing what the command built, the
    way mypy leaves (`mypy.util.hard_exit`): the exit functions run and the output is
    flushed, then `os._exit`. Returns, for the usual exit, when nothing was kept, when `code`
    is a message, when a thread other than the main one still runs, or when the output
    cannot be flushed (a closed pipe: Python reports it as it always does), and under a
    profiler, a tracer or a debugger (`python -m cProfile`, coverage), which write at exit."""
    if not _kept or not (code is None or isinstance(code, int)):
        return
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    if any(t is not threading.main_thread() and not t.daemon and t.is_alive()
           for t in threading.enumerate()):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    atexit._run_exitfuncs()
    os._exit(code or 0)
