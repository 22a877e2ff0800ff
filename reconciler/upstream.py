"""A socket's typed upstream: the manifest's camelCase `spec.upstream` and border0's
`upstream_configuration`, both ways.

The manifest mirrors border0-go `types/service` (configuration.go and the per-type files) key by
key: every SDK JSON name is written in camelCase (`standard_ssh_service_configuration` ->
`standardSshServiceConfiguration`), so the mapping is mechanical and complete for every type the
SDK has, and docs/connectors.md's table follows from it. Keys inside free-form maps
(`namespaceSelectorsAllowlist`) are user data and are not converted.

Secrets: a leaf named in `SECRET_KEYS` holds `{env: NAME}`, `{file: PATH}` or a string. A string
starting with `from:` (`from:env:`, `from:file:`, `from:aws:ssm:`, `from:aws:secretsmanager:`) is a
reference border0's connector resolves on its own host (border0-cli `lib/varsource`): it is sent
as written and compared as plain text, so border0 never holds the secret. Other secrets are sent
as values and compared by one fingerprint over all of them (border0 need not answer them).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.secrets import Secret

__all__ = [
    "REFERENCE_PREFIXES",
    "SECRET_KEYS",
    "SERVICE_TYPES",
    "combined_secret",
    "is_reference",
    "is_secret_leaf",
    "is_typed",
    "secret_paths",
    "strip_secrets",
    "to_api",
    "to_manifest",
]

#: Socket types the SDK knows (types/service/configuration.go ServiceType*); a manifest's
#: `https` is an http socket. The upstream's service_type equals the socket type.
SERVICE_TYPES = (
    "http", "ssh", "tls", "database", "vnc", "rdp", "vpn", "kubernetes", "subnet_router",
    "exit_node", "snowflake", "elasticsearch", "aws_s3", "aws_access",
)

#: SDK JSON leaf names that hold credentials (types/service/*.go, types/common/aws.go).
#: `key` is TlsConfig's private key; a header's `key` (under `headers`) is not a secret.
SECRET_KEYS = frozenset({
    "password", "private_key", "aws_secret_access_key", "aws_session_token", "token",
    "client_key_data", "key", "gcp_credentials_json",
})
#: Leaves under these keys are user data (map keys), not SDK names.
_FREE_FORM = frozenset({"namespace_selectors_allowlist"})
#: Secret-named keys under these are not secrets.
_NOT_SECRET_UNDER = frozenset({"headers", "namespace_selectors_allowlist"})


#: The keys of a secret given as {env: NAME} or {file: PATH}, with `secret: true` or not.
_REFERENCE_KEYS = frozenset({"env", "file", "secret"})

REFERENCE_PREFIXES = ("from:env:", "from:file:", "from:aws:ssm:", "from:aws:secretsmanager:")

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def is_reference(value: Any) -> bool:
    """A secret border0's connector resolves on its host (sent as written, never a value)."""
    return isinstance(value, str) and value.startswith(REFERENCE_PREFIXES)


def is_secret_leaf(path: Sequence[Any]) -> bool:
    """Whether `path` (keys below `spec.upstream`, manifest or SDK names) is a secret leaf: its
    last key is named in `SECRET_KEYS` and no key above it is `headers` or a free-form map. The
    rule `secret_paths` and `strip_secrets` apply as they walk, for one path; every leaf the
    socket schema types as `$defs/secret` below `spec.upstream` is one. A list index above it
    does not make it plain (no SDK secret sits in a list, and callers ask to be careful)."""
    if not path or not isinstance(path[-1], str) or snake(path[-1]) not in SECRET_KEYS:
        return False
    return not any(isinstance(key, str) and snake(key) in _NOT_SECRET_UNDER for key in path[:-1])


def is_typed(upstream: Mapping[str, Any] | None) -> bool:
    """Whether a manifest's `spec.upstream` is the typed form (it names `serviceType`)."""
    return bool(upstream) and "serviceType" in upstream  # type: ignore[operator]


@functools.lru_cache(maxsize=4096)
def snake(key: str) -> str:
    """`standardSshServiceConfiguration` -> `standard_ssh_service_configuration`; cached: the
    same few hundred SDK names recur in every socket (a regex per key was most of a typed
    manifest's load)."""
    return _CAMEL.sub(r"_\1", key).lower()


@functools.lru_cache(maxsize=4096)
def camel(key: str) -> str:
    first, *rest = key.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _convert(value: Any, rename: Callable[[str], str], free: bool = False) -> Any:
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, (dict, Mapping)):
        out = {}
        for key, item in value.items():
            new = key if free else rename(key)
            out[new] = item if isinstance(item, _LEAVES) else _convert(
                item, rename, free or snake(new) in _FREE_FORM)
        return out
    if isinstance(value, list):
        return [_convert(v, rename, free) for v in value]
    return value


