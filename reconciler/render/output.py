"""The output formats of every command (`-o/--output`): one list, and the two views every
command shares, JSON and YAML of the command's own data.

`text` and `markdown` are each command's own views (the plan's in render/text.py and
render/markdown.py, the tables' in render/table.py); `json` and `yaml` print the data those
views are drawn from, and nothing else, so a tool can read stdout whole. A command that fails
in a machine format prints `error_document` instead, so stdout still parses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["MACHINE_FORMATS", "OUTPUT_FORMATS", "error_document", "structured"]


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _yaml(data: Any) -> str:
    import yaml  # loaded on use, as every CLI start loads this module

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


#: The machine formats: data in, text out.
MACHINE_FORMATS: dict[str, Callable[[Any], str]] = {"json": _json, "yaml": _yaml}
#: Every command that prints objects offers these (the plan's RENDERERS and validate's
#: REPORTERS hold one renderer for each, tests/render checks it).
OUTPUT_FORMATS = ("text", "json", "yaml", "markdown")


def structured(data: Any, fmt: str) -> str:
    """`data` as JSON or YAML."""
    return MACHINE_FORMATS[fmt](data)


def error_document(message: str, diagnostics: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """What a command prints on stdout in a machine format when it fails: the one error and
    the problems behind it (`Diagnostic.to_json()` each)."""
    return {"ok": False, "error": message, "diagnostics": list(diagnostics)}
