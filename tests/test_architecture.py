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


MAX_LINES = 400


def modules_over(limit: int, root: Path) -> dict[str, int]:
    """Modules under `root` longer than `limit` lines: a module past it holds more than one job."""
    sizes = {
        str(path.relative_to(root.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(root.rglob("*.py"))
    }
    return {name: lines for name, lines in sizes.items() if lines > limit}


def test_no_module_is_over_400_lines():
    assert modules_over(MAX_LINES, REPO / "reconciler") == {}, "split these by job"


def test_the_line_limit_check_sees_a_long_module(tmp_path):
    package = tmp_path / "reconciler" / "daemon"
    package.mkdir(parents=True)
    (package / "short.py").write_text("x = 1\n" * MAX_LINES)
    (package / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert modules_over(MAX_LINES, tmp_path / "reconciler") == {
        "reconciler/daemon/long.py": MAX_LINES + 1
    }
