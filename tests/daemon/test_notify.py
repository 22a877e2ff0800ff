"""Notifications against a REAL local HTTP receiver (http.server on 127.0.0.1, a random port):
bodies, retries, redaction, deduplication, and a slow receiver that never delays a reconcile."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import test_daemon
from helpers import cli, edit_by_hand, free_port, refuse_writes, wait_for
from test_daemon import make_daemon, socket_yaml

from reconciler.border0.client import Border0Client
from reconciler.connectors.supervisor import ConnectorStatus, State
from reconciler.daemon.events import EventReporter
from reconciler.daemon.logs import RedactFilter
from reconciler.daemon.notify import Message, Notifier, parse_targets

SECRET = "n0tify-s3cret-value"
INVALID = "apiVersion: border0-reconciler/v1\nkind: Socket\n"  # no metadata, no spec
INVALID_2 = INVALID + "metadata: {name: web}\n"  # no spec: another failure


class Receiver:
    """A webhook receiver: records each POST body; can answer errors first, or block (up to
    `block_for` seconds, a slow receiver) until released."""

    def __init__(self, fail_first: int = 0, status: int = 500, block_for: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.attempts = 0
        self.active = 0
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.attempts += 1
                if outer.attempts <= fail_first:
                    self.send_response(status)
                    self.end_headers()
                    return
                outer.active += 1
                if block_for:
                    outer.release.wait(block_for)  # the slow receiver
                outer.raw.append(body)
                outer.bodies.append({"path": self.path, **json.loads(body)})
                outer.active -= 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [b for b in self.bodies if name is None or b.get("event") == name]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**options: Any) -> Receiver:
        made.append(Receiver(**options))
        return made[-1]

    yield make
    for r in made:
        r.close()


def reporter_for(url: str, redactor: RedactFilter | None = None, **kw: Any) -> EventReporter:
    redactor = redactor or RedactFilter()
    notifier = Notifier(parse_targets([url]), redact=redactor.redact_data, backoff=0.05,
                        poll_interval=0.05)
    reporter = EventReporter(notifier, **kw)
    reporter.start()
    return reporter


def test_json_and_slack_bodies_reach_their_receivers(receiver):
    r = receiver()
    notifier = Notifier(parse_targets([r.url + "/generic", f"slack+{r.url}/services/T/B/x"]))
    notifier.start()
    notifier.send(Message("drift_corrected", "drift corrected", ("update socket web",),
                          {"changes": []}, instance="prod"))
    notifier.stop()
    generic = next(b for b in r.bodies if b["path"] == "/generic")
    slack = next(b for b in r.bodies if b["path"] != "/generic")
    assert generic["event"] == "drift_corrected" and generic["instance"] == "prod"
    assert generic["details"] == ["update socket web"] and generic["source"] == "border0-reconciler"
    assert set(slack) == {"path", "text"} and "update socket web" in slack["text"]
    assert "`prod`" in slack["text"]


def test_a_5xx_is_retried_and_a_4xx_is_not(receiver):
    flaky = receiver(fail_first=2, status=503)
    notifier = Notifier(parse_targets([flaky.url]), backoff=0.01)
    notifier.start()
    notifier.send(Message("x", "once"))
    notifier.stop()
    assert flaky.attempts == 3 and len(flaky.bodies) == 1 and notifier.sent == 1

    refusing = receiver(fail_first=10, status=400)
    notifier = Notifier(parse_targets([refusing.url]), backoff=0.01)
    notifier.start()
    notifier.send(Message("x", "refused"))
    notifier.stop()
    assert refusing.attempts == 1 and notifier.failed == 1


def test_no_secret_reaches_any_body(receiver):
    r = receiver()
    redactor = RedactFilter([SECRET])
    notifier = Notifier(parse_targets([r.url, f"slack+{r.url}/s"]), redact=redactor.redact_data)
    notifier.start()
    notifier.send(Message("reconcile_failed", f"failed: {SECRET}", (f"detail {SECRET}",),
                          {"errors": [{"message": SECRET}]}))
    notifier.stop()
    assert len(r.raw) == 2
    for raw in r.raw:
        assert SECRET.encode() not in raw and b"(sensitive)" in raw


def test_bad_notify_urls_are_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="http"):
        parse_targets(["ftp://example.com/hook"])
    code, _, err = cli(["run", str(tmp_path), "--api", "local", "--state",
                          str(tmp_path / "s.db"), "--once", "--notify", "nonsense"])
    assert code != 0 and "--notify needs an http(s) URL" in err and "Traceback" not in err


def test_each_distinct_failure_is_sent_once_and_the_recovery_once(emulator, receiver, tmp_path):
    r = receiver()
    manifests = tmp_path / "m"
    manifests.mkdir()
    reporter = reporter_for(r.url, instance="ci")
    daemon = make_daemon(manifests, emulator.client())
    daemon.reporter = reporter
    (manifests / "web.yaml").write_text(INVALID)  # the same failure each time
    for _ in range(4):
        daemon.reconcile_now(["interval"])
    (manifests / "web.yaml").write_text(INVALID_2)  # a different failure
    for _ in range(3):
        daemon.reconcile_now(["interval"])
    (manifests / "web.yaml").write_text(socket_yaml("web", "fine"))
    for _ in range(3):
        daemon.reconcile_now(["interval"])
    reporter.stop()
    events = [b["event"] for b in r.bodies]
    assert events == ["reconcile_failed", "reconcile_failed", "reconcile_recovered"], events
    assert r.bodies[0]["instance"] == "ci" and "invalid" in r.bodies[0]["text"]


def test_api_failures_are_sent_after_n_in_a_row_and_once(receiver, tmp_path):
    r = receiver()
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(socket_yaml("web", "x"))
    client = Border0Client(f"http://127.0.0.1:{free_port()}/api/v1", "t0ken-value",
                           max_retries_5xx=0, max_retries_429=0, deadline=2.0)
    reporter = reporter_for(r.url, after_failures=2)
    daemon = make_daemon(manifests, client)
    daemon.reporter = reporter
    daemon.reconcile_now(["start"])
    assert reporter.notifier.accepted == 0  # one failure: below --notify-after-failures 2
    for _ in range(4):
        daemon.reconcile_now(["retry"])
    reporter.stop()
    client.close()
    assert [b["event"] for b in r.bodies] == ["reconcile_failed"]
    assert r.bodies[0]["failures_in_row"] == 2 and r.bodies[0]["stage"] == "fetch"


def test_a_slow_receiver_never_delays_a_reconcile(emulator, receiver, running, tmp_path):
    slow = receiver(block_for=5.0)  # sleeps up to 5 s on every message
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(INVALID)  # a failure message at once
    daemon = make_daemon(manifests, emulator.client(), interval=0.2, jitter=0)
    daemon.reporter = reporter_for(slow.url)
    running(daemon)
    wait_for(lambda: slow.active == 1, message="the receiver to be stuck on the first message")
    start = daemon.reconciles_run
    (manifests / "web.yaml").write_text(INVALID_2)  # another failure
    wait_for(lambda: daemon.reconciles_run >= start + 3, timeout=4.0,
             message="three reconciles while the receiver is stuck")
    assert slow.active == 1 and slow.bodies == []  # still stuck on the first: nothing waited
    slow.release.set()
    wait_for(lambda: len(slow.bodies) == 2, message="both failures delivered after all")


def test_drift_corrected_is_sent_by_the_run_command(emulator, receiver, daemon_run,
                                                          tmp_path, monkeypatch):
    r = receiver()
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "db.yaml").write_text(socket_yaml("db", "managed", password_env="DB_PASS"))
    client = emulator.client()
    monkeypatch.setenv("DB_PASS", SECRET)  # the daemon reads it from its environment
    daemon = daemon_run(manifests, emulator.url, emulator.token, "--interval", "1s",
                            "--jitter", "0%", "--notify", r.url + "/hook")
    wait_for(lambda: daemon.last("result") == "success", timeout=20)
    live = client.get_socket("db")
    edit_by_hand(client, live, description="edited by hand")
    wait_for(lambda: r.events("drift_corrected"), timeout=15, message="a drift message")
    message = r.events("drift_corrected")[0]
    assert message["details"] == ["update socket db"]
    assert daemon.terminate() == 0
    for raw in r.raw:
        assert SECRET.encode() not in raw and emulator.token.encode() not in raw


def test_an_apply_that_gives_access_is_sent_with_who_and_what(emulator, receiver, tmp_path):
    r = receiver()
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "team.yaml").write_text(test_daemon.policy_yaml("team"))
    (manifests / "web.yaml").write_text(socket_yaml("web", "x", policy="team"))
    daemon = make_daemon(manifests, emulator.client())
    daemon.reporter = reporter_for(r.url)
    assert daemon.reconcile_now(["start"]).ok
    assert daemon.reconcile_now(["interval"]).ok  # nothing changes: nothing more is sent
    daemon.reporter.stop()
    assert [b["event"] for b in r.bodies] == ["access_granted"]
    assert "+ a@example.com gains http on web (policy team)" in r.bodies[0]["details"]


def test_a_partly_failed_apply_sends_what_it_applied_beside_the_failure(emulator, receiver,
                                                                         tmp_path):
    r = receiver()
    refuse_writes(emulator, {"bad"})  # border0 refuses one object; the rest applies
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "team.yaml").write_text(test_daemon.policy_yaml("team"))
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed", policy="team"))
    (manifests / "bad.yaml").write_text(socket_yaml("bad", "refused by border0"))
    client = emulator.client()
    daemon = make_daemon(manifests, client)
    daemon.reporter = reporter_for(r.url, after_failures=1)
    assert daemon.reconcile_now(["start"]).stage == "apply"  # failed, web and team applied
    edit_by_hand(client, client.get_socket("web"), description="edited by hand")
    daemon.reconcile_now(["interval"])  # fails again on bad, undoes the hand edit
    daemon.reporter.stop()
    assert client.get_socket("web")["description"] == "managed"
    assert [b["event"] for b in r.bodies] == [
        "reconcile_failed", "access_granted", "drift_corrected"], r.bodies
    access = r.bodies[1]
    assert "+ a@example.com gains http on web (policy team)" in access["details"]
    assert "some may not have taken effect" in access["text"]
    assert r.bodies[2]["details"] == ["update socket web"]


def test_a_connector_going_fatal_is_sent_once_and_its_recovery_once(receiver):
    r = receiver()
    reporter = reporter_for(r.url)
    states: list[ConnectorStatus] = []
    reporter._connectors = lambda: states  # the statuses a supervisor would report

    def show(state: State, error: str | None = None) -> None:
        states[:] = [ConnectorStatus("web", state, None, 0, None, 0.0, error)]
        reporter.check_connectors()

    show(State.RUNNING)
    show(State.FATAL, "cannot start: no border0")
    show(State.FATAL, "cannot start: no border0")
    show(State.STARTING)  # SIGHUP: started again ...
    show(State.FATAL, "cannot start: no border0")  # ... and failing the same way: not re-sent
    show(State.RUNNING)
    show(State.RUNNING)
    reporter.stop()
    assert [b["event"] for b in r.bodies] == ["connector_fatal", "connector_recovered"]


def test_run_once_delivers_before_exiting_with_urls_from_the_environment(receiver, tmp_path):
    """A webhook URL is a secret (Slack's path is its key): it can come from the environment,
    e.g. a Kubernetes Secret, rather than the command line."""
    r = receiver()
    (tmp_path / "web.yaml").write_text(INVALID)
    code, _, err = cli(["run", str(tmp_path), "--api", "local", "--state", str(tmp_path / "s.db"),
                        "--once", "--listen", ""],
                       env={"BORDER0_RECONCILER_NOTIFY": f"{r.url}/a slack+{r.url}/b"})
    assert code == 1, err
    assert sorted(b["path"] for b in r.bodies) == ["/a", "/b"]
    assert next(b for b in r.bodies if b["path"] == "/a")["event"] == "reconcile_failed"
    assert "/a" not in err and "/b" not in err  # receivers are logged by host only
