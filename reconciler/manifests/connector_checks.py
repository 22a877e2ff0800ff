"""The connector model's checks beyond the schema: connector names a socket gives that no
Connector declares (with a suggestion), token destinations two tokens share, and the warning
that names the new form for a document of the legacy model (docs/migration.md)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from reconciler.connector_model import ConnectorKindSpec
from reconciler.manifests.documents import Doc
from reconciler.upstream import is_typed

__all__ = ["MIGRATION_GUIDE", "legacy_message", "shared_destinations", "unknown_connectors"]

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


def shared_destinations(
    connectors: Sequence[tuple[Doc, ConnectorKindSpec]],
) -> Iterator[tuple[Doc, str, tuple[Any, ...]]]:
    """(document, message, path) for each token whose destination an earlier token has (a
    file, or a Kubernetes Secret's key): each new token overwrites the other's value, which
    exists only at creation, so one of the two is lost for good."""
    first: dict[tuple[str, ...], str] = {}
    for doc, spec in connectors:
        for i, token in enumerate(spec.tokens):
            if token.kubernetes_secret is not None:
                where: tuple[str, ...] = ("secret", token.kubernetes_namespace or "",
                                          token.kubernetes_secret, token.kubernetes_key)
            elif token.file is not None:
                where = ("file", os.path.normpath(token.file))
            else:
                continue
            owner = f"connector '{spec.name}' token '{token.name}'"
            if where in first:
                yield doc, (f"spec.tokens[{i}].destination: {token.destination} is also the "
                            f"destination of {first[where]}; each token needs its own (a "
                            "token's value exists only at creation)"), (
                    "spec", "tokens", i, "destination")
            else:
                first[where] = owner
