"""Files the command line keeps in its state folder between runs and trusts only if it wrote
them: the manifests' parse cache (`manifests/stored_cache.py`), the sockets a plan found in
sync (`plan/in_sync.py`) and the last plan with nothing to do (`plan/memo.py`). One format,
one rule:

- the first line is what the body holds only for (the reconciler's version, and what else
  its writer names, such as its code: `code_stamp`), then an HMAC of that line and the body
  under the fingerprint key (`secrets.keyed_digest`, for one purpose);
- a missing, corrupt, old or foreign file (another key: another machine's, or one committed
  into the checkout) reads as nothing, never as an error;
- written atomically (write, fsync, rename), 0600; a failure to write costs only the next
  run's work.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from pathlib import Path

import reconciler
from reconciler.private_files import write_atomically
from reconciler.secrets import keyed_digest

__all__ = ["code_stamp", "read_sealed", "write_sealed"]


def read_sealed(file: Path, head: str, purpose: str) -> memoryview | None:
    """The body of `file` when its first line is `head` and its HMAC (for `purpose`) holds;
    else None. Not a copy of the body (megabytes at 10,000 sockets)."""
    try:
        raw = file.read_bytes()
        end = raw.index(b"\n")
        body = memoryview(raw)[end + 1:]
        line, _, mac = raw[:end].decode("ascii").rpartition(" ")
        if line == head and hmac.compare_digest(
                bytes.fromhex(mac), keyed_digest(purpose, raw[:len(line)], body)):
            return body
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return None


def write_sealed(file: Path, head: str, purpose: str, body: bytes) -> None:
    """Write `body` under `head` and its HMAC for `purpose`; a failure is left unsaid."""
    line = head.encode("ascii")
    mac = keyed_digest(purpose, line, body).hex()
    try:
        write_atomically(file, line + b" " + mac.encode("ascii") + b"\n" + body)
    except OSError:
        pass


@functools.cache
def code_stamp() -> str:
    """A digest of the package's source files (path, size, modification time): a file made by
    other code (another install, a checkout edited since) is not read."""
    root = Path(reconciler.__file__).parent
    stamps = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                stamps.append(f"{os.path.relpath(os.path.join(folder, name), root)} "
                              f"{st.st_size} {st.st_mtime_ns}")
    return hashlib.blake2b("\n".join(stamps).encode("utf-8"), digest_size=8).hexdigest()
