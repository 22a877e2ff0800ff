"""The progress reporter `apply` uses (and `import` will): on a non-terminal a count line each
time another 10% is done or 5 s have passed, failures always listed, successes only when
verbose. A real `Progress` writing to a real in-memory stream, with a clock the test turns."""

from __future__ import annotations

import io

from reconciler.cli.progress import COUNT_EVERY_S, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_count_lines_every_tenth_and_every_five_seconds_failures_always() -> None:
    clock, out = Clock(), io.StringIO()
    with Progress(1000, label="Importing", stream=out, clock=clock) as progress:
        for i in range(250):
            progress.step(i != 7, f"imported socket s{i}")
        clock.now += COUNT_EVERY_S  # a slow stretch: a line although no tenth was crossed
        progress.step(True, "imported socket s250")
        for i in range(251, 1000):
            progress.step(True, f"imported socket s{i}")
    lines = out.getvalue().splitlines()
    assert lines[0] == "imported socket s7"  # the failure, at once
    counts = [line for line in lines if line.startswith("Importing: ")]
    assert counts[:3] == ["Importing: 100/1000 done, 1 failed, 0s",
                          "Importing: 200/1000 done, 1 failed, 0s",
                          "Importing: 251/1000 done, 1 failed, 5s"]
    assert counts[-1] == "Importing: 1000/1000 done, 1 failed, 5s"
    assert len(counts) == 11 and len(lines) == 12  # no line per object
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert (progress.done, progress.failed) == (1000, 1)


def test_verbose_lists_every_object_and_notes_go_to_the_same_stream() -> None:
    out = io.StringIO()
    with Progress(3, stream=out, verbose=True, clock=Clock()) as progress:
        progress.step(True, "created socket a")
        progress.note("border0 API not reachable, retrying 1/4...")
        progress.step(False, "failed: create socket b: 400 bad")
        progress.step(True, "created socket c")
    lines = out.getvalue().splitlines()
    assert [line for line in lines if not line.startswith("Applying: ")] == [
        "created socket a", "border0 API not reachable, retrying 1/4...",
        "failed: create socket b: 400 bad", "created socket c"]
    assert lines[-1] == "Applying: 3/3 done, 1 failed, 0s"
