"""The one home of the secret rules: the `Secret` type, the socket fields that hold secrets
(`SECRET_MANIFEST_PATHS`: every other module derives from it), the one redactor (`redact`,
`redaction_set`), the one walk over values that treats secrets specially (`walk`), and secret
fingerprints.

border0 does not read secrets back (the SDK and the Terraform provider never decode
`upstream_password`; the strict emulator omits it), so drift of a secret cannot be seen by
reading it. Instead, whenever the reconciler writes a secret it stores a *fingerprint* of the
value in a reserved tag of the socket, and the planner compares the manifest's value with it.

Tags are readable by every member of the organization, so a fingerprint is keyed:
``hmac-sha256$<key id>$<salt>$<mac>`` (base64url), HMAC-SHA256 of a random 16-byte salt and the
value under a key only the reconciler holds (`load_fingerprint_key`: the environment variable
`BORDER0_RECONCILER_FINGERPRINT_KEY`, else a 0600 file in its state folder). Without the key a
tag gives no way to test a guess; with it a check takes microseconds. The key id (a MAC of a
constant) tells a fingerprint made with another key: it no longer verifies, and the planner
says so when it writes the secret again, once. Fingerprints of older versions (unkeyed scrypt,
``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``) still verify, so an upgrade writes no secret.

Nothing here keeps a fast digest of a value anywhere but in memory.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from reconciler.secret_key import (
    FINGERPRINT_KEY_ENV,
    FINGERPRINT_KEY_FILE,
    FingerprintKeyError,
    load_fingerprint_key,
)

__all__ = [
    "FINGERPRINT_KEY_ENV",
    "FINGERPRINT_KEY_FILE",
    "FINGERPRINT_TAG_PREFIX",
    "MIN_SECRET_LENGTH",
    "SCRUBBED_FIELDS",
    "SECRETS",
    "SECRET_FIELDS",
    "SECRET_MANIFEST_PATHS",
    "SECRET_TYPES",
    "SENSITIVE",
    "Fingerprint",
    "FingerprintKeyError",
    "Secret",
    "SecretField",
    "fingerprint",
    "fingerprint_tag",
    "foreign_key",
    "insert_secret_fields",
    "is_mask",
    "keyed_digest",
    "legacy_fingerprint",
    "load_fingerprint_key",
    "redact",
    "redaction_set",
    "scrubbed",
    "secret_fields_in",
    "use_fingerprint_key",
    "verify",
    "verify_many",
    "walk",
]

SENSITIVE = "(sensitive)"

@dataclass(frozen=True)
class SecretField:
    """One socket field that holds a secret value: the registry row every consumer reads."""

    name: str  # model attribute, API body key and plan field: the same name
    manifest_path: tuple[str, ...]  # where a Socket manifest holds it
    #: A secret by nature (a password, a key): scrubbed from free text, and a plaintext value
    #: in a manifest is warned about. A username is compared by fingerprint, yet no secret.
    by_nature: bool
    #: border0 answers it back on a read (a username); a password or key it is not known to
    #: (no client of border0's reads one), so only its fingerprint tells whether it changed.
    read_back: bool

    @property
    def section(self) -> str:
        """The part of the socket it belongs to: `upstream` or `protected`."""
        return self.manifest_path[1]


#: The one registry of secret fields; table order is the order fields are shown in.
SECRETS: tuple[SecretField, ...] = (
    SecretField("upstream_username", ("spec", "upstream", "username"), False, True),
    SecretField("upstream_password", ("spec", "upstream", "password"), True, False),
    # the upstream's TLS client key (createSocketRequest/updateSocketRequest `upstream_key`,
    # listed in serializer.Socket beside upstream_password, so no more known to be answered
    # than a password): a secret by nature like the passwords (docs/security.md: passwords,
    # tokens and keys), though border0's CLI and provider never send it from a manifest-like
    # config
    SecretField("upstream_key", ("spec", "upstream", "key"), True, False),
    SecretField("protected_password", ("spec", "protected", "password"), True, False),
)
#: Derived from `SECRETS`: field name -> manifest path, and the field names.
SECRET_MANIFEST_PATHS: dict[str, tuple[str, ...]] = {f.name: f.manifest_path for f in SECRETS}
SECRET_FIELDS = tuple(SECRET_MANIFEST_PATHS)
#: The non-secret field each section's secrets follow in the comparable forms and manifests.
_SECTION_ANCHOR = {"upstream": "upstream_http_hostname", "protected": "protected_username"}

#: The secret fields whose values are secret by nature (passwords, the key): scrubbed from
#: free text.
#: A username is kept out of plans and compared by fingerprint like them, but it is no secret
#: unless the manifest declares it one ({env: NAME, secret: true}): `app` or `postgres` also name
#: sockets and fill descriptions, and blanking them out garbled output and told which letters
#: were the username.
SCRUBBED_FIELDS = tuple(f.name for f in SECRETS if f.by_nature)

#: The last-resort scrub of free text (exception messages, child output) replaces only values
#: this long or longer: a short value matches words that are not the secret.
MIN_SECRET_LENGTH = 8

#: Tag key prefix of a secret's fingerprint: `border0-reconciler/fp.upstream_password`.
#: Under model.RESERVED_TAG_PREFIX, so users cannot set it and it never shows as a label.
FINGERPRINT_TAG_PREFIX = "border0-reconciler/fp."

_KEY_ID_BYTES = 6

# Legacy (verify only) scrypt cost: n = 2**10, r = 1 (128 KiB of memory), p = 1: about 1 ms per value on one core
# of the benchmark machine, so ~1,000 guesses a second a core, where a fast digest would allow
# billions. It is paid once per secret per plan: r = 8 made a cold plan of 10,000 sockets (4,000
# secrets) take 35 s instead of ~5 s (benchmarks/README.md). The tag records the parameters.
_LOG2_N, _R, _P = 10, 1, 1
_SALT_BYTES, _HASH_BYTES = 16, 24
_MAX_LOG2_N = 20  # refuse absurd parameters read from a tag (memory, time)
_HMAC = "hmac-sha256"


class _Key:
    """The fingerprint key of this process and its id (a MAC of a constant: it reveals
    nothing of the key or of any value)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.id = _b64(hmac.new(key, b"border0-reconciler fingerprint key id",
                                hashlib.sha256).digest()[:_KEY_ID_BYTES])
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)  # copied per value: no re-keying

    def mac(self, salt: bytes, value: str) -> bytes:
        h = self._keyed.copy()
        h.update(salt)
        h.update(value.encode("utf-8"))
        return h.digest()


