"""Checking a manifest document against its kind's JSON Schema: a fast yes/no first
(jsonschema-rs), complete messages (jsonschema) only for the few documents it rejects.

The schemas in `schemas/` are the single definition of the format; this module only finds,
compiles and runs them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["max_length", "quick_valid", "schema_path", "schema_validator", "schemas_digest"]


def schema_path(name: str) -> Path:
    """The packaged JSON Schema `name` ("manifest", "socket" or "policy")."""
    filename = f"{name}.schema.json"
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "schemas", package.parent / "schemas"):  # wheel, then source tree
        if (folder / filename).is_file():
            return folder / filename
    raise FileNotFoundError(f"schema {filename} is not installed with border0-reconciler")


@functools.cache
def schemas_digest() -> str:
    """A digest of every schema installed: what a document found valid under them stays valid
    under (the CLI's parse cache names it, manifests/stored_cache.py)."""
    digest = hashlib.sha256()
    for path in sorted(schema_path("socket").parent.glob("*.schema.json")):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def schema_validator(kind: str) -> Any:
    """The schema validator of a kind, compiled once (jsonschema: complete error reports).
    Imported only here: jsonschema takes 0.06-0.25 s to import, and valid documents never
    need it (jsonschema-rs says yes or no)."""
    import jsonschema

    schema = json.loads(schema_path(kind.lower()).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


@functools.cache
def _fast_check(kind: str) -> Callable[[Any], bool]:
    """A quick yes/no check: jsonschema-rs when installed (~100x faster), else jsonschema.

    Most documents are valid; only those it rejects go through jsonschema for the messages.
    """
    try:
        from jsonschema_rs import validator_for
    except ImportError:  # pragma: no cover - an optional speed-up
        return schema_validator(kind).is_valid
    schema = json.loads(schema_path(kind.lower()).read_text(encoding="utf-8"))
    return validator_for(schema).is_valid


def quick_valid(kind: str, data: Any) -> bool:
    try:
        return _fast_check(kind)(data)
    except (ValueError, TypeError, OverflowError):  # e.g. a non-string key: let jsonschema say
        return False




@functools.cache
def max_length(kind: str, path: tuple[str, ...]) -> int | None:
    """The schema's maxLength of the property at `path` (like ("spec", "upstream",
    "password")): border0's limits live in the schemas only, and a secret resolved from the
    environment or a file is checked against the same number."""
    node: Any = json.loads(schema_path(kind.lower()).read_text(encoding="utf-8"))
    for part in path:
        node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node.get("maxLength") if isinstance(node, dict) else None
