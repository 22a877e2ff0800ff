"""Binaries some tests need that pip does not install: found on PATH, else the test is skipped
with the reason, except in CI (CI=true), where a missing one fails (.ci/run installs them)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from types import SimpleNamespace

import pytest

__all__ = ["check_jsonschema", "promtool"]


def promtool() -> str:
    """Prometheus' promtool (Debian package `prometheus`; .ci/run extracts it)."""
    found = shutil.which("promtool")
    if found:
        return found
    message = "promtool is not installed (Debian: apt-get install prometheus; .ci/run does it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def check_jsonschema(args: Sequence[str]) -> SimpleNamespace:
    """check-jsonschema (a test dependency) run through its click command in this process, as
    `python -m check_jsonschema ARGS` would: .returncode, .stdout, .stderr."""
    from check_jsonschema.cli.main_command import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout,
                           stderr=result.stderr)
