"""A connector owns its behaviour (supervisord's `Subprocess`): spawn, on_tick, stop and on_exit
move it through its transition table with no supervisor around it; a real child process."""

from __future__ import annotations

import logging
import time

import pytest
from helpers import wait_for

from reconciler.connectors.argv import ConnectorTarget
from reconciler.connectors.connector import REMOVE, Connector, Launch, State
from reconciler.connectors.process import has_exited
from reconciler.model import ConnectorSpec

# The subject is a real child process behind one Connector.
pytestmark = pytest.mark.slow


class Sink:
    log = logging.getLogger("test.connector")

    def redact(self, text: str) -> str:
        return text


def launch(command: str, **kw) -> Launch:
    settings = {"startsecs": 0.0, "stop_timeout": 5.0, "fatal_after": 2, "stable_secs": 60.0}
    settings.update(kw)
    return Launch(template=f"{{python}} -c {command!r}", protected_paths=(), child_env={},
                  tokens=(), delay=lambda level: 0.0, sink=Sink(), **settings)


def target() -> ConnectorTarget:
    return ConnectorTarget("web", ConnectorSpec(host="127.0.0.1", port=1), "http", "id-web")


def test_a_connector_runs_stops_and_is_forgotten_on_its_own():
    conn = Connector(target())
    sleeper = launch("import time; time.sleep(60)")
    conn.spawn(sleeper, now=time.monotonic())
    assert conn.state is State.STARTING and conn.proc is not None
    conn.on_tick(sleeper, now=time.monotonic())  # startsecs 0: up long enough
    assert conn.state is State.RUNNING

    conn.pending = REMOVE
    assert conn.stop(sleeper, now=time.monotonic()) is False  # SIGTERM sent; not gone yet
    assert conn.state is State.STOPPING
    wait_for(lambda: has_exited(conn.proc), message="the child ends on SIGTERM")
    assert conn.on_exit(sleeper, now=time.monotonic()) is True  # forget it
    assert conn.state is State.STOPPED
    assert list(conn.history) == [(State.STOPPED, State.STARTING), (State.STARTING, State.RUNNING),
                                  (State.RUNNING, State.STOPPING),
                                  (State.STOPPING, State.STOPPED)]


def test_failed_starts_back_off_then_go_fatal():
    conn = Connector(target())
    failing = launch("raise SystemExit(3)", startsecs=30.0)
    conn.spawn(failing, now=time.monotonic())
    wait_for(lambda: has_exited(conn.proc), message="the child exits at once")
    conn.on_exit(failing, now=time.monotonic())
    assert conn.state is State.BACKOFF and conn.last_error == "exited with code 3 (while starting)"
    conn.on_tick(failing, now=time.monotonic())  # the backoff (0 s here) is over: again
    assert conn.state is State.STARTING and conn.restarts == 1
    wait_for(lambda: has_exited(conn.proc), message="the child exits at once")
    conn.on_exit(failing, now=time.monotonic())
    assert conn.state is State.FATAL
    assert conn.last_error.endswith("gave up after 2 failed starts")
