"""Durations as Go writes them (`time.ParseDuration`): `1m30s`, `500ms`, `2h`, `1.5h`, `0`.

One parser for every duration the reconciler takes (run's flags, the environment, sync windows),
so `BORDER0_RECONCILER_INTERVAL=1m30s` means what `--interval 1m30s` means. A bare number is
seconds, as this tool always accepted (`--interval 300`); Go refuses that, we keep it.
"""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

#: Go's units (`time.ParseDuration`), in seconds; µs and μs are both Go's spellings of us.
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
         "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
EXAMPLES = "examples: 500ms, 30s, 1m30s, 2h"


def parse_duration(text: str | float) -> float:
    """Seconds from `1m30s`-style text (or a bare number of seconds); ValueError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"{text!r} is negative")
        return float(text)
    raw = str(text).strip()
    if _NUMBER.fullmatch(raw):
        return float(raw)
    position, total = 0, 0.0
    for match in _PART.finditer(raw):
        if match.start() != position:
            break
        total += float(match.group(1)) * UNITS[match.group(2)]
        position = match.end()
    if not raw or position != len(raw):
        raise ValueError(f"{str(text)!r} is not a duration ({EXAMPLES})")
    return total


def format_duration(seconds: float) -> str:
    """`90.0` -> `1m30s`, `0.5` -> `500ms`: the short form Go prints."""
    if 0 < seconds < 1:
        return f"{round(seconds * 1000)}ms"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")
