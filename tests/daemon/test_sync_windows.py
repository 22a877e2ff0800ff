"""Sync windows (daemon/windows.py): the `run` command (in this process, daemon_host.py)
against the emulator, with windows
computed from the current time so the test does not depend on when it runs. Outside its window
the daemon plans, reports why in /status, the dashboard and `status`, and applies nothing; a
manual trigger that says it overrides applies, where the window allows manual syncs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from helpers import cli, wait_for
from test_daemon import socket_yaml
from test_daemon_process import manifests  # noqa: F401 - the fixture

from reconciler.daemon.windows import gate, parse_windows
from reconciler.errors import UserError

TOKEN = "s3cret-trigger-token-0123456789"


def cron_at(when: datetime) -> str:
    """A daily cron schedule that fires at `when` (UTC minute)."""
    return f"{when.minute} {when.hour} * * *"


def test_outside_an_allow_window_nothing_is_applied_until_a_manual_override(
    emulator, manifests, daemon_run, tmp_path  # noqa: F811
) -> None:
    now = datetime.now(UTC)
    windows = tmp_path / "windows.yaml"
    windows.write_text(yaml.safe_dump({"syncWindows": [
        {"kind": "allow", "schedule": cron_at(now + timedelta(hours=2)), "duration": "1h",
         "timeZone": "UTC", "manualSync": True},
    ]}))
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "token").chmod(0o600)  # a token file others can read is refused
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed"))
    daemon = daemon_run(manifests, emulator.url, emulator.token, "--interval", "1h",
                            "--sync-windows", str(windows),
                            "--trigger-token-file", str(tmp_path / "token"))
    wait_for(lambda: daemon.last("result"), timeout=30, message="the first reconcile")

    client = emulator.client()
    assert client.list_sockets() == []  # planned, not applied
    status = daemon.status()
    why = status["sync_windows"]["reason"]
    assert status["sync_windows"]["may_apply_now"] is False
    assert why.startswith("outside every allow window (the next opens at ")
    assert status["last_reconcile"]["sync_window"] == why
    assert status["sync_windows"]["windows"][0]["active"] is False
    assert "not applying: outside every allow window" in daemon.http.get("/").text
    listen = daemon._listen()
    code, out, _ = cli(["status", "--listen", listen])
    assert code == 0 and "sync windows: not applying: outside every allow window" in out

    # an ordinary trigger is held like the rest
    runs = daemon.reconciles()
    assert daemon.http.post("/reconcile", headers={
        "Authorization": f"Bearer {TOKEN}"}).status_code == 202
    wait_for(lambda: daemon.reconciles() > runs, message="the triggered reconcile")
    assert client.list_sockets() == []

    response = daemon.http.post("/reconcile", params={"override": "sync-window"},
                                headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 202 and response.json()["override"] is True
    last = wait_for(lambda: "overriding" in (daemon.last("trigger") or "")
                    and daemon.status()["last_reconcile"], message="the override's reconcile")
    assert last["sync_window"].startswith("manual override of the sync windows: outside")
    assert last["result"] == "success" and client.find_socket("web") is not None


def test_a_daemon_started_inside_a_deny_window_applies_when_it_closes(
    emulator, manifests, daemon_run, tmp_path  # noqa: F811
) -> None:
    """A restart during a freeze: the window's schedule fired before the daemon ran, so only
    its close can let the held change out, at the close and not at the next --interval."""
    now = datetime.now(UTC)
    opened = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    closes = now + timedelta(seconds=8)
    windows = tmp_path / "windows.yaml"
    windows.write_text(yaml.safe_dump({"syncWindows": [
        {"kind": "deny", "schedule": cron_at(opened),
         "duration": f"{(closes - opened).total_seconds():.3f}s"},
    ]}))
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed"))
    daemon = daemon_run(manifests, emulator.url, emulator.token, "--interval", "1h",
                        "--sync-windows", str(windows))
    wait_for(lambda: daemon.last("result"), timeout=30, message="the first reconcile")
    client = emulator.client()
    assert client.list_sockets() == []  # held
    status = daemon.status()["sync_windows"]
    assert status["reason"].startswith("inside the deny window")
    shown = datetime.fromisoformat(status["windows"][0]["closes_at"])
    assert abs((shown - closes).total_seconds()) <= 1  # to the second
    # the reconcile's record, not the socket: the socket exists before its reconcile ends
    wait_for(lambda: str(daemon.last("trigger")).startswith("sync window closed: deny window"),
             timeout=closes.timestamp() - time.time() + 15,
             message="the held change to go out when the window closes")
    assert daemon.last("result") == "success" and client.find_socket("web")
    assert datetime.now(UTC) >= closes


def test_closes_at_counts_the_duration_in_real_time_across_a_dst_change() -> None:
    """A window's duration is elapsed time, as its activity is (and as Argo CD adds a Go
    duration): /status's closes_at is not an hour off on the night the clocks change."""
    [window] = parse_windows([{"kind": "deny", "schedule": "0 22 * * *", "duration": "10h",
                               "timeZone": "America/New_York"}])
    # 22:00 EDT on 31 October 2026 is 02:00 UTC; the clocks go back at 06:00 UTC
    opened = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    inside = datetime(2026, 11, 1, 11, 59, tzinfo=UTC)
    after = datetime(2026, 11, 1, 12, 0, 1, tzinfo=UTC)
    assert window.last_opened(inside) == opened and window.last_opened(after) is None
    closes = datetime.fromisoformat(window.describe(inside)["closes_at"])
    assert closes == opened + timedelta(hours=10)  # 07:00 EST, not 08:00
    assert window.describe(inside)["closes_at"] == "2026-11-01T07:00:00-05:00"
    # and forward, in spring: 22:00 EST on 7 March is 03:00 UTC; 10 hours is 09:00 EDT
    spring = datetime.fromisoformat(window.describe(datetime(2026, 3, 8, 12, 0, tzinfo=UTC))[
        "closes_at"])
    assert spring == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def _windows(kind: str, opened_ago: timedelta, manual: bool) -> tuple:
    now = datetime.now(UTC)
    return now, parse_windows([{"kind": kind, "schedule": cron_at(now - opened_ago),
                                "duration": "1h", "manualSync": manual}])


