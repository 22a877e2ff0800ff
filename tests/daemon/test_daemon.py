"""The daemon in-process: the real reconcile against the emulator over HTTP, and the loop's rules
(single flight, backoff, readiness, drift, invalid manifests, dry run) with injected parts."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import comparisons, edit_by_hand, wait_for
from prometheus_client.parser import text_string_to_metric_families

from reconciler.border0.client import Border0Client
from reconciler.clock import ManualClock
from reconciler.daemon.loop import Daemon, DaemonConfig
from reconciler.daemon.state import iso_time
from reconciler.reconcile import ReconcileResult

SECRET = "pa55-w0rd-xyz"


def socket_yaml(
    name: str,
    description: str,
    *,
    connector: bool = False,
    policy: str | None = None,
    password_env: str | None = None,
) -> str:
    lines = [
        "apiVersion: border0-reconciler/v1",
        "kind: Socket",
        "metadata:",
        f"  name: {name}",
        "spec:",
        f"  type: {'database' if password_env else 'http'}",
        f"  description: {description}",
    ]
    if password_env:
        lines += [
            "  upstream:",
            "    type: mysql",
            "    username: app",
            f"    password: {{env: {password_env}}}",
        ]
    if policy:
        lines += [f"  policies: [{policy}]"]
    if connector:
        lines += ["  connector:", "    httpserver: true"]
    return "\n".join(lines) + "\n"


def policy_yaml(name: str) -> str:
    return (
        "apiVersion: border0-reconciler/v1\nkind: Policy\n"
        f"metadata:\n  name: {name}\nspec:\n  description: team access\n  policyData:\n"
        "    version: v1\n    action: [http]\n    condition:\n      who:\n"
        "        email: [a@example.com]\n"
    )


class RecordingSupervisor:
    """Stands in for the connector supervisor: records what the daemon asks of it."""

    def __init__(self) -> None:
        self.syncs: list[dict[str, Any]] = []
        self.resets = 0
        self.stopped = False

    def sync(self, targets):
        self.syncs.append(dict(targets))

    def status(self):
        return []

    def reset_fatal(self):
        self.resets += 1

    def stop_all(self, timeout=None):
        self.stopped = True


def metric(daemon: Daemon, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(daemon.metrics_text().decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    path = tmp_path / "manifests"
    path.mkdir()
    return path


def make_daemon(path: Path, client: Any, **kw: Any) -> Daemon:
    inject = {k: kw.pop(k) for k in list(kw)
              if k in ("reconcile_fn", "supervisor", "revision_fn", "clock")}
    config = DaemonConfig(path=str(path), listen=None, interval=kw.pop("interval", 3600), **kw)
    return Daemon(config, client, **inject)


# --- the real reconcile against the emulator ---------------------------------------------------


def test_drift_is_repaired_counted_and_reported(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed"))
    client = emulator.client()
    daemon = make_daemon(manifests, client)
    assert daemon.reconcile_now(["start"]).ok
    assert metric(daemon, "border0_reconciler_drift_corrections_total") == 0

    live = client.get_socket("web")
    edit_by_hand(client, live, description="edited by hand")
    result = daemon.reconcile_now(["interval"])
    assert result.ok
    assert client.get_socket("web")["description"] == "managed"
    assert metric(daemon, "border0_reconciler_drift_corrections_total") == 1
    assert daemon.status()["last_reconcile"]["drift"] == 1

    # A change that came from the manifests is not drift.
    (manifests / "web.yaml").write_text(socket_yaml("web", "from git"))
    assert daemon.reconcile_now(["change"]).ok
    assert metric(daemon, "border0_reconciler_drift_corrections_total") == 1
    assert daemon.status()["sockets"][0]["description"] == "from git"


def test_the_interval_does_not_compare_an_unchanged_socket_and_still_repairs_drift(
        emulator, manifests, monkeypatch):
    """The daemon keeps the record of the sockets its last full plan found in sync
    (plan/in_sync.py): the next interval does not compare them again, and a socket edited in
    border0 meanwhile (its answer changed) is compared and repaired."""
    for name in ("web", "api"):
        (manifests / f"{name}.yaml").write_text(socket_yaml(name, "managed"))
    client = emulator.client()
    daemon = make_daemon(manifests, client)
    assert daemon.reconcile_now(["start"]).ok  # creates both
    assert daemon.reconcile_now(["interval"]).ok  # compares both: in sync, recorded
    compared = comparisons(monkeypatch)

    assert daemon.reconcile_now(["interval"]).ok
    assert compared == []  # nothing changed: nothing compared

    edit_by_hand(client, client.get_socket("web"), description="edited by hand")
    assert daemon.reconcile_now(["interval"]).ok
    assert compared == ["managed"]  # web only
    assert client.get_socket("web")["description"] == "managed"
    assert metric(daemon, "border0_reconciler_drift_corrections_total") == 1


def test_invalid_manifests_apply_nothing_and_keep_connectors(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "v1", connector=True))
    client = emulator.client()
    supervisor = RecordingSupervisor()
    daemon = make_daemon(manifests, client, supervisor=supervisor)
    assert daemon.reconcile_now(["start"]).ok
    assert list(supervisor.syncs[-1]) == ["web"]
    syncs = len(supervisor.syncs)

    (manifests / "web.yaml").write_text(socket_yaml("web", "v2", connector=True))
    (manifests / "bad.yaml").write_text("apiVersion: border0-reconciler/v1\nkind: Socket\n: [\n")
    result = daemon.reconcile_now(["change"])
    assert not result.ok and result.stage == "load"
    assert client.get_socket("web")["description"] == "v1"  # nothing applied
    assert len(supervisor.syncs) == syncs  # connectors left as they were
    status = daemon.status()
    assert status["last_reconcile"]["result"] == "invalid"
    assert any("bad.yaml" in e for e in status["errors"])
    assert status["ready"]  # the last good state is still in force
    assert metric(daemon, "border0_reconciler_manifest_errors") >= 1
    assert metric(daemon, "border0_reconciler_reconciles_total", result="invalid") == 1

    (manifests / "bad.yaml").unlink()
    assert daemon.reconcile_now(["change"]).ok
    assert client.get_socket("web")["description"] == "v2"
    assert metric(daemon, "border0_reconciler_manifest_errors") == 0
    assert daemon.status()["errors"] == []


@pytest.mark.parametrize("unready", [False, True], ids=["default", "unready-on-invalid"])
def test_a_plan_refused_at_planning_counts_as_invalid_manifests(emulator, manifests, unready):
    (manifests / "web.yaml").write_text(socket_yaml("web", "v1"))
    client = emulator.client()
    daemon = make_daemon(manifests, client, unready_on_invalid=unready)
    assert daemon.reconcile_now(["start"]).ok
    (manifests / "web.yaml").write_text(
        socket_yaml("web", "v2") + "  externalPolicies: [no-such-policy]\n")
    for _ in range(3):
        result = daemon.reconcile_now(["interval"])
    assert not result.ok and result.stage == "plan"
    assert client.get_socket("web")["description"] == "v1"  # nothing applied
    ok, body = daemon.readiness()
    assert body["invalid_manifests"] is True and body["consecutive_failures"] == 0
    # the Border0ManifestsInvalid alert sees it; readiness as for manifests invalid at load
    assert metric(daemon, "border0_reconciler_manifest_errors") == 1
    assert metric(daemon, "border0_reconciler_consecutive_failures") == 0
    assert ok is (not unready) and daemon.status()["ready"] is (not unready)
    assert metric(daemon, "border0_reconciler_ready") == (0 if unready else 1)

    (manifests / "web.yaml").write_text(socket_yaml("web", "v2"))
    assert daemon.reconcile_now(["change"]).ok
    assert metric(daemon, "border0_reconciler_manifest_errors") == 0
    assert daemon.readiness()[0]


class StandIn:
    """A leader elector's face to the daemon, set by the test: follower, leader, or lost."""

    def __init__(self) -> None:
        self.leads, self.lost = False, False

    @property
    def role(self) -> str:
        return "leader" if self.leads else "follower"

    def is_leader(self) -> bool:
        return self.leads and not self.lost

    def describe(self) -> dict[str, str]:
        return {"holder": "this-pod" if self.leads else "other-pod"}


