"""One manifest document: whether it is ours, where its parts are (file:line:column), its name.

Whether a document is ours decides what happens to it: ours are validated, another tool's are
skipped, anything in between is an error. Skipping only what clearly belongs to another tool is
what keeps a half-written file (`---\napi`) from passing as "someone else's YAML".
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.manifests.yamlpos import Locator, Position
from reconciler.model import Source

if TYPE_CHECKING:  # jsonschema, which schema_messages imports, is slow to import
    from reconciler.manifests.schema_messages import Problem

__all__ = [
    "API_VERSION", "KINDS", "Doc", "File", "classify", "mentions_ours", "name_of", "with_name_hint",
]

API_VERSION = "border0-reconciler/v1"
KINDS = ("Socket", "Policy", "Connector")


@dataclass
class File:
    path: Path
    text: str
    starts: list[Position]  # where each document starts; [] when the quick scan is unsure
    _locators: dict[int, tuple[Locator, int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path)

    @functools.cached_property
    def digest(self) -> str:
        """Its text's SHA-256 (hex, 32 digits): `Doc.identity`'s first half."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:32]

    def locate(self, index: int, path: Sequence[Any] = (), *, key: bool = False) -> Position:
        if not path and index < len(self.starts):
            return self.starts[index]
        locator, local = self._locator(index)
        found = locator.find(local, path, key=key) if path else locator.document(local)
        return found or Position(1, 1)

    def _locator(self, index: int) -> tuple[Locator, int]:
        """Nodes for one document: only its own lines when document starts are known."""
        key = index if self.starts else -1
        if key not in self._locators:
            if self.starts:
                lines = self.text.split("\n")  # as document_starts counts lines
                first = self.starts[index].line - 1
                last = self.starts[index + 1].line - 1 if index + 1 < len(self.starts) else None
                self._locators[key] = (Locator("\n".join(lines[first:last]), first), 0)
            else:
                self._locators[key] = (Locator(self.text), -1)
        locator, local = self._locators[key]
        return locator, index if local < 0 else local


@dataclass
class Doc:
    file: File
    index: int
    data: dict[str, Any]

    def at(self, path: Sequence[Any] = (), *, key: bool = False) -> Position:
        return self.file.locate(self.index, path, key=key)

    def source(self) -> Source:
        pos = self.at()
        return Source(self.file.name, pos.line, pos.column)

    @property
    def identity(self) -> str:
        """What it says, not where it is: its file's content digest and its index there
        (`SocketSpec.document`)."""
        return f"{self.file.digest}:{self.index}"


def classify(data: Any) -> str:
    """"ours", "foreign" (another tool's: skipped), "headless" (a mapping with neither
    apiVersion nor kind: another tool's config unless it sits next to our documents) or the
    error message for a document that is neither.

    Ours: a border0-reconciler apiVersion or a Socket/Policy kind (so typos in either are still
    reported), or neither key but metadata and spec (a manifest missing its header).
    """
    if not isinstance(data, dict):
        what = "a list" if isinstance(data, list) else "a plain value"  # never echo it
        return (
            f"a manifest document must be a mapping (apiVersion, kind, metadata, spec), not "
            f"{what}: put each object in its own document, separated by ---; a cut or "
            "half-written file looks like this too"
        )
    version, kind = data.get("apiVersion"), data.get("kind")
    if (isinstance(version, str) and version.startswith("border0-reconciler")) or kind in KINDS:
        return "ours"
    if version is None and kind is None:
        return "ours" if "metadata" in data and "spec" in data else "headless"
    if version is None or kind is None:
        return (
            f"a document with {'kind' if version is None else 'apiVersion'} but no "
            f"{'apiVersion' if version is None else 'kind'}: both are required (ours: "
            f"apiVersion: {API_VERSION}, kind: Socket or Policy; another tool's documents "
            "have both too)"
        )
    return "foreign"


#: A line `apiVersion: border0-reconciler/...`: a Helm template, a Chart.yaml (apiVersion v2,
#: no kind) or a CI file has none.
_OUR_API_VERSION = re.compile(r"^[ \t-]*apiVersion:[ \t]*[\"']?border0-reconciler/", re.MULTILINE)


def mentions_ours(text: str) -> bool:
    """Whether a file's text may hold a manifest of ours (`validate --only-manifests`)."""
    return _OUR_API_VERSION.search(text) is not None


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
