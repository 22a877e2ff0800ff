"""`run` in this process (issue 25): the daemon command as a test drives it, without a child.

A daemon's signal handlers (SIGTERM/SIGINT stop, SIGHUP reconciles now) can only be set in the
main thread, so a test that asks for the `daemon_run` fixture runs its body in a thread while the
main thread runs `border0-reconciler run ...` through the CLI's entry (`reconciler.cli.main`, as
helpers.cli does). The daemon is the real command: its options parsed by click, its JSON log lines
written to its own stderr (collected here as they come), its HTTP port read from them, its
signals delivered with os.kill to this process. When the body ends, every daemon still running
gets SIGTERM and its exit is awaited, so no daemon outlives its test.

The handle has the reading side of tests/daemon/test_daemon_process.py's DaemonProcess
(`DaemonView`), so a test written against a child reads the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import _exit_code, _process_state, wait_for
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["DaemonView", "InProcessDaemon"]


class DaemonView:
    """What a test reads from a running daemon: /status, /metrics and its JSON log records."""

    http: httpx.Client
    records: list[dict[str, Any]]

    def status(self) -> dict[str, Any]:
        return self.http.get("/status").json()

    def metrics(self) -> dict[str, Any]:
        return {f.name: f for f in text_string_to_metric_families(self.http.get("/metrics").text)}

    def sample(self, family: str, suffix: str = "_total", **labels: str) -> float:
        return sum(
            s.value
            for s in self.metrics()[family].samples
            if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def reconciles(self) -> float:
        return self.sample("border0_reconciler_reconciles")

    def last(self, key: str) -> Any:
        return (self.status().get("last_reconcile") or {}).get(key)

    def messages(self) -> list[str]:
        return [r.get("message", "") for r in list(self.records)]

    def _listen(self) -> str | None:
        return next((r["listen"] for r in list(self.records) if "listen" in r), None)

    def wait(self, predicate: Any, timeout: float, message: str, interval: float = 0.05) -> Any:
        """wait_for, showing the daemon's last log lines when it times out."""
        try:
            return wait_for(predicate, timeout=timeout, message=message, interval=interval)
        except AssertionError as exc:
            lines = "".join(getattr(self, "lines", [])[-30:])
            raise AssertionError(f"{exc}\ndaemon log:\n{lines}") from None


class _Lines:
    """A text stream for the daemon's stderr: whole lines kept, JSON ones parsed too."""

    def __init__(self, view: InProcessDaemon) -> None:
        self._view = view
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._view.lines.append(line + "\n")
            with contextlib.suppress(ValueError):
                self._view.records.append(json.loads(line))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class InProcessDaemon(DaemonView):
    """One `run` command on this process's main thread; `.code` is its exit code once done."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.env = env
        self.lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.code: int | None = None
        self.http = httpx.Client(timeout=10)
        self._lock = threading.Lock()  # a signal is sent only while our handlers are set
        self._done = threading.Event()
        self._saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}

    def serve(self) -> None:
        """Run the command (on the main thread); returns when the daemon exits."""
        from click.testing import CliRunner

        from reconciler.cli import main

        stack = contextlib.ExitStack()
        try:
            stack.enter_context(_process_state(self.env, None, True))  # where tests run
            stack.enter_context(CliRunner().isolation())
            with contextlib.redirect_stderr(_Lines(self)):  # type: ignore[type-var]
                try:
                    main(["run", *self.args])
                    self.code = 0
                except SystemExit as exc:
                    self.code = _exit_code(exc.code)
                except Exception:  # noqa: BLE001 - a process would print it and exit 1
                    self.lines.append(traceback.format_exc())
                    self.code = 1
        finally:
            with self._lock:  # the handlers go back only when no signal is on its way
                stack.close()
                self._done.set()

    def alive(self) -> bool:
        return not self._done.is_set()

    def exited(self, timeout: float) -> int:
        """The exit code, once the daemon has exited (within `timeout`)."""
        if not self._done.wait(timeout):
            raise AssertionError(f"the daemon did not exit within {timeout}s")
        assert self.code is not None
        return self.code

    def send_signal(self, sig: int) -> None:
        """Deliver `sig` to the daemon's handler (os.kill to this process): never before the
        daemon has set its handlers, never after they are put back."""
        wait_for(lambda: not self.alive() or signal.getsignal(sig) is not self._saved[sig],
                 timeout=30, message="the daemon's signal handlers")
        with self._lock:
            if self.alive():
                os.kill(os.getpid(), sig)

    def terminate(self, timeout: float = 15) -> int:
        self.send_signal(signal.SIGTERM)
        return self.exited(timeout)

    def close(self) -> None:
        self.http.close()


class _Host:
    """Runs jobs (daemons) on the main thread while the test body runs in another thread."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[InProcessDaemon | None] = queue.Queue()
        self.started: list[InProcessDaemon] = []

    def start(self, path: Path, api: str, token: str | None = None, *args: str) -> InProcessDaemon:
        """As test_daemon_process's `daemon_process`: `run PATH --api API --listen 127.0.0.1:0
        --log-format json --no-connectors ARGS`, BORDER0_ADMIN_TOKEN=token; returns once it
        serves HTTP. --no-connectors: connectors are processes (and their guards a watchdog
        process and a subreaper flag on this one); their tests run the daemon as a child."""
        env = {"BORDER0_ADMIN_TOKEN": token} if token else {}
        daemon = InProcessDaemon([str(path), "--api", api, "--listen", "127.0.0.1:0",
                                  "--log-format", "json", "--no-connectors", *args], env)
        self.started.append(daemon)
        self.jobs.put(daemon)
        wait_for(lambda: daemon._listen() or not daemon.alive(), timeout=30,
                 message="the daemon to serve HTTP")
        listen = daemon._listen()
        if listen is None:
            raise AssertionError("the daemon exited: " + "".join(daemon.lines))
        daemon.http.base_url = httpx.URL(f"http://{listen}")
        return daemon

    __call__ = start

    def run(self, body: Callable[[], Any]) -> None:
        error: list[BaseException] = []

        def target() -> None:
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - raised again on the main thread
                error.append(exc)
            finally:
                try:
                    for daemon in self.started:
                        if daemon.alive():
                            daemon.terminate(timeout=30)
                finally:
                    self.jobs.put(None)

        thread = threading.Thread(target=target, name="test-body", daemon=True)
        thread.start()
        while (daemon := self.jobs.get()) is not None:
            daemon.serve()
        thread.join()
        for daemon in self.started:
            print("".join(daemon.lines))  # shown by pytest when the test failed
            daemon.close()
        if error:
            raise error[0]


@pytest.fixture
def daemon_run() -> Iterator[Any]:
    """Start `run` in this process: daemon_run(path, api, token, *args) -> InProcessDaemon.
    The test's body runs in a thread (pytest_pyfunc_call below) so the daemon has the main one."""
    yield _Host()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> Any:
    if "daemon_run" not in pyfuncitem.fixturenames:
        return None
    host: _Host = pyfuncitem.funcargs["daemon_run"]
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    host.run(lambda: pyfuncitem.obj(**kwargs))
    return True
