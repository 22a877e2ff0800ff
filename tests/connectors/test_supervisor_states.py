"""The connector state machine: one test per transition of the table, and every illegal one."""

from __future__ import annotations

import itertools

import pytest

from reconciler.connectors.supervisor import (
    TRANSITIONS,
    Connector,
    ConnectorTarget,
    IllegalTransition,
    State,
)
from reconciler.model import ConnectorSpec

LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets, key=lambda s: s.value)]
ILLEGAL = [(a, b) for a, b in itertools.product(State, State) if b not in TRANSITIONS[a]]


def connector_in(state: State) -> Connector:
    conn = Connector(ConnectorTarget("web", ConnectorSpec(host="h", port=1), "tls", "id", ()))
    conn.state = state  # place it; the transition under test goes through _change_state
    return conn


def test_the_table_is_the_supervisord_lifecycle():
    assert set(LEGAL) == {
        (State.STOPPED, State.STARTING),
        (State.STARTING, State.RUNNING),
        (State.STARTING, State.BACKOFF),
        (State.STARTING, State.STOPPING),
        (State.RUNNING, State.EXITED),
        (State.RUNNING, State.STOPPING),
        (State.EXITED, State.BACKOFF),
        (State.BACKOFF, State.STARTING),
        (State.BACKOFF, State.FATAL),
        (State.BACKOFF, State.STOPPED),
        (State.STOPPING, State.STOPPED),
        (State.FATAL, State.STARTING),
        (State.FATAL, State.STOPPED),
    }
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize(("old", "new"), LEGAL, ids=[f"{a.value}-to-{b.value}" for a, b in LEGAL])
def test_transition(old: State, new: State):
    conn = connector_in(old)
    before = conn.since
    conn._change_state(new)
    assert conn.state is new
    assert list(conn.history) == [(old, new)]
    assert conn.since >= before
    assert conn.status().state is new


@pytest.mark.parametrize(
    ("old", "new"), ILLEGAL, ids=[f"{a.value}-to-{b.value}" for a, b in ILLEGAL]
)
def test_illegal_transition_is_rejected(old: State, new: State):
    conn = connector_in(old)
    with pytest.raises(IllegalTransition, match=f"{old.value} -> {new.value}"):
        conn._change_state(new)
    assert conn.state is old
    assert not conn.history


def test_a_new_connector_is_stopped():
    conn = Connector(ConnectorTarget("web", ConnectorSpec(), "http", "id", ()))
    assert conn.state is State.STOPPED
    status = conn.status()
    assert (status.pid, status.restarts, status.last_exit_code) == (None, 0, None)
