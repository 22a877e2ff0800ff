"""Checks of one manifest document before it becomes a spec: is it ours (other tools' YAML may
share the tree), is it valid for its kind (a fast yes/no first, complete messages only for the
few it rejects), its name, and a hint for an invalid one.

The schemas in `schemas/` are the single definition of the format; this module only finds and
runs them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.manifests.schema_messages import Problem

__all__ = [
    "API_VERSION",
    "KINDS",
    "is_ours",
    "name_of",
    "quick_valid",
    "schema_path",
    "schema_validator",
    "with_name_hint",
]

API_VERSION = "border0-reconciler/v1"
KINDS = ("Socket", "Policy")


def schema_path(name: str) -> Path:
    """The packaged JSON Schema `name` ("manifest", "socket" or "policy")."""
    filename = f"{name}.schema.json"
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "schemas", package.parent / "schemas"):  # wheel, then source tree
        if (folder / filename).is_file():
            return folder / filename
    raise FileNotFoundError(f"schema {filename} is not installed with border0-reconciler")


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


def is_ours(data: Mapping[str, Any]) -> bool:
    """Is this document meant for us? Other tools' YAML may share the folder (and is skipped).

    Ours: a border0-reconciler apiVersion or a Socket/Policy kind (so typos in either are still
    reported), or neither key but metadata and spec (a manifest missing its header).
    """
    version, kind = data.get("apiVersion"), data.get("kind")
    if isinstance(version, str) and version.startswith("border0-reconciler"):
        return True
    if kind in KINDS:
        return True
    return version is None and kind is None and "metadata" in data and "spec" in data


def name_of(data: Mapping[str, Any]) -> str | None:
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else None


_NAME_FIX = re.compile(r"[^a-z0-9-]+")


def with_name_hint(problem: Problem, data: Mapping[str, Any]) -> str:
    """Suggest a valid spelling for an invalid name, the way border0's CLI would fix it."""
    name = name_of(data)
    if (
        problem.path != ("metadata", "name")
        or name is None
        or "is not valid" not in problem.message
    ):
        return problem.message
    fixed = _NAME_FIX.sub("-", name.lower()).strip("-")[:63].strip("-")
    return f"{problem.message} (try '{fixed}')" if fixed and fixed != name else problem.message