def test_an_open_deny_window_blocks_and_refuses_an_override_without_manual_sync() -> None:
    now, windows = _windows("deny", timedelta(minutes=1), manual=False)
    verdict = gate(windows, now)
    assert not verdict.may_apply and verdict.reason.startswith("inside the deny window")
    refused = gate(windows, now, manual=True)
    assert not refused.may_apply and "manual override is refused" in refused.reason
    now, windows = _windows("deny", timedelta(minutes=1), manual=True)
    assert gate(windows, now, manual=True).may_apply
    now, windows = _windows("deny", timedelta(hours=2), manual=False)  # closed an hour ago
    assert gate(windows, now).may_apply


def test_an_open_allow_window_allows_and_deny_wins_over_allow() -> None:
    now = datetime.now(UTC)
    opened = cron_at(now - timedelta(minutes=5))
    allow = {"kind": "allow", "schedule": opened, "duration": "30m"}
    assert gate(parse_windows([allow]), now).may_apply
    deny = {"kind": "deny", "schedule": opened, "duration": "1m30s"}
    assert gate(parse_windows([allow, deny]), now).may_apply  # the deny closed 3.5 minutes ago
    deny["duration"] = "10m"
    assert not gate(parse_windows([allow, deny]), now).may_apply


def test_cron_weekdays_count_from_sunday_as_in_argo_cd() -> None:
    [window] = parse_windows([{"kind": "allow", "schedule": "0 9 * * 1-5", "duration": "8h",
                               "timeZone": "Europe/Amsterdam"}])
    monday_10 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 10:00 in Amsterdam
    sunday_10 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert window.last_opened(monday_10) is not None and window.last_opened(sunday_10) is None


@pytest.mark.parametrize(("item", "message"), [
    ({"kind": "maybe", "schedule": "* * * * *", "duration": "1h"}, "kind must be allow or deny"),
    ({"kind": "allow", "schedule": "* * *", "duration": "1h"}, "five-field cron"),
    ({"kind": "allow", "schedule": "* * * * *", "duration": "1 hour"}, "is not a duration"),
    ({"kind": "allow", "schedule": "* * * * *", "duration": "1h", "timeZone": "Mars/Olympus"},
     "Mars/Olympus"),
    ({"kind": "allow", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]},
     "unknown field 'applications'"),
])
def test_bad_windows_are_one_line_errors(item: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_windows({"syncWindows": [item]})
