"""Field-level differences between two comparable forms (`model.socket_fields`, ...).

Secrets (desired `Secret`s, live `Fingerprint`s) are shown as `(sensitive)`; a secret or
`recording` the desired side leaves out is not compared. DeepDiff finds the paths, and only for objects already known to differ (the
planner compares with `==` first). Lists are compared whole: a path stops at the list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.secrets import SECRET_FIELDS, SECRET_TYPES, SENSITIVE, walk

__all__ = [
    "OPTIONAL_FIELDS", "FieldDiff", "comparable", "create_diffs", "field_diffs", "jsonable",
]

#: Fields compared only when the manifest sets them (None: leave border0's value alone).
OPTIONAL_FIELDS = (
    *SECRET_FIELDS, "recording", "connectors", "upstream_configuration", "upstream_secrets",
    "end_to_end_encryption", "connector_authentication", "upstream_type",
    "upstream_http_hostname",
)


@dataclass(frozen=True)
class FieldDiff:
    """One changed field: `path` like `description`, `labels.team`, `policy_data.condition`."""

    path: str
    before: Any
    after: Any
    sensitive: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "before": jsonable(self.before),
            "after": jsonable(self.after),
            "sensitive": self.sensitive,
        }


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data, secrets shown as (sensitive)."""
    return walk(value, on_secret=lambda _secret: SENSITIVE)


def comparable(
    desired: dict[str, Any], live: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Drop the optional fields the desired side leaves out: they are not compared."""
    for key in OPTIONAL_FIELDS:
        if desired.get(key, ...) is None:  # present, and None
            del desired[key]
            live.pop(key, None)
    return desired, live


def field_diffs(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldDiff, ...]:
    """Field-level differences; secrets compared by fingerprint and shown as (sensitive).

    Lists are compared whole (the path stops at the list), which reads better than indexes.
    """
    diffs: list[FieldDiff] = []
    plain_before: dict[str, Any] = {}
    plain_after: dict[str, Any] = {}
    for key in dict.fromkeys([*before, *after]):
        b, a = before.get(key), after.get(key)
        if isinstance(b, SECRET_TYPES) or isinstance(a, SECRET_TYPES):
            if b != a:
                diffs.append(
                    FieldDiff(key, SENSITIVE if b is not None else None,
                              SENSITIVE if a is not None else None, sensitive=True)
                )
            continue
        if key in before:
            plain_before[key] = b
        if key in after:
            plain_after[key] = a
    if plain_before != plain_after:
        from deepdiff import DeepDiff  # imported when needed: ~0.1 s of every CLI start

        tree = DeepDiff(plain_before, plain_after, view="tree", ignore_order=False)
        paths: dict[tuple[Any, ...], None] = {}
        for items in tree.values():
            for item in items:
                walked: list[Any] = []
                for part in item.path(output_format="list"):
                    if isinstance(part, int):
                        break
                    walked.append(part)
                paths[tuple(walked)] = None
        for parts in sorted(paths, key=lambda p: [str(x) for x in p]):
            diffs.append(
                FieldDiff(
                    ".".join(str(p) for p in parts),
                    _get(plain_before, parts),
                    _get(plain_after, parts),
                )
            )
    return tuple(sorted(diffs, key=lambda d: d.path))


def _get(data: Any, parts: tuple[Any, ...]) -> Any:
    for part in parts:
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def create_diffs(fields: Mapping[str, Any]) -> tuple[FieldDiff, ...]:
    """What a created object will hold: every non-empty field, as `(none) → value`."""
    out = []
    for key, value in sorted(fields.items()):
        if value in (None, "", {}, [], ()) or value is False or (key == "prune" and value):
            continue
        if isinstance(value, SECRET_TYPES):
            out.append(FieldDiff(key, None, SENSITIVE, sensitive=True))
        else:
            out.append(FieldDiff(key, None, value))
    return tuple(out)
