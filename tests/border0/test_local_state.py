"""`--api local` keeps upstream passwords in clear in its SQLite state: only its owner may read
it, whatever the umask, and state left by older versions (0755 / 0644) is fixed."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from helpers import REPO


def _apply_local(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`apply examples/ --api local` as a user with umask 000 would run it."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "apply", str(REPO / "examples"), "--api", "local",
         "--env-file", str(REPO / "examples" / "demo.env"), "--auto-approve", *extra],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        preexec_fn=lambda: os.umask(0),  # the permissive umask under test
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _state_files(db: Path) -> list[Path]:
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def test_the_default_state_is_private_even_with_umask_000(tmp_path):
    result = _apply_local(tmp_path)
    assert result.returncode == 0, result.stderr
    state_dir = tmp_path / ".border0-reconciler"
    assert _mode(state_dir) == 0o700
    db = state_dir / "local.db"
    with sqlite3.connect(db) as conn:  # it is the real state: the examples' sockets are in it
        assert conn.execute("select count(*) from sockets").fetchone()[0] > 0
    assert {str(p): _mode(p) for p in _state_files(db)} == {str(p): 0o600 for p in _state_files(db)}


def test_state_left_world_readable_by_an_older_version_is_made_private(tmp_path):
    state_dir = tmp_path / ".border0-reconciler"
    state_dir.mkdir()
    state_dir.chmod(0o755)
    db = state_dir / "local.db"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    Path(f"{db}-wal").write_bytes(b"")
    Path(f"{db}-wal").chmod(0o644)
    result = _apply_local(tmp_path)
    assert result.returncode == 0, result.stderr
    assert _mode(state_dir) == 0o700
    assert all(_mode(p) == 0o600 for p in _state_files(db)), [oct(_mode(p)) for p in
                                                             _state_files(db)]


def test_a_state_folder_named_with_state_is_created_private(tmp_path):
    db = tmp_path / "new" / "deeper" / "local.db"
    result = _apply_local(tmp_path, "--state", str(db))
    assert result.returncode == 0, result.stderr
    assert _mode(db.parent) == 0o700 and _mode(db) == 0o600