def secret_paths(upstream: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Paths (manifest names) of the secret leaves given as {env}/{file} or a plain string.
    (Lists are not walked: no SDK secret sits in one.)"""
    found: list[tuple[str, ...]] = []

    def visit(value: Mapping[str, Any], path: tuple[str, ...], plain: bool) -> None:
        # plain: under `headers` or a free-form map, where secret-named keys are user data
        for key, item in value.items():
            name = snake(key)
            secret = not plain and name in SECRET_KEYS
            if isinstance(item, _LEAVES):  # most leaves: no ABC check
                if secret and isinstance(item, str) and not is_reference(item):
                    found.append((*path, key))
            elif isinstance(item, (dict, Mapping)):
                if secret and item.keys() <= _REFERENCE_KEYS:
                    found.append((*path, key))
                else:
                    visit(item, (*path, key), plain or name in _NOT_SECRET_UNDER)
            elif secret and isinstance(item, str) and not is_reference(item):
                found.append((*path, key))

    visit(upstream, (), False)
    return found


def to_api(
    upstream: Mapping[str, Any], secrets: Mapping[tuple[str, ...], Secret]
) -> dict[str, Any]:
    """border0's `upstream_configuration` for a typed manifest upstream; `secrets` (by
    `secret_paths` path) hold the resolved values, which the result holds as `Secret`s."""
    data: Any = _convert(upstream, snake)  # a new tree: the manifest's data is not touched
    for path, secret in secrets.items():  # SDK names all the way (never under a free-form map)
        node = data
        for key in path[:-1]:
            node = node[snake(key)]
        node[snake(path[-1])] = secret
    return data


def to_manifest(config: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's camelCase form of an `upstream_configuration` (import); empty values and
    secret values dropped (references kept)."""
    plain, _ = strip_secrets(config)
    out = _convert(plain, camel)
    if out.get("serviceType"):  # the block is required even when empty (exit_node: {})
        out.setdefault(camel(f"{out['serviceType']}_service_configuration"), {})
    return out


def strip_secrets(config: Any) -> tuple[Any, dict[str, Any]]:
    """(config without secret values and empty leaves, {dotted path: secret}). References stay
    in the config: they are plain text. Empty values (None, "", [], {}) are dropped so that
    the SDK's omitempty and border0's defaults compare equal."""
    secrets: dict[str, Any] = {}

    def clean(value: Any, path: tuple[str, ...], plain: bool) -> Any:
        # plain: under `headers` or a free-form map, where secret-named keys are user data.
        # A dict or list with nothing to take out is returned itself, not copied: the split
        # shares what it can with `config` (neither is ever mutated), which at 100,000
        # sockets is 100 MB and a tenth of a second less.
        if isinstance(value, _LEAVES):  # most nodes: no ABC check, no path built
            return value
        if isinstance(value, (dict, Mapping)):
            out = {}
            same = type(value) is dict
            for key, item in value.items():
                name = snake(key)
                if not plain and name in SECRET_KEYS and (
                    isinstance(item, Secret) or (isinstance(item, str) and not is_reference(item))
                ):
                    if item not in ("", None):
                        secrets[".".join((*path, key))] = item
                    same = False
                    continue
                if not isinstance(item, _LEAVES):
                    cleaned = clean(item, (*path, key), plain or name in _NOT_SECRET_UNDER)
                    same = same and cleaned is item
                    item = cleaned
                if item is not None and (item or type(item) not in _EMPTIABLE):
                    out[key] = item
                else:  # None, "", [] or {} (0 and False are values)
                    same = False
            return value if same else out
        if isinstance(value, list):
            items = [clean(v, path, plain) for v in value]
            return value if all(a is b for a, b in zip(items, value)) else items
        return value

    return clean(config, (), False), secrets


#: Scalars `strip_secrets` keeps as they are (a secret-named key is checked before).
_LEAVES = (str, int, float, type(None))
#: What `strip_secrets` drops when empty (built once: `in (None, "", [], {})` made a list and
#: a dict at every key).
_EMPTIABLE = frozenset({str, list, dict})


def combined_secret(secrets: Mapping[str, Any]) -> Secret | None:
    """One `Secret` standing for every secret value of an upstream (compared by one
    fingerprint tag); None when there is none, or when one is not resolved (validate, `ls`
    without an env file: an empty value), so that nothing is compared."""
    if not secrets or any(isinstance(s, Secret) and not s.value for s in secrets.values()):
        return None
    values = {path: (s.value if isinstance(s, Secret) else str(s)) for path, s in secrets.items()}
    return Secret(json.dumps(values, sort_keys=True), "upstream")
