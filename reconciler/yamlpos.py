"""YAML parsing for manifests: fast when the file is fine, precise (line:column) when it is not.

Parsing goes through libyaml (`CSafeLoader`) when present, as plain Python data: composing
position-carrying nodes costs about as much again, so nodes are composed only for a file that
has a problem to point at. Where each document starts is found by a cheap line scan instead.

The loader follows YAML 1.2 where YAML 1.1 surprises people: `2025-01-31` stays a string (no
timestamps) and `18:00` stays a string (no base-60 integers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Loader", "Locator", "Position", "YamlSyntaxError", "document_starts", "load_documents"]

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader without YAML 1.1 timestamps and base-60 numbers."""


Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
        r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


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


def load_documents(text: str) -> tuple[list[Any], YamlSyntaxError | None]:
    """Every document of `text` (None for an empty one), and the syntax error that ended it."""
    docs: list[Any] = []
    loader = Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            try:
                docs.append(_build(node, set(), loader))
            except _Unusual:  # merge keys, explicit tags, odd keys: PyYAML's own way
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
        return docs, YamlSyntaxError(f"YAML syntax error: {problem}{context}", where)
    except yaml.YAMLError as exc:  # reader errors: unprintable characters and the like
        return docs, YamlSyntaxError(f"YAML error: {exc}", None)
    finally:
        loader.dispose()
    return docs, None


class _Unusual(Exception):
    """A node the fast path leaves to PyYAML's constructor."""


class _Cyclic(Exception):
    """A node that contains itself through an alias."""


_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_SCALARS = tuple(f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float"))


def _build(node: yaml.Node, active: set[int], loader: Any) -> Any:
    """Plain data from a composed node, several times faster than PyYAML's generic constructor."""
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        if tag == _STR:
            return node.value
        if tag not in _SCALARS:
            raise _Unusual
        return loader.yaml_constructors[tag](loader, node)
    if id(node) in active:
        raise _Cyclic
    active.add(id(node))
    try:
        if tag == _SEQ:
            return [_build(item, active, loader) for item in node.value]
        if tag != _MAP:
            raise _Unusual
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag != _STR:
                key = _build(key_node, active, loader)
                if isinstance(key, (list, dict)) or key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Unusual
            else:
                key = key_node.value
            out[key] = _build(value_node, active, loader)
        return out
    finally:
        active.discard(id(node))


def _is_marker(line: str, marker: str) -> bool:
    return line.startswith(marker) and (len(line) == 3 or line[3] in " \t")


def document_starts(text: str) -> list[Position]:
    """Where each document begins (its first content line), aligned with `load_documents`.

    A cheap scan of `---`/`...` markers at column 1; callers compare the count with the parsed
    documents and fall back to `Locator` when they differ.
    """
    starts: list[Position] = []
    open_doc = False  # inside a document whose start is recorded
    pending: int | None = None  # index of an explicit document still waiting for content
    for number, line in enumerate(text.splitlines(), start=1):
        if _is_marker(line, "---"):
            open_doc = True
            rest = line[3:].strip()
            starts.append(Position(number, 1))
            pending = None if rest and not rest.startswith("#") else len(starts) - 1
            if pending is None:
                starts[-1] = Position(number, 5)
            continue
        if _is_marker(line, "..."):
            open_doc, pending = False, None
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not open_doc:
            if line.startswith("%"):
                continue
            starts.append(Position(number, len(line) - len(line.lstrip()) + 1))
            open_doc = True
        elif pending is not None:
            starts[pending] = Position(number, len(line) - len(line.lstrip()) + 1)
            pending = None
    return starts


class Locator:
    """Positions of paths inside the documents of one file, from composed nodes (built once)."""

    def __init__(self, text: str) -> None:
        self._nodes: list[yaml.Node | None] = []
        loader = Loader(text)
        try:
            while loader.check_node():
                self._nodes.append(loader.get_node())
        except yaml.YAMLError:
            pass  # the syntax error is reported elsewhere; documents before it are kept
        finally:
            loader.dispose()

    def document(self, index: int) -> Position | None:
        node = self._nodes[index] if index < len(self._nodes) else None
        return _mark_position(node.start_mark) if node is not None else None

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
                    return _mark_position(best)
                if not key:
                    best = node.start_mark
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    return _mark_position(best)
                node = node.value[part]
                best = node.start_mark
            else:
                return _mark_position(best)
        return _mark_position(best)
