"""reconciler/daemon/outcome.py: what the daemon does after each kind of reconcile result.
Pure function on plain values; the daemon tests drive the same rules end to end."""

from __future__ import annotations

import pytest

from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.outcome import FAILURE, INVALID, SUCCESS, decide
from reconciler.model import Actual, Desired
from reconciler.reconcile import ReconcileResult, Stage

CONFIG = DaemonConfig(path=".", interval=300, backoff_base=1, backoff_max=60, fail_threshold=3)


def result(ok: bool, stage: Stage, reached: bool = False) -> ReconcileResult:
    if not reached:
        return ReconcileResult(ok, stage, error=None if ok else "boom")
    return ReconcileResult(ok, stage, desired=Desired(), actual=Actual(),
                           error=None if ok else "boom")


def test_success_waits_for_the_interval_resets_failures_and_is_ready():
    step = decide(result(True, Stage.DONE, reached=True), failures=4, succeeded_once=False,
                  config=CONFIG)
    assert step.outcome == SUCCESS and step.failures == 0 and step.retry_in is None
    assert step.ready and step.succeeded_once
    assert step.keep and step.sync_connectors


@pytest.mark.parametrize("stage", [Stage.LOAD, Stage.PLAN])
def test_invalid_manifests_stall_without_backoff_and_keep_the_last_good_state(stage):
    step = decide(result(False, stage), failures=1, succeeded_once=True, config=CONFIG)
    assert step.outcome == INVALID and step.retry_in is None
    assert step.failures == 1  # neither a failure to reach border0 nor a success
    assert step.ready  # invalid manifests do not take a running daemon out of service
    assert not step.keep and not step.sync_connectors


@pytest.mark.parametrize("stage", [Stage.FETCH, Stage.INTERNAL])
def test_api_failure_backs_off_doubling(stage):
    waits = []
    failures = 0
    for _ in range(4):
        step = decide(result(False, stage), failures=failures, succeeded_once=True, config=CONFIG)
        assert step.outcome == FAILURE and not step.keep
        failures = step.failures
        waits.append(step.retry_in)
    assert waits == [1, 2, 4, 8] and failures == 4


def test_the_backoff_never_exceeds_the_interval():
    config = DaemonConfig(path=".", interval=5, backoff_max=60)
    step = decide(result(False, Stage.FETCH), failures=9, succeeded_once=True, config=config)
    assert step.retry_in == 5


def test_not_ready_once_failures_reach_the_threshold():
    ready = []
    failures = 0
    for _ in range(3):
        step = decide(result(False, Stage.FETCH), failures=failures, succeeded_once=True,
                      config=CONFIG)
        failures = step.failures
        ready.append(step.ready)
    assert ready == [True, True, False]


def test_not_ready_before_the_first_success():
    step = decide(result(False, Stage.LOAD), failures=0, succeeded_once=False, config=CONFIG)
    assert not step.ready


def test_a_failed_apply_backs_off_but_keeps_what_border0_now_holds():
    step = decide(result(False, Stage.APPLY, reached=True), failures=0, succeeded_once=True,
                  config=CONFIG)
    assert step.outcome == FAILURE and step.retry_in == 1
    assert step.keep and step.sync_connectors


def test_a_dry_run_keeps_the_state_but_leaves_connectors_alone():
    config = DaemonConfig(path=".", dry_run=True)
    step = decide(result(True, Stage.DONE, reached=True), failures=0, succeeded_once=False,
                  config=config)
    assert step.keep and not step.sync_connectors
