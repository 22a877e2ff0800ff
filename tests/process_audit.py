"""The `slow` marker's check (issue 25): a test that starts a process must say so.

Most tests run in this process (the CLI through `helpers.cli`, the emulator on a thread), so
`pytest -m "not slow"` is the quick loop. A test whose subject is a process (a connector,
signals, kill -9, the console script, the daemon as a process, a packaging tool) carries
`@pytest.mark.slow`. This plugin counts every process a test starts, in its fixtures too, with
a Python audit hook (`subprocess.Popen`, `os.system`, `os.fork`, `os.posix_spawn`, `os.exec`,
`os.spawn`: sys.addaudithook's events) and fails an unmarked test that starts one. At the end
it prints how many test functions started a process.

Loaded by tests/conftest.py (`pytest_plugins`); tests/test_process_audit.py proves it fails.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

EVENTS = frozenset({
    "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec",
    "os.spawn",
})
#: Processes started since the current test's setup began (the hook cannot be removed, so it
#: stays one cheap counter for the whole session).
_count = [0]
_what: list[str] = []  # the first few commands, for the failure message
_spawners: set[str] = set()  # node ids, gathered on the controller under pytest-xdist
#: Fixtures whose setup started a process (a module-scoped daemon, say): every test that uses
#: one counts as starting a process, whichever test happened to set it up first.
_spawning_fixtures: list[Any] = []


_USES = pytest.StashKey[bool]()


def _audit(event: str, args: Any) -> None:
    if event in EVENTS:
        _count[0] += 1
        if len(_what) < 3:
            argv = args[1] if event == "subprocess.Popen" else args
            _what.append(" ".join(map(str, argv))[:120] if isinstance(argv, list | tuple)
                         else f"{event} {argv}"[:120])


if not getattr(sys, "_border0_process_audit", False):
    sys.addaudithook(_audit)
    sys._border0_process_audit = True  # type: ignore[attr-defined]  # once per interpreter


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: Any) -> None:
    _count[0] = 0
    _what.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    before = _count[0]
    yield
    if _count[0] > before and fixturedef not in _spawning_fixtures:
        _spawning_fixtures.append(fixturedef)


def _uses_spawning_fixture(item: Any) -> bool:
    used = getattr(getattr(item, "_request", None), "_fixture_defs", {}) or {}
    return any(fixturedef in _spawning_fixtures for fixturedef in used.values())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    if call.when == "call":
        item.stash[_USES] = _uses_spawning_fixture(item)
    if call.when != "teardown":
        return
    report = outcome.get_result()
    started = _count[0] or int(item.stash.get(_USES, False))
    if not started:
        return
    if not _what:
        _what.append("through a fixture that started one")
    report.user_properties.append(("processes_started", started))
    if item.get_closest_marker("slow") is None and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} started {started} process(es) without @pytest.mark.slow: run the "
            "CLI with helpers.cli (in this process) or mark the test slow if a process is "
            f"its subject (tests/process_audit.py); the first: {'; '.join(_what)}")


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "teardown" and any(k == "processes_started" for k, _ in
                                         report.user_properties):
        _spawners.add(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _spawners:
        return
    functions = {nodeid.split("[", 1)[0] for nodeid in _spawners}
    terminalreporter.write_line(
        f"processes: {len(functions)} test functions ({len(_spawners)} test cases) started a "
        "process (tests/process_audit.py)")
    if terminalreporter.verbosity > 1:  # -vv: which
        for function in sorted(functions):
            terminalreporter.write_line(f"  {function}")