def test_the_ready_gauge_follows_readyz_a_follower_s_too(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "v1"))
    elector = StandIn()
    daemon = Daemon(DaemonConfig(path=str(manifests), listen=None, interval=3600),
                    emulator.client(), leader=elector)

    def answers() -> tuple[bool, bool, float]:
        return (daemon.readiness()[0], daemon.status()["ready"],
                metric(daemon, "border0_reconciler_ready"))

    assert answers() == (True, True, 1)  # a follower stands by, ready, and publishes nothing
    elector.leads = True
    assert answers() == (False, False, 0)  # a leader before its first success
    assert daemon.reconcile_now(["became leader"]).ok
    assert answers() == (True, True, 1)
    elector.leads, elector.lost = False, True
    assert answers() == (False, False, 0)  # the lease lost: exiting


def test_dry_run_observes_only(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "x", connector=True))
    client = emulator.client()
    supervisor = RecordingSupervisor()
    daemon = make_daemon(manifests, client, dry_run=True, supervisor=supervisor)
    assert daemon.reconcile_now(["start"]).ok
    assert client.find_socket("web") is None
    assert supervisor.syncs == []
    assert daemon.status()["sockets"][0]["state"] == "missing"
    assert metric(daemon, "border0_reconciler_drift_pending") == 1
    assert metric(daemon, "border0_reconciler_managed_objects", kind="socket", state="missing") == 1
    # The next resync finds the same pending change: pending, not new drift.
    assert daemon.reconcile_now(["interval"]).ok
    assert daemon.status()["last_reconcile"]["drift"] == 0
    assert metric(daemon, "border0_reconciler_drift_pending") == 1


