"""The package layout is a contract: imports point down the flow (pyproject.toml's import-linter
layers, drawn in docs/architecture.md), checked by lint-imports on every run of the suite."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        check=False, cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.slow
def test_imports_point_down_the_flow():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.slow
def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / "reconciler", tmp_path / "reconciler",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    model = tmp_path / "reconciler" / "model.py"
    model.write_text(model.read_text() + "\nfrom reconciler.daemon import loop  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "reconciler.model -> reconciler.daemon" in result.stdout


def private_imports(root: Path) -> list[str]:
    """`from reconciler.x import _name` anywhere under `root`: a private name used across
    modules is a rule with two homes (issue 25 replaced the old line cap with this)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reconciler"):
                found += [f"{path.relative_to(root.parent)}: {node.module}.{alias.name}"
                          for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_no_private_name_is_imported_across_modules():
    assert private_imports(REPO / "reconciler") == []


def test_the_private_import_check_sees_one(tmp_path):
    package = tmp_path / "reconciler" / "daemon"
    package.mkdir(parents=True)
    (package / "ok.py").write_text("from reconciler.model import Actual\n")
    (package / "bad.py").write_text("from reconciler.model import _hidden\n")
    assert private_imports(tmp_path / "reconciler") == [
        "reconciler/daemon/bad.py: reconciler.model._hidden"]
