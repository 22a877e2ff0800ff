"""Shared fixtures: the emulator in-process (`emulator`) and as a real child process
(`emulator_process`). Others may add fixtures here with small edits."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# pytest keeps each test module's assertion-rewritten bytecode in __pycache__, unless
# PYTHONDONTWRITEBYTECODE is set (this image sets it, as some CI images do): then every xdist
# worker rewrites and compiles all the test modules again, about 2 s of CPU a worker a run.
# The cache is pytest's own and git ignores it; the suite's child processes are unaffected.
sys.dont_write_bytecode = False

from reconciler.border0.client import Border0Client
from reconciler.border0.emulator import EmbeddedEmulator
from reconciler.secrets import use_fingerprint_key

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import PYTHON, REPO, wait_for

#: The border0 API contract check over every request the client sends (contract_recorder.py);
#: the `slow` marker's check on every test that starts a process (process_audit.py).
pytest_plugins = ["contract_recorder", "daemon_host", "process_audit"]

TEST_TOKEN = "test-token-5f1c0e"


@pytest.fixture(autouse=True, scope="session")
def _working_directory_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory
                                            ) -> Iterator[None]:
    """Every test runs in a scratch working directory: the CLI's default state folder is the
    working directory's `.border0-reconciler`, so a test that runs the CLI (or a daemon)
    against border0 without a folder of its own wrote its fingerprint key, inventory and
    parse cache into the checkout (40 tests did), where a developer keeps their own."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(before)
#: Fast retries for tests: the defaults (1 s .. 30 s) are border0's and would slow tests down.
FAST_RETRIES: dict[str, Any] = {"backoff_base": 0.02, "backoff_max": 0.5, "deadline": 60.0}


class InProcessEmulator:
    """The `emulator` fixture's value: .url (with /api/v1), .token, .store, .client(),
    .requests() (what it served, in order: a child's access log, read in this process)."""

    def __init__(self, **start: Any) -> None:
        self._emulator = EmbeddedEmulator()
        self._clients: list[Border0Client] = []
        self._served: list[tuple[str, str]] | None = None
        self.token = start.pop("token", TEST_TOKEN)
        self.url = self._emulator.start(start.pop("db_path", None), self.token, **start)
        self.store = self._emulator.store
        self.app = self._emulator.app

    def requests(self) -> list[tuple[str, str]]:
        """Every request served from now on, as (METHOD, path), in the order they came: a
        recorder around the emulator's API inside its fault layer (`app.app`), kept by the
        emulator, so refused-by-fault requests are not in it, as in border0's own log."""
        if self._served is None:
            served: list[tuple[str, str]] = []
            inner = self.app.app

            async def recording(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] == "http":
                    served.append((scope["method"], scope["path"]))
                await inner(scope, receive, send)

            self.app.app = recording
            self._served = served
        return self._served

    def writes(self) -> list[tuple[str, str]]:
        """The requests served that are not reads: (METHOD, path)."""
        return [(m, p) for m, p in self.requests() if m not in ("GET", "HEAD")]

    def client(self, token: str | None = None, **options: Any) -> Border0Client:
        """A client for this emulator (fast retries unless overridden); closed at teardown."""
        client = Border0Client(
            self.url, self.token if token is None else token, **{**FAST_RETRIES, **options}
        )
        self._clients.append(client)
        return client

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._emulator.stop()


@pytest.fixture
def emulator() -> Iterator[InProcessEmulator]:
    """An in-process emulator on a random loopback port with fresh in-memory state."""
    emu = InProcessEmulator()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator_factory() -> Iterator[Any]:
    """Like `emulator`, with options: emulator_factory(fail_rate=0.2, seed=1, db_path=...)."""
    started: list[InProcessEmulator] = []

    def make(**options: Any) -> InProcessEmulator:
        emu = InProcessEmulator(**options)
        started.append(emu)
        return emu

    try:
        yield make
    finally:
        for emu in started:
            emu.stop()


_LISTENING = re.compile(r"emulator listening on (http://\S+)")


