"""Writing a file that only this user may read, so that no reader ever sees half of it, in
folders only this user may enter.

A token (apply/tokens.py) and the manifests' parse cache (manifests/stored_cache.py) are each
written whole to a temporary file beside the target (mode 0600 from `mkstemp`), synced, then
renamed over it; on any failure the temporary file is removed and the target is as it was.
The folders this creates for them, and for the state folder, are 0700 (`private_dirs`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["private_dirs", "write_atomically"]


def write_atomically(target: Path, data: bytes) -> None:
    """Replace `target` with `data` (mode 0600) in one rename; OSError as the system says it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)  # 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def private_dirs(folder: Path) -> None:
    """Create `folder` and every missing folder above it, each 0700; existing ones are left as
    they are. (`mkdir(parents=True, mode=0o700)` gives the parents the umask's mode: an agent
    token store's `.border0-reconciler/agent-tokens` came out 0755, and any local user could
    list its connectors and tokens.) OSError as the system says it."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for each in reversed(missing):
        try:
            each.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile (another process), or a file: said below
            if not each.is_dir():
                raise