def test_no_secret_reaches_status_or_metrics(emulator, manifests, caplog):
    (manifests / "db.yaml").write_text(socket_yaml("db", "a database", password_env="DB_PASS"))
    daemon = make_daemon(manifests, emulator.client(), env={"DB_PASS": SECRET})
    with caplog.at_level("DEBUG"):
        assert daemon.reconcile_now(["start"]).ok
    assert SECRET in daemon.redactor.secrets
    assert SECRET not in str(daemon.status())
    assert SECRET not in daemon.metrics_text().decode()


def test_api_outage_backs_off_goes_unready_and_recovers(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "x"))
    client = emulator.client()
    daemon = make_daemon(manifests, client, backoff_base=0.01, backoff_max=0.05)
    assert daemon.reconcile_now(["start"]).ok
    assert daemon.readiness()[0]

    # border0 unreachable: a client for a port nothing listens on (the discard port).
    with Border0Client("http://127.0.0.1:9/api/v1", "t", deadline=2.0, max_retries_5xx=0) as dead:
        daemon.client = dead
        for expected in (1, 2, 3):
            result = daemon.reconcile_now(["interval"])
            assert not result.ok and result.stage == "fetch"
            assert daemon.status()["consecutive_failures"] == expected
            assert daemon._retry_at is not None  # retried sooner than the interval
        assert not daemon.readiness()[0]
        assert metric(daemon, "border0_reconciler_reconciles_total", result="failure") == 3
    daemon.client = client
    assert daemon.reconcile_now(["retry"]).ok
    assert daemon.readiness()[0] and daemon._retry_at is None