class EmulatorProcess:
    """`python -m reconciler emulator` as a child process; restartable on the same port/db."""

    def __init__(self, db: Path, flags: dict[str, Any], token: str = TEST_TOKEN) -> None:
        self.db = db
        self.token = token
        self.flags = flags
        self.url = ""
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_lines: list[str] = []
        self._clients: list[Border0Client] = []

    def _args(self) -> list[str]:
        args = ["--listen", f"127.0.0.1:{self.port}", "--db", str(self.db)]
        for key, value in self.flags.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value not in (None, False):
                args += [flag, str(value)]
        return args

    def start(self, timeout: float = 60.0) -> str:
        """Start (or restart, on the same port and db); returns the URL once it is listening."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("already running")
        env = dict(os.environ, BORDER0_EMULATOR_TOKEN=self.token, PYTHONUNBUFFERED="1")
        self.stderr_lines = []
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "reconciler", "emulator", *self._args()],
            cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        found: list[str] = []
        proc = self.proc

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.stderr_lines.append(line)
                match = _LISTENING.search(line)
                if match and not found:
                    found.append(match.group(1))

        threading.Thread(target=read, daemon=True).start()
        wait_for(lambda: found or proc.poll() is not None, timeout=timeout,
                 message="the emulator process to listen")
        if not found:
            raise RuntimeError("emulator process failed: " + "".join(self.stderr_lines))
        self.url = found[0]
        self.port = int(self.url.split(":")[2].split("/")[0])
        return self.url

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def client(self, token: str | None = None, **options: Any) -> Border0Client:
        client = Border0Client(
            self.url, self.token if token is None else token, **{**FAST_RETRIES, **options}
        )
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[Any]:
    """Factory: emulator_process(latency=50, fail_rate=0.2, rate_limit=20, seed=1, ...) starts
    `python -m reconciler emulator` on a random port with a tmp --db; killed at teardown."""
    started: list[EmulatorProcess] = []

    def make(**flags: Any) -> EmulatorProcess:
        token = flags.pop("token", TEST_TOKEN)
        db = Path(flags.pop("db", tmp_path / f"emulator-{len(started)}.db"))
        proc = EmulatorProcess(db, flags, token)
        started.append(proc)
        proc.start()
        return proc

    try:
        yield make
    finally:
        for proc in started:
            proc.close_clients()
            proc.kill()


@pytest.fixture
def upstream() -> Iterator[int]:
    """A test upstream HTTP server on a random port that answers with its own marker."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"upstream saw {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def shared_key() -> Iterator[str]:
    """A fingerprint key this process uses and a CLI run gets in its environment
    (`FINGERPRINT_KEY_ENV`): one reconciler, as replicas share one (docs/security.md)."""
    key = "test-fingerprint-key-0123456789abcdef"
    use_fingerprint_key(key.encode())
    try:
        yield key
    finally:
        use_fingerprint_key(os.urandom(32))


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    """The Helm chart (charts/border0-reconciler) loaded once a module, through helm-python's
    Go SDK (no helm binary): the chart tests render it with their values."""
    import helm_python as helm

    with helm.Chart.load(REPO / "charts" / "border0-reconciler") as loaded:
        yield loaded


@pytest.fixture
def status_server() -> Iterator[Any]:
    """`status_server(view, redact=None)`: a daemon's status server (`StatusServer`) for `view`
    on a free port, as an httpx client with its base URL; every one is stopped at the end."""
    import httpx

    from reconciler.daemon.status_server import StatusServer

    started: list[tuple[Any, httpx.Client]] = []

    def start(view: Any, redact: Any = lambda text: text) -> httpx.Client:
        server = StatusServer(view, "127.0.0.1:0", redact=redact)
        host, port = server.bind()
        server.start()
        client = httpx.Client(base_url=f"http://{host}:{port}", timeout=10)
        started.append((server, client))
        return client

    yield start
    for server, client in started:
        client.close()
        server.stop()


@pytest.fixture
def running() -> Iterator[Any]:
    """Start a Daemon's loop in a thread (`running(daemon)`); its exit codes land in
    `daemon.exit_codes`; every one started is stopped at the end of the test."""
    started: list[tuple[Any, threading.Thread]] = []

    def start(daemon: Any) -> Any:
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(daemon.run()), daemon=True)
        thread.start()
        daemon.exit_codes = codes
        started.append((daemon, thread))
        return daemon

    yield start
    for daemon, thread in started:
        daemon.request_stop()
        thread.join(10)
