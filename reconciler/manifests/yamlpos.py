"""YAML parsing for manifests: fast when the file is fine, precise (line:column) when it is not.

Parsing goes through libyaml (`CSafeLoader`) when present, as plain Python data: composing
position-carrying nodes costs about as much again, so nodes are composed only for a file that
has a problem to point at. Where each document starts is found by a cheap line scan instead.

The loader follows YAML 1.2 where YAML 1.1 surprises people: `2025-01-31` stays a string (no
timestamps) and `18:00` stays a string (no base-60 integers).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml

__all__ = [
    "PARSER",
    "Loader",
    "Locator",
    "Parsed",
    "Position",
    "PureLoader",
    "YamlSyntaxError",
    "document_starts",
    "load_documents",
    "oversized_document",
]

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: The parser that runs: "CSafeLoader" (libyaml) wherever PyYAML was built with it, else the
#: pure-Python "SafeLoader" (same data, same positions; several times slower).
PARSER = _Base.__name__

_INT = re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
)
_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
    r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_TAG_OF_SCALAR: dict[str, str] = {}  # plain scalar -> its resolved tag (keys repeat a lot)
_DEFAULTS = {
    yaml.ScalarNode: "tag:yaml.org,2002:str",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
    yaml.MappingNode: "tag:yaml.org,2002:map",
}


def _resolve(self: Any, kind: Any, value: Any, implicit: Any) -> str:
    """PyYAML's resolver without path resolvers (we have none), memoised for plain scalars
    (both loaders resolve alike, so they share the memo)."""
    if kind is yaml.ScalarNode and implicit[0]:
        tag = _TAG_OF_SCALAR.get(value)
        if tag is None:
            tag = yaml.resolver.BaseResolver.resolve(self, kind, value, implicit)
            if len(_TAG_OF_SCALAR) > 100_000:
                _TAG_OF_SCALAR.clear()
            _TAG_OF_SCALAR[value] = tag
        return tag
    return _DEFAULTS[kind]


def _nothing(self: Any, *args: Any) -> None:
    return None


def _guarded(construct: Any) -> Any:
    """A scalar constructor whose failures are YAML errors at the scalar: PyYAML's own raise
    ValueError, KeyError or AttributeError for `!!int abc`, `!!bool maybe`, `!!timestamp x`
    and for an integer over Python's 4,300 digits, which escaped as an internal error."""

    def guarded(self: Any, node: Any) -> Any:
        try:
            return construct(self, node)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            tag = node.tag.rsplit(":", 1)[-1]
            digits = len(node.value.lstrip("+-").replace("_", ""))
            limit = sys.get_int_max_str_digits()
            problem = (  # the value is never shown: it may be a secret
                f"an integer of {digits:,} digits, over the limit of {limit:,} digits"
                if tag == "int" and digits > limit else f"not a valid !!{tag} value"
            )
            raise yaml.constructor.ConstructorError(
                None, None, problem, node.start_mark
            ) from None

    return guarded


