"""Is an upstream configuration one border0 takes? The SDK's rules, from the generated schema.

`schemas/upstream-configuration.schema.json` is generated from border0-go's `types/service`
structs and their `Validate` methods (scripts/gen_upstream_schema.py sdk): field names and
types, the sub-type enums, exactly one `*_service_configuration` block (and one block per
sub-type), hostname and port for the standard types. This module adds what the schema cannot
say: `service_type` must be the socket's type (terraform-provider-border0
internal/schemautil/upstream_config.go, ToUpstreamConfig: "default to socket type"), and Go's
reading of JSON (`null` is an unset field).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_FILE", "problems", "secret_fields"]

SCHEMA_FILE = "upstream-configuration.schema.json"
_MAX_PROBLEMS = 3
#: A deprecated alias the SDK still validates (types/service/configuration.go, "remove after
#: february 2025").
_ALIASES = {"subnet_router": ("subnet_router", "subnet_routes")}


def _schema_path() -> Path:
    package = Path(__file__).resolve().parents[2]
    for folder in (package / "schemas", package.parent / "schemas"):  # wheel, then source tree
        if (folder / SCHEMA_FILE).is_file():
            return folder / SCHEMA_FILE
    raise FileNotFoundError(f"{SCHEMA_FILE} is not installed with border0-reconciler")


@functools.cache
def _schema() -> dict[str, Any]:
    return json.loads(_schema_path().read_text())


@functools.cache
def _validator() -> Any:
    """jsonschema, for complete error reports; imported only when a configuration is bad
    (importing it takes up to seconds on a loaded host)."""
    import jsonschema

    return jsonschema.Draft202012Validator(_schema())


@functools.cache
def _is_valid() -> Any:
    """The yes/no check: jsonschema-rs when installed (a dependency; fast to import)."""
    try:
        from jsonschema_rs import validator_for
    except ImportError:  # pragma: no cover - jsonschema alone gives the same answers
        return _validator().is_valid
    return validator_for(_schema()).is_valid


@functools.cache
def secret_fields() -> frozenset[str]:
    """The JSON names the schema marks writeOnly: credentials, answered only by
    /socket/{id}/upstream_configurations."""
    return frozenset(name for d in _schema()["$defs"].values()
                     for name, p in d.get("properties", {}).items() if p.get("writeOnly"))


def _unset_nulls(value: Any) -> Any:
    """Go's encoding/json leaves a field unset for `null`: so does the check."""
    if isinstance(value, dict):
        return {k: _unset_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_unset_nulls(v) for v in value]
    return value


def problems(config: Any, socket_type: str) -> list[str]:
    """What is wrong with `config` for a socket of `socket_type` ([]: border0 takes it)."""
    if not isinstance(config, dict):
        return ["upstream_configuration must be an object"]
    config = _unset_nulls(config)
    service_type = config.get("service_type")
    allowed = _ALIASES.get(socket_type, (socket_type,))
    out: list[str] = []
    if service_type is not None and service_type not in allowed:
        out.append(f"upstream_configuration.service_type {service_type!r} does not fit a "
                   f"{socket_type} socket (use {allowed[0]!r})")
    if _is_valid()(config):
        return out
    errors = sorted(_validator().iter_errors(config), key=lambda e: (len(e.path), e.message))
    for error in _leaves(errors):
        where = ".".join(["upstream_configuration", *map(str, error.absolute_path)])
        out.append(f"{where}: {_message(error)}")
        if len(out) == _MAX_PROBLEMS:
            break
    return list(dict.fromkeys(out))


def _leaves(errors: list[Any]) -> list[Any]:
    """The most specific errors: an allOf/if-then failure is reported by what inside failed."""
    out = []
    for error in errors:
        if error.context and error.validator != "oneOf":
            out += _leaves(sorted(error.context, key=lambda e: len(e.path)))
        else:
            out.append(error)
    return out


def _message(error: Any) -> str:
    if error.validator == "not":  # the blocks of the other (sub-)types
        names = [r["required"][0] for r in error.validator_value.get("anyOf", [])]
        present = [n for n in names if n in error.instance]
        return f"{', '.join(present)} must not be set: one block, the chosen type's"
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field")
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {error.validator_value}"
    if error.validator == "oneOf":
        return "set exactly one of " + ", ".join(
            r["required"][0] for r in error.validator_value)
    if error.validator == "minLength":
        return "is required (empty)"
    if error.validator == "maxLength" and error.validator_value == 0:  # validateUsernameWith-
        return "must be empty when username_provider supplies it"  # Provider, SDK common.go
    if error.validator == "minimum" and error.instance == 0:
        return "is required (0)"
    return error.message
