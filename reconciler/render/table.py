"""Tables drawn as `border0 socket ls` draws them (`│ A │ B │`), fitted to a terminal width.

Used by `ls`, `show`, `policies` and `status`. Columns named in `shrink` are cut, in that order
and down to their minimum width, until the table fits; a cut cell ends with `…` (an id is cut
to a short prefix at once, as `docker ps` shows ids). Nothing is cut when `width` is None.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ELLIPSIS", "WIDTH", "markdown_table", "render_table"]

WIDTH = 120
ELLIPSIS = "…"


def render_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = WIDTH,
    shrink: Sequence[tuple[str, int]] = (),
    snap: Sequence[str] = (),
    markdown: bool = False,
) -> str:
    """The table as lines ending in newlines. `shrink` lists (column title, minimum width) in
    the order they are cut; a column in `snap` (an id) is cut straight to its minimum, and room
    left over afterwards goes back to the columns cut before it. `markdown`: a GitHub table of
    the same cells, never cut (`-o markdown`)."""
    cells = [[_one_line(c) for c in row] for row in rows]
    if markdown:
        return markdown_table(columns, cells)
    natural = [max([len(title)] + [len(r[i]) for r in cells]) for i, title in enumerate(columns)]
    widths = list(natural)
    if width is not None:
        excess = sum(widths) + 3 * len(widths) + 1 - width
        cut_order = []
        for title, minimum in shrink:
            if excess <= 0:
                break
            i = list(columns).index(title)
            room = max(widths[i] - max(minimum, len(title)), 0)
            cut = room if title in snap else min(excess, room)
            widths[i] -= cut
            excess -= cut
            cut_order.append(i)
        for i in cut_order:  # give back what a snapped column freed (an id: all or nothing)
            grow = min(-excess, natural[i] - widths[i])
            if columns[i] in snap and grow < natural[i] - widths[i]:
                continue
            if grow > 0:
                widths[i] += grow
                excess += grow
    lines = [
        "│ " + " │ ".join(_fit(c, w) for c, w in zip(row, widths)) + " │"
        for row in [list(columns), *cells]
    ]
    return "\n".join(lines) + "\n"


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; `|` in a cell is escaped."""

    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(_one_line(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(columns), "|" + "---|" * len(columns), *map(line, rows)]) + "\n"


def _one_line(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _fit(text: str, width: int) -> str:
    if len(text) > width:
        return text[: width - 1] + ELLIPSIS
    return text.ljust(width)
