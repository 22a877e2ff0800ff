"""Parsed manifest files kept on disk between CLI runs, by content hash: a `plan` of an
unchanged tree parses no YAML (issue 26: "a cache keyed by content hash in the state folder,
if that measurably helps; never trusted for secrets").

It stands in for the daemon's `cache.ParseCache` (same `get`/`put`/`retain`/`loaded`, same
`ParsedFile` shape) and keeps, per file, what parsing its text gives: the documents as plain data and
where each starts. Everything after the parse and the schema check (specs, cross-checks,
secrets resolved from the environment or files) runs on every load, so a warm plan reports
and plans exactly what a cold one does.

What is written, and what is not:
- only a file every document of which was valid (`ParsedFile.checked` set by the load) and that
  holds no literal secret value (a plaintext password, a typed upstream's `token: ...`): a
  `{env: ...}` or `{file: ...}` reference is just a name, its value is never stored;
- only documents that JSON gives back equal (a YAML date or a non-string key is not stored);
- one file, `<state folder>/manifests.cache`, replaced atomically (write, fsync, rename), 0600,
  holding the files of the last load only.

A cache file (a sealed file: `sealed.py`) is used only when its first line names this
reconciler version, YAML parser and schemas (`schema_check.schemas_digest`) and its HMAC,
under the fingerprint key (`secrets.keyed_digest`), matches: a corrupt, old or foreign file
(another key, or one committed into the checkout) is ignored, never an error. Its documents
were valid under these schemas when stored, so they are not schema-checked again
(`ParsedFile.schema_valid`).
`BORDER0_RECONCILER_CACHE=off` turns it off.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from reconciler import __version__
from reconciler.manifests.files import read_manifest_file
from reconciler.manifests.loader import ParsedFile
from reconciler.manifests.schema_check import schemas_digest
from reconciler.manifests.specs import secret_references
from reconciler.manifests.yamlpos import PARSER, Parsed, Position
from reconciler.sealed import read_sealed, write_sealed
from reconciler.upstream import is_reference

__all__ = ["CACHE_ENV", "CACHE_FILE", "StoredParseCache", "cache_enabled"]

#: The cache file, in the state folder (`border0.session.state_path`'s folder).
CACHE_FILE = "manifests.cache"
#: `off` (or 0, false, no): no cache file is read or written.
CACHE_ENV = "BORDER0_RECONCILER_CACHE"
_PURPOSE = "manifest parse cache"


@functools.cache
def _format() -> str:
    """The cache file's first line, before its MAC: what its entries hold only for."""
    return f"border0-reconciler manifests cache 1 {__version__} {PARSER} {schemas_digest()}"


def cache_enabled(env: Mapping[str, str]) -> bool:
    return env.get(CACHE_ENV, "").strip().lower() not in ("off", "0", "false", "no")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StoredParseCache:
    """path -> the parse of its text, from and to `file`; `get` before reading a file, `put`
    after parsing it, `loaded` at the end (the loader's calls); `save` once the command has
    planned (the state folder is made then)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._stored: dict[str, list[Any]] | None = None  # content hash -> [docs, starts]
        self._keys: set[str] = set()  # what the file held
        #: this load's files: (content hash, parse, whether it came from the file)
        self._used: dict[Path, tuple[str, ParsedFile, bool]] = {}
        self._body: bytes | None = None  # what `save` writes, made by `loaded`
        self.hits = self.misses = 0

    def _read(self) -> dict[str, list[Any]]:
        """The entries of the cache file; {} for a missing, corrupt, old or foreign one."""
        if self._stored is None:
            self._stored = {}
            body = read_sealed(self.file, _format(), _PURPOSE)
            try:
                data = orjson.loads(body) if body is not None else None
            except ValueError:  # orjson.JSONDecodeError
                data = None
            if isinstance(data, dict):
                self._stored, self._keys = data, set(data)
        return self._stored

    def get(self, path: Path) -> ParsedFile | None:
        entry = None
        try:
            raw, _ = read_manifest_file(path)
            text = raw.decode("utf-8-sig")
            key = _digest(text)
            stored = self._read().pop(key, None)  # the load keeps the documents: not twice
            if stored is not None:
                docs, starts = stored
                entry = ParsedFile(text, Parsed(docs, None, []),
                                   [Position(int(line), int(col)) for line, col in starts],
                                   schema_valid=True)  # stored only when valid, same schemas
        except (OSError, ValueError, TypeError, UnicodeDecodeError):
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._used[path] = (key, entry, True)
        return entry

    def put(self, path: Path, entry: ParsedFile) -> None:
        self._used[path] = (_digest(entry.text), entry, False)

    def retain(self, paths: Iterable[Path]) -> None:
        keep = set(paths)
        self._used = {p: e for p, e in self._used.items() if p in keep}

    def loaded(self) -> None:
        """The load is over: what `save` will write is made now and the parses let go, so
        that the documents (a quarter of a gigabyte at 100,000 sockets) are not held through
        the listing and the plan. Nothing to write when the file holds just this load's
        files already."""
        used = self._used.values()
        if not (all(kept for _, _, kept in used) and {key for key, _, _ in used} == self._keys):
            entries = {key: [entry.parsed.docs, [[p.line, p.column] for p in entry.starts]]
                       for key, entry, kept in used if kept or _storable(entry)}
            if entries.keys() != self._keys:
                try:
                    self._body = orjson.dumps(entries)
                except (TypeError, orjson.JSONEncodeError):
                    pass
        self._used, self._stored = {}, None

    def save(self) -> None:
        """Write what `loaded` made (module docstring), if anything; a failure to write costs
        only the next run's parse."""
        if self._body is None:
            return
        write_sealed(self.file, _format(), _PURPOSE, self._body)
        self._body = None


def _storable(entry: ParsedFile) -> bool:
    """A clean file without a literal secret, whose documents JSON gives back equal."""
    if entry.checked is None or entry.parsed.error is not None or entry.parsed.duplicates:
        return False
    docs = entry.parsed.docs
    if any(isinstance(doc, dict) and doc.get("kind") == "Socket" and _literal_secret(doc)
           for doc in docs):
        return False
    try:
        return orjson.loads(orjson.dumps(docs)) == docs
    except (TypeError, orjson.JSONEncodeError):
        return False


def _literal_secret(doc: dict[str, Any]) -> bool:
    """A secret written into the manifest itself (not a reference to the environment, a file
    or the connector's host): never stored."""
    return any(isinstance(value, str) and not is_reference(value)
               for _, value in secret_references(doc))