_key: _Key | None = None
_key_lock = threading.Lock()


def use_fingerprint_key(key: bytes) -> None:
    """Fingerprint with `key` from now on (what `load_fingerprint_key` returned)."""
    global _key
    with _key_lock:
        _key = _Key(key)


def keyed_digest(purpose: str, *parts: bytes | memoryview) -> bytes:
    """HMAC-SHA256 of `parts` under this process's fingerprint key, for `purpose` only: what
    holds only for files this reconciler wrote with its key (the CLI's parse cache), never
    for a file made elsewhere or committed by someone else."""
    h = _current_key()._keyed.copy()
    h.update(b"border0-reconciler " + purpose.encode("utf-8") + b"\0")
    for part in parts:
        h.update(part)
    return h.digest()


def _current_key() -> _Key:
    """The key set with `use_fingerprint_key`; a random one for this process when none was
    (library use and tests: its fingerprints verify only in this process)."""
    global _key
    if _key is not None:
        return _key
    with _key_lock:
        if _key is None:
            _key = _Key(os.urandom(32))
        return _key


@dataclass(frozen=True)
class Secret:
    """A resolved secret value. Shown as ``(sensitive)``; compared by value in memory only."""

    value: str = field(repr=False)
    origin: str = "literal"  # "literal", "env:NAME" or "file:PATH": safe to show
    declared: bool = False  # the manifest says `secret: true` beside its env/file reference

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


