"""One rule for colour in every command, in this order:

1. `--no-color` or `--color never`: no colour; `--color always`: colour, whatever the stream;
2. NO_COLOR (no-color.org) set to anything but the empty string: no colour;
3. FORCE_COLOR (force-color.org) set to anything but the empty string: colour, even off a
   terminal (CI logs that render escapes);
4. otherwise colour only on a terminal.
"""

from __future__ import annotations

import os
from typing import IO, Any

__all__ = ["color_enabled", "force_color_env", "no_color_env", "set_color_mode"]

#: `--color` of the command running: auto, always or never (set by its callback).
_mode = "auto"


def set_color_mode(mode: str) -> None:
    global _mode
    _mode = mode


def no_color_env() -> bool:
    """True when the user asked every program for no colour (NO_COLOR set, not empty)."""
    return bool(os.environ.get("NO_COLOR"))


def force_color_env() -> bool:
    """True when the user asked every program for colour (FORCE_COLOR set, not empty)."""
    return bool(os.environ.get("FORCE_COLOR"))


def color_enabled(stream: IO[Any] | None, no_color: bool = False) -> bool:
    """Colour for `stream`, by the rule in this module's docstring."""
    if no_color or _mode == "never" or stream is None:
        return False
    if _mode == "always":
        return True
    if no_color_env():
        return False
    if force_color_env():
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
