"""`run --leader-elect`: two real daemon processes, one writer, hand-over on a kill -9.

No Kubernetes API server can run on these machines: the daemons reach a small Lease endpoint
(tests/daemon/lease_endpoint.py, GET/POST/PUT of coordination.k8s.io/v1 Leases with
resourceVersion conflicts -> 409) through a kubeconfig file pointing at it, with the real lightkube
client. border0 is the emulator over HTTP; the connectors are the local connector, so "running"
means a real process listening on the socket's port.

Short flags keep it quick: lease 3 s, renew deadline 2 s, retry 0.5 s.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import pytest
from helpers import REPO, copy_examples, wait_for
from lease_endpoint import LeaseEndpoint
from test_daemon_process import daemon_process  # noqa: F401 - the fixture

from reconciler.connectors.argv import LOCAL_CONNECTOR_TEMPLATE

pytest.importorskip("lightkube")

LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
WANTED = {"analytics-db", "bastion", "docs", "grafana", "mqtt", "orders-db", "portal", "web"}
TRIGGER_TOKEN = "ha-trigger-token-0123456789"
WRITES = ("created ", "updated ", "replaced ", "deleted ", "attached ", "detached ")


@pytest.fixture
def lease_endpoint():
    endpoint = LeaseEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture
def ha(tmp_path, emulator, lease_endpoint, daemon_process, monkeypatch):  # noqa: F811
    copy_examples(tmp_path / "manifests")
    monkeypatch.setenv("KUBECONFIG", str(lease_endpoint.kubeconfig(tmp_path / "kubeconfig")))

    (tmp_path / "trigger-token").write_text(TRIGGER_TOKEN)
    (tmp_path / "trigger-token").chmod(0o600)

    def start(identity: str, *extra: str):
        monkeypatch.setenv("POD_NAME", identity)
        return daemon_process(
            tmp_path / "manifests", emulator.url, emulator.token,
            "--env-file", str(tmp_path / "manifests" / "demo.env"),
            "--leader-elect", "--lease-duration", f"{LEASE}s", "--renew-deadline",
            f"{RENEW}s", "--retry-period", f"{RETRY}s",
            "--connector-command", LOCAL_CONNECTOR_TEMPLATE, "--connector-startsecs", "0.3s",
            "--connector-stop-timeout", "2s", "--trigger-token-file",
            str(tmp_path / "trigger-token"), *extra,
        )

    return start


def running(daemon) -> dict[str, int]:
    return {c["socket"]: c["pid"] for c in daemon.status()["connectors"]
            if c["state"] == "RUNNING"}


def writes(daemon) -> list[str]:
    return [m for m in daemon.messages() if m.startswith(WRITES)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def log_time(daemon, message: str) -> float:
    record = next(r for r in daemon.records if r.get("message", "").startswith(message))
    return datetime.fromisoformat(record["time"]).timestamp()


def leading(a, b):
    """Start `a`, wait until it leads with every connector running, then start follower `b`."""
    first = a("a")
    wait_for(lambda: first.status()["role"] == "leader" and first.last("result") == "success",
             timeout=30, message="the first replica to lead and reconcile")
    wait_for(lambda: set(running(first)) == WANTED, timeout=30, message="every connector")
    second = b("b")
    wait_for(lambda: second.status()["role"] == "follower", timeout=10)
    return first, second


@pytest.mark.slow
def test_kill_9_the_leader_and_the_follower_leads_within_the_lease(
    ha, emulator, lease_endpoint
):
    a, b = leading(ha, ha)
    pids = running(a)
    # the follower stands by: ready (so a rollout can proceed), no reconcile, no connector
    assert b.http.get("/readyz").status_code == 200
    assert b.http.get("/healthz").status_code == 200
    status = b.status()
    assert status["reconciles"] == 0 and status["connectors"] == [] and writes(b) == []
    assert status["lease"]["holder"] == "a" and status["lease"]["identity"] == "b"
    assert b.sample("border0_reconciler_leader", "") == 0
    assert a.sample("border0_reconciler_leader", "") == 1
    # a webhook that lands on the follower is refused visibly (it would be dropped)
    bearer = {"Authorization": f"Bearer {TRIGGER_TOKEN}"}
    assert b.http.post("/reconcile", headers=bearer).status_code == 503
    assert b.http.post("/reconcile").status_code == 401
    assert a.http.post("/reconcile", headers=bearer).status_code == 202
    a_writes = writes(a)
    assert len(a_writes) >= len(WANTED)

    a.proc.kill()  # SIGKILL: no release, the lease has to expire
    a.proc.wait(10)
    wait_for(lambda: b.status()["role"] == "leader", timeout=LEASE + 5 * RETRY + 5,
             message="the follower to take over")
    last_a = max(t for t, who in lease_endpoint.writes if who == "a")
    first_b = min(t for t, who in lease_endpoint.writes if who == "b")
    # never before the lease expired; within it (plus one retry period of polling)
    print(f"hand-over: {first_b - last_a:.2f} s after the killed leader's last renewal")
    assert LEASE <= first_b - last_a <= LEASE + RETRY + 1.0, first_b - last_a
    wait_for(lambda: b.last("result") == "success" and set(running(b)) == WANTED, timeout=30,
             message="every connector running under the new leader")
    # 0 duplicate writes: the new leader found border0 already right, and nothing was lost
    assert writes(b) == []
    assert b.last("trigger") == "became leader"
    live = emulator.client().list_sockets()
    names = [s["name"] for s in live]
    assert sorted(names) == sorted(set(names)) and set(names) >= WANTED
    # the old leader's connectors died with it (the kernel's PDEATHSIG)
    assert not any(alive(pid) for pid in pids.values())
    assert not set(running(b).values()) & set(pids.values())


@pytest.mark.slow
def test_a_leader_that_cannot_renew_stops_before_anyone_else_may_start(
    ha, emulator, lease_endpoint
):
    a, b = leading(ha, ha)
    lease_endpoint.partitioned.add("a")  # a's renewals fail from now on; b still reaches it
    wait_for(lambda: a.proc.poll() is not None, timeout=RENEW + 10, message="a to give up")
    assert a.proc.returncode == 1
    wait_for(lambda: b.status()["role"] == "leader", timeout=LEASE + 10)
    last_a = max(t for t, who in lease_endpoint.writes if who == "a")
    first_b = min(t for t, who in lease_endpoint.writes if who == "b")
    stopped = log_time(a, "lost the leader lease")
    # a stopped writing before its lease could expire; b started only after it did
    print(f"stopped writing {stopped - last_a:.2f} s, successor {first_b - last_a:.2f} s "
          "after the last renewal")
    assert stopped < last_a + LEASE <= first_b, (stopped - last_a, first_b - last_a)
    wait_for(lambda: set(running(b)) == WANTED, timeout=30)
    assert writes(b) == []


@pytest.mark.slow
def test_a_graceful_stop_hands_the_lease_over_at_once(ha, lease_endpoint):
    a, b = leading(ha, ha)
    assert a.terminate() == 0
    # released: the follower takes over within a retry period or two, not a whole lease
    wait_for(lambda: b.status()["role"] == "leader", timeout=LEASE - 0.5,
             message="the follower to take the released lease")
    assert lease_endpoint.holder() == "b"
    released = [t for t, who in lease_endpoint.writes if who is None]
    first_b = min(t for t, who in lease_endpoint.writes if who == "b")
    assert released and first_b - released[-1] < LEASE


def test_a_leader_that_finds_another_holder_in_the_lease_stops_writing_at_once(
    tmp_path, lease_endpoint, monkeypatch
):
    """The Lease deleted (`kubectl delete lease`, a chart reinstalled) while `a` leads: `b`
    creates it and leads at once. `a` must stop writing when it next reads the Lease naming `b`
    (client-go's IsLeader compares the observed holder), not at its renew deadline, seconds
    later, while `b` writes too. The real LeaderElector and lightkube client; the API server is
    the Lease stand-in (tests/daemon/lease_endpoint.py), as no Kubernetes API server runs here."""
    from reconciler.daemon.lease import LeaderElector, LeaseConfig, lease_client

    monkeypatch.setenv("KUBECONFIG", str(lease_endpoint.kubeconfig(tmp_path / "kubeconfig")))
    lost: list[str] = []
    electors = {}
    for name in ("a", "b"):
        # a long renew deadline makes the overlap plain: 8 s of it against a 0.2 s poll
        config = LeaseConfig(namespace="border0", identity=name, lease_duration=10.0,
                             renew_deadline=8.0, retry_period=0.2)
        electors[name] = LeaderElector(config, lease_client(config),
                                       on_lost=lambda name=name: lost.append(name))
    a, b = electors["a"], electors["b"]
    a.start()
    try:
        wait_for(a.is_leader, timeout=5, message="a to lead")
        b.start()
        wait_for(lambda: b.describe()["holder"] == "a", timeout=5, message="b to see a lead")
        assert not b.is_leader()
        # the Lease is deleted behind both replicas' backs, and b's create is the one that
        # lands (a's writes refused until then: either may win the race, b is made to)
        lease_endpoint.partitioned.add("a")
        with lease_endpoint.lock:
            del lease_endpoint.leases[("border0", "border0-reconciler")]
        wait_for(b.is_leader, timeout=5, message="b to create the Lease and lead")
        lease_endpoint.partitioned.discard("a")
        assert lease_endpoint.holder() == "b" and a.is_leader()  # within its renew deadline
        # a stops within a poll of seeing b's Lease, and says so as when it cannot renew
        wait_for(lambda: not a.is_leader(), timeout=1.0, message="a to stop writing")
        wait_for(lambda: lost == ["a"], timeout=1.0, message="a to report the lost lease")
        assert a.lost and a.role == "follower" and b.is_leader()
    finally:
        a.stop(release=False)
        b.stop(release=False)


def test_a_lease_of_a_fraction_of_a_second_is_never_written_shorter(
    tmp_path, lease_endpoint, monkeypatch
):
    """`--lease-duration 2.4s --renew-deadline 2.2s`: the Lease's whole seconds must not be
    fewer than the lease (2 s), or a follower takes over while the leader still counts itself
    leader (2.2 s after its renewal). `a` is cut off the Lease; the two are sampled every few
    milliseconds and never both lead. The real LeaderElector and lightkube client against the
    Lease stand-in (tests/daemon/lease_endpoint.py): no Kubernetes API server runs here."""
    from reconciler.daemon.lease import LeaderElector, LeaseConfig, lease_client

    monkeypatch.setenv("KUBECONFIG", str(lease_endpoint.kubeconfig(tmp_path / "kubeconfig")))

    def elector(name: str, retry: float) -> LeaderElector:
        config = LeaseConfig(namespace="border0", identity=name, lease_duration=2.4,
                             renew_deadline=2.2, retry_period=retry)
        return LeaderElector(config, lease_client(config))

    a, b = elector("a", 0.5), elector("b", 0.05)  # b polls often: it takes over at the earliest
    a.start()
    try:
        wait_for(a.is_leader, timeout=5, message="a to lead")
        lease = lease_endpoint.leases[("border0", "border0-reconciler")]
        assert lease["spec"]["leaseDurationSeconds"] >= 2.4
        b.start()
        wait_for(lambda: b.describe()["holder"] == "a", timeout=5, message="b to see a lead")
        lease_endpoint.partitioned.add("a")
        both = 0
        deadline = time.monotonic() + 10
        while not b.is_leader() and time.monotonic() < deadline:
            both += a.is_leader() and b.is_leader()
            time.sleep(0.002)  # sampling the two flags, not waiting on either
        for _ in range(100):  # and a while after b took over
            both += a.is_leader() and b.is_leader()
            time.sleep(0.002)
        assert b.is_leader() and both == 0, both
    finally:
        a.stop(release=False)
        b.stop(release=False)


def test_a_deposed_leader_stops_between_write_batches(emulator):
    """The write guard is asked before each apply phase: once it says no, nothing more is
    written and the remaining changes fail as "not the leader" (the emulator counts no write)."""
    from reconciler.manifests.loader import read_env_file
    from reconciler.reconcile import ReconcileOptions, reconcile

    watcher = emulator.client()

    def may_write() -> bool:  # leader for the first phase (connectors, examples/connectors) only
        return len(watcher.list_all_connectors()) < 2

    result = reconcile([REPO / "examples"], emulator.client(), ReconcileOptions(
        env=read_env_file(str(REPO / "examples" / "demo.env")), may_write=may_write))
    assert not result.ok
    written = [r for r in result.applied.results if r.ok]
    refused = [r for r in result.applied.results if not r.ok]
    assert written and all(r.change.kind == "connector" for r in written)
    assert refused and all("not the leader" in r.message for r in refused)
    live = emulator.client()
    assert live.list_sockets() == []  # no socket was created after the guard said no
    assert live.list_policies() == [] and len(live.list_all_connectors()) == len(written)


def test_a_leader_deposed_during_a_write_batch_writes_nothing_more(emulator):
    """A batch (an apply phase) of a big plan runs for seconds: the guard is asked before each
    write, not only before the batch, so a leader deposed in the middle of one stops there (the
    margin before a follower may start is lease-duration - renew-deadline, 5 s). Here the
    leader loses the lease once border0 holds a policy: exactly that one is written."""
    from reconciler.manifests.loader import read_env_file
    from reconciler.reconcile import ReconcileOptions, reconcile

    watcher = emulator.client()

    def may_write() -> bool:
        return not watcher.list_policies()

    result = reconcile([REPO / "examples"], emulator.client(), ReconcileOptions(
        env=read_env_file(str(REPO / "examples" / "demo.env")), may_write=may_write,
        parallelism=1))
    assert not result.ok
    assert len(watcher.list_policies()) == 1  # not the phase's 4
    written = [r for r in result.applied.results if r.ok]
    refused = [r for r in result.applied.results if not r.ok]
    assert [r.change.kind for r in written].count("policy") == 1
    assert refused and all("not the leader" in r.message for r in refused)
    assert len(written) + len(refused) == len(result.plan.changes)  # each change reported once
    assert watcher.list_sockets() == []


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--leader-elect"], {"KUBECONFIG": "/nonexistent"}, "no Kubernetes configuration"),
        (["--leader-elect", "--retry-period", "12s"], {}, "--retry-period < --renew-deadline"),
        (["--leader-elect", "--once"], {}, "--once runs one reconcile"),
    ],
)
def test_bad_leader_election_setups_are_one_line_errors(tmp_path, args, env, needle):
    from helpers import cli

    code, _, err = cli(["run", str(REPO / "examples"), "--api", "local",
                        "--state", str(tmp_path / "s.db"), *args], env=env)
    assert code == 1 and needle in err and len(err.strip().splitlines()) == 1, err