def test_backoff_doubles_and_is_capped_by_the_interval():
    config = DaemonConfig(path=".", interval=5, backoff_base=1, backoff_max=60)
    assert [config.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert DaemonConfig(path=".", interval=600, backoff_max=60).backoff(10) == 60


# --- the loop's rules, with an injected reconcile ----------------------------------------------


class ScriptedReconcile:
    """A reconcile function that can block, and that records concurrency."""

    def __init__(self, results: list[ReconcileResult] | None = None) -> None:
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.results = results or []
        self._lock = threading.Lock()

    def __call__(self, paths, client, options) -> ReconcileResult:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            index = self.calls - 1
        self.entered.set()
        self.release.wait(10)
        with self._lock:
            self.running -= 1
        if index < len(self.results):
            return self.results[index]
        return ReconcileResult(True, "done")


def test_triggers_during_a_run_cause_exactly_one_more(manifests, running):
    fn = ScriptedReconcile()
    fn.release.clear()
    daemon = running(make_daemon(manifests, None, reconcile_fn=fn, revision_fn=lambda p: None))
    wait_for(fn.entered.is_set, message="the start reconcile to begin")
    for i in range(20):
        daemon.trigger(f"burst {i}")
    fn.release.set()
    wait_for(lambda: fn.calls == 2, message="one more reconcile after the burst")
    settle = threading.Event()
    settle.wait(0.3)  # a negative check: give a third run the chance to appear
    assert fn.calls == 2
    assert fn.max_running == 1
    assert "burst 0" in daemon.status()["last_reconcile"]["trigger"]


def test_sighup_reconciles_now_and_resets_fatal_connectors(manifests, running):
    fn = ScriptedReconcile()
    supervisor = RecordingSupervisor()
    daemon = running(
        make_daemon(
            manifests, None, reconcile_fn=fn, supervisor=supervisor, revision_fn=lambda p: None
        )
    )
    wait_for(lambda: fn.calls == 1)
    daemon.on_sighup()
    wait_for(lambda: fn.calls == 2 and supervisor.resets == 1)
    assert daemon.status()["last_reconcile"]["trigger"] == "SIGHUP"


def test_failures_are_retried_before_the_interval_then_recover(manifests, running):
    fail = ReconcileResult(False, "fetch", error="listing border0 failed: connection refused")
    fn = ScriptedReconcile([fail] * 4)
    daemon = running(
        make_daemon(
            manifests,
            None,
            reconcile_fn=fn,
            backoff_base=0.02,
            backoff_max=0.1,
            revision_fn=lambda p: None,
        )
    )
    wait_for(lambda: fn.calls >= 5, message="retries, then a success")
    wait_for(lambda: daemon.readiness()[0])
    assert daemon.status()["last_reconcile"]["trigger"] == "retry"
    assert metric(daemon, "border0_reconciler_reconciles_total", result="failure") == 4


def test_a_failed_reconcile_is_retried_after_its_backoff_on_the_daemons_clock(manifests, running):
    """A 30 s backoff, checked without waiting it out: the retry is due on the clock the daemon
    is handed, and /status says when."""
    fail = ReconcileResult(False, "fetch", error="listing border0 failed: connection refused")
    fn = ScriptedReconcile([fail])
    clock = ManualClock()
    daemon = running(make_daemon(manifests, None, reconcile_fn=fn, backoff_base=30,
                                 backoff_max=60, revision_fn=lambda p: None, clock=clock))
    wait_for(lambda: daemon.status()["consecutive_failures"] == 1, message="the failed start")
    assert daemon.status()["next_retry"] == iso_time(clock.time() + 30)
    clock.advance(30)
    daemon.wake()  # the loop reads its clock again (it would on its own within SIGNAL_POLL)
    wait_for(lambda: fn.calls == 2, message="the retry once 30 s have passed on the clock")
    wait_for(lambda: daemon.status()["last_reconcile"]["trigger"] == "retry")
    assert daemon.readiness()[0]


def test_the_interval_triggers_a_resync(manifests, running):
    fn = ScriptedReconcile()
    daemon = running(
        make_daemon(
            manifests, None, reconcile_fn=fn, interval=0.2, jitter=0, revision_fn=lambda p: None
        )
    )
    wait_for(lambda: fn.calls >= 3, message="interval resyncs")
    assert "interval" in daemon.status()["last_reconcile"]["trigger"]


def test_a_file_change_triggers_a_reconcile(manifests, running):
    fn = ScriptedReconcile()
    daemon = running(
        make_daemon(manifests, None, reconcile_fn=fn, debounce=0.02, revision_fn=lambda p: None)
    )
    wait_for(lambda: fn.calls == 1)
    (manifests / "a.yaml").write_text("x")
    wait_for(lambda: fn.calls == 2)
    assert "a.yaml" in daemon.status()["last_reconcile"]["trigger"]


def test_stop_finishes_the_reconcile_in_flight_and_stops_connectors(manifests, running):
    fn = ScriptedReconcile()
    fn.release.clear()
    supervisor = RecordingSupervisor()
    daemon = running(
        make_daemon(
            manifests, None, reconcile_fn=fn, supervisor=supervisor, revision_fn=lambda p: None
        )
    )
    wait_for(fn.entered.is_set)
    daemon.request_stop()
    fn.release.set()
    wait_for(lambda: daemon.exit_codes == [0], message="the loop to exit 0")
    assert fn.running == 0 and fn.calls == 1
    assert supervisor.stopped
    assert not daemon.health()[0]


def test_a_crashing_reconcile_is_a_failure_not_the_end(manifests):
    def boom(paths, client, options):
        raise RuntimeError("bug")

    daemon = make_daemon(manifests, None, reconcile_fn=boom, revision_fn=lambda p: None)
    result = daemon.reconcile_now(["start"])
    assert not result.ok and result.stage == "internal"
    assert daemon.status()["last_reconcile"]["result"] == "failure"


def test_dry_run_reports_drift_and_leaves_it(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed"))
    client = emulator.client()
    assert make_daemon(manifests, client).reconcile_now(["start"]).ok
    observer = make_daemon(manifests, client, dry_run=True)
    assert observer.reconcile_now(["start"]).ok
    assert observer.status()["last_reconcile"]["drift"] == 0

    live = client.get_socket("web")
    edit_by_hand(client, live, description="edited by hand")
    assert observer.reconcile_now(["interval"]).ok
    assert observer.status()["last_reconcile"]["drift"] == 1
    assert observer.status()["sockets"][0]["state"] == "out-of-sync"
    assert client.get_socket("web")["description"] == "edited by hand"
    assert metric(observer, "border0_reconciler_drift_corrections_total") == 0


def test_status_states_for_a_pending_delete_and_a_failed_action(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "kept"))
    (manifests / "old.yaml").write_text(socket_yaml("old", "to go"))
    client = emulator.client()
    assert make_daemon(manifests, client).reconcile_now(["start"]).ok
    (manifests / "old.yaml").unlink()
    observer = make_daemon(manifests, client, dry_run=True)
    assert observer.reconcile_now(["start"]).ok
    states = {row["name"]: row["state"] for row in observer.status()["sockets"]}
    assert states == {"web": "in-sync", "old": "to-delete"}

    # A name taken by a socket the reconciler does not own: it blocks only itself, and the
    # reconcile fails and counts (issue 23: it used to block the whole plan and count nothing).
    client.create_socket({"name": "taken", "socket_type": "http", "description": "not ours"})
    (manifests / "taken.yaml").write_text(socket_yaml("taken", "ours?"))
    daemon = make_daemon(manifests, client)
    result = daemon.reconcile_now(["start"])
    assert result.stage == "apply" and result.blocked
    status = daemon.status()
    assert status["last_reconcile"]["result"] == "failure"
    assert status["consecutive_failures"] == 1
    assert any("taken" in e and "adopt" in e for e in status["errors"])
    assert {row["name"]: row["state"] for row in status["sockets"]}["taken"] == "blocked"
    assert daemon._retry_at is None  # a user's problem: no backoff retries


def test_status_drops_a_socket_as_soon_as_its_delete_succeeds(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "kept"))
    (manifests / "old.yaml").write_text(socket_yaml("old", "to go"))
    client = emulator.client()
    daemon = make_daemon(manifests, client)
    assert daemon.reconcile_now(["start"]).ok
    (manifests / "old.yaml").unlink()
    result = daemon.reconcile_now(["watch"])
    assert result.ok and [c.action.value for c in result.plan.changes] == ["delete"]
    assert [row["name"] for row in daemon.status()["sockets"]] == ["web"]
    assert client.find_socket("old") is None


