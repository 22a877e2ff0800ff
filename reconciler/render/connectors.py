"""Connectors as `ls --connectors` and `show CONNECTOR` print them: who manages each, the sockets
it serves (border0's `connector_ids`, read from each socket's `/socket/{id}/connectors`) and its
tokens by name and expiry. A token's value is answered once, at creation, so it is never here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.connector_model import LiveConnector
from reconciler.model import Actual
from reconciler.render.inventory import managed
from reconciler.render.table import WIDTH, markdown_table, render_table

__all__ = ["connector_rows", "connector_show_text", "connectors_table"]

COLUMNS = ("NAME", "CONNECTOR ID", "SOCKETS", "TOKENS", "MANAGED", "DESCRIPTION")
SHRINK = (("DESCRIPTION", 11), ("CONNECTOR ID", 9), ("SOCKETS", 16), ("TOKENS", 16))


def connector_rows(actual: Actual, instance: str) -> list[dict[str, Any]]:
    """One row per live connector, by name, with the sockets bound to it (links read)."""
    return [_row(actual.connectors[name], actual, instance) for name in sorted(actual.connectors)]


def _row(live: LiveConnector, actual: Actual, instance: str) -> dict[str, Any]:
    own = live.ownership
    return {
        "name": live.name,
        "connector_id": live.connector_id,
        "description": live.description,
        "built_in_ssh": live.built_in_ssh,
        "managed": managed(own, instance),
        "owner": own.instance if own.managed else None,
        "sockets": sorted(s.name for s in actual.sockets.values()
                          if live.name in (s.connector_names or ())),
        "tokens": [{"name": t.name, "expires_at": t.expires_at or None,
                    "created_at": t.created_at or None}
                   for t in sorted(live.tokens or (), key=lambda t: (t.name, t.created_at))],
    }


def _managed(row: Mapping[str, Any]) -> str:
    return f"other ({row['owner']})" if row["managed"] == "other" else row["managed"]


def _token(token: Mapping[str, Any]) -> str:
    expires = token["expires_at"]
    return f"{token['name']} (expires {expires})" if expires else f"{token['name']} (no expiry)"


def connectors_table(rows: Sequence[Mapping[str, Any]], *, wide: bool,
                     markdown: bool = False) -> str:
    cells = [[r["name"], r["connector_id"], ", ".join(r["sockets"]) or "-",
              ", ".join(t["name"] for t in r["tokens"]) or "-", _managed(r),
              r["description"] or "-"] for r in rows]
    return render_table(COLUMNS, cells, width=None if wide else WIDTH, shrink=SHRINK,
                        snap=("CONNECTOR ID",), markdown=markdown)


def connector_show_text(row: Mapping[str, Any], *, markdown: bool = False) -> str:
    fields = [
        ("CONNECTOR ID", row["connector_id"]), ("DESCRIPTION", row["description"] or "-"),
        ("BUILT-IN SSH", "yes" if row["built_in_ssh"] else "no"), ("MANAGED", _managed(row)),
        ("SOCKETS", ", ".join(row["sockets"]) or "- (it serves no socket)"),
        ("TOKENS", ", ".join(_token(t) for t in row["tokens"]) or "-"),
    ]
    if markdown:
        return "\n".join([f"**connector {row['name']}**", "",
                          markdown_table(("FIELD", "VALUE"), fields)]) + "\n"
    return "\n".join([f"connector {row['name']}"] +
                     [f"  {key:<12} {value}" for key, value in fields]) + "\n"
