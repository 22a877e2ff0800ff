"""The source revision of the manifests: the git commit PATH is checked out at, if any.

git-sync checks each commit out as a worktree (its `.git` is a *file* pointing into the main
repository) and re-points a symlink at it; resolving PATH first and asking `git` in the real
directory handles plain checkouts, worktrees and the symlink swap alike. In a container the
checkout often belongs to another user (git-sync's), so `safe.directory` is opened for this one
read-only question; without a `git` binary, HEAD is read from the files themselves.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

__all__ = ["source_revision"]

_HASH = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def source_revision(path: str | os.PathLike[str], timeout: float = 5.0) -> str | None:
    """The commit hash HEAD points to in the git checkout holding `path`; None outside git."""
    real = Path(os.path.realpath(path))
    directory = real if real.is_dir() else real.parent
    if not directory.is_dir():
        return None
    if "GIT_DIR" not in os.environ and _git_dir(directory) is None:
        return None  # no checkout holds it: git would only say so, a process per reconcile
    try:
        done = subprocess.run(
            ["git", "-c", "safe.directory=*", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:  # no git binary: read the files
        return _read_head(directory)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and _HASH.match(commit) else None


def _git_dir(directory: Path) -> Path | None:
    """The git directory of the checkout holding `directory` (a worktree's `.git` is a file)."""
    for candidate in (directory, *directory.parents):
        dot_git = candidate / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                return (candidate / text[len("gitdir:") :].strip()).resolve()
            return None
    return None


def _read_head(directory: Path) -> str | None:
    try:
        git_dir = _git_dir(directory)
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if _HASH.match(head):
            return head  # detached, as git-sync's worktrees are
        if not head.startswith("ref:"):
            return None
        ref = head[len("ref:") :].strip()
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        for base in (git_dir, common):
            if (base / ref).is_file():
                value = (base / ref).read_text(encoding="utf-8").strip()
                return value if _HASH.match(value) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref and _HASH.match(parts[0]):
                    return parts[0]
    except OSError:
        return None
    return None
