"""Log formats and secret redaction, on real logging records; durations; source revisions."""

from __future__ import annotations

import io
import json
import logging
import subprocess

import pytest

from reconciler.cli.run import parse_duration, parse_jitter
from reconciler.daemon.logs import RedactFilter, setup_logging
from reconciler.daemon.revision import source_revision


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_fields_and_no_secret(restore_root_logging):
    out = io.StringIO()
    redact = setup_logging("json", "info", stream=out)
    redact.set_secrets(["s3cr3t-value", "ab"])  # too short to redact safely: left alone
    log = logging.getLogger("reconciler.test")
    log.info(
        "connecting with %s", "s3cr3t-value", extra={"socket": "web", "dsn": "u:s3cr3t-value@h"}
    )
    try:
        raise RuntimeError("boom s3cr3t-value")
    except RuntimeError:
        log.exception("failed")
    log.debug("not shown at info")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "connecting with (sensitive)"
    assert first["level"] == "info" and first["logger"] == "reconciler.test"
    assert first["socket"] == "web" and first["dsn"] == "u:(sensitive)@h"
    assert first["time"].endswith("Z")
    assert "boom (sensitive)" in second["exception"]
    assert "s3cr3t-value" not in out.getvalue()


def test_text_lines_are_one_line_per_event(restore_root_logging):
    out = io.StringIO()
    setup_logging("text", "info", stream=out)
    logging.getLogger("reconciler.test").warning("two\nlines", extra={"path": "a b", "n": 3})
    text = out.getvalue()
    assert text.count("\n") == 1
    assert 'WARNING reconciler.test: two\\nlines path="a b" n=3' in text


def test_redact_prefers_the_longest_secret():
    redact = RedactFilter(["password", "password-long"])
    assert redact.redact("x password-long y password") == "x (sensitive) y (sensitive)"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300ms", 0.3), ("5s", 5), ("5m", 300), ("1h", 3600), ("2", 2), ("1.5s", 1.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "-1s", "m5"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_jitter_as_percent_or_duration():
    assert parse_jitter("10%", 300) == pytest.approx(0.1)
    assert parse_jitter("30s", 300) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        parse_jitter("150%", 300)


def _git(*args: str, cwd) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "HOME": str(cwd),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.slow
def test_source_revision_in_a_checkout_a_worktree_and_outside(tmp_path):
    repo = tmp_path / "repo"
    (repo / "manifests").mkdir(parents=True)
    _git("init", "-q", cwd=repo)
    (repo / "manifests" / "a.yaml").write_text("a\n")
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "one", cwd=repo)
    head = _git("rev-parse", "HEAD", cwd=repo)
    assert source_revision(repo / "manifests") == head
    assert source_revision(repo / "manifests" / "a.yaml") == head

    _git("worktree", "add", "-q", "--detach", str(tmp_path / "wt"), "HEAD", cwd=repo)
    assert (tmp_path / "wt" / ".git").is_file()
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "wt")
    assert source_revision(link / "manifests") == head

    outside = tmp_path / "plain"
    outside.mkdir()
    assert source_revision(outside) is None
    assert source_revision(tmp_path / "missing") is None


@pytest.mark.slow
def test_source_revision_without_a_git_binary(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", "-b", "main", cwd=repo)
    (repo / "a.yaml").write_text("a\n")
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "one", cwd=repo)
    head = _git("rev-parse", "HEAD", cwd=repo)
    _git("worktree", "add", "-q", "--detach", str(tmp_path / "wt"), "HEAD", cwd=repo)
    _git("pack-refs", "--all", cwd=repo)  # the branch now lives only in packed-refs

    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    assert source_revision(repo) == head  # ref: refs/heads/main, via packed-refs
    assert source_revision(tmp_path / "wt") == head  # a worktree: .git is a file, HEAD detached
    assert source_revision(tmp_path) is None
