"""Where the key of the secret fingerprints comes from (secrets.py keys them with it): the
environment, else a 0600 file in the reconciler's state folder, created on first use."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from reconciler.private_files import private_dirs

__all__ = ["FINGERPRINT_KEY_ENV", "FINGERPRINT_KEY_FILE", "FingerprintKeyError",
           "load_fingerprint_key"]

#: Where the fingerprint key comes from: this variable (shared by replicas and agents: the
#: chart's Secret), else FINGERPRINT_KEY_FILE in the state folder, created 0600 on first use.
FINGERPRINT_KEY_ENV = "BORDER0_RECONCILER_FINGERPRINT_KEY"
FINGERPRINT_KEY_FILE = "fingerprint.key"
_MIN_KEY_CHARS = 16


class FingerprintKeyError(ValueError):
    """The fingerprint key cannot be read or created; the message says which and why."""


def load_fingerprint_key(state_dir: str | os.PathLike[str], env: Mapping[str, str]) -> bytes:
    """The key: `FINGERPRINT_KEY_ENV` if set (16 characters or more), else the key file in
    `state_dir`, created 0600 with 32 random bytes when absent. Raises FingerprintKeyError."""
    text = (env.get(FINGERPRINT_KEY_ENV) or "").strip()
    if text:
        if len(text) < _MIN_KEY_CHARS:
            raise FingerprintKeyError(
                f"{FINGERPRINT_KEY_ENV} is too short: use {_MIN_KEY_CHARS} characters or more "
                "(e.g. the output of `openssl rand -hex 32`)")
        return text.encode("utf-8")
    path = os.path.join(os.fspath(state_dir), FINGERPRINT_KEY_FILE)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return _create_key_file(path)
    except OSError as exc:
        raise FingerprintKeyError(f"cannot read {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_mode & 0o077:
            raise FingerprintKeyError(
                f"{path} is readable by others: chmod 600 {path} (it keys the secret "
                "fingerprints in socket tags)")
        key = f.read().strip()
    if len(key) < _MIN_KEY_CHARS:
        raise FingerprintKeyError(f"{path} holds no usable key (remove it to make a new one)")
    return key


def _create_key_file(path: str) -> bytes:
    key = os.urandom(32).hex().encode("ascii")
    try:
        private_dirs(Path(os.path.dirname(path) or "."))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
    except FileExistsError:  # another process made it meanwhile: use theirs
        return load_fingerprint_key(os.path.dirname(path), {})
    except OSError as exc:
        raise FingerprintKeyError(
            f"cannot create {path}: {exc.strerror or exc} (set {FINGERPRINT_KEY_ENV} to a "
            "shared key instead)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key
