"""The package layout is a contract: imports point down the flow (pyproject.toml's import-linter
layers, drawn in docs/architecture.md), checked by lint-imports on every run of the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        check=False, cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )


def test_imports_point_down_the_flow():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / "reconciler", tmp_path / "reconciler",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    model = tmp_path / "reconciler" / "model.py"
    model.write_text(model.read_text() + "\nfrom reconciler.daemon import loop  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "reconciler.model -> reconciler.daemon" in result.stdout
