"""Which token a destination holds: a record of token ids and fingerprints of their values.

border0 lists a connector's tokens by id, name and expiry, never by value, and two tokens may
share a name (a rotation makes the new one before it revokes the old; an apply that dies in
between leaves both). Only the destination knows which one is in use, so each write of a value
records beside it `{"id": <token id>, "sha256": <fingerprint of the value>}`. The plan reads the
value, fingerprints it and looks it up: the token whose fingerprint matches is the one in use
(`held_token`); no match (no record yet, or a value written by someone else) is "unknown".

- A file (and the agent token store) keeps its record in `<file>.token-id` (0600, JSON). Two
  files cannot be replaced in one step, so a write goes record, value, record: first the record
  names both the value still there and the new one, then the value is replaced, then the record
  names only the new one. An apply that dies at any point leaves a record that names whatever
  value the file holds.
- A Kubernetes Secret keeps its records in the annotation `border0-reconciler/token-ids`
  (`{<key>: {"id", "sha256"}}`), written in the same request as the value.

A fingerprint is the SHA-256 of the value: it identifies a value, and cannot give it back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.private_files import write_atomically

__all__ = [
    "RECORD_ANNOTATION", "RECORD_SUFFIX", "annotated", "annotation_records", "fingerprint",
    "held_token",
    "read_file_records", "record_path", "write_file_records",
]

#: The file beside a token file that records which token's value it holds.
RECORD_SUFFIX = ".token-id"
#: The Kubernetes Secret annotation that records, for each key, which token's value it holds.
RECORD_ANNOTATION = "border0-reconciler/token-ids"

Record = dict[str, str]  # {"id": token id, "sha256": fingerprint of its value}


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.strip().encode("utf-8")).hexdigest()


def held_token(value: str | None, records: Sequence[Mapping[str, Any]]) -> str | None:
    """The id of the token whose value `value` is, per the records; None when unknown."""
    if not value:
        return None
    mark = fingerprint(value)
    return next((str(r["id"]) for r in records
                 if r.get("sha256") == mark and r.get("id")), None)


def record_path(file: str | Path) -> Path:
    path = Path(file)
    return path.with_name(path.name + RECORD_SUFFIX)


def read_file_records(file: str | Path) -> list[Record]:
    """The records beside a token file ([] when there are none or they cannot be read)."""
    try:
        data = json.loads(record_path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    tokens = data.get("tokens") if isinstance(data, dict) else None
    return [{"id": str(r["id"]), "sha256": str(r["sha256"])}
            for r in (tokens if isinstance(tokens, list) else ())
            if isinstance(r, dict) and r.get("id") and r.get("sha256")]


def write_file_records(file: str | Path, records: Sequence[Record]) -> None:
    """Replace the records beside a token file (0600, atomically); OSError as the system says."""
    data = json.dumps({"tokens": list(records)}, indent=1) + "\n"
    write_atomically(record_path(file), data.encode("utf-8"))


def _annotation(annotations: Mapping[str, str] | None) -> dict[str, Any]:
    """The token-ids annotation of a Secret as {key: record} ({} when absent or malformed)."""
    try:
        data = json.loads((annotations or {}).get(RECORD_ANNOTATION) or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def annotation_records(annotations: Mapping[str, str] | None, key: str) -> list[Record]:
    """The record of one key of a Secret, from its annotations ([] when there is none)."""
    record = _annotation(annotations).get(key)
    if isinstance(record, dict) and record.get("id") and record.get("sha256"):
        return [{"id": str(record["id"]), "sha256": str(record["sha256"])}]
    return []


def annotated(annotations: Mapping[str, str] | None, key: str, record: Record) -> dict[str, str]:
    """`annotations` with `key`'s record set in the token-ids annotation (other keys kept)."""
    records = _annotation(annotations)
    records[key] = dict(record)
    return {**(annotations or {}), RECORD_ANNOTATION: json.dumps(records, sort_keys=True)}
