"""Is this request one border0 knows? The one check, used by the emulator and the contract test.

`check(method, path, query, body)` answers a list of problems (empty: fine), each naming the
operation, parameter or field: an operation neither the reference OpenAPI copy
(reference_requests.json) nor the allow-list (allowlist.py) knows; a query parameter or body
field outside both; a field of the right name but the wrong type or too long. A body field only
border0's answers carry (socket_tcp_ports, created_at...) is reported as read-only.

How values are judged follows border0's server, a Go program: `null` is accepted anywhere
(encoding/json leaves the field unset), a number is never a string, and the OpenAPI copy's
`maxLength` limits are the server's validator tags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from reconciler.border0.emulator import allowlist

__all__ = ["body_schema", "check", "operation_of", "policy_data_schema"]

_MAX_PROBLEMS = 5
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "integer": (int,), "number": (int, float),
    "array": (list,), "object": (dict,),
}


@cache
def _reference() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("reference_requests.json").read_text()
    return json.loads(text)


@cache
def _operations() -> dict[str, tuple[re.Pattern[str], str]]:
    """'METHOD /template' -> (regex of the path, METHOD)."""
    keys = list(_reference()["operations"]) + list(allowlist.EXTRA_OPERATIONS)
    out = {}
    for key in keys:
        method, template = key.split(" ", 1)
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        out[key] = (re.compile(f"^{pattern}$"), method)
    return out


def operation_of(method: str, path: str) -> str | None:
    """The operation key ('PUT /socket/{socket_id_or_name}') for a concrete path, or None.
    A literal segment beats a parameter (`/policies/find` is not `/policies/{x}`)."""
    path = "/" + path.strip("/")
    matches = [key for key, (rx, m) in _operations().items() if m == method and rx.match(path)]
    return min(matches, key=lambda k: k.count("{"), default=None)


def body_schema(operation: str) -> dict[str, Any] | None:
    """The request body schema of an operation: the reference's, else the allow-list's."""
    entry = _reference()["operations"].get(operation)
    if entry is not None and "body" in entry:
        return _resolve(entry["body"])
    extra = allowlist.EXTRA_OPERATIONS.get(operation)
    return extra[0] if extra else None


def policy_data_schema(version: str) -> dict[str, Any]:
    """v1: the reference's NonParsedPolicyData; v2: the SDK's PolicyDataV2 (allowlist)."""
    if version == "v2":
        return allowlist.POLICY_DATA_V2
    return _resolve({"$ref": "#/schemas/policy.NonParsedPolicyData"})


def check(method: str, path: str, query: Iterable[str] = (), body: Any = None,
          *, stored_policy_version: str | None = None) -> list[str]:
    """Problems with one request (path relative to /api/v1); [] when border0 would take it.
    `stored_policy_version`: for PUT /policy/{id} without a version, the policy's own."""
    method = method.upper()
    operation = operation_of(method, path)
    if operation is None:
        return [f"{method} /{path.strip('/')}: an operation border0's API does not have"]
    problems = [f"unknown query parameter {q!r} for {operation}"
                for q in sorted(set(query)) if q not in _known_query(operation)]
    if body is None:
        return problems
    schema = body_schema(operation)
    if schema is None:
        return [*problems, f"{operation} takes no request body"]
    extras = {a.name for a in allowlist.ALLOWED_FIELDS if a.operation == operation}
    problems += _check_body(body, schema, extras, operation, stored_policy_version)
    return problems[:_MAX_PROBLEMS]


def _known_query(operation: str) -> set[str]:
    entry = _reference()["operations"].get(operation, {})
    return set(entry.get("query", ())) | {
        a.name for a in allowlist.ALLOWED_QUERY if a.operation == operation
    }


def _check_body(body: Any, schema: dict[str, Any], extras: set[str], operation: str,
                stored_version: str | None) -> list[str]:
    if not isinstance(body, dict):
        return ["the request body must be a JSON object"]
    properties = dict(schema.get("properties", {}))
    for name in extras:
        properties.setdefault(name, allowlist.FIELD_SCHEMAS.get(name, {}))
    problems = [f"missing required field {name!r}"
                for name in schema.get("required", ()) if body.get(name) is None]
    read_only = _answer_fields() - set(properties)
    for name, value in body.items():
        if name not in properties:
            kind = "read-only" if name in read_only else "unknown"
            problems.append(f"{kind} field {name!r}: {operation} does not take it")
            continue
        sub = properties[name]
        if name == "upstream_configuration":
            # The reference's service.Configuration predates the SDK's types/service (no http
            # scheme/headers, no kubernetes, aws_s3...): the store checks it against the
            # SDK's rules instead (upstream.py).
            sub = {"type": "object"}
        if name == "policy_data" and "/polic" in operation:
            version = body.get("version") or stored_version or "v1"
            sub = policy_data_schema(version if isinstance(version, str) else "v1")
            if version == "v2" and isinstance(value, dict) and "version" in value:
                problems.append("policy_data.version: a v2 policy carries its version at "
                                "the top level ('version': 'v2'), not in policy_data")
                value = {k: v for k, v in value.items() if k != "version"}
        problems += _check_value(value, sub, name)
    return problems


def _check_value(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    schema = _resolve(schema)
    if value is None or not schema:
        return []
    expected = schema.get("type") or ("object" if "properties" in schema else None)
    if expected in _TYPES:
        ok = isinstance(value, _TYPES[expected]) and not (
            isinstance(value, bool) and expected in ("integer", "number"))
        if not ok:
            return [f"{where}: expected {expected}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            return [f"{where}: longer than {schema['maxLength']} characters"]
        if len(value) < schema.get("minLength", 0):
            return [f"{where}: shorter than {schema['minLength']} characters"]
        return []
    if isinstance(value, list):
        items = schema.get("items", {})
        return [p for i, v in enumerate(value) for p in _check_value(v, items, f"{where}[{i}]")]
    if isinstance(value, dict):
        return _check_object(value, schema, where)
    return []


def _check_object(value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    properties = schema.get("properties")
    additional = schema.get("additionalProperties")
    if properties is None and not isinstance(additional, dict):
        return []  # a free-form object in the reference (e.g. integration configuration)
    problems = [f"{where}: missing required field {name!r}"
                for name in schema.get("required", ()) if value.get(name) is None]
    for name, item in value.items():
        if properties is not None and name in properties:
            problems += _check_value(item, properties[name], f"{where}.{name}")
        elif isinstance(additional, dict):
            problems += _check_value(item, additional, f"{where}.{name}")
        elif additional is not True:
            problems.append(f"{where}: unknown field {name!r}")
    return problems


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref` and one-element `allOf` (how the reference wraps a described $ref)."""
    for _ in range(20):
        if "$ref" in schema:
            schema = _reference()["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            break
    return schema


@cache
def _answer_fields() -> frozenset[str]:
    return frozenset(f for fields in _reference()["answer_fields"].values() for f in fields)
