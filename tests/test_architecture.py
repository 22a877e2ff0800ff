"""The package layout is a contract: imports point down the flow (pyproject.toml's import-linter
layers, drawn in docs/architecture.md), checked by lint-imports on every run of the suite."""

from __future__ import annotations

import ast
import contextlib
import io
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


def test_imports_point_down_the_flow():
    """lint-imports in this process, on the package this process imported (the copy below
    must be a child: grimp would find the imported package instead of the copy). Its use case,
    not its CLI function: that one reconfigures logging (dictConfig), which would disable
    every logger this process has made."""
    from importlinter.cli import use_cases  # importing the CLI configures import-linter

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        passed = use_cases.lint_imports(config_filename=str(REPO / "pyproject.toml"),
                                        cache_dir=None)
    assert passed, output.getvalue()
    assert "0 broken" in output.getvalue()


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


# --- cohesion: no class without state reads another class's attributes ---------------------

#: Bases whose attributes are none: a class on them alone has only what it defines.
_PLAIN_BASES = {"object", "ABC", "Generic"}

def _base(node: ast.expr) -> str:
    node = node.value if isinstance(node, ast.Subscript) else node
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _defined(cls: ast.ClassDef) -> tuple[set[str], bool]:
    """(the names the class itself defines, whether it has state: an `__init__`, `__slots__`,
    or fields a dataclass or NamedTuple declares). A bare annotation of another class's
    attribute (`_db: Connection` in a mixin) declares nothing."""
    fields = any("dataclass" in ast.unparse(d) for d in cls.decorator_list) or any(
        _base(b) in ("NamedTuple", "TypedDict") for b in cls.bases)
    names: set[str] = set()
    state = False
    for item in cls.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(item.name)
            state = state or item.name == "__init__"
        elif isinstance(item, ast.Assign):
            names |= {t.id for t in item.targets if isinstance(t, ast.Name)}
            state = state or "__slots__" in names
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and (
                item.value is not None or fields):
            names.add(item.target.id)
            state = state or fields
    for node in ast.walk(cls):
        targets = (node.targets if isinstance(node, ast.Assign) else [node.target]
                   if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        names |= {t.attr for t in targets if isinstance(t, ast.Attribute)
                  and isinstance(t.value, ast.Name) and t.value.id == "self"}
    return names, state


def stateless_readers(root: Path) -> list[str]:
    """Classes with no state of their own whose methods read `self.x` that neither they nor
    their bases define: a mixin reading the attributes of the class that inherits it."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8"))
             for path in sorted(root.rglob("*.py"))}
    classes: dict[str, ast.ClassDef] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, node)

    def known(cls: ast.ClassDef, seen: frozenset[str]) -> set[str] | None:
        names = _defined(cls)[0]
        for base in map(_base, cls.bases):
            if base in _PLAIN_BASES:
                continue
            if base not in classes or base in seen:
                return None  # Protocol, Exception, Thread...: what it holds is not read here
            inherited = known(classes[base], seen | {cls.name})
            if inherited is None:
                return None
            names |= inherited
        return names

    found = []
    for path, tree in trees.items():
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            names = known(cls, frozenset())
            if _defined(cls)[1] or names is None:
                continue
            read = {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
                    and isinstance(n.ctx, ast.Load) and isinstance(n.value, ast.Name)
                    and n.value.id == "self"}
            foreign = sorted(a for a in read - names if not a.startswith("__"))
            if foreign:
                found.append(f"{path.relative_to(root.parent)}: {cls.name} reads "
                             f"{', '.join(foreign)}")
    return found


def test_no_class_without_state_reads_another_classes_attributes():
    assert stateless_readers(REPO / "reconciler") == []


def test_the_cohesion_check_sees_a_mixin(tmp_path):
    package = tmp_path / "reconciler"
    package.mkdir()
    (package / "ok.py").write_text(
        "import threading\n\n"
        "class Base:\n    def __init__(self):\n        self.lock = threading.Lock()\n\n"
        "class Child(Base):\n    def locked(self):\n        return self.lock.locked()\n\n"
        "class Reader:\n    def __init__(self, store):\n        self.store = store\n\n"
        "    def rows(self):\n        return self.store.rows\n\n"
        "class Handler(threading.Thread):\n    def run(self):\n        return self.name\n")
    (package / "bad.py").write_text(
        "class Reads:\n    _db: object\n\n    def rows(self):\n"
        "        return self._db, self.helper(), self.org\n\n    def helper(self):\n"
        "        return 1\n")
    assert stateless_readers(package) == ["reconciler/bad.py: Reads reads _db, org"]
