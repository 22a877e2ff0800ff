"""Progress of long work (apply, import): done/total, failures and elapsed time.

On a terminal a bar (tqdm: it redraws with a carriage return and spaces only, so NO_COLOR
output holds no escape code at all) redrawn in place; anywhere else (CI logs, a pipe) a
count line each time another 10% is done or 5 s have passed, never one line per object. Failed
objects are always listed (a user must see what failed); succeeded ones only with `verbose`
(`-v`). Messages for the user meanwhile (`note`: a retry, a warning) appear above the bar.
The caller prints its final summary to `stream` too, so progress and outcome stay together.

Use as a context manager; `step` is thread-safe:

    with Progress(len(items), label="Importing", stream=sys.stderr, verbose=v) as progress:
        for item in items:
            progress.step(ok, f"imported socket {item}")
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Self

import click

from reconciler.cli.terminal import color_enabled

__all__ = ["Progress"]

#: A count line on a non-terminal at least this often while objects finish.
COUNT_EVERY_S = 5.0


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _size(stream: IO[str]) -> tuple[int, int]:
    """The terminal's columns and rows, 0 when it does not say (a new pseudo-terminal is 0 x 0)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return 0, 0
    return size.columns, size.lines


class Progress:
    """done/total, failures and elapsed time for `total` objects, shown on `stream`."""

    def __init__(
        self,
        total: int,
        *,
        label: str = "Applying",
        stream: IO[str] | None = None,
        verbose: bool = False,
        no_color: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(0, total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.verbose = verbose
        self.color = color_enabled(self.stream, no_color)
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.failed = 0
        self._clock = clock
        self._started = clock()
        self._last_line_at = self._started
        self._next_tenth = 1
        self._lock = threading.RLock()
        self._bar: Any = None
        if self.terminal and self.total:
            from tqdm import tqdm

            width, rows = _size(self.stream)
            self._bar = tqdm(  # a terminal that does not tell its size (0 x 0): assume 80 x 24
                total=self.total, file=self.stream, desc=label, dynamic_ncols=width > 0,
                ncols=width or 80, nrows=rows or 24,
                bar_format="{desc} |{bar}| {n_fmt}/{total_fmt}{postfix}, {elapsed} elapsed",
                postfix=self._failures(), mininterval=0.1,
            )

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def _failures(self) -> str:
        return f"{self.failed} failed"

    def _status(self) -> str:
        return f"{self.failed} failed, {_elapsed(self.elapsed)}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, ok: bool, message: str = "") -> None:
        """One object finished; `message` says which (shown if it failed, or with verbose)."""
        with self._lock:
            self.done += 1
            if not ok:
                self.failed += 1
            if message and (not ok or self.verbose):
                self._line(click.style(message, fg="green" if ok else "red")
                           if self.color else message)
            if self._bar is not None:
                self._bar.set_postfix_str(self._failures(), refresh=False)
                self._bar.update(1)
                return
            now = self._clock()
            tenth = self.done * 10 // self.total if self.total else 10
            if tenth >= self._next_tenth or now - self._last_line_at >= COUNT_EVERY_S:
                self._next_tenth = tenth + 1
                self._last_line_at = now
                self._write(f"{self.label}: {self.done}/{self.total} done, {self._status()}")

    def note(self, message: str) -> None:
        """A message for the user while the work goes on, above the bar on a terminal."""
        with self._lock:
            self._line(message)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix_str(self._failures(), refresh=False)
                self._bar.close()
                self._bar = None

    def _line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)  # clears the bar, writes, draws it again
        else:
            self._write(text)

    def _write(self, text: str) -> None:
        click.echo(text, file=self.stream, color=self.color)
