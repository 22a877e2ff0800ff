"""Sync windows: when the daemon may write to border0, as Argo CD's AppProject `syncWindows`.

A window is a cron `schedule` (five fields, in `timeZone`, default UTC) that opens the window at
each firing for `duration` (Go syntax: `1h`, `30m`). The rule is Argo CD's
(docs: operator-manual/user-management/sync-windows, "Sync Windows"):

- no windows: always allowed;
- an active `deny` window blocks, whatever else is active;
- when there are `allow` windows, one of them must be active;
- `manualSync: true` lets a manual trigger (POST /reconcile?override=sync-window) through the
  window that blocks; the override is refused, and says so, when a blocking window lacks it.

Outside a window the daemon still plans and reports (status, metrics, drift); it writes
nothing, runs no apply. The file is the daemon's, not the manifests': as an AppProject is apart
from the applications it restricts, a pull request to the config repo cannot lift its windows.
APScheduler's CronTrigger reads the schedules, and the daemon's scheduler reconciles when an
allow window opens and when a deny window closes (also one open when the daemon started), so
held changes go out without waiting for the interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from reconciler.durations import format_duration, parse_duration
from reconciler.errors import UserError

__all__ = ["Gate", "SyncWindow", "gate", "load_windows", "parse_windows"]

KINDS = ("allow", "deny")
_FIELDS = {"kind", "schedule", "duration", "timeZone", "manualSync"}
#: Cron numbers days from Sunday (0 and 7); APScheduler 3's CronTrigger from Monday (0). Days
#: are written as names before it reads them, so `1-5` means Monday to Friday, as in Argo CD.
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _cron_days(text: str) -> str:
    return re.sub(r"(?<![/\w])([0-7])(?![\w])", lambda m: _DAYS[int(m.group(1))], text)


@dataclass(frozen=True)
class SyncWindow:
    kind: str
    schedule: str
    duration: float  # seconds
    time_zone: str = "UTC"
    manual_sync: bool = False
    trigger: Any = field(default=None, compare=False, repr=False)

    def last_opened(self, now: datetime) -> datetime | None:
        """When the window that is open at `now` opened, or None when it is closed."""
        fire = self.trigger.get_next_fire_time(None, now - timedelta(seconds=self.duration))
        return fire if fire is not None and fire <= now else None

    def closes_at(self, now: datetime) -> datetime | None:
        """When the window open at `now` closes (in its time zone), or None when it is closed.
        The duration is elapsed time, as in `last_opened` and Argo CD (a Go duration added to
        the firing): on the night the clocks change, 22:00 + 10h is 07:00, not 08:00."""
        opened = self.last_opened(now)
        if opened is None:
            return None
        return (opened.astimezone(UTC) + timedelta(seconds=self.duration)).astimezone(
            opened.tzinfo)

    def next_open(self, now: datetime) -> datetime | None:
        return self.trigger.get_next_fire_time(None, now + timedelta(microseconds=1))

    def describe(self, now: datetime) -> dict[str, Any]:
        closes = self.closes_at(now)
        return {
            "kind": self.kind, "schedule": self.schedule,
            "duration": format_duration(self.duration), "timeZone": self.time_zone,
            "manualSync": self.manual_sync, "active": closes is not None,
            "closes_at": _iso(closes),
            "next_open": _iso(self.next_open(now)),
        }

    def __str__(self) -> str:
        return f"{self.kind} window '{self.schedule}' ({format_duration(self.duration)}, " \
               f"{self.time_zone})"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when is not None else None


@dataclass(frozen=True)
class Gate:
    """The windows' verdict for one reconcile: may it write, and why (not)."""

    may_apply: bool
    reason: str | None = None  # why not; or, when an override let it through, that it did
    override: bool = False


def gate(windows: tuple[SyncWindow, ...], now: datetime, *, manual: bool = False) -> Gate:
    """Argo CD's rule (module docstring) at `now`; `manual`: a trigger that asks to override."""
    if not windows:
        return Gate(True)
    denying = [w for w in windows if w.kind == "deny" and w.last_opened(now) is not None]
    allows = [w for w in windows if w.kind == "allow"]
    why = ""
    if denying:
        why = f"inside the {denying[0]}"
    elif allows and not any(w.last_opened(now) for w in allows):
        nexts = [t for t in (w.next_open(now) for w in allows) if t is not None]
        why = "outside every allow window" + (
            f" (the next opens at {_iso(min(nexts))})" if nexts else "")
    if not why:
        return Gate(True)
    if manual:
        # every deny window open lets it through, or (outside the allow windows) one of them
        lets = all(w.manual_sync for w in denying) if denying else any(
            w.manual_sync for w in allows)
        if lets:
            return Gate(True, f"manual override of the sync windows: {why}", override=True)
        return Gate(False, f"{why}; the manual override is refused: manualSync is not set on "
                    "the window that blocks")
    return Gate(False, f"{why}: planning only, nothing is applied")


def parse_windows(data: Any, source: str = "sync windows") -> tuple[SyncWindow, ...]:
    """Windows from `{syncWindows: [...]}` (an AppProject spec's shape) or a bare list."""
    if isinstance(data, dict) and "spec" in data:
        data = data["spec"]
    if isinstance(data, dict):
        data = data.get("syncWindows")
    if not isinstance(data, list):
        raise UserError(f"{source}: expected a syncWindows list (kind, schedule, duration, "
                        "timeZone, manualSync)")
    windows = []
    for index, item in enumerate(data):
        where = f"{source}: syncWindows[{index}]"
        if not isinstance(item, dict):
            raise UserError(f"{where}: expected a mapping")
        unknown = sorted(set(item) - _FIELDS)
        if unknown:
            raise UserError(f"{where}: unknown field {unknown[0]!r} (known: kind, schedule, "
                            "duration, timeZone, manualSync)")
        kind = item.get("kind")
        if kind not in KINDS:
            raise UserError(f"{where}: kind must be allow or deny, not {kind!r}")
        schedule, zone = str(item.get("schedule") or ""), str(item.get("timeZone") or "UTC")
        try:
            duration = parse_duration(str(item.get("duration") or ""))
        except ValueError as exc:
            raise UserError(f"{where}: duration: {exc}") from None
        if duration <= 0:
            raise UserError(f"{where}: duration must be more than 0")
        if len(schedule.split()) != 5:
            raise UserError(f"{where}: schedule {schedule!r} is not a five-field cron "
                            "expression (minute hour day-of-month month day-of-week)")
        try:
            minute, hour, day, month, dow = schedule.split()
            trigger = CronTrigger(minute=minute, hour=hour, day=day, month=month,
                                  day_of_week=_cron_days(dow), timezone=zone)
        except (ValueError, KeyError) as exc:  # zoneinfo's ZoneInfoNotFoundError: KeyError
            raise UserError(f"{where}: {schedule!r} in {zone!r}: {exc}") from None
        windows.append(SyncWindow(kind, schedule, duration, zone, bool(item.get("manualSync")),
                                  trigger))
    return tuple(windows)


def load_windows(path: str) -> tuple[SyncWindow, ...]:
    """The windows of a YAML file (`run --sync-windows FILE`); one-line errors."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"--sync-windows {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"--sync-windows {path}: not YAML: {exc}") from None
    return parse_windows(data, path)
