"""Manifests in, `Desired` out: find the files, parse, validate, resolve secrets, cross-check.

Every problem is collected as a `Diagnostic` with file:line:column (the loader never stops at
the first). The schemas in `schemas/` are the single definition of the format; this module adds
only what a schema cannot see: YAML syntax, duplicate names across files, policy references,
plaintext secrets and secret resolution.

Documents of other tools (Kubernetes objects, CI workflows) may share the tree: a document whose
apiVersion and kind are both foreign is skipped, not reported.

Speed matters (10,000 sockets load in about a second): documents are parsed with libyaml into
plain data, checked by a compiled jsonschema-rs validator (jsonschema, compiled once, words the
problems of the few documents it rejects), and only a file with a problem is parsed a second
time for positions (`yamlpos.Locator`).
"""

from __future__ import annotations

import difflib
import errno
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.diagnostics import Diagnostic, Severity, has_errors
from reconciler.manifests.cache import ParseCache
from reconciler.manifests.documents import (
    API_VERSION,
    KINDS,
    is_ours,
    name_of,
    quick_valid,
    schema_path,
    schema_validator,
    with_name_hint,
)
from reconciler.manifests.files import EnvFileError, discover, read_env_file
from reconciler.manifests.specs import SECRET_FIELDS, policy_spec, resolve_secret, socket_spec
from reconciler.manifests.yamlpos import Locator, Position, document_starts, load_documents
from reconciler.model import Desired, PolicySpec, SocketSpec, Source
from reconciler.secrets import Secret

__all__ = [
    "API_VERSION",
    "KINDS",
    "EnvFileError",
    "LoadResult",
    "load",
    "read_env_file",
    "schema_path",
]

@dataclass(frozen=True)
class LoadResult:
    desired: Desired  # complete only when there are no error diagnostics
    diagnostics: list[Diagnostic]  # errors and warnings, sorted by file/line
    files: list[Path]
    documents: int  # non-empty YAML documents read
    skipped: int = 0  # documents of other tools (not border0-reconciler's), left alone

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def _error(message: str, file: str | None, pos: Position | None = None, *, code: str) -> Diagnostic:
    return _diag(Severity.ERROR, message, file, pos, code)


def _diag(
    severity: Severity, message: str, file: str | None, pos: Position | None, code: str
) -> Diagnostic:
    line, column = (pos.line, pos.column) if pos else (None, None)
    return Diagnostic(severity, message, file, line, column, code)


# --- one document at a time ------------------------------------------------------------------


