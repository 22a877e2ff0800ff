"""The pre-commit hook, run by pre-commit itself on a real config repository that holds
manifests next to a Helm chart (templates that are not YAML, a Chart.yaml with an apiVersion
and no kind) and a CI file.

pre-commit installs the hook as users get it: a virtualenv with this checkout pip-installed
(its dependencies from PyPI, about 30 s the first time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO
from snippets import URL_PLACEHOLDER, git, release_repo, snippet

PRE_COMMIT = [sys.executable, "-m", "pre_commit"]


@pytest.fixture()
def config_repo(tmp_path: Path) -> Path:
    """A config repository: the example manifests under border0/, this project's chart under
    charts/, a GitHub workflow; committed."""
    repo = tmp_path / "config"
    for part in ("sockets", "policies"):
        shutil.copytree(REPO / "examples" / part, repo / "border0" / part)
    shutil.copytree(REPO / "charts" / "border0-reconciler", repo / "charts" / "app")
    shutil.copy(REPO / "examples" / "ci" / "github-actions" / "border0.yml",
                repo / "border0.yml")
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "config", cwd=repo)
    return repo


def pre_commit(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("BORDER0_", "VIRTUAL"))},
           "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([*PRE_COMMIT, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


@pytest.mark.slow
def test_the_chart_alone_fails_plain_validate(config_repo: Path) -> None:
    """Why the hook needs --only-manifests: plain validate reads the chart as manifests."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "border0-reconciler"), "validate", "."],
        cwd=config_repo, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 1
    assert "charts/app/Chart.yaml:1:1: error: a document with apiVersion but no kind" in proc.stdout
    assert "charts/app/templates/deployment.yaml" in proc.stdout


@pytest.mark.slow
def test_try_repo_passes_on_manifests_next_to_a_helm_chart(config_repo: Path,
                                                           tmp_path: Path) -> None:
    proc = pre_commit("try-repo", str(REPO), "border0-reconciler-validate", "--all-files",
                      "--verbose", cwd=config_repo, home=tmp_path / "pre-commit")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "border0-reconciler validate" in proc.stdout and "Passed" in proc.stdout
    assert "ok: 8 sockets, 4 policies" in proc.stdout


@pytest.mark.slow
def test_the_readme_snippet_pins_the_release_and_catches_a_broken_manifest(
    config_repo: Path, tmp_path: Path
) -> None:
    source = release_repo(tmp_path / "border0-reconciler", "v0.2.0")
    config = snippet("pre-commit")
    assert "rev: v0.2.0" in config
    (config_repo / ".pre-commit-config.yaml").write_text(
        config.replace(URL_PLACEHOLDER, str(source)))
    home = tmp_path / "pre-commit"
    proc = pre_commit("run", "--all-files", cwd=config_repo, home=home)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "border0-reconciler validate" in proc.stdout and "Passed" in proc.stdout

    socket = config_repo / "border0" / "sockets" / "web.yaml"
    socket.write_text(socket.read_text().replace("type: http\n", "type: htp\n", 1))
    git("add", "-A", cwd=config_repo)
    proc = pre_commit("run", "--all-files", cwd=config_repo, home=home)
    assert proc.returncode == 1
    assert "border0/sockets/web.yaml" in proc.stdout and "'htp' is not one of" in proc.stdout


@pytest.mark.slow
def test_verbose_notes_each_skipped_file_and_exclude_leaves_out_more(config_repo: Path) -> None:
    cli = str(Path(sys.executable).parent / "border0-reconciler")

    def validate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, "validate", *args], cwd=config_repo, capture_output=True,
                              text=True, timeout=60, check=False)

    proc = validate("--only-manifests", "-v", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "note: skipped charts/app/Chart.yaml: no apiVersion: border0-reconciler/v1 in it" \
        in proc.stderr
    assert "note: skipped border0.yml" in proc.stderr
    assert "border0/sockets" not in proc.stderr  # ours are read, not skipped
    quiet = validate("--only-manifests", ".")
    assert quiet.returncode == 0 and quiet.stderr == ""
    # --exclude: a folder by name, a path pattern, a file name; the chart then never read.
    for pattern in (["charts"], ["charts/*"], ["templates", "Chart.yaml", "*-values.yaml",
                                             "values.yaml", "border0.yml"]):
        args = [arg for p in pattern for arg in ("--exclude", p)]
        proc = validate(*args, ".")
        assert proc.returncode == 0, (pattern, proc.stdout)
    # A file of ours with a problem is still an error in --only-manifests mode.
    policy = config_repo / "border0" / "policies" / "on-call.yaml"
    policy.write_text(policy.read_text() + "---\napiVersion: border0-reconciler/v1\n")
    proc = validate("--only-manifests", ".")
    assert proc.returncode == 1 and "border0/policies/on-call.yaml" in proc.stdout
