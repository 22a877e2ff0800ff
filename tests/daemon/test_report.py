"""`summarize(result, previous, run)`: one reconcile's report as a value, with no I/O. Everything
the daemon tells (metrics, history, logs, notifications, /status) reads these fields."""

from __future__ import annotations

from reconciler.apply import ActionResult, ApplyResult
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.report import Run, summarize, writes
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.model import Actual, Desired, LiveSocket, SocketSpec
from reconciler.plan.types import Action, Change, DeferReason, Deferred, Plan
from reconciler.reconcile import ReconcileResult, Stage

CONFIG = DaemonConfig(path="/m", history=2)
DESIRED = Desired(sockets={"a": SocketSpec("a", "http"), "b": SocketSpec("b", "http")})
ACTUAL = Actual(sockets={"a": LiveSocket("id-a", "a", "http")})


def run(wall: float, *, wrote: bool = True) -> Run:
    return Run("interval", "abc123", wall, 0.25, wrote, CONFIG)


def failed_create() -> ReconcileResult:
    create_b = Change("socket", "b", Action.CREATE)
    applied = ApplyResult((ActionResult(create_b, False, "failed: create socket b: 500"),))
    return ReconcileResult(False, Stage.APPLY, plan=Plan(changes=[create_b]), applied=applied,
                           desired=DESIRED, actual=ACTUAL, error="1 action failed")


def test_a_failed_action_is_one_structured_error_and_the_object_s_state():
    report = summarize(failed_create(), None, run(100.0))

    assert report.outcome == "failure" and report.step.failures == 1
    assert [e.to_json() for e in report.errors] == [{
        "source": "apply", "kind": "socket", "name": "b", "code": "apply-failed",
        "message": "failed: create socket b: 500", "where": None,
    }]
    assert report.states == {("socket", "a"): "in-sync", ("socket", "b"): "error"}
    assert [row["name"] for row in report.sockets] == ["a", "b"]
    assert report.pending == 1  # planned and not applied: the next run plans it again
    assert report.entry["changes"][0]["ok"] is False
    assert report.history == (report.entry,)


def test_summarize_is_pure():
    result = failed_create()
    assert summarize(result, None, run(100.0)) == summarize(result, None, run(100.0))


def test_a_manifest_error_keeps_its_location_and_the_last_good_state():
    good = summarize(ReconcileResult(True, Stage.DONE, plan=Plan(), desired=DESIRED,
                                     actual=ACTUAL), None, run(100.0))
    bad = ReconcileResult(False, Stage.LOAD, diagnostics=[Diagnostic(
        Severity.ERROR, "kind: 'Sockt' is not one of Socket, Policy", "m/bad.yaml", 3, 1,
        code="schema")], error="the manifests have 1 error")

    report = summarize(bad, good, run(200.0))

    assert report.outcome == "invalid" and report.manifest_errors == 1
    (error,) = report.errors
    assert (error.source, error.code, error.where) == ("manifests", "schema", "m/bad.yaml:3:1")
    assert error.text == "m/bad.yaml:3:1: error: kind: 'Sockt' is not one of Socket, Policy"
    assert report.states is good.states and report.kept_at == 100.0  # the last good state
    assert report.last_success == {"time": "1970-01-01T00:01:40.000+00:00",
                                   "revision": "abc123"}
    assert [e["result"] for e in report.history] == ["invalid", "success"]


def test_a_plan_refused_at_planning_counts_its_errors_as_manifest_errors():
    conflict = Diagnostic(Severity.ERROR, "external policy 'nope' does not exist", "m/a.yaml", 1,
                          1, code="unknown-policy")
    refused = ReconcileResult(False, Stage.PLAN, plan=Plan(conflicts=[conflict]),
                              desired=DESIRED, actual=ACTUAL, error="the plan cannot be applied")
    blocked = ReconcileResult(False, Stage.PLAN, plan=Plan(), desired=DESIRED, actual=ACTUAL,
                              error="the plan cannot be applied: replace socket a")

    report = summarize(refused, None, run(100.0))

    assert report.outcome == "invalid" and report.manifest_errors == 1
    assert report.step.failures == 0  # invalid, as at load: not a failure in a row
    assert summarize(blocked, None, run(100.0)).manifest_errors == 1  # its refusal, at least
    assert summarize(failed_create(), None, run(100.0)).manifest_errors == 0


def test_the_history_keeps_the_configured_number_newest_first():
    report = None
    for wall in (1.0, 2.0, 3.0):
        report = summarize(ReconcileResult(True, Stage.DONE, plan=Plan(), desired=DESIRED,
                                           actual=ACTUAL), report, run(wall))
    assert [e["time"][-12:] for e in report.history] == ["03.000+00:00", "02.000+00:00"]


def test_changes_held_back_say_why_and_until_when():
    held = [{"kind": "socket", "name": "b", "action": "create", "why": "access"}]
    plan = Plan(deferred=[Deferred(Change("socket", "b", Action.CREATE), DeferReason.ACCESS,
                                   160.0)])
    result = ReconcileResult(True, Stage.DONE, plan=plan, desired=DESIRED, actual=ACTUAL)
    report = summarize(result, None, run(100.0))
    assert report.held == {"until": "1970-01-01T00:02:40.000+00:00", "changes": held}
    assert report.held_counts == {"access": 1, "guard": 0, "incomplete": 0, "removal": 0}
    assert report.entry["deletions_deferred_until"] == "1970-01-01T00:02:40.000+00:00"


def test_drift_is_what_changed_while_the_manifests_did_not():
    update_a = Change("socket", "a", Action.UPDATE)
    first = summarize(ReconcileResult(True, Stage.DONE, plan=Plan(), desired=DESIRED,
                                      actual=ACTUAL), None, run(1.0))
    applied = ApplyResult((ActionResult(update_a, True, "updated socket a"),))
    repaired = ReconcileResult(True, Stage.DONE, plan=Plan(changes=[update_a]), applied=applied,
                               desired=DESIRED, actual=ACTUAL)

    report = summarize(repaired, first, run(2.0))
    assert report.drift.drifted == (update_a,) and report.drift.corrected == (update_a,)
    assert report.corrected == ({"action": "update", "kind": "socket", "name": "a",
                                 "title": "update socket a"},)

    observed = summarize(ReconcileResult(True, Stage.DONE, plan=Plan(changes=[update_a]),
                                         desired=DESIRED, actual=ACTUAL), first,
                         run(2.0, wrote=False))
    assert observed.drift.drifted == (update_a,) and observed.drift.corrected == ()
    assert observed.pending == 1 and observed.states[("socket", "a")] == "out-of-sync"
    again = summarize(ReconcileResult(True, Stage.DONE, plan=Plan(changes=[update_a]),
                                      desired=DESIRED, actual=ACTUAL), observed,
                      run(3.0, wrote=False))
    assert again.drift.drifted == ()  # still pending: not new drift


def test_a_dry_run_or_a_closed_window_does_not_write():
    assert writes(CONFIG, may_apply=True)
    assert not writes(CONFIG, may_apply=False)
    assert not writes(DaemonConfig(path="/m", dry_run=True), may_apply=True)