def test_object_states_marks_failed_actions_as_error():
    from reconciler.apply import ActionResult, ApplyResult
    from reconciler.daemon.state import object_states, state_counts
    from reconciler.model import Actual, Desired, LiveSocket, SocketSpec
    from reconciler.plan.types import Action, Change, Plan

    desired = Desired(sockets={"a": SocketSpec("a", "http"), "b": SocketSpec("b", "http")})
    actual = Actual(sockets={"a": LiveSocket("id-a", "a", "http")})
    create_b = Change("socket", "b", Action.CREATE)
    attach_a = Change("attachment", "a/p", Action.ATTACH, socket="a", policy="p")
    plan = Plan(changes=[create_b, attach_a])
    applied = ApplyResult(
        (ActionResult(create_b, False, "failed"), ActionResult(attach_a, True, "ok"))
    )
    states = object_states(desired, actual, plan, applied, unapplied=False)
    assert states == {("socket", "a"): "in-sync", ("socket", "b"): "error"}
    assert (
        object_states(desired, actual, plan, None, unapplied=True)[("socket", "a")] == "out-of-sync"
    )
    assert state_counts(states)[("socket", "error")] == 1


def test_metrics_are_prefixed_and_carry_no_created_series(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "x"))
    daemon = make_daemon(manifests, emulator.client())
    assert daemon.reconcile_now(["start"]).ok
    names = [
        sample.name
        for family in text_string_to_metric_families(daemon.metrics_text().decode())
        for sample in family.samples
    ]
    assert names and all(n.startswith(("border0_reconciler_", "process_")) for n in names)
    assert not [n for n in names if n.endswith("_created")]
