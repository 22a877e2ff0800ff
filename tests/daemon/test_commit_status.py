"""Commit statuses: `run --notify github+https://TOKEN@.../repos/OWNER/REPO` (or gitlab+) sets
the status of each git revision the daemon reconciled, on a local stand-in for the GitHub or
GitLab API (tests/forges.py), from a real daemon process on a real git checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from forges import serve_forge
from helpers import wait_for
from test_daemon import socket_yaml
from test_daemon_process import DaemonProcess, daemon_process  # noqa: F401 - the fixture

from reconciler.daemon.notify import parse_targets


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          cwd=cwd, check=True, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def commit(repo: Path, message: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


@pytest.mark.parametrize("kind", ["github", "gitlab"])
@pytest.mark.slow
def test_each_reconciled_revision_gets_its_status(
    emulator: Any, tmp_path: Path, daemon_process: Any, kind: str  # noqa: F811
) -> None:
    repo = tmp_path / "repo"
    (repo / "m").mkdir(parents=True)
    (repo / "m" / "web.yaml").write_text(socket_yaml("web", "Web"))
    git("init", "-q", cwd=repo)
    first = commit(repo, "web")
    with serve_forge(kind) as forge:
        host = forge.url.split("//", 1)[1]
        url = f"{kind}+http://{forge.token}@{host}"
        daemon: DaemonProcess = daemon_process(repo / "m", emulator.url, emulator.token,
                                               "--notify", url, "--debounce", "1s")
        wait_for(lambda: forge.statuses, timeout=30, message="a commit status")
        sha, body = forge.statuses[0]
        context = "context" if kind == "github" else "name"
        assert sha == first
        assert body == {"state": "success", "description": "applied: 1 create",
                        context: "border0-reconciler/default"}

        # Written and committed within the debounce: the reconcile reads the new HEAD.
        (repo / "m" / "web.yaml").write_text(socket_yaml("web", "Web").replace("http", "htp"))
        second = commit(repo, "a typo")
        wait_for(lambda: len(forge.statuses) == 2, timeout=30, message="the second status")
        sha, body = forge.statuses[1]
        assert sha == second
        assert body["state"] == ("failure" if kind == "github" else "failed")
        assert body["description"].startswith("manifests invalid: ")
        assert "web.yaml" in body["description"] and len(body["description"]) <= 140
        # A resync of the same revision does not set it again.
        daemon.proc.send_signal(1)  # SIGHUP: a reconcile now
        wait_for(lambda: daemon.reconciles() >= 3, timeout=30, message="a third reconcile")
        daemon.terminate()
        assert len(forge.statuses) == 2
        # Webhook events never reach the forge; the token never reaches the logs.
        assert all("/statuses/" in r for r in forge.requests)
        assert forge.token not in "".join(daemon.lines)


def test_a_bad_status_url_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="use github\\+https://TOKEN@api.github.com/repos/"):
        parse_targets(["github+https://secret-token@api.github.com/orgs/acme"])
    with pytest.raises(ValueError, match="the token goes before the host") as caught:
        parse_targets(["gitlab+https://gitlab.example.com/api/v4/projects/7"])
    assert "secret-token" not in str(caught.value)
    (target,) = parse_targets(["github+https://tok%2Fen@api.github.com/repos/acme/config"])
    assert target.forge is not None and target.forge.token == "tok/en"
    assert target.shown == "https://api.github.com"
