"""One rule for colour in every command: a terminal gets colour unless NO_COLOR or --no-color.

NO_COLOR follows no-color.org: set to anything but the empty string, it turns colour off
whatever the stream is.
"""

from __future__ import annotations

import os
from typing import IO, Any

__all__ = ["color_enabled", "no_color_env"]


def no_color_env() -> bool:
    """True when the user asked every program for no colour (NO_COLOR set, not empty)."""
    return bool(os.environ.get("NO_COLOR"))


def color_enabled(stream: IO[Any] | None, no_color: bool = False) -> bool:
    """Colour for `stream`: only a terminal, and only when neither NO_COLOR nor the flag says no."""
    if no_color or no_color_env() or stream is None:
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
