"""What is worth a notification: the daemon's outcomes turned into few, deduplicated messages.

The rules (README "Notifications"):
- A reconcile failing: talking to border0 (fetch, apply) after `after_failures` failures in a
  row (default 3, like readiness' --fail-threshold: the backoff retries a passing blip within
  seconds); invalid manifests at once (a retry cannot fix them). The same failure (stage and
  errors) is sent once, however many intervals it lasts; a different one is sent again, and
  the first success after a sent failure sends one "recovered".
- Drift corrected: each reconcile that repaired drift (not in --dry-run, which repairs nothing).
- An apply that gave someone access (the plan's access review, `Plan.access_gains`).
  Both are sent for a partly failed apply too, beside its failure: the rest was applied.
- A connector going FATAL, once per time it goes FATAL, with the supervisor's reason; and once
  "running again" when it recovers.
- Objects blocked (a replace without its allowance, or an object that belongs to someone
  else; not applied while the rest was): once per
  distinct set of blocked objects.
- With a commit-status target (`github+https://...`, `gitlab+https://...`): the status of each
  git revision reconciled (not in --dry-run), success or failure, once per revision and result.

Delivery (queue, worker, retries, redaction) is `notify.py`'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from reconciler.connectors.connector import State
from reconciler.daemon.notify import REVISION_STATUS, Message, Notifier
from reconciler.daemon.report import ReconcileReport
from reconciler.daemon.state import fatal_connectors
from reconciler.ownership import DEFAULT_INSTANCE
from reconciler.render.text import access_line
from reconciler.settings import DEFAULTS

__all__ = ["DEFAULT_AFTER_FAILURES", "EventReporter"]

log = logging.getLogger("reconciler.notify")

DEFAULT_AFTER_FAILURES = DEFAULTS.notify_after_failures  # reconciler/settings.py
#: Lines listed under one message; the rest are counted.
MAX_DETAILS = 10


def _details(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_DETAILS:
        return tuple(lines)
    return (*lines[:MAX_DETAILS], f"... and {len(lines) - MAX_DETAILS} more")


class EventReporter:
    """Decides, from each reconcile and the connectors' states, which messages to send."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        instance: str = DEFAULT_INSTANCE,
        after_failures: int = DEFAULT_AFTER_FAILURES,
    ) -> None:
        self.notifier = notifier
        self.instance = instance
        self.after_failures = max(1, after_failures)
        self._in_row = 0
        self._failure_sent: tuple[Any, ...] | None = None  # what the last failure message said
        self._fatal: set[str] = set()  # connectors already reported FATAL
        self._connectors: Callable[[], Iterable[Any]] | None = None
        self._blocked_sent: tuple[str, ...] = ()  # the blocked changes last reported
        self._status_sent: tuple[str, str] | None = None  # (revision, outcome) last set
        self._statuses = any(t.format == "status" for t in getattr(notifier, "targets", ()))

    def _send(self, event: str, text: str, details: list[str] | None = None,
              **fields: Any) -> None:
        self.notifier.send(
            Message(event, text, _details(details or []), fields, instance=self.instance)
        )

    # --- after each reconcile (the loop's thread) ----------------------------------------------

    def reconciled(self, report: ReconcileReport) -> None:
        """Decide the messages of one reconcile, from its report (`report.summarize`)."""
        outcome, errors = report.outcome, [e.text for e in report.errors]
        self._blocked(report.blocked)
        if report.run.revision and report.run.wrote and self._statuses:
            self._revision_status(report, errors, report.run.revision)
        if outcome != "success":
            self._failed(report, errors)
        else:
            if self._failure_sent is not None:
                self._send(
                    "reconcile_recovered",
                    f"reconcile succeeded again after {self._in_row} failed in a row",
                )
            self._in_row, self._failure_sent = 0, None
        if not report.run.wrote:
            return
        # what was applied, beside a failure too: a partly failed apply (one object refused, an
        # object of someone else blocked) applied the rest, and the next reconcile has nothing
        # of it left to tell
        if report.corrected:
            self._send(
                "drift_corrected",
                f"drift corrected: {len(report.corrected)} change(s) made outside the manifests "
                "undone",
                [c["title"] for c in report.corrected],
                changes=[{k: c[k] for k in ("kind", "name", "action")} for c in report.corrected],
            )
        self._access(report)

    def _revision_status(self, report: ReconcileReport, errors: list[str],
                         revision: str) -> None:
        """The commit status of the revision reconciled, once per revision and result."""
        outcome = report.outcome
        if (revision, outcome) == self._status_sent:
            return
        self._status_sent = (revision, outcome)
        if outcome == "success":
            done = ", ".join(f"{n} {action}" for action, n in (report.summary or {}).items() if n)
            text = f"applied: {done}" if done else "in sync: border0 matches the manifests"
        else:
            what = "manifests invalid" if outcome == "invalid" else "reconcile failed"
            text = f"{what}: {errors[0] if errors else report.error or 'no error recorded'}"
        self._send(REVISION_STATUS, text, revision=revision, ok=outcome == "success")

    def _failed(self, report: ReconcileReport, errors: list[str]) -> None:
        self._in_row += 1
        outcome, stage = report.outcome, report.stage
        key = (outcome, stage, tuple(errors))
        threshold = 1 if outcome == "invalid" else self.after_failures
        if self._in_row < threshold or key == self._failure_sent:
            return
        self._failure_sent = key
        what = "the manifests are invalid" if outcome == "invalid" else f"failed at {stage}"
        self._send(
            "reconcile_failed",
            f"reconcile {what} ({self._in_row} in a row)",
            errors or [str(report.error or "no error recorded")],
            stage=stage,
            failures_in_row=self._in_row,
        )

    def _blocked(self, blocked: tuple[Any, ...]) -> None:
        key = tuple(sorted(str(b) for b in blocked))
        if key == self._blocked_sent:
            return
        self._blocked_sent = key
        if blocked:
            self._send("objects_blocked",
                       f"{len(blocked)} object(s) blocked; the rest was applied",
                       [str(b) for b in blocked],
                       objects=[{"kind": b.kind, "name": b.name} for b in blocked])

    def _access(self, report: ReconcileReport) -> None:
        gains = report.access_gains
        if not gains:
            return
        text = f"apply gave access: {len(gains)} change(s) widen who can reach sockets"
        if report.apply_failed:
            text += " (the apply had failures: some may not have taken effect)"
        self._send("access_granted", text, [access_line(g) for g in gains],
                   access_changes=list(gains))

    # --- connectors (the notifier's thread, about once a second) -------------------------------

    def start(self, connectors: Callable[[], Iterable[Any]] | None = None) -> None:
        """Start sending; look at `connectors()` (the supervisor's statuses) from the
        notifier's thread about once a second."""
        if connectors is not None:
            self._connectors = connectors
            self.notifier.poll = self.check_connectors
        self.notifier.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (within `timeout` seconds) and stop."""
        self.notifier.stop(timeout)

    def check_connectors(self) -> None:
        if self._connectors is None:
            return
        statuses = list(self._connectors())
        fatal = {row["socket"]: row["reason"] for row in fatal_connectors(statuses)}
        new = sorted(set(fatal) - self._fatal)
        if new:  # one message for all that went FATAL together (a missing binary: all of them)
            text = (f"connector of socket {new[0]} is FATAL" if len(new) == 1
                    else f"{len(new)} connectors are FATAL")
            self._send("connector_fatal", text + " (the supervisor gave up restarting)",
                       [f"{name}: {fatal[name]}" for name in new], sockets=new)
        running = {s.name for s in statuses if s.state is State.RUNNING}
        recovered = sorted((self._fatal - set(fatal)) & running)
        if recovered:
            self._send("connector_recovered",
                       f"running again after FATAL: {', '.join(recovered)}", sockets=recovered)
        # Reported and not running yet (a SIGHUP restart under way): failing again is the
        # same failure, not a new message. Running again, or gone: forgotten.
        present = {s.name for s in statuses}
        self._fatal = set(fatal) | ((self._fatal & present) - running)
