"""Binaries some tests need that pip does not install: found on PATH, else the test is skipped
with the reason, except in CI (CI=true), where a missing one fails (.ci/run installs them)."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["promtool"]


def promtool() -> str:
    """Prometheus' promtool (Debian package `prometheus`; .ci/run extracts it)."""
    found = shutil.which("promtool")
    if found:
        return found
    message = "promtool is not installed (Debian: apt-get install prometheus; .ci/run does it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
