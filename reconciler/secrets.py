"""The one home of the secret rules: the `Secret` type, the socket fields that hold secrets
(`SECRET_MANIFEST_PATHS`: every other module derives from it), the one redactor (`redact`,
`redaction_set`), the one walk over values that treats secrets specially (`walk`), and secret
fingerprints.

border0 does not read secrets back (the SDK and the Terraform provider never decode
`upstream_password`; the strict emulator omits it), so drift of a secret cannot be seen by
reading it. Instead, whenever the reconciler writes a secret it stores a *fingerprint* of the
value in a reserved tag of the socket, and the planner compares the manifest's value with it.

A fingerprint is scrypt (memory-hard, deliberately slow) of the value with a random 16-byte salt
per value: ``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>`` (base64url). The value cannot be read from
it, and guessing costs an scrypt per guess and per socket. The cost parameters travel in the
string, so they can be raised later without breaking older tags. Verifications are cached
in-process per (fingerprint, value) and can be run on a thread pool (`verify_many`): hashlib's
scrypt releases the GIL, and the daemon's later plans cost nothing (benchmarks/bench.py).

Nothing here keeps a fast digest of a value anywhere but in memory.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FINGERPRINT_TAG_PREFIX",
    "MIN_SECRET_LENGTH",
    "SECRET_FIELDS",
    "SECRET_MANIFEST_PATHS",
    "SECRET_TYPES",
    "SENSITIVE",
    "Fingerprint",
    "Secret",
    "fingerprint",
    "fingerprint_tag",
    "insert_secret_fields",
    "redact",
    "redaction_set",
    "secret_fields_in",
    "verify",
    "verify_many",
    "walk",
]

SENSITIVE = "(sensitive)"

#: The socket fields that hold secret values (model attribute, API body key and plan field are
#: the same name) and where a Socket manifest holds each. Its section (`upstream`, `protected`)
#: is the part of the socket it belongs to. Table order is the order fields are shown in.
SECRET_MANIFEST_PATHS: dict[str, tuple[str, ...]] = {
    "upstream_username": ("spec", "upstream", "username"),
    "upstream_password": ("spec", "upstream", "password"),
    "protected_password": ("spec", "protected", "password"),
}
SECRET_FIELDS = tuple(SECRET_MANIFEST_PATHS)
#: The non-secret field each section's secrets follow in the comparable forms and manifests.
_SECTION_ANCHOR = {"upstream": "upstream_http_hostname", "protected": "protected_username"}

#: Values shorter than this are not redacted: a two-letter "secret" would blank out every line.
MIN_SECRET_LENGTH = 3

#: Tag key prefix of a secret's fingerprint: `border0-reconciler/fp.upstream_password`.
#: Under model.RESERVED_TAG_PREFIX, so users cannot set it and it never shows as a label.
FINGERPRINT_TAG_PREFIX = "border0-reconciler/fp."

# scrypt cost: n = 2**10, r = 1 (128 KiB of memory), p = 1: about 1 ms per value on one core
# of the benchmark machine, so ~1,000 guesses a second a core, where a fast digest would allow
# billions. It is paid once per secret per plan: r = 8 made a cold plan of 10,000 sockets (4,000
# secrets) take 35 s instead of ~5 s (benchmarks/README.md). The tag records the parameters.
_LOG2_N, _R, _P = 10, 1, 1
_SALT_BYTES, _HASH_BYTES = 16, 24
_MAX_LOG2_N = 20  # refuse absurd parameters read from a tag (memory, time)


@dataclass(frozen=True)
class Secret:
    """A resolved secret value. Shown as ``(sensitive)``; compared by value in memory only."""

    value: str = field(repr=False)
    origin: str = "literal"  # "literal", "env:NAME" or "file:PATH": safe to show

    def __repr__(self) -> str:
        return f"Secret({SENSITIVE}, origin={self.origin!r})"

    def __str__(self) -> str:
        return SENSITIVE

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(other.value.encode("utf-8"), self.value.encode("utf-8"))
        return NotImplemented  # a Fingerprint compares itself (verify)

    def __hash__(self) -> int:
        return hash(("Secret", self.value))


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """A live socket's secret as far as we can know it: the fingerprint in its reserved tag.

    Equal to a `Secret` whose value it fingerprints (an scrypt, cached), so the planner's `==`
    of comparable forms works unchanged. Shown as ``(sensitive)`` like the secret itself.
    """

    text: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Fingerprint({SENSITIVE})"

    def __str__(self) -> str:
        return SENSITIVE

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return verify(other, self.text)
        if isinstance(other, Fingerprint):
            return other.text == self.text
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Fingerprint", self.text))


@functools.cache
def secret_fields_in(section: str) -> tuple[str, ...]:
    """The secret fields of one section of a socket (`upstream` or `protected`)."""
    return tuple(name for name, path in SECRET_MANIFEST_PATHS.items() if path[1] == section)


def insert_secret_fields(fields: Mapping[str, Any], value: Callable[[str], Any]) -> dict[str, Any]:
    """`fields` (a socket's non-secret fields, in order) with every secret field inserted after
    its section's anchor field (at the end when it has none), holding `value(name)`."""
    return {key: (value(key) if secret else fields[key])
            for key, secret in _secret_layout(tuple(fields))}


@functools.cache
def _secret_layout(keys: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """The merged key order for `keys` as (key, is a secret field), worked out once per key
    order: the planner builds two comparable forms per socket, 20,000 at 10,000 sockets."""
    out: list[tuple[str, bool]] = []
    for key in keys:
        out.append((key, False))
        for section, anchor in _SECTION_ANCHOR.items():
            if key == anchor:
                out += [(name, True) for name in secret_fields_in(section)]
    placed = {key for key, _ in out}
    out += [(name, True) for name in SECRET_FIELDS if name not in placed]
    return tuple(out)


def walk(
    value: Any, on_secret: Callable[[Any], Any], on_leaf: Callable[[Any], Any] = lambda v: v
) -> Any:
    """`value` copied as plain data: mappings become dicts with str keys, lists and tuples
    lists, a `Secret` or `Fingerprint` becomes `on_secret(it)`, anything else `on_leaf(it)`."""
    if isinstance(value, SECRET_TYPES):
        return on_secret(value)
    if isinstance(value, Mapping):
        return {str(k): walk(v, on_secret, on_leaf) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [walk(v, on_secret, on_leaf) for v in value]
    return on_leaf(value)


def redaction_set(values: Iterable[object]) -> tuple[str, ...]:
    """The values worth redacting (strings of `MIN_SECRET_LENGTH` or more), longest first, so a
    secret that contains another is replaced whole."""
    kept = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
    return tuple(sorted(kept, key=len, reverse=True))


def redact(text: str, values: Sequence[str]) -> str:
    """`text` with each of `values` (see `redaction_set`) replaced by ``(sensitive)``."""
    for value in values:
        if value and value in text:
            text = text.replace(value, SENSITIVE)
    return text


#: What holds a secret in memory: a manifest's value, or a live socket's fingerprint of one.
SECRET_TYPES = (Secret, Fingerprint)


def fingerprint_tag(field_name: str) -> str:
    """The tag key that holds the fingerprint of socket field `field_name`."""
    return FINGERPRINT_TAG_PREFIX + field_name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(value: str, salt: bytes, log2_n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        value.encode("utf-8"), salt=salt, n=2**log2_n, r=r, p=p, dklen=length,
        maxmem=256 * 2**log2_n * r + 2**20,
    )


def fingerprint(secret: Secret, salt: bytes | None = None) -> str:
    """A new fingerprint of `secret` (a fresh random salt unless one is given)."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = _scrypt(secret.value, salt, _LOG2_N, _R, _P, _HASH_BYTES)
    result = f"scrypt${_LOG2_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"
    _remember(result, secret.value, True)  # what we just wrote verifies without a second hash
    return result


def verify(secret: Secret, fp: str | None) -> bool:
    """True when `fp` is a fingerprint of `secret`; False for a missing or malformed one."""
    if not fp:
        return False
    return _verify_cached(fp, secret.value)


def verify_many(pairs: Iterable[tuple[Secret, str | None]], workers: int | None = None) -> None:
    """Verify many (secret, fingerprint) pairs on threads, filling the cache for `verify`."""
    todo = [(fp, s.value) for s, fp in pairs if fp]
    with _cache_lock:  # the daemon's later passes know them all: no thread for a lookup
        todo = [pair for pair in todo if pair not in _cache]
    if len(todo) < 2:
        for fp, value in todo:
            _verify_cached(fp, value)
        return
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(lambda pair: _verify_cached(*pair), todo))


_CACHE_SIZE = 200_000
_cache: dict[tuple[str, str], bool] = {}
_cache_lock = threading.Lock()


def _remember(fp: str, value: str, result: bool) -> None:
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()  # simple bound: a plan re-fills it
        _cache[(fp, value)] = result


def _verify_cached(fp: str, value: str) -> bool:
    with _cache_lock:
        known = _cache.get((fp, value))
    if known is None:
        known = _verify(fp, value)
        _remember(fp, value, known)
    return known


def _verify(fp: str, value: str) -> bool:
    parts = fp.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return False
    if not (1 <= log2_n <= _MAX_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16 and 8 <= len(expected)
            <= 64 and salt):
        return False
    try:
        actual = _scrypt(value, salt, log2_n, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)
