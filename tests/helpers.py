"""Small helpers shared by the tests: waiting on conditions, running the CLI as a process."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "PYTHON", "REPO", "cli", "edit_by_hand", "free_port", "free_port_range", "sent", "wait_for",
]

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


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


def cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    timeout: float = 60.0,
    inherit_env: bool = True,
) -> tuple[int, str, str]:
    """Run `python -m reconciler ARGS` as a child process -> (exit code, stdout, stderr).

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
    links = client.get_socket_for_write(socket["socket_id"])
    socket = {**socket, "connector_ids": links["connector_ids"],
              "upstream_configuration": links["upstream_configuration"]}
    body = {k: v for k, v in socket.items() if k in fields}
    return client.update_socket(socket["socket_id"], {**body, **changes})
