"""The release: `python -m build` makes an sdist and a wheel that install into a fresh virtualenv
holding only the declared dependencies, and work there (the smoke test CI runs).

The fresh virtualenv is made with uv when present (it installs from its cache, so the test needs
no network once the dependencies were fetched), else with venv and pip (from PyPI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from reconciler import __version__

ROOT = Path(__file__).resolve().parents[2]

#: Every module of the package but the emulator's (the `local` extra) must import with the core
#: dependencies alone: an import of an undeclared package fails here.
IMPORT_ALL = """
import importlib, pkgutil, reconciler
skip = ("reconciler.border0.emulator", "reconciler.__main__")
names = [m.name for m in pkgutil.walk_packages(reconciler.__path__, "reconciler.")
         if not m.name.startswith(skip)]
for name in names:
    importlib.import_module(name)
print(len(names), "modules")
"""


def fresh_venv(path: Path, *requirements: str) -> Path:
    """A new virtualenv holding `requirements` and their declared dependencies only."""
    uv = shutil.which("uv")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(path)],
                       check=True, env=env, timeout=120)
        command = [uv, "pip", "install", "-q", "--python", str(path / "bin" / "python")]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
        command = [str(path / "bin" / "python"), "-m", "pip", "install", "-q"]
    result = subprocess.run([*command, *requirements], env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return path / "bin"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir",
         str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def run(binary: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BORDER0_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(binary), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.slow
def test_build_makes_an_sdist_and_a_wheel_of_this_version(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    assert wheel.name == f"border0_reconciler-{__version__}-py3-none-any.whl"
    assert sdist.name == f"border0_reconciler-{__version__}.tar.gz"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert f"Version: {__version__}" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata
    assert "Provides-Extra: local" in metadata
    assert "Requires-Dist: fastapi" in metadata and "extra == 'local'" in metadata
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"LICENSE", "CHANGELOG.md", "pyproject.toml", "reconciler/__init__.py",
            "schemas/manifest.schema.json"} <= members


def test_the_version_has_one_home_and_a_changelog_entry() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "reconciler/__init__.py"
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_virtualenv_and_works(dist: Path,
                                                            tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    bin_dir = fresh_venv(tmp_path / "venv", str(wheel))
    cli = bin_dir / "border0-reconciler"
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns(".border0-reconciler"))

    version = run(cli, "--version", cwd=work)
    assert version.returncode == 0 and version.stdout.strip().endswith(__version__)
    checked = run(cli, "validate", "examples/", cwd=work)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # (the legacy examples warn first: docs/migration.md)
    assert checked.stdout.splitlines()[-1].startswith("ok: 15 sockets, 4 policies and 2 connectors")
    # Every module but the emulator imports with the core dependencies alone.
    imported = run(bin_dir / "python", "-c", IMPORT_ALL, cwd=work)
    assert imported.returncode == 0, imported.stderr
    # Without the `local` extra the emulator says what to install, in one line.
    local = run(cli, "plan", "examples/", "--api", "local", "--env-file", "examples/demo.env",
                cwd=work)
    assert local.returncode == 1
    assert "pip install 'border0-reconciler[local]'" in local.stderr
    assert "Traceback" not in local.stderr
    emulator = run(cli, "emulator", "--token", "t", cwd=work)
    assert emulator.returncode == 1 and "[local]" in emulator.stderr


@pytest.mark.slow
def test_the_sdist_with_the_local_extra_runs_the_readme_demo(dist: Path, tmp_path: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    bin_dir = fresh_venv(tmp_path / "venv", f"border0-reconciler[local] @ {sdist.as_uri()}")
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns(".border0-reconciler"))
    args = ["examples/", "--api", "local", "--env-file", "examples/demo.env"]
    applied = run(bin_dir / "border0-reconciler", "apply", *args, "--auto-approve", cwd=work)
    assert applied.returncode == 0, applied.stderr
    planned = run(bin_dir / "border0-reconciler", "plan", *args, "--detailed-exitcode", cwd=work)
    assert planned.returncode == 0, planned.stdout + planned.stderr
