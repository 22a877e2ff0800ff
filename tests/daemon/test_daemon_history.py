"""The daemon's history of reconciles (/status and `status --history`) and ISO 8601 times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import cli, edit_by_hand, wait_for
from test_daemon import make_daemon, socket_yaml

from reconciler.cli.run import format_history_table
from reconciler.clock import ManualClock
from reconciler.connectors.supervisor import ConnectorStatus, State
from reconciler.daemon.history import reconcile_entry
from reconciler.daemon.state import iso_time
from reconciler.reconcile import ReconcileResult

#: Every key of /status that holds a point in time (ages and durations are numbers of seconds).
TIME_KEYS = {"time", "since", "last_success", "next_resync", "next_retry"}


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    path = tmp_path / "manifests"
    path.mkdir()
    return path


def times_in(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(where, value) of every time-valued key anywhere in a /status document."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TIME_KEYS and not isinstance(item, dict):
                found.append((f"{path}.{key}", item))
            found += times_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += times_in(item, f"{path}[{i}]")
    return found


def test_history_keeps_the_last_n_reconciles_newest_first(manifests):
    results = [ReconcileResult(True, "done")] * 3 + [
        ReconcileResult(False, "fetch", error="listing border0 failed: 503"),
        ReconcileResult(True, "done"),
    ]
    calls = iter(results)
    daemon = make_daemon(
        manifests, None, history=3, reconcile_fn=lambda *a: next(calls), revision_fn=lambda p: "r1"
    )
    for trigger in ("start", "interval", "SIGHUP", "retry", "change: a.yaml"):
        daemon.reconcile_now([trigger])
    history = daemon.status()["history"]
    assert [h["trigger"] for h in history] == ["change: a.yaml", "retry", "SIGHUP"]
    assert [h["result"] for h in history] == ["success", "failure", "success"]
    assert history[1]["error"] == "listing border0 failed: 503"
    assert daemon.status()["last_reconcile"] == history[0]
    assert all(h["revision"] == "r1" and h["duration_seconds"] >= 0 for h in history)
    stamps = [datetime.fromisoformat(h["time"]) for h in history]
    assert stamps == sorted(stamps, reverse=True)


def test_history_names_the_changes_and_the_drift_corrected(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed"))
    (manifests / "api.yaml").write_text(socket_yaml("api", "managed"))
    client = emulator.client()
    daemon = make_daemon(manifests, client)
    assert daemon.reconcile_now(["start"]).ok
    live = client.get_socket("web")
    edit_by_hand(client, live, description="edited by hand")
    assert daemon.reconcile_now(["interval"]).ok
    assert daemon.reconcile_now(["interval"]).ok  # nothing to do

    quiet, repair, start = daemon.status()["history"]
    assert quiet["changes"] == [] and quiet["drift_corrected"] == []
    web = {"action": "update", "kind": "socket", "name": "web", "title": "update socket web"}
    assert repair["drift_corrected"] == [web] and repair["drift"] == 1
    assert repair["changes"] == [{**web, "ok": True}]
    assert sorted(c["name"] for c in start["changes"]) == ["api", "web"]
    assert {c["action"] for c in start["changes"]} == {"create"} and start["drift"] == 0
    assert all(c["ok"] for c in start["changes"])


def test_a_dry_run_lists_pending_changes_and_corrects_nothing(emulator, manifests):
    (manifests / "web.yaml").write_text(socket_yaml("web", "x"))
    daemon = make_daemon(manifests, emulator.client(), dry_run=True)
    assert daemon.reconcile_now(["start"]).ok
    [entry] = daemon.status()["history"]
    assert entry["changes"] == [
        {"action": "create", "kind": "socket", "name": "web", "title": "create socket web",
         "ok": None}
    ]  # fmt: skip
    assert entry["drift_corrected"] == []


class StaticSupervisor:
    """Reports one connector that restarted, as the real supervisor's status() does."""

    def __init__(self) -> None:
        self.since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()

    def sync(self, targets):
        pass

    def status(self):
        return [ConnectorStatus("web", State.BACKOFF, None, 2, -9, self.since, "killed by 9")]

    def reset_fatal(self):
        pass

    def stop_all(self, timeout=None):
        pass


def test_every_time_in_status_is_iso_8601(manifests, running):
    (manifests / "web.yaml").write_text(socket_yaml("web", "x", connector=True))
    calls = iter([ReconcileResult(True, "done"), ReconcileResult(False, "fetch", error="down")])
    clock = ManualClock(wall=datetime.now(UTC).timestamp())
    daemon = make_daemon(
        manifests, None, supervisor=StaticSupervisor(), reconcile_fn=lambda *a: next(calls),
        revision_fn=lambda p: None, backoff_base=300, backoff_max=300, interval=600, clock=clock,
    )  # fmt: skip
    running(daemon)
    wait_for(lambda: daemon.status()["history"], message="the start reconcile")
    daemon.trigger("interval")
    wait_for(lambda: daemon.status()["next_retry"], message="a retry scheduled after a failure")
    status = daemon.status()
    assert status["connectors"][0]["since"] == "2026-01-02T03:04:05.000+00:00"
    found = dict(times_in(status))
    assert {".next_resync", ".next_retry", ".connectors[0].since", ".history[1].time"} <= set(
        found
    )
    now = datetime.now(UTC)
    for where, value in found.items():
        if value is None:
            continue
        assert isinstance(value, str), (where, value)
        stamp = datetime.fromisoformat(value)
        assert stamp.utcoffset() is not None, (where, value)
    next_resync = datetime.fromisoformat(status["next_resync"])
    assert 0 < (next_resync - now).total_seconds() <= 600 * 1.1 + 1  # interval plus its jitter
    # the backoff on the daemon's clock, which has not moved: exactly 300 s from its now
    assert status["next_retry"] == iso_time(clock.time() + 300)