@dataclass
class _File:
    path: Path
    text: str
    starts: list[Position]  # where each document starts; [] when the quick scan is unsure
    _locators: dict[int, tuple[Locator, int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path)

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
class _Doc:
    file: _File
    index: int
    data: dict[str, Any]

    def at(self, path: Sequence[Any] = (), *, key: bool = False) -> Position:
        return self.file.locate(self.index, path, key=key)

    def source(self) -> Source:
        pos = self.at()
        return Source(self.file.name, pos.line, pos.column)


@dataclass
class _Loader:
    env: Mapping[str, str]
    resolve_secrets: bool
    strict: bool
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sockets: dict[str, SocketSpec] = field(default_factory=dict)
    policies: dict[str, PolicySpec] = field(default_factory=dict)
    names: dict[tuple[str, str], _Doc] = field(default_factory=dict)
    socket_docs: dict[str, _Doc] = field(default_factory=dict)
    documents: int = 0
    skipped: int = 0
    cache: ParseCache | None = None

    def report(
        self,
        doc: _Doc,
        message: str,
        path: Sequence[Any] = (),
        *,
        key: bool = False,
        code: str = "schema",
        severity: Severity = Severity.ERROR,
    ) -> None:
        pos = doc.at(path, key=key)
        self.diagnostics.append(_diag(severity, message, doc.file.name, pos, code))

    def read_file(self, path: Path) -> None:
        parsed = self.cache.get(path) if self.cache is not None else None
        if parsed is None:
            parsed = self.parse_file(path)
            if parsed is None:
                return
            if self.cache is not None:
                self.cache.put(path, parsed)
        text, (docs, syntax_error, duplicates), starts = parsed
        file = _File(path, text, list(starts))
        for problem in [*duplicates, *([syntax_error] if syntax_error else [])]:
            code = "yaml-syntax" if problem is syntax_error else "duplicate-key"
            self.diagnostics.append(_error(problem.message, file.name, problem.position, code=code))
        if syntax_error is not None or len(file.starts) != len(docs):
            file.starts = []  # unsure where documents start: compose the file for positions
        for index, data in enumerate(docs):
            if data is None:
                continue
            self.documents += 1
            self.read_document(file, index, data)

    def parse_file(self, path: Path) -> tuple[str, Any, list[Any]] | None:
        """(text, parsed documents, document starts), or None after reporting why not."""
        try:
            raw = _read_regular_file(path)
        except OSError as exc:
            self.diagnostics.append(
                _error(f"cannot read file: {exc.strerror}", str(path), code="io")
            )
            return None
        if b"\x00" in raw:
            self.diagnostics.append(
                _error("not a YAML text file (binary content)", str(path), code="io")
            )
            return None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.diagnostics.append(
                _error(f"not UTF-8 text (invalid byte at offset {exc.start})", str(path), code="io")
            )
            return None
        return text, load_documents(text), document_starts(text)

    def read_document(self, file: _File, index: int, data: Any) -> None:
        if not isinstance(data, dict) or not is_ours(data):
            if isinstance(data, list) and any(isinstance(d, dict) and is_ours(d) for d in data):
                self.report(
                    _Doc(file, index, {}),
                    "a manifest document must be a mapping, not a list: put each object in "
                    "its own document, separated by ---",
                    code="kind",
                )
            else:
                self.skipped += 1  # another tool's YAML (Kubernetes, CI, ...) in the same tree
            return
        doc = _Doc(file, index, data)
        kind, version = data.get("kind"), data.get("apiVersion")
        if version is None:
            self.report(doc, f"apiVersion is required (use {API_VERSION})", code="kind")
        elif version != API_VERSION:
            self.report(
                doc,
                f"apiVersion: {version!r} is not supported (use {API_VERSION})",
                ("apiVersion",),
                code="kind",
            )
        if kind is None:
            self.report(doc, "kind is required (Socket or Policy)", code="kind")
            return
        if kind not in KINDS:
            close = difflib.get_close_matches(str(kind), KINDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.report(
                doc, f"kind: {kind!r} is not one of Socket, Policy{hint}", ("kind",), code="kind"
            )
            return
        problems = []
        if not quick_valid(kind, data):
            import reconciler.manifests.schema_messages as messages  # jsonschema: on use

            problems = [
                p
                for p in messages.humanize(schema_validator(kind).iter_errors(data))
                if p.path[:1] != ("apiVersion",)
            ]
        for problem in problems:
            self.report(doc, with_name_hint(problem, data), problem.path, key=problem.at_key)
        name = name_of(data)
        if name is not None and not self.register(kind, name, doc):
            return
        if problems or version != API_VERSION:
            return
        if kind == "Socket":
            spec = self.build_socket(doc)
            if spec is not None:
                self.sockets[spec.name] = spec
                self.socket_docs[spec.name] = doc
        else:
            self.policies[name] = policy_spec(doc.data, doc.source())  # type: ignore[index]

    def register(self, kind: str, name: str, doc: _Doc) -> bool:
        first = self.names.get((kind, name))
        if first is None:
            self.names[(kind, name)] = doc
            return True
        where = first.at(("metadata", "name"))
        self.report(
            doc,
            f"duplicate {kind} name '{name}': also declared at "
            f"{first.file.name}:{where.line}:{where.column}",
            ("metadata", "name"),
            code="duplicate-name",
        )
        return False

    def build_socket(self, doc: _Doc) -> SocketSpec | None:
        """The socket's spec with its secrets resolved; None when a secret cannot be."""
        secrets: dict[tuple[Any, ...], Secret | None] = {}
        failed = False
        for path in SECRET_FIELDS:
            section = doc.data["spec"].get(path[1]) or {}
            secret, issue = resolve_secret(
                section.get(path[2]),
                path,
                base_dir=doc.file.path.parent,
                env=self.env,
                resolve=self.resolve_secrets,
                strict=self.strict,
            )
            if issue is not None:
                severity = Severity.ERROR if issue.error else Severity.WARNING
                self.report(doc, issue.message, path, code=issue.code, severity=severity)
                failed = failed or issue.error
            secrets[path] = secret
        return None if failed else socket_spec(doc.data, doc.source(), secrets)

    def cross_check(self) -> None:
        """Policy references: declared here, or listed as external."""
        declared = {name for kind, name in self.names if kind == "Policy"}
        for name, spec in self.sockets.items():
            doc = self.socket_docs[name]
            for i, policy in enumerate(spec.policies):
                if policy not in declared and policy not in spec.external_policies:
                    self.report(
                        doc,
                        f"spec.policies[{i}]: policy '{policy}' is not declared in "
                        "these manifests (add a kind: Policy manifest, or list it in "
                        "spec.externalPolicies if it is managed elsewhere)",
                        ("spec", "policies", i),
                        code="missing-policy",
                    )
            for i, policy in enumerate(spec.external_policies):
                if policy in declared:
                    self.report(
                        doc,
                        f"spec.externalPolicies[{i}]: policy '{policy}' is declared "
                        "in these manifests; list it in spec.policies instead",
                        ("spec", "externalPolicies", i),
                        code="external-policy",
                        severity=Severity.WARNING,
                    )


def _read_regular_file(path: Path) -> bytes:
    """The bytes of a regular file; a FIFO or device is refused instead of blocking the load."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return handle.read()


def load(
    paths: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    resolve_secrets: bool = True,
    strict: bool = False,
    cache: ParseCache | None = None,
) -> LoadResult:
    """Read every manifest under `paths` into `Desired`, collecting every problem found.

    With resolve_secrets=False (validate) secret references are checked for shape only and the
    resulting `Secret`s hold an empty value. With strict=True a plaintext password is an error.
    A `cache` (the daemon's) keeps parsed files between loads, by file identity.
    """
    if isinstance(paths, (str, os.PathLike)):  # one path given bare: not its characters
        paths = [paths]
    diagnostics: list[Diagnostic] = []

    def problem(file: str, message: str, is_error: bool) -> None:
        severity = Severity.ERROR if is_error else Severity.WARNING
        diagnostics.append(_diag(severity, message, file, None, "io" if is_error else "empty"))

    files = discover(paths, problem)
    loader = _Loader(
        env=os.environ if env is None else env,
        resolve_secrets=resolve_secrets,
        strict=strict,
        diagnostics=diagnostics,
        cache=cache,
    )
    if cache is not None:
        cache.retain(files)
    for path in files:
        loader.read_file(path)
    loader.cross_check()
    loader.diagnostics.sort(key=lambda d: (d.file or "", d.line or 0, d.column or 0))
    return LoadResult(
        desired=Desired(sockets=loader.sockets, policies=loader.policies),
        diagnostics=loader.diagnostics,
        files=files,
        documents=loader.documents,
        skipped=loader.skipped,
    )