def _yaml12(base: type) -> type:
    """A safe loader on `base` without YAML 1.1 timestamps and base-60 numbers."""
    loader = type(f"Yaml12{base.__name__}", (base,), {
        "__doc__": "Safe loader without YAML 1.1 timestamps and base-60 numbers.",
        "resolve": _resolve,
        "descend_resolver": _nothing,
        "ascend_resolver": _nothing,
    })
    loader.yaml_implicit_resolvers = {
        first: [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag not in (
                "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        ]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    for name in ("int", "float", "bool", "timestamp"):
        tag = f"tag:yaml.org,2002:{name}"
        loader.add_constructor(tag, _guarded(base.yaml_constructors[tag]))
    loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
    loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    return loader


#: The loader every manifest goes through (libyaml where installed).
Loader: Any = _yaml12(_Base)
#: The pure-Python loader: what runs where PyYAML has no libyaml (tests run both).
PureLoader: Any = _yaml12(yaml.SafeLoader)


@dataclass(frozen=True)
class Position:
    """1-based line and column."""

    line: int
    column: int


class YamlSyntaxError(Exception):
    def __init__(self, message: str, position: Position | None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def _mark_position(mark: Any) -> Position | None:
    if mark is None:
        return None
    return Position(mark.line + 1, mark.column + 1)


class Parsed(NamedTuple):
    docs: list[Any]  # every document (None for an empty one) up to a syntax error
    error: YamlSyntaxError | None  # the syntax error that ended the parse
    duplicates: list[YamlSyntaxError]  # duplicate mapping keys (the last value was kept)


def load_documents(text: str, loader_class: Any = None) -> Parsed:
    """Every document of `text`, the syntax error that ended it, and duplicate keys
    (`loader_class`: `Loader` unless told, e.g. `PureLoader`)."""
    docs: list[Any] = []
    duplicates: list[YamlSyntaxError] = []
    loader = (loader_class or Loader)(text)
    aliases = "&" in text and "*" in text  # only anchors and aliases can repeat nodes
    try:
        while loader.check_node():
            node = loader.get_node()
            try:
                if aliases:
                    _check_expanded_size(node)
                docs.append(_build(node, (set(), loader, duplicates)))
            except _Unusual:  # merge keys, explicit tags, odd keys: PyYAML's own way
                _check_depth(node)
                docs.append(loader.construct_document(node))
            except _Cyclic:
                raise yaml.MarkedYAMLError(
                    problem="recursive alias (a node that contains itself)",
                    problem_mark=node.start_mark,
                ) from None
            except RecursionError:
                raise yaml.MarkedYAMLError(
                    problem="document nested too deeply", problem_mark=node.start_mark
                ) from None
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        where = _mark_position(exc.problem_mark) or _mark_position(exc.context_mark)
        error = YamlSyntaxError(f"YAML syntax error: {problem}{context}", where)
        return Parsed(docs, error, duplicates)
    except RecursionError:  # the pure-Python composer recurses per level
        error = YamlSyntaxError("YAML syntax error: document nested too deeply", None)
        return Parsed(docs, error, duplicates)
    except yaml.YAMLError as exc:  # reader errors: unprintable characters and the like
        return Parsed(docs, YamlSyntaxError(f"YAML error: {exc}", None), duplicates)
    finally:
        loader.dispose()
    return Parsed(docs, None, duplicates)


#: Aliases repeat nodes: nine aliases of nine aliases of ... ("billion laughs") expand a few
#: hundred bytes into billions of values. A document that would expand to more is refused.
MAX_EXPANDED_NODES = 1_000_000
#: Aliases repeat text too: six levels of nine aliases of one 30,000-character string are only
#: 600,000 values but 16 GB of text, which a schema message (`'...' is not of type 'object'`,
#: jsonschema words it from the whole value) spelled out until memory ran out. Bounds the
#: characters of the document's scalars with every alias expanded.
MAX_EXPANDED_CHARS = 16 * 1024 * 1024


def _check_expanded_size(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it past MAX_EXPANDED_NODES values or
    MAX_EXPANDED_CHARS characters of scalars (linear time: each node's expanded size is
    computed once)."""
    sizes: dict[int, tuple[int, int]] = {}  # node -> (values, characters) once expanded
    active: set[int] = set()

    def size(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            return known
        if key in active:  # a cycle: _build reports it
            return 1, 0
        total, chars = 1, 0
        if isinstance(node, yaml.ScalarNode):
            chars = len(node.value)
        else:
            active.add(key)
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            else:
                children = [part for pair in node.value for part in pair]
            for child in children:
                values, text = size(child)
                total, chars = total + values, chars + text
                if total > MAX_EXPANDED_NODES or chars > MAX_EXPANDED_CHARS:
                    raise yaml.MarkedYAMLError(
                        problem=f"document expands to more than {MAX_EXPANDED_NODES:,} values "
                        f"or {MAX_EXPANDED_CHARS:,} characters through aliases (an alias bomb?)",
                        problem_mark=root.start_mark,
                    )
            active.discard(key)
        sizes[key] = total, chars
        return total, chars

    size(root)


#: The deepest nesting of lists and mappings in a document (manifests need about 8): the
#: steps after parsing recurse per level (the schema check, its messages), and a mapping
#: 400 levels deep exhausted Python's stack there, an internal error instead of a message.
MAX_DEPTH = 100


def _too_deep(node: yaml.Node) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(
        problem=f"document nested more than {MAX_DEPTH} levels deep",
        problem_mark=node.start_mark,
    )


def _check_depth(root: yaml.Node) -> None:
    """Refuse a document nested deeper than MAX_DEPTH (the nodes PyYAML's constructor builds;
    `_build` counts its own levels). Iterative, and ends on a cycle: it is only ever deeper."""
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            continue
        if depth >= MAX_DEPTH:
            raise _too_deep(node)
        children = node.value if isinstance(node, yaml.SequenceNode) else [
            part for pair in node.value for part in pair]
        stack.extend((child, depth + 1) for child in children)


class _Unusual(Exception):
    """A node the fast path leaves to PyYAML's constructor."""


class _Cyclic(Exception):
    """A node that contains itself through an alias."""


_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_SCALARS = tuple(f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float"))


def _build(node: yaml.Node, ctx: tuple[set[int], Any, list[YamlSyntaxError]]) -> Any:
    """Plain data from a composed node, several times faster than PyYAML's generic constructor."""
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        if tag == _STR:
            return node.value
        if tag not in _SCALARS:
            raise _Unusual
        loader = ctx[1]
        return loader.yaml_constructors[tag](loader, node)
    active = ctx[0]
    if id(node) in active:
        raise _Cyclic
    active.add(id(node))
    if len(active) > MAX_DEPTH:  # `active` holds the containers from the root to here
        raise _too_deep(node)
    try:
        if tag == _SEQ:
            return [_build(item, ctx) for item in node.value]
        if tag != _MAP:
            raise _Unusual
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag != _STR:
                key = _build(key_node, ctx)
                if isinstance(key, (list, dict)):
                    raise _Unusual
            else:
                key = key_node.value
            if key in out:
                _duplicate(node, key_node, ctx[2])
            out[key] = _build(value_node, ctx)
        return out
    finally:
        active.discard(id(node))


def _duplicate(
    mapping: yaml.MappingNode, key_node: yaml.Node, found: list[YamlSyntaxError]
) -> None:
    first = next(k for k, _ in mapping.value if k.value == key_node.value)
    line = first.start_mark.line + 1
    found.append(
        YamlSyntaxError(
            f"duplicate key '{key_node.value}' (also on line {line}; the last one would win)",
            _mark_position(key_node.start_mark),
        )
    )


_MARKER = re.compile(r"^(?:---|\.\.\.)(?=[ \t]|\r?$)", re.MULTILINE)
_CONTENT = re.compile(r"^[ \t]*[^\s#%]", re.MULTILINE)


#: The largest YAML document parsed: composing nodes costs about 100 bytes of memory per byte
#: of a dense document, so one document of `key: value` lines is limited before it is parsed.
MAX_DOCUMENT_BYTES = 64 * 1024


def oversized_document(text: str) -> tuple[Position, int] | None:
    """Where the first document over MAX_DOCUMENT_BYTES starts, and its size; None if none."""
    start, line = 0, 1
    for marker in [*_MARKER.finditer(text), None]:
        end = marker.start() if marker else len(text)
        if end - start > MAX_DOCUMENT_BYTES:
            return Position(line, 1), end - start
        line += text.count("\n", start, end)
        start = end
    return None


def document_starts(text: str) -> list[Position]:
    """Where each document begins (its first content line), aligned with `load_documents`.

    A cheap scan of `---`/`...` markers at column 1; callers compare the count with the parsed
    documents and fall back to `Locator` when they differ.
    """
    starts: list[Position] = []
    open_doc = False  # inside a document whose start is recorded
    pending: int | None = None  # index of an explicit document still waiting for content
    pos, line = 0, 1  # where the unscanned text starts, and its line number

    def content(end: int) -> Position | None:
        found = _CONTENT.search(text, pos, end)
        if found is None:
            return None
        return Position(line + text.count("\n", pos, found.start()), found.end() - found.start())

    for marker in [*_MARKER.finditer(text), None]:
        end = marker.start() if marker else len(text)
        if not open_doc or pending is not None:
            first = content(end)
            if first is not None and pending is not None:
                starts[pending], pending = first, None
            elif first is not None:
                starts.append(first)
                open_doc = True
        if marker is None:
            break
        line += text.count("\n", pos, end)
        eol = text.find("\n", marker.end())
        eol = len(text) if eol < 0 else eol
        if text.startswith("---", end):
            open_doc = True
            rest = text[marker.end() : eol]
            if rest.strip() and not rest.strip().startswith("#"):
                starts.append(Position(line, 4 + len(rest) - len(rest.lstrip())))
                pending = None
            else:
                starts.append(Position(line, 1))
                pending = len(starts) - 1
        else:
            open_doc, pending = False, None
        pos, line = eol + 1, line + 1
    return starts


class Locator:
    """Positions of paths inside the documents of one file, from composed nodes (built once)."""

    def __init__(self, text: str, line_offset: int = 0, loader_class: Any = None) -> None:
        """`text` may be a slice of a file that starts `line_offset` lines into it."""
        self._offset = line_offset
        self._nodes: list[yaml.Node | None] = []
        loader = (loader_class or Loader)(text)
        try:
            while loader.check_node():
                self._nodes.append(loader.get_node())
        except yaml.YAMLError:
            pass  # the syntax error is reported elsewhere; documents before it are kept
        finally:
            loader.dispose()

    def document(self, index: int) -> Position | None:
        node = self._nodes[index] if index < len(self._nodes) else None
        return self._position(node.start_mark) if node is not None else None

    def _position(self, mark: Any) -> Position:
        return Position(mark.line + 1 + self._offset, mark.column + 1)

    def find(self, index: int, path: Sequence[Any], *, key: bool = False) -> Position | None:
        """Where the value at `path` is (its key with key=True), else its nearest parent."""
        node = self._nodes[index] if index < len(self._nodes) else None
        if node is None:
            return None
        best = node.start_mark
        for part in path:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        best = key_node.start_mark
                        node = value_node
                        break
                else:
                    return self._position(best)
                if not key:
                    best = node.start_mark
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    return self._position(best)
                node = node.value[part]
                best = node.start_mark
            else:
                return self._position(best)
        return self._position(best)
