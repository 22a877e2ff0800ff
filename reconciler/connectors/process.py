"""A connector's child process: its output as log lines, exit checks that do not reap, and
signals to its process group (death with the daemon and orphans: `process_groups.py`)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from typing import IO, Protocol

__all__ = ["Output", "Sink", "has_exited", "killpg"]  # the process primitives connectors share


class Sink(Protocol):
    """Where a child's lines go: the supervisor's log, through its redactor."""

    log: logging.Logger

    def redact(self, text: str) -> str: ...


class Output(threading.Thread):
    """Reads one child's merged stdout/stderr and logs each line, secrets redacted."""

    def __init__(self, name: str, pid: int, pipe: IO[bytes], sup: Sink) -> None:
        super().__init__(name=f"connector-output-{name}", daemon=True)
        self.socket, self.pid, self.pipe, self.sup = name, pid, pipe, sup
        self.last_line = ""

    def run(self) -> None:
        try:
            for raw in iter(self.pipe.readline, b""):
                line = self.sup.redact(raw.decode("utf-8", "replace").rstrip("\r\n"))
                if line.strip():
                    self.last_line = line
                self.sup.log.info(
                    "%s: %s", self.socket, line, extra={"socket": self.socket, "pid": self.pid}
                )
        except (OSError, ValueError):
            pass
        finally:
            self.pipe.close()


def has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the child has exited, *without* reaping it: while it is a zombie its pid
    (and so its process group id) cannot be reused, so killing the group stays safe."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True
    except AttributeError:  # pragma: no cover - no waitid on this platform
        return proc.poll() is not None


def killpg(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
