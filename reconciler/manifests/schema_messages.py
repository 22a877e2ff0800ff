"""jsonschema's errors, reworded for people who write manifests.

jsonschema says ``'htp' is not one of ['http', 'https', ...]`` about an unnamed instance; a
manifest author wants ``spec.type: 'htp' is not one of http, https, ...`` and a hint. Schemas may
carry an ``errorMessage`` next to a rule (the ajv-errors convention, which editors also show);
it is used as the explanation.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.secrets import SECRET_MANIFEST_PATHS
from reconciler.upstream import is_secret_leaf

if TYPE_CHECKING:  # jsonschema is imported only when a document is invalid
    from jsonschema.exceptions import ValidationError

__all__ = ["Problem", "capped", "describe", "dotted", "humanize"]

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@dataclass(frozen=True)
class Problem:
    """One schema problem: where in the document, whether to point at the key, what is wrong."""

    path: tuple[Any, ...]
    message: str
    at_key: bool = False


def dotted(path: Sequence[Any]) -> str:
    """`("spec", "policies", 2)` -> `spec.policies[2]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def describe(value: Any, *, show: bool = True) -> str:
    """A YAML value as a user would name it (without the value itself when show=False)."""
    if value is None:
        return "nothing (null)"
    for kinds, word in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string")):
        if isinstance(value, kinds):
            if not show:
                return word
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            return f"{word} ({shown})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _suggest(word: Any, choices: Iterable[Any]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


#: The socket fields that hold secrets (legacy upstream, basic auth), as document paths.
_SECRET_FIELDS = frozenset(SECRET_MANIFEST_PATHS.values())


def _secret(path: tuple[Any, ...]) -> bool:
    """Whether `path` holds a secret, whose value is never echoed: every leaf the socket schema
    types as `$defs/secret`, i.e. a field of `secrets.SECRETS` or a secret leaf of a typed
    upstream (`upstream.is_secret_leaf`)."""
    return path in _SECRET_FIELDS or (
        path[:2] == ("spec", "upstream") and is_secret_leaf(path[2:]))


def _expected(error: ValidationError) -> str:
    types = error.validator_value
    return " or ".join(
        _TYPE_WORDS.get(t, t) for t in (types if isinstance(types, list) else [types])
    )


def _choices(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(v).lower() if isinstance(v, bool) else str(v) for v in values))


def _one(error: ValidationError) -> list[Problem]:
    path = tuple(error.absolute_path)
    where = dotted(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = schema.get("errorMessage")
    kind = error.validator
    value = error.instance

    if _secret(path) and not isinstance(value, dict):  # never echo a secret's value
        if kind == "type":
            got = describe(value, show=False)
            return [Problem(path, f"{where}: expected {_expected(error)}, got {got}")]
        if kind != "minLength":
            return [Problem(path, f"{where}: {hint or 'not a valid secret'}")]
    if "propertyNames" in error.relative_schema_path:
        note = hint or error.message
        return [Problem((*path, value), f"{where}: key {value!r} is not allowed: {note}", True)]
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extras = [k for k in value if k not in allowed] if isinstance(value, dict) else []
        problems = []
        for extra in extras:
            help_ = _suggest(extra, allowed) or (
                f" (allowed: {', '.join(allowed)})" if allowed else ""
            )
            problems.append(
                Problem((*path, extra), f"{where}: unknown field '{extra}'{help_}", True)
            )
        return problems
    if kind == "required":
        present = value if isinstance(value, dict) else {}
        missing = [name for name in error.validator_value if name not in present]
        note = f" ({hint})" if hint else ""
        return [
            Problem(path, f"{dotted((*path, name))} is required{note}", True) for name in missing
        ]
    if kind in ("maxItems", "maxProperties"):  # never the whole value: it may be huge
        what = "items" if kind == "maxItems" else "entries"
        size = getattr(value, "full_size", len(value)) if isinstance(value, (list, dict)) else 0
        count = f"{size:,} " if size else ""
        return [Problem(path, f"{where}: {count}{what}, over the limit of "
                              f"{error.validator_value:,}")]
    if hint and kind in ("const", "not", "anyOf", "oneOf", "minProperties", "maxProperties"):
        return [Problem(path, f"{where}: {hint}")]
    if kind == "type":
        return [Problem(path, f"{where}: expected {_expected(error)}, got {describe(value)}")]
    if kind == "enum":
        choices = _choices(error.validator_value)
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        note = f" ({hint})" if hint else _suggest(value, choices)
        return [Problem(path, f"{where}: {shown} is not one of {', '.join(choices)}{note}")]
    if kind == "const":
        return [Problem(path, f"{where}: must be {error.validator_value!r}")]
    if kind == "pattern":
        note = hint or f"must match {error.validator_value}"
        return [Problem(path, f"{where}: {value!r} is not valid: {note}")]
    if kind in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        span = f"{low}-{high}" if low is not None and high is not None else error.message
        return [Problem(path, f"{where}: {value} is out of range ({span})")]
    if kind == "minLength" and error.validator_value == 1:
        return [Problem(path, f"{where}: must not be empty")]
    if kind == "maxLength":
        return [Problem(path, f"{where}: longer than {error.validator_value} characters")]
    if kind == "minItems":
        return [Problem(path, f"{where}: must list at least {error.validator_value} item(s)")]
    if kind == "uniqueItems" and isinstance(value, list):
        seen: set[str] = set()
        dupes = [v for v in map(repr, value) if v in seen or seen.add(v)]
        return [Problem(path, f"{where}: {', '.join(dict.fromkeys(dupes))} listed more than once")]
    if kind in ("anyOf", "oneOf") and error.context:
        from jsonschema.exceptions import best_match

        return _one(best_match(error.context))
    return [Problem(path, f"{where}: {hint or error.message}")]


def humanize(errors: Iterable[ValidationError]) -> list[Problem]:
    """Readable problems, one per field and rule; a rule's own wording wins over a generic one."""
    chosen: dict[tuple[Any, ...], ValidationError] = {}
    for error in errors:
        key = (tuple(error.absolute_path), error.validator, str(error.instance)[:200])
        previous = chosen.get(key)
        if previous is None or (
            isinstance(error.schema, dict)
            and "errorMessage" in error.schema
            and not (isinstance(previous.schema, dict) and "errorMessage" in previous.schema)
        ):
            chosen[key] = error
    problems: list[Problem] = []
    for error in chosen.values():
        for problem in _one(error):
            if problem not in problems:
                problems.append(problem)
    return problems


#: The most entries any list or mapping of the schemas allows (policy condition lists); the
#: slow validator that words problems never sees more than one past it.
CAP = 1001


class _CappedList(list):  # type: ignore[type-arg]
    full_size = 0


class _CappedDict(dict):  # type: ignore[type-arg]
    full_size = 0


def capped(value: Any) -> Any:
    """`value` with every list and mapping cut to CAP entries (each remembering its full size
    as `full_size`): wording the problems of 35,000 labels took seconds, of 64+1 it takes none.
    Only for reporting: a document with a longer list is invalid anyway."""
    if isinstance(value, dict):
        out: Any = _CappedDict((k, capped(v)) for k, v in list(value.items())[:CAP])
    elif isinstance(value, list):
        out = _CappedList(capped(v) for v in value[:CAP])
    else:
        return value
    out.full_size = len(value)
    return out
