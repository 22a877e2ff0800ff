"""The source revision of the manifests: the git commit PATH is checked out at, if any.

git-sync checks each commit out as a worktree (its `.git` is a *file* pointing into the main
repository) and re-points a symlink at it; resolving PATH first and asking `git` in the real
directory handles plain checkouts, worktrees and the symlink swap alike.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["source_revision"]


def source_revision(path: str | os.PathLike[str], timeout: float = 5.0) -> str | None:
    """The commit hash HEAD points to in the git checkout holding `path`; None outside git."""
    real = Path(os.path.realpath(path))
    directory = real if real.is_dir() else real.parent
    if not directory.is_dir():
        return None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    if done.returncode != 0 or len(commit) not in (40, 64):
        return None
    return commit
