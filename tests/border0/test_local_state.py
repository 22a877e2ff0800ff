"""`--api local` keeps upstream passwords in clear in its SQLite state: only its owner may read
it, whatever the umask, and state left by older versions (0755 / 0644) is fixed."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import REPO, cli, copy_examples


def _apply_local(cwd: Path, *extra: str) -> SimpleNamespace:
    """`apply . --api local` in a copy of examples/, as a user with umask 000 would run it
    (the state goes in the manifests' folder: here, `cwd`); in this process, under that umask
    for the call only."""
    copy_examples(cwd, dirs_exist_ok=True)
    umask = os.umask(0)  # the permissive umask under test
    try:
        code, out, err = cli(["apply", ".", "--api", "local", "--env-file",
                              str(REPO / "examples" / "demo.env"), "--auto-approve", *extra],
                             cwd=cwd)
    finally:
        os.umask(umask)
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


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


def _project(tmp_path: Path) -> tuple[Path, list[str]]:
    from documents import SECRET, base_docs, write

    write(tmp_path / "m", base_docs())
    (tmp_path / "demo.env").write_text(f"DB_PASSWORD={SECRET}\n")
    return tmp_path / "m", ["--api", "local", "--env-file", str(tmp_path / "demo.env")]


@pytest.mark.slow
def test_the_state_lives_with_the_manifests_and_apply_finds_it_from_anywhere(tmp_path):
    from helpers import cli

    m, local = _project(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    code, _, err = cli(["apply", "m", "--auto-approve", *local], cwd=tmp_path)
    assert code == 0, err
    assert (m / ".border0-reconciler" / "local.db").exists()
    assert not (tmp_path / ".border0-reconciler").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, out, err = cli(["plan", str(m), "--detailed-exitcode", *local], cwd=elsewhere)
    assert code == 0 and "No changes." in out, (out, err)
    assert not (elsewhere / ".border0-reconciler").exists()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert ".border0-reconciler" not in status and "m/socket-web.yaml" in status, status


def test_a_state_in_the_working_directory_is_never_replaced_by_an_empty_one(tmp_path):
    """Where earlier versions kept it: apply says where it looked, and creates nothing."""
    from helpers import cli

    m, local = _project(tmp_path)
    old = tmp_path / ".border0-reconciler" / "local.db"
    code, _, err = cli(["apply", "m", "--auto-approve", "--state", str(old), *local],
                       cwd=tmp_path)
    assert code == 0, err
    code, _, err = cli(["apply", "m", "--auto-approve", *local], cwd=tmp_path)
    expected = m.resolve() / ".border0-reconciler" / "local.db"
    errors = [line for line in err.strip().splitlines() if ": warning: legacy model" not in line]
    assert code == 1 and len(errors) == 1, err
    assert f"no state for these manifests (looked in {expected})" in err
    assert "holds 3 socket(s)" in err and f"--state {tmp_path / '.border0-reconciler' / 'local.db'}" in err
    assert not expected.exists() and "Apply complete" not in err
