"""Small helpers shared by the tests: waiting on conditions, running the CLI (in this process,
or as a child process when the process is the subject)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.border0.api_json import with_links

__all__ = [
    "PYTHON", "REPO", "applied_project", "cli", "cli_process", "comparisons", "copy_examples",
    "edit_by_hand", "fail_every", "free_port", "free_port_range", "refuse_writes", "sent",
    "wait_for",
]

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def copy_examples(dest: Path, *leave_out: str, dirs_exist_ok: bool = False) -> Path:
    """A copy of the checkout's `examples/` at `dest`, to apply or edit: without a developer's
    `.border0-reconciler` (their local state and the example connectors' token files) and
    without the `leave_out` patterns. Tests never apply the checkout's own examples: an apply
    writes token files beside the manifests."""
    return Path(shutil.copytree(REPO / "examples", dest, dirs_exist_ok=dirs_exist_ok,
                                ignore=shutil.ignore_patterns(".border0-reconciler",
                                                              *leave_out)))


def applied_project(tmp_path: Path, emulator: Any) -> dict[str, Any]:
    """`documents.base_docs()` written under tmp_path/m and applied to the twin over HTTP with
    the real CLI: {"dir", "m" (the manifests), "client", "env_file", "args" (the flags every
    command of the project takes)}."""
    from documents import SECRET, base_docs, write

    env_file = tmp_path / "demo.env"
    env_file.write_text(f"DB_PASSWORD={SECRET}\n")
    token = tmp_path / "token"
    token.write_text(emulator.token)
    p = {"dir": tmp_path, "m": write(tmp_path / "m", base_docs()), "client": emulator.client(),
         "env_file": env_file,
         "args": ["--api", emulator.url, "--token-file", str(token), "--env-file", str(env_file)]}
    code, _, err = cli(["apply", str(p["m"]), "--auto-approve", *p["args"]], cwd=tmp_path)
    assert code == 0, err
    return p


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "",
) -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout`.

    Exceptions from the predicate count as "not yet"; the last one is shown on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:  # noqa: BLE001 - "not yet", remembered for the message
            last_error, result = exc, None
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(
                f"timed out after {timeout}s waiting for {message or predicate!r}{detail}"
            )
        time.sleep(interval)


def reconciled(folder: Path, client: Any) -> Any:
    """`folder` reconciled into border0 through `client` as `apply` does (no delete grace),
    asserting that it succeeded; the result."""
    from reconciler.reconcile import ReconcileOptions, reconcile

    result = reconcile([folder], client, ReconcileOptions(delete_grace=0))
    assert result.ok, (result.error, [str(d) for d in result.diagnostics])
    return result


def cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    timeout: float = 60.0,
    inherit_env: bool = True,
) -> tuple[int, str, str]:
    """Run the CLI (`reconciler.cli.main`, the console script's entry) in this process, as
    click's CliRunner does -> (exit code, stdout, stderr), the same triple as `cli_process`.

    `env` is added to the environment (or replaces it with inherit_env=False), `cwd` is the
    working directory and `input` is stdin, all for this call only: the helper holds a lock
    and puts back os.environ, the working directory, the root logger, the signal handlers and
    the signal wake-up fd afterwards (the `run` command sets them up as a process would).
    An exception that escapes the CLI is a traceback on stderr and exit 1, as in a process.
    `timeout` is kept for the signature; pytest-timeout bounds an in-process call.
    """
    from click.testing import CliRunner

    from reconciler.cli import main

    with _CLI_LOCK, _process_state(env, cwd, inherit_env):
        with CliRunner().isolation(input=input) as (out, err, _mixed):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = _exit_code(exc.code)
            except Exception:  # noqa: BLE001 - a process would print it and exit 1
                sys.stderr.write(traceback.format_exc())
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()


_CLI_LOCK = threading.Lock()
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGCHLD")
                 if hasattr(signal, name))


def _exit_code(code: object) -> int:
    """SystemExit's code as a process's exit status: None is 0, a message is 1 (printed)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


@contextlib.contextmanager
def _process_state(
    env: Mapping[str, str] | None, cwd: str | os.PathLike[str] | None, inherit_env: bool
) -> Iterator[None]:
    """What a child process would have had to itself, set for one in-process call and put back."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    root = logging.getLogger()
    saved_log = (list(root.handlers), root.level)
    main_thread = threading.current_thread() is threading.main_thread()
    saved_signals = {s: signal.getsignal(s) for s in _SIGNALS} if main_thread else {}
    saved_wakeup = signal.set_wakeup_fd(-1) if main_thread else None
    if main_thread:
        signal.set_wakeup_fd(saved_wakeup)
    try:
        if not inherit_env:
            os.environ.clear()
            os.environ["PATH"] = saved_env.get("PATH", "")
        os.environ.pop("BORDER0_RECONCILER_DEBUG", None)
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = saved_log[0]
        root.setLevel(saved_log[1])
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)
        if saved_wakeup is not None:
            signal.set_wakeup_fd(saved_wakeup)


def cli_process(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    timeout: float = 60.0,
    inherit_env: bool = True,
) -> tuple[int, str, str]:
    """Run `python -m reconciler ARGS` as a child process -> (exit code, stdout, stderr): for
    tests whose subject is the process (signals, exit on a dead part, the module entry point).

    `env` is added to this process's environment (or replaces it with inherit_env=False).
    """
    full_env = dict(os.environ) if inherit_env else {"PATH": os.environ.get("PATH", "")}
    full_env.pop("BORDER0_RECONCILER_DEBUG", None)
    full_env.update(env or {})
    proc = subprocess.run(
        [PYTHON, "-m", "reconciler", *args],
        cwd=str(cwd) if cwd is not None else None,
        env=full_env,
        input=input,
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def sent(client: Any, method: str) -> int:
    """Requests of `method` a Border0Client sent, answered or not (its `request_counts`)."""
    return sum(n for (m, _status), n in client.request_counts.items() if m == method)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(count: int) -> tuple[int, int]:
    """`count` consecutive TCP ports on 127.0.0.1 that nothing listens on right now, (low, high):
    for an emulator state whose sockets must not meet the 20000+ ports other tests hand out."""
    for _ in range(200):
        low = random.randrange(30000, 60000 - count)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(low, low + count):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            return low, low + count - 1
        except OSError:
            continue
    raise RuntimeError(f"no {count} free consecutive ports found")


def edit_by_hand(client: Any, socket: Mapping[str, Any], **changes: Any) -> dict:
    """A change made outside the reconciler (the portal, a script): border0's PUT resets what it
    is not sent and refuses read-only fields, so send the socket as read (its links and
    upstream configuration from the sub-resources), cut to the fields of the reference's
    updateSocketRequest, with `changes` on top."""
    reference = json.loads((REPO / "tests" / "reference" / "border0-openapi.json").read_text())
    fields = reference["components"]["schemas"]["v1.updateSocketRequest"]["properties"]
    # The answer has no links or upstream configuration: read them as border0's provider does.
    sid = socket["socket_id"]
    socket = with_links(socket, client.list_connectors(sid), client.list_upstream_configurations(sid))
    body = {k: v for k, v in socket.items() if k in fields}
    return client.update_socket(socket["socket_id"], {**body, **changes})


class _Picks(random.Random):
    """A fault injector's random source whose `choice` is always `kind`."""

    def __init__(self, kind: str) -> None:
        super().__init__(0)
        self.kind = kind

    def choice(self, seq: Any) -> Any:
        return self.kind


def fail_every(faults: Any, methods: Collection[str], kind: str) -> None:
    """Make the twin's fault injector (`emulator.app.faults`) fail every request of `methods`
    with `kind` ("500": not run; "500-after", "drop-after": run, the answer lost) until
    `faults.fail_rate = 0.0`."""
    faults.random, faults.fail_methods, faults.fail_rate = _Picks(kind), set(methods), 1.0


def refuse_writes(emulator: Any, names: Collection[str]) -> None:
    """Make the emulator refuse every write (POST, PUT) whose JSON body names one of `names`
    with a 400, as border0 refuses one object: the rest of an apply goes ahead."""
    inner = emulator.app.app

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            return await inner(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            name = json.loads(body or b"{}").get("name")
        except (ValueError, AttributeError):
            name = None
        if name in names:
            payload = json.dumps({"error_message": f"refused {name}", "status_code": 400})
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": payload.encode()})
            return None
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await inner(scope, replay, send)

    emulator.app.app = app


def comparisons(monkeypatch: Any) -> list[str]:
    """The descriptions of the sockets a plan compares field by field from now on (a spy on
    `planner.comparable`: what it returns is unchanged); a socket the plan's record of those
    in sync skips is not in it (plan/in_sync.py)."""
    from reconciler.plan import planner

    seen: list[str] = []
    compare = planner.comparable

    def spy(want: dict, have: dict) -> Any:
        seen.append(str(want.get("description")))
        return compare(want, have)

    monkeypatch.setattr(planner, "comparable", spy)
    return seen
