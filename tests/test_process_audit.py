"""The `slow` marker's check (tests/process_audit.py) can fail: a test that starts a process
without `@pytest.mark.slow` fails, directly or through a fixture it uses, and the count of
process-starting test functions is printed."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent

SESSION = '''
import subprocess, sys
import pytest

def child():
    subprocess.run([sys.executable, "-c", "pass"], check=True)

@pytest.fixture(scope="module")
def server():
    child()  # set up once, on behalf of every test that uses it

def test_unmarked():
    child()

@pytest.mark.slow
def test_marked():
    child()

def test_in_process():
    assert sum(range(4)) == 6

def test_uses_server_a(server):
    pass

def test_uses_server_b(server):
    pass
'''


@pytest.mark.slow
def test_a_process_started_without_the_marker_fails_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makepyfile(test_session=SESSION)
    result = pytester.runpytest_subprocess("-p", "process_audit", "-p", "no:cacheprovider",
                                           "-p", "no:xdist")
    result.assert_outcomes(passed=5, errors=3)  # each call passes; its teardown reports
    text = result.stdout.str()
    for name in ("test_unmarked", "test_uses_server_a", "test_uses_server_b"):
        assert f"test_session.py::{name} started 1 process(es) without @pytest.mark.slow" in text
    assert "test_marked started" not in text and "test_in_process started" not in text
    assert "processes: 4 test functions (4 test cases) started a process" in text
