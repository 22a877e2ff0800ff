"""Writing a file that only this user may read, so that no reader ever sees half of it.

A token (apply/tokens.py) and the manifests' parse cache (manifests/stored_cache.py) are each
written whole to a temporary file beside the target (mode 0600 from `mkstemp`), synced, then
renamed over it; on any failure the temporary file is removed and the target is as it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


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
