"""The documented snippets, as the tests run them: a fenced block that follows a
`<!-- snippet: NAME -->` line (in docs/ci.md) is read verbatim, so the docs cannot drift from
what is tested."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from helpers import REPO

__all__ = ["release_repo", "snippet"]

#: What the snippets leave for the reader to fill in, and what the tests put there.
URL_PLACEHOLDER = "<URL of border0-reconciler>"


def snippet(name: str, source: Path = REPO / "docs" / "ci.md") -> str:
    """The fenced block after `<!-- snippet: NAME -->` in `source`, verbatim."""
    match = re.search(
        rf"^<!-- snippet: {re.escape(name)} -->\n```[\w-]*\n(.*?)^```$",
        source.read_text(), re.MULTILINE | re.DOTALL,
    )
    assert match, f"no snippet {name!r} in {source.name}"
    return match[1]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci",
         "-c", "init.defaultBranch=main", *args],
        cwd=cwd, check=True, capture_output=True, text=True, timeout=60,
    ).stdout


def release_repo(path: Path, tag: str) -> Path:
    """A git repository holding this checkout's files as they are now (uncommitted changes
    included, ignored files not), tagged `tag`: what a user's `rev:` or `@tag` points at."""
    files = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO)
    for rel in filter(None, files.split("\0")):
        source = REPO / rel
        if source.is_file():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, path / rel)
    git("init", "-q", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "release", cwd=path)
    git("tag", "-a", tag, "-m", tag, cwd=path)
    return path