def test_status_history_prints_each_reconcile(emulator, manifests, status_server):
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed"))
    client = emulator.client()
    daemon = make_daemon(manifests, client, revision_fn=lambda p: "0123456789abcdef")
    assert daemon.reconcile_now(["start"]).ok
    live = client.get_socket("web")
    edit_by_hand(client, live, description="edited by hand")
    assert daemon.reconcile_now(["interval"]).ok
    (manifests / "bad.yaml").write_text("apiVersion: border0-reconciler/v1\nkind: Socket\n: [\n")
    assert not daemon.reconcile_now(["change: bad.yaml"]).ok

    listen = ["--listen", status_server(daemon).base_url.netloc.decode()]
    code, out, err = cli(["status", *listen, "--history"])
    jcode, jout, _ = cli(["status", *listen, "--history", "--format", "json"])
    assert code == 0, err
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if "TRIGGER" in line)
    assert [c.strip() for c in lines[header].strip("│ ").split("│")] == [
        "TIME", "TRIGGER", "REVISION", "RESULT", "DURATION", "CHANGES", "DRIFT CORRECTED"
    ]  # fmt: skip
    rows = [[c.strip() for c in line.strip("│ ").split("│")] for line in lines[header + 1 :]
            if line.startswith("│")]  # fmt: skip
    assert [r[1:4] for r in rows] == [
        ["change: bad.yaml", "0123456789ab", "invalid"],
        ["interval", "0123456789ab", "success"],
        ["start", "0123456789ab", "success"],
    ]
    assert rows[1][5:] == ["update socket web", "update socket web"]
    assert rows[2][5:] == ["create socket web", "-"]
    assert "invalid: the manifests have 1 error; nothing was planned" in out
    assert jcode == 0 and '"trigger": "change: bad.yaml"' in jout


def test_format_history_table_marks_failed_and_omitted_changes():
    text = format_history_table({"history": [{
        "time": "2026-01-01T00:00:00.000+00:00", "trigger": "interval", "result": "failure",
        "duration_seconds": 1.5, "error": "1 of 2 action(s) failed", "changes_omitted": 5,
        "changes": [{"action": "create", "kind": "policy", "name": "ops", "ok": True},
                    {"action": "update", "kind": "socket", "name": "db", "ok": False}],
    }]})  # fmt: skip
    assert "create policy ops, update socket db (failed) and 5 more" in text
    assert "1.500s" in text
    assert "2026-01-01T00:00:00.000+00:00: failure: 1 of 2 action(s) failed" in text
    many = [{"action": "create", "kind": "socket", "name": f"s{i}", "ok": True} for i in range(5)]
    text = format_history_table({"history": [{"changes": many, "drift_corrected": many[:1]}]})
    assert "create socket s0, create socket s1, create socket s2 and 2 more" in text


def test_history_size_must_be_at_least_one(manifests):
    code, _, err = cli(["run", str(manifests), "--api", "local", "--history", "0", "--once"])
    assert code == 1 and "Invalid value for '--history'" in err and "Traceback" not in err


def test_an_applied_plan_s_access_review_is_kept_with_its_reconcile():
    """The access review is another branch's (a plan's `access_changes`); a stand-in plan with
    the same JSON form is used until it is merged."""
    access = [{"socket": "web", "change": "gain", "principal_type": "email",
               "principal": "eve@example.com", "action": "http", "policies": []}]  # fmt: skip

    class Plan:
        changes = ()

        def summary(self):
            return {}

        def to_json(self):
            return {"changes": [], "access_changes": access}

    class Applied:
        results = ()

    def entry(applied):
        result = ReconcileResult(True, "done", plan=Plan(), applied=applied)
        return reconcile_entry(result, outcome="success", trigger="t", revision=None, wall=0,
                               duration=0)  # fmt: skip

    assert entry(Applied())["access_changes"] == access
    assert "access_changes" not in entry(None)  # planned only (dry run): nothing was granted


def test_status_shows_when_the_last_reconcile_ran(emulator, manifests, status_server):
    """The head line's `at` is the last reconcile's time from /status, never `-`."""
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed"))
    daemon = make_daemon(manifests, emulator.client())
    assert daemon.reconcile_now(["start"]).ok
    listen = ["--listen", status_server(daemon).base_url.netloc.decode()]
    code, out, err = cli(["status", *listen])
    _, jout, _ = cli(["status", *listen, "--format", "json"])
    assert code == 0, err
    when = json.loads(jout)["last_reconcile"]["time"]
    head = next(line for line in out.splitlines() if line.startswith("last reconcile"))
    assert f"at {when}  " in head and " at - " not in head, head
