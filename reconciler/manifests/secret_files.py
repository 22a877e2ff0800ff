"""Reading `{file: PATH}` secrets, only from the places a deployment means to hold secrets.

A manifest names the file, so whoever can write a manifest chooses what the reconciler reads and
sends to border0 as a password: `/proc/self/environ` would hand over the border0 token. So a
secret file is read only when, symlinks resolved, it lies under an allowed root (the defaults
below, or the `--secret-root` folders, plus the manifests' own folder), never under /proc, /sys
or /dev, is a regular file, and is at most MAX_SECRET_BYTES long. Every refusal names the path,
never a byte of what is in it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "DEFAULT_SECRET_ROOTS",
    "FORBIDDEN_ROOTS",
    "MAX_SECRET_BYTES",
    "SecretFileError",
    "allowed_roots",
    "read_secret_file",
]

#: Where secret files may live when no --secret-root is given (Kubernetes secret volumes are
#: usually mounted under one of these; Docker secrets are in /run/secrets).
DEFAULT_SECRET_ROOTS = ("/var/run/secrets", "/run/secrets", "/etc/secrets")
#: Never read, whatever the roots: kernel and device files (environ, memory, endless streams).
FORBIDDEN_ROOTS = ("/proc", "/sys", "/dev")
MAX_SECRET_BYTES = 64 * 1024


class SecretFileError(ValueError):
    """Why a secret file is not read; the message names the path only."""


def allowed_roots(
    secret_roots: Sequence[str | os.PathLike[str]] | None,
    manifest_paths: Iterable[str | os.PathLike[str]],
) -> tuple[str, ...]:
    """The resolved roots: `secret_roots` (default DEFAULT_SECRET_ROOTS) plus the folders of
    the manifest paths (a file's parent folder)."""
    roots = list(DEFAULT_SECRET_ROOTS if secret_roots is None else secret_roots)
    for path in manifest_paths:
        roots.append(path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path)))
    return tuple(dict.fromkeys(os.path.realpath(os.path.expanduser(r)) for r in roots))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def read_secret_file(target: Path, roots: Sequence[str]) -> str:
    """The text of the secret file `target` (not yet stripped), or SecretFileError."""
    real = os.path.realpath(target)
    for forbidden in FORBIDDEN_ROOTS:
        if _under(real, forbidden) or _under(real, os.path.realpath(forbidden)):
            raise SecretFileError(
                f"secret file {target} is under {forbidden}: secret files are never read "
                "from /proc, /sys or /dev"
            )
    if not any(_under(real, root) for root in roots):
        raise SecretFileError(
            f"secret file {target} is outside the allowed secret folders "
            f"({', '.join(roots)}); allow its folder with --secret-root"
        )
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        reason = "it changed while being read" if exc.errno == errno.ELOOP else exc.strerror
        raise SecretFileError(f"cannot read secret file {target}: {reason}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device would never end
        os.close(fd)
        raise SecretFileError(f"cannot read secret file {target}: not a regular file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_SECRET_BYTES + 1)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretFileError(
            f"secret file {target} is larger than the limit of {MAX_SECRET_BYTES} bytes"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"cannot read secret file {target}: not UTF-8 text") from None
