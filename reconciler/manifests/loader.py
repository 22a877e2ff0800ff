"""Manifests in, `Desired` out: find the files, parse, validate, resolve secrets, cross-check.

Every problem is collected as a `Diagnostic` with file:line:column (the loader never stops at
the first). The schemas in `schemas/` are the single definition of the format; this module adds
only what a schema cannot see: YAML syntax, duplicate names across files, policy references,
plaintext secrets and secret resolution.

Documents of other tools (Kubernetes objects, CI workflows) may share the tree: a mapping whose
apiVersion and kind are both foreign is skipped, and so is a mapping with neither in a file that
holds none of ours. Anything else is an error, never "someone else's YAML": a document that is not
a mapping, a mapping with only one of apiVersion/kind, a headless mapping next to our documents.
A half-written file looks exactly like that (`---\napi`), and skipping it would prune what the
missing half declared.

Input is bounded (`manifest_io.MAX_FILE_BYTES`, `yamlpos.MAX_DOCUMENT_BYTES`, the schemas'
maxProperties/maxItems/maxLength) so a huge file fails fast, in little memory.

Speed matters (10,000 sockets load in about a second): documents are parsed with libyaml into
plain data, checked by a compiled jsonschema-rs validator (jsonschema, compiled once, words the
problems of the few documents it rejects), and only a file with a problem is parsed a second
time for positions (`yamlpos.Locator`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from reconciler.connector_model import ConnectorKindSpec
from reconciler.diagnostics import Diagnostic, Severity, has_errors
from reconciler.manifests.cache import ParseCache
from reconciler.manifests.connector_checks import (
    legacy_message,
    shared_destinations,
    unknown_connectors,
)
from reconciler.manifests.documents import (
    API_VERSION,
    KINDS,
    Doc,
    File,
    classify,
    mentions_ours,
    name_of,
    with_name_hint,
)
from reconciler.manifests.files import (
    EnvFileError,
    FileTooLarge,
    Stamp,
    changed_since,
    discover,
    newest_change,
    read_env_file,
    read_manifest_file,
    stamp,
)
from reconciler.manifests.schema_check import (
    max_length,
    quick_valid,
    schema_path,
    schema_validator,
)
from reconciler.manifests.secret_files import allowed_roots
from reconciler.manifests.specs import (
    connector_spec,
    policy_spec,
    resolve_secret,
    secret_references,
    socket_spec,
)
from reconciler.manifests.upgrade import legacy_form, legacy_paths
from reconciler.manifests.yamlpos import (
    MAX_DOCUMENT_BYTES,
    Position,
    document_starts,
    load_documents,
    oversized_document,
)
from reconciler.model import Desired, PolicySpec, SocketSpec
from reconciler.secrets import Secret

__all__ = [
    "API_VERSION",
    "KINDS",
    "EnvFileError",
    "LoadResult",
    "ParsedFile",
    "check_texts",
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
    skipped_files: list[tuple[str, str]] = field(default_factory=list)  # only_manifests
    changed: list[str] = field(default_factory=list)  # files that changed while being read
    stamps: dict[Path, Stamp | None] = field(default_factory=dict, repr=False)
    newest_mtime: float = 0.0  # seconds since the epoch: the newest file or folder change
    #: Files whose content cannot be a complete write (it does not end in a newline: cut
    #: mid-line); the daemon treats their changes as unsettled (plan/settling.py).
    incomplete: list[str] = field(default_factory=list)

    @property
    def snapshot(self) -> tuple[tuple[str, Stamp | None], ...]:
        """What was read, comparable between loads: equal snapshots, unchanged manifests."""
        return tuple((str(path), self.stamps.get(path)) for path in self.files)

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


class _Checked(NamedTuple):
    """One document of a clean file as checked: what a later load of the unchanged file
    reuses instead of validating it again."""

    doc: Doc
    kind: str
    spec: SocketSpec | PolicySpec | ConnectorKindSpec
    #: the secrets a socket names, as (path shown, reference, Secret as resolved): read again from
    #: their sources on every load (`_Loader.resolved_again`); empty: it names none
    secrets: tuple[tuple[tuple[Any, ...], Any, Secret | None], ...] = ()


@dataclass
class ParsedFile:
    """A file in a parse cache (the daemon's `cache.ParseCache`, the CLI's
    `stored_cache.StoredParseCache`): its text parsed, and once a load found every document in
    it valid, those documents as checked (`_Checked`)."""

    text: str
    parsed: Any  # yamlpos.Parsed
    starts: list[Position]
    checked: list[_Checked] | None = None
    #: Its documents passed the schema checks before, under the same schemas (the CLI's
    #: parse cache stores only such files, under the schemas' digest): not checked again.
    schema_valid: bool = False


@dataclass
class _Loader:
    env: Mapping[str, str]
    resolve_secrets: bool
    strict: bool
    secret_roots: tuple[str, ...] = ()
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sockets: dict[str, SocketSpec] = field(default_factory=dict)
    policies: dict[str, PolicySpec] = field(default_factory=dict)
    connectors: dict[str, ConnectorKindSpec] = field(default_factory=dict)
    names: dict[tuple[str, str], Doc] = field(default_factory=dict)
    socket_docs: dict[str, Doc] = field(default_factory=dict)
    socket_refs: list[Doc] = field(default_factory=list)
    documents: int = 0
    skipped: int = 0
    stamps: dict[Path, Stamp | None] = field(default_factory=dict)
    cache: ParseCache | None = None
    incomplete: list[str] = field(default_factory=list)
    checked: list[_Checked] | None = None  # the file being read: its documents as checked
    schema_valid: bool = False  # the file being read: `ParsedFile.schema_valid`
    only_manifests: bool = False
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    #: the secrets the last `build_socket` resolved (`_Checked.secrets`)
    resolved: tuple[tuple[tuple[Any, ...], Any, Secret | None], ...] = ()

    def report(
        self,
        doc: Doc,
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
        before = stamp(path)  # a cached parse is of the file as it was then
        entry = self.cache.get(path) if self.cache is not None else None
        if entry is not None:
            self.stamps[path] = before
            if entry.checked is not None:  # unchanged and clean last time: not checked again
                self.replay(entry.checked)
                return
        else:
            entry = self.parse_file(path)
            if entry is None:
                return
            if self.cache is not None:
                self.cache.put(path, entry)
        text, (docs, syntax_error, duplicates), starts = entry.text, entry.parsed, entry.starts
        problems, documents, skipped = len(self.diagnostics), self.documents, self.skipped
        self.checked, self.schema_valid = [], entry.schema_valid
        self.read_documents(path, text, docs, syntax_error, duplicates, starts)
        clean = (len(self.diagnostics) == problems and self.skipped == skipped
                 and len(self.checked) == self.documents - documents)
        entry.checked, self.checked, self.schema_valid = (self.checked if clean else None), None, False

    def replay(self, checked: list[_Checked]) -> None:
        """A clean file's documents as its last load checked them; the secrets of a socket
        that names any are resolved again (never kept from an earlier load)."""
        for doc, kind, spec, secrets in checked:
            self.documents += 1
            if not self.register(kind, spec.name, doc):
                continue
            if isinstance(spec, PolicySpec):
                self.policies[spec.name] = spec
                continue
            if isinstance(spec, ConnectorKindSpec):  # token files are looked at again
                self.connectors[spec.name] = connector_spec(
                    doc.data, doc.source(), doc.file.path.parent) if spec.tokens else spec
                continue
            self.socket_refs.append(doc)  # its connectors are checked against this load's
            if secrets:
                spec = self.resolved_again(doc, spec, secrets)
                if spec is None:
                    continue
            self.sockets[spec.name] = spec
            self.socket_docs[spec.name] = doc

    def read_documents(self, path: Path, text: str, docs: list[Any], syntax_error: Any,
                       duplicates: list[Any], starts: list[Any]) -> None:
        if self.only_manifests and not mentions_ours(text):
            self.skipped_files.append((str(path), f"no apiVersion: {API_VERSION} in it"))
            return
        file = File(path, text, list(starts))
        if text and not text.endswith("\n"):
            self.incomplete.append(file.name)
        for problem in [*duplicates, *([syntax_error] if syntax_error else [])]:
            code = "yaml-syntax" if problem is syntax_error else "duplicate-key"
            self.diagnostics.append(_error(problem.message, file.name, problem.position, code=code))
        if syntax_error is not None or len(file.starts) != len(docs):
            file.starts = []  # unsure where documents start: compose the file for positions
        headless: list[int] = []  # mappings with neither apiVersion nor kind
        ours = False
        for index, data in enumerate(docs):
            if data is None:
                continue
            self.documents += 1
            verdict = classify(data)
            if verdict == "ours":
                ours = True
                self.read_document(file, index, data)
            elif verdict == "foreign":
                self.skipped += 1  # another tool's YAML (Kubernetes, CI, ...) in the same tree
            elif verdict == "headless":
                headless.append(index)
            else:
                self.report(Doc(file, index, {}), verdict, code="kind")
        for index in headless:
            if ours:  # next to our documents: a cut or half-written manifest, not a tool's
                self.report(
                    Doc(file, index, {}),
                    f"apiVersion and kind are required (apiVersion: {API_VERSION}, kind: "
                    "Socket, Policy or Connector); is this document cut short?",
                    code="kind",
                )
            else:
                self.skipped += 1

    def parse_file(self, path: Path) -> ParsedFile | None:
        """The text, its parsed documents and their starts, or None after reporting why not;
        the file's stamp as read goes to `stamps`."""
        try:
            raw, self.stamps[path] = read_manifest_file(path)
        except OSError as exc:
            reason = exc.strerror if isinstance(exc, FileTooLarge) else (
                f"cannot read file: {exc.strerror}"
            )
            self.diagnostics.append(_error(reason, str(path), code="io"))
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
        too_big = oversized_document(text)
        if too_big is not None:
            self.diagnostics.append(
                _error(f"document is {too_big[1]:,} bytes, over the limit of "
                       f"{MAX_DOCUMENT_BYTES:,} bytes per YAML document", str(path),
                       too_big[0], code="io")
            )
            return None
        if self.only_manifests and not mentions_ours(text):
            return ParsedFile(text, ([], None, []), [])  # not parsed: a Helm template is not YAML
        return ParsedFile(text, load_documents(text), document_starts(text))

    def read_document(self, file: File, index: int, data: dict[str, Any]) -> None:
        doc = Doc(file, index, data)
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
            self.report(doc, "kind is required (Socket, Policy or Connector)", code="kind")
            return
        if kind not in KINDS:
            close = difflib.get_close_matches(str(kind), KINDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.report(
                doc, f"kind: {kind!r} is not one of {', '.join(KINDS)}{hint}", ("kind",), code="kind"
            )
            return
        problems = []
        if not self.schema_valid and not quick_valid(kind, data):
            import reconciler.manifests.schema_messages as messages  # jsonschema: on use

            problems = [
                p
                for p in messages.humanize(schema_validator(kind).iter_errors(messages.capped(data)))
                if p.path[:1] != ("apiVersion",)
            ]
        for problem in problems:
            self.report(doc, with_name_hint(problem, data), problem.path, key=problem.at_key)
        name = name_of(data)
        if name is not None and not self.register(kind, name, doc):
            return
        self.socket_refs += [doc] if kind == "Socket" else []  # checked even when invalid
        if problems or version != API_VERSION:
            return
        if kind == "Socket":
            refs = secret_references(doc.data)
            spec = self.build_socket(doc, refs)
            if spec is not None:
                self.sockets[spec.name] = spec
                self.socket_docs[spec.name] = doc
                self.remember(doc, kind, spec)
            if message := legacy_message(doc.data):  # at the start: no parse for positions
                self.report(doc, message, code="legacy-model", severity=Severity.WARNING)
        elif kind == "Connector":
            connector = self.connectors[name] = connector_spec(  # type: ignore[index]
                doc.data, doc.source(), doc.file.path.parent)
            self.remember(doc, kind, connector)
        else:
            policy = self.policies[name] = policy_spec(doc.data, doc.source())  # type: ignore[index]
            self.remember(doc, kind, policy)

    def remember(self, doc: Doc, kind: str,
                 spec: SocketSpec | PolicySpec | ConnectorKindSpec) -> None:
        if self.checked is not None:
            secrets = self.resolved if kind == "Socket" else ()
            self.checked.append(_Checked(doc, kind, spec, secrets))

    def resolved_again(self, doc: Doc, spec: SocketSpec, secrets: Any) -> SocketSpec | None:
        """The socket's secrets read again from their sources (the environment, the files):
        when each reads as it did, the spec as checked (building it again is most of an
        unchanged tree's load, 4,000 secrets in 10,000 sockets); else built again."""
        base = doc.file.path.parent
        for path, value, before in secrets:
            if isinstance(value, dict) and "env" in value and before and self.resolve_secrets:
                if self.env.get(value["env"]) == before.value:  # the reference is as it was
                    continue
                return self.build_socket(doc)
            secret, issue = resolve_secret(
                value, path, base_dir=base, env=self.env, resolve=self.resolve_secrets,
                strict=self.strict, roots=self.secret_roots)
            if issue is not None or not _same(secret, before):
                return self.build_socket(doc)
        return spec

    def register(self, kind: str, name: str, doc: Doc) -> bool:
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

    def build_socket(self, doc: Doc, refs: list[tuple[tuple[Any, ...], Any]] | None = None
                     ) -> SocketSpec | None:
        """The socket's spec with its secrets resolved; None when a secret cannot be.
        `refs`: `secret_references(doc.data)` when the caller has them."""
        secrets: dict[tuple[Any, ...], Secret | None] = {}
        resolved = []
        failed = False
        data = legacy_form(doc.data)  # a migrated legacy-mode socket: as before migrate
        shown = legacy_paths(doc.data) if data is not None else {}
        if data is not None or refs is None:
            refs = secret_references(data or doc.data)
        data = data or doc.data
        for path, value in refs:
            secret, issue = resolve_secret(
                value,
                shown.get(path, path),
                base_dir=doc.file.path.parent,
                env=self.env,
                resolve=self.resolve_secrets,
                strict=self.strict,
                roots=self.secret_roots,
            )
            if issue is not None:
                severity = Severity.ERROR if issue.error else Severity.WARNING
                self.report(doc, issue.message, shown.get(path, path), code=issue.code,
                            severity=severity)
                failed = failed or issue.error
            limit = max_length("Socket", path)
            if secret is not None and limit is not None and len(secret.value) > limit:
                self.report(doc, f"{'.'.join(path)}: the value from {secret.origin} is "
                            f"{len(secret.value)} characters; border0 accepts at most {limit}",
                            path, code="limit")
                failed = True
            secrets[path] = secret
            if value is not None:
                resolved.append((shown.get(path, path), value, secret))
        self.resolved = tuple(resolved)
        return None if failed else socket_spec(data, doc.source(), secrets, doc.identity)

    def cross_check(self) -> None:
        """Policy and connector references: declared here, or listed as external."""
        declared = {name for kind, name in self.names if kind == "Policy"}
        connectors = {name for kind, name in self.names if kind == "Connector"}
        for doc, message, path in unknown_connectors(self.socket_refs, connectors):
            self.report(doc, message, path, code="missing-connector")
        declared_connectors = [(self.names[("Connector", name)], spec)
                               for name, spec in self.connectors.items()]
        for doc, message, path in shared_destinations(declared_connectors):
            self.report(doc, message, path, code="shared-destination")
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


def _same(a: Secret | None, b: Secret | None) -> bool:
    """The same secret from the same source (not a timing-safe comparison: both sides are
    ours, read from the environment or a file)."""
    if a is None or b is None:
        return a is b
    return (a.value, a.origin, a.declared) == (b.value, b.origin, b.declared)


def check_texts(texts: Mapping[str, str]) -> list[Diagnostic]:
    """What `validate` says of these files (name -> text) read together as one folder, never
    from disk: YAML, apiVersion and kind, the schemas, the per-document checks and the
    cross-checks (policies, connectors, names); secret references are checked for their shape
    only, as `validate` without `--env-file` does. `import` checks what it writes with it."""
    loader = _Loader(env={}, resolve_secrets=False, strict=False)
    for name, text in texts.items():
        loader.read_documents(Path(name), text, *load_documents(text), document_starts(text))
    loader.cross_check()
    return loader.diagnostics


def load(
    paths: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    resolve_secrets: bool = True,
    strict: bool = False,
    secret_roots: Sequence[str | os.PathLike[str]] | None = None,
    cache: ParseCache | None = None,
    exclude: Sequence[str] = (),
    only_manifests: bool = False,
) -> LoadResult:
    """Read every manifest under `paths` into `Desired`, collecting every problem found.

    With resolve_secrets=False (validate) secret references are checked for shape only and the
    resulting `Secret`s hold an empty value. With strict=True a plaintext password is an error.
    Secret files are read only under `secret_roots` (default `DEFAULT_SECRET_ROOTS`) and the
    manifests' folders. `changed` in the result lists files that changed while being read.
    A `cache` keeps parsed files between loads: the daemon's by file identity
    (`cache.ParseCache`), the CLI's on disk by content (`stored_cache.StoredParseCache`).
    `exclude`: files and folders left out (`files.excluded`). `only_manifests` (`validate
    --only-manifests`, never the daemon's: a file cut short must stop a prune) leaves out,
    unparsed, files with no `apiVersion: border0-reconciler/...` line (Helm charts, CI files).
    """
    if isinstance(paths, (str, os.PathLike)):  # one path given bare: not its characters
        paths = [paths]
    diagnostics: list[Diagnostic] = []

    def problem(file: str, message: str, is_error: bool) -> None:
        severity = Severity.ERROR if is_error else Severity.WARNING
        diagnostics.append(_diag(severity, message, file, None, "io" if is_error else "empty"))

    files = discover(paths, problem, exclude)
    loader = _Loader(
        env=os.environ if env is None else env,
        resolve_secrets=resolve_secrets,
        strict=strict,
        diagnostics=diagnostics,
        secret_roots=allowed_roots(secret_roots, paths),
        cache=cache,
        only_manifests=only_manifests,
    )
    if cache is not None:
        cache.retain(files)
    for path in files:
        loader.read_file(path)
    changed = changed_since(paths, files, loader.stamps)
    loader.cross_check()
    if cache is not None:
        cache.loaded()
    loader.diagnostics.sort(key=lambda d: (d.file or "", d.line or 0, d.column or 0))
    return LoadResult(
        desired=Desired(loader.sockets, loader.policies, loader.connectors),
        diagnostics=loader.diagnostics,
        files=files,
        documents=loader.documents,
        skipped=loader.skipped,
        skipped_files=loader.skipped_files,
        changed=changed,
        stamps=loader.stamps,
        newest_mtime=newest_change(paths, files, loader.stamps),
        incomplete=loader.incomplete,
    )