def is_mask(value: str) -> bool:
    """A value border0 shows in place of a secret (`********`): never sent back, nor compared,
    as the secret."""
    return bool(value) and set(value) <= {"*", "\u2022"}


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
    if type(value) in _PLAIN:  # most values: no ABC check (a plan's every field passes here)
        return on_leaf(value)
    if isinstance(value, SECRET_TYPES):
        return on_secret(value)
    if isinstance(value, (dict, Mapping)):
        return {str(k): walk(v, on_secret, on_leaf) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [walk(v, on_secret, on_leaf) for v in value]
    return on_leaf(value)


def scrubbed(field_name: str, secret: Secret) -> bool:
    """True when `secret`, the value of socket field `field_name`, is scrubbed from free text:
    a password, or a value the manifest declares secret."""
    return field_name in SCRUBBED_FIELDS or secret.declared


def redaction_set(values: Iterable[object]) -> tuple[str, ...]:
    """The values worth scrubbing from free text (strings of `MIN_SECRET_LENGTH` or more, and
    their JSON-escaped forms), longest first, so a secret that contains another goes whole."""
    kept = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
    kept |= {json.dumps(v)[1:-1] for v in kept}
    return tuple(sorted(kept, key=len, reverse=True))


#: A token is not glued to a letter, digit or underscore on either side.
_EDGE_BEFORE, _EDGE_AFTER = r"(?<![0-9A-Za-z_])", r"(?![0-9A-Za-z_])"


@lru_cache(maxsize=16)
def _pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    if not values:
        return None
    return re.compile(_EDGE_BEFORE + "(?:" + "|".join(map(re.escape, values)) + ")" + _EDGE_AFTER)


def redact(text: str, values: Sequence[str]) -> str:
    """`text` with each whole-token occurrence of `values` (see `redaction_set`) replaced by
    ``(sensitive)``: the last-resort scrub of free text. Structured output redacts by field
    (a `Secret` shows as ``(sensitive)``) and needs no scrub."""
    pattern = _pattern(tuple(values))
    if pattern is None or not text:
        return text
    return pattern.sub(SENSITIVE, text)


#: What holds a secret in memory: a manifest's value, or a live socket's fingerprint of one.
SECRET_TYPES = (Secret, Fingerprint)
#: Leaves `walk` passes to `on_leaf` at once (exact types: a str subclass is looked at).
_PLAIN = frozenset({str, int, float, bool, type(None)})


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
    """A new keyed fingerprint of `secret` (a fresh random salt unless one is given)."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    key = _current_key()
    return f"{_HMAC}${key.id}${_b64(salt)}${_b64(key.mac(salt, secret.value))}"


def legacy_fingerprint(secret: Secret, salt: bytes | None = None) -> str:
    """An unkeyed scrypt fingerprint as older versions wrote them (tests, upgrades)."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = _scrypt(secret.value, salt, _LOG2_N, _R, _P, _HASH_BYTES)
    return f"scrypt${_LOG2_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def foreign_key(fp: str | None) -> bool:
    """True for a keyed fingerprint made with another key (the key changed or was lost)."""
    parts = (fp or "").split("$")
    return len(parts) == 4 and parts[0] == _HMAC and parts[1] != _current_key().id


def verify(secret: Secret, fp: str | None) -> bool:
    """True when `fp` is a fingerprint of `secret`; False for a missing or malformed one."""
    if not fp:
        return False
    return _verify_cached(fp, secret.value)


def verify_many(pairs: Iterable[tuple[Secret, str | None]], workers: int | None = None) -> None:
    """Verify many (secret, fingerprint) pairs on threads, filling the cache for `verify`."""
    todo = [(fp, s.value) for s, fp in pairs if fp and not fp.startswith(_HMAC + "$")]
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
    if fp.startswith(_HMAC + "$"):
        return _verify(fp, value)  # microseconds: nothing to cache
    with _cache_lock:
        known = _cache.get((fp, value))
    if known is None:
        known = _verify(fp, value)
        _remember(fp, value, known)
    return known


def _verify(fp: str, value: str) -> bool:
    parts = fp.split("$")
    if len(parts) == 4 and parts[0] == _HMAC:
        key = _current_key()
        if parts[1] != key.id:
            return False
        try:
            salt, expected = _unb64(parts[2]), _unb64(parts[3])
        except ValueError:
            return False
        return hmac.compare_digest(key.mac(salt, value), expected)
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
