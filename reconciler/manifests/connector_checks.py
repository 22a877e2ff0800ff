"""The connector model's checks beyond the schema: connector names a socket gives that no
Connector declares (with a suggestion), and the warning that names the new form for a document
of the legacy model (docs/migration.md)."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from reconciler.manifests.documents import Doc
from reconciler.upstream import is_typed

__all__ = ["MIGRATION_GUIDE", "legacy_message", "unknown_connectors"]

#: The migration guide (validate and plan point at it for legacy fields and spec.connector).
MIGRATION_GUIDE = "docs/migration.md"


def legacy_message(data: Mapping[str, Any]) -> str | None:
    """What of a Socket document is border0's legacy model, and its new form; None if nothing."""
    spec = data.get("spec") or {}
    upstream = spec.get("upstream")
    legacy = []
    if isinstance(upstream, (dict, Mapping)) and upstream and not is_typed(upstream):
        legacy.append("spec.upstream's legacy fields (write serviceType and a "
                      "<type>ServiceConfiguration block)")
    if spec.get("connector") is not None:
        legacy.append("spec.connector, one `border0 socket connect` per socket (declare a "
                      "kind: Connector and list it in spec.connectors)")
    return (f"legacy model: {'; '.join(legacy)}; see {MIGRATION_GUIDE} "
            "(`border0-reconciler migrate` rewrites it)") if legacy else None


def unknown_connectors(
    docs: Sequence[Doc], declared: Collection[str]
) -> Iterator[tuple[Doc, str, tuple[Any, ...]]]:
    """(document, message, path) for each spec.connectors name no kind: Connector declares
    (checked on invalid documents too: the name is the user's first mistake to see)."""
    for doc in docs:
        spec = doc.data.get("spec")
        names = spec.get("connectors") if isinstance(spec, (dict, Mapping)) else None
        for i, name in enumerate(names if isinstance(names, list) else ()):
            if not isinstance(name, str) or name in declared:
                continue
            close = difflib.get_close_matches(name, sorted(declared), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            yield doc, (
                f"spec.connectors[{i}]: connector '{name}' is not declared in these "
                f"manifests{hint}; add a kind: Connector manifest, or list a connector managed "
                "elsewhere in spec.externalConnectors"), ("spec", "connectors", i)
