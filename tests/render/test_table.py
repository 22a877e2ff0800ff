"""Tables fitted to 120 columns: what is cut first, ids cut to a short prefix, room given back."""

from __future__ import annotations

from reconciler.render.table import render_table


def test_table_cuts_descriptions_first_then_ids_and_gives_room_back() -> None:
    columns = ("NAME", "ID", "DESCRIPTION")
    row = ["web", "6fb21ee7-e5db-4ff9-b54c-f9aebcbf6fd6", "d" * 100]
    shrink = (("DESCRIPTION", 11), ("ID", 9))
    table = render_table(columns, [row], width=60, shrink=shrink, snap=("ID",))
    lines = table.splitlines()
    assert {len(line) for line in lines} == {60}
    assert "6fb21ee7…" in lines[1] and lines[1].endswith("d… │")
    assert render_table(columns, [row], width=None, shrink=shrink).count("d" * 100) == 1
    narrow = render_table(columns, [row], width=120, shrink=shrink, snap=("ID",))
    assert "6fb21ee7-e5db-4ff9-b54c-f9aebcbf6fd6" in narrow  # cut the description only
