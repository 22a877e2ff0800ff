"""`mypy --strict` holds on the pipeline and its stages (pyproject.toml [tool.mypy]: reconcile.py,
plan/, apply/), and the one border0 client satisfies the `Border0API` protocol they take. The
suite runs it, so CI (the README's test command) fails when a type breaks."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from helpers import REPO

#: In this process (mypy's API), but mypy --strict takes seconds: out of the quick loop.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for this module's runs: the first reads the typeshed, the rest reuse it."""
    return tmp_path_factory.mktemp("mypy-cache")


def mypy(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    """mypy's own API, in this process (no child to start); the config's `files` are relative
    to the repository."""
    from mypy import api

    with contextlib.chdir(REPO):
        stdout, stderr, code = api.run(
            ["--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(cache), *args])
    return subprocess.CompletedProcess(["mypy", *args], code, stdout, stderr)


def test_the_pipeline_and_its_stages_pass_mypy_strict(cache):
    result = mypy(cache=cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_an_untyped_function_in_a_stage_fails_the_check(tmp_path, cache):
    stage = tmp_path / "stage.py"
    stage.write_text("def prune(changes):\n    return changes\n")
    result = mypy(str(stage), cache=cache)
    assert result.returncode != 0
    assert "missing a type annotation" in result.stdout


def test_the_client_is_a_border0_api_and_a_partial_stand_in_is_not(tmp_path, cache):
    check = tmp_path / "check.py"
    check.write_text(
        "from reconciler.border0.api import Border0API\n"
        "from reconciler.border0.client import Border0Client\n\n\n"
        "class ReadsOnly:\n"
        "    def list_sockets(self, page_size: int = 100) -> list[dict[str, object]]:\n"
        "        return []\n\n\n"
        "def client(c: Border0Client) -> Border0API:\n"
        "    return c\n\n\n"
        "def stand_in(c: ReadsOnly) -> Border0API:\n"
        "    return c  # line 15\n"
    )
    result = mypy(str(check), cache=cache)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "check.py:15:" in errors[0], result.stdout
    assert '"ReadsOnly"' in errors[0] and "Border0API" in errors[0]
