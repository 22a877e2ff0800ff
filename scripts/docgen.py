"""What the doc generators share: write the page, or with `--check` say it is stale.

The generated pages are checked in, so a reader sees them on GitHub; CI (tests/test_docs.py and
each script's `--check`) fails when a schema or an option changed without regenerating them.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_or_check(out: Path, text: str, argv: list[str], script: str) -> int:
    """Write `text` to `out`; with `--check` in `argv` write nothing and exit 1 (with a diff)
    when `out` holds something else."""
    if "--check" not in argv:
        out.write_text(text)
        return 0
    committed = out.read_text() if out.exists() else ""
    if committed == text:
        return 0
    name = out.relative_to(ROOT)
    print(f"{name} is out of date: run python scripts/{script}")
    sys.stdout.writelines(difflib.unified_diff(
        committed.splitlines(keepends=True), text.splitlines(keepends=True),
        f"{name} (committed)", f"{name} (generated now)"))
    return 1
