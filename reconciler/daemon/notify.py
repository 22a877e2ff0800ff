"""Deliver notifications to webhooks without ever making a reconcile wait for them.

`run --notify URL` (repeatable) names the receivers: a generic JSON POST by default, or a
Slack-compatible incoming webhook (`slack+https://...`, or every URL with `--notify-format
slack`: the body is `{"text": ...}`), or a forge's commit statuses (`github+https://TOKEN@
api.github.com/repos/OWNER/REPO`, `gitlab+https://TOKEN@HOST/api/v4/projects/ID`: each
revision applied gets a status, `reconciler/forge.py` says how), which take only the
`revision_status` messages that webhooks never get. What is worth a message is decided in
`events.py`; this module only carries messages.

The reconcile's thread only puts a message into a bounded queue (`send` never blocks; when the
queue is full the message is dropped and counted). One worker thread drains it: each POST has a
timeout and a few retries with backoff, so a slow or dead receiver delays other messages, never
a reconcile. Every string in a message goes through the daemon's redactor before it is
serialised, and a receiver's URL (a Slack webhook's path is its secret) is logged by host only.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from reconciler import __version__
from reconciler.backoff import backoff
from reconciler.forge import Forge, forge_from_url
from reconciler.ownership import DEFAULT_INSTANCE

__all__ = [
    "FORMATS", "REVISION_STATUS", "SLACK_PREFIX", "Message", "Notifier", "Target",
    "parse_targets",
]

log = logging.getLogger("reconciler.notify")

FORMATS = ("json", "slack")
SLACK_PREFIX = "slack+"
#: Commit statuses on GitHub or GitLab: the URL names the repository or project.
STATUS_PREFIXES = ("github+", "gitlab+")
#: The one event status targets take, and webhooks do not.
REVISION_STATUS = "revision_status"
#: Statuses worth another try; any other 4xx is the receiver refusing the message for good.
_RETRY_STATUSES = frozenset({408, 425, 429})
_STOP = object()


@dataclass(frozen=True)
class Message:
    """One notification. `key` names what it is about (for logs and tests), `text` is the
    human line, `details` the lines under it; `fields` go only into the JSON body."""

    event: str  # reconcile_failed, reconcile_recovered, drift_corrected, connector_fatal, ...
    text: str
    details: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)
    instance: str = DEFAULT_INSTANCE
    time: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds")
    )

    def body(self, fmt: str) -> dict[str, Any]:
        if fmt == "slack":
            lines = [f"*border0-reconciler* (instance `{self.instance}`): {self.text}"]
            return {"text": "\n".join(lines + [f"• {d}" for d in self.details])}
        return {
            "source": "border0-reconciler",
            "version": __version__,
            "instance": self.instance,
            "event": self.event,
            "time": self.time,
            "text": self.text,
            "details": list(self.details),
            **self.fields,
        }


@dataclass(frozen=True)
class Target:
    url: str  # what is POSTed to (the slack+ prefix removed; a forge's API root)
    format: str  # "json", "slack" or "status" (a forge's commit statuses)
    forge: Forge | None = field(default=None, repr=False, compare=False)  # holds the token

    def accepts(self, event: str) -> bool:
        return (event == REVISION_STATUS) == (self.format == "status")

    @property
    def shown(self) -> str:
        """The receiver as logs name it: scheme and host, never the path (a webhook's secret)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname or '?'}" + (
            f":{parts.port}" if parts.port else ""
        )


def parse_targets(urls: Iterable[str], default_format: str = "json") -> list[Target]:
    """`--notify` values -> targets; ValueError with one clear sentence for a bad one."""
    if default_format not in FORMATS:
        raise ValueError(f"--notify-format must be one of {', '.join(FORMATS)}")
    targets = []
    for raw in urls:
        url, fmt = raw.strip(), default_format
        if url.startswith(STATUS_PREFIXES):
            forge = forge_from_url(url)
            targets.append(Target(forge.api, "status", forge))
            continue
        if url.startswith(SLACK_PREFIX):
            url, fmt = url[len(SLACK_PREFIX):], "slack"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = f"{parts.scheme}://{parts.hostname}" if parts.hostname else "the value"
            raise ValueError(
                f"--notify needs an http(s) URL (optionally slack+https://...); {shown} is not one"
            )
        targets.append(Target(url, fmt))
    return targets


class Notifier:
    """A bounded queue of messages and the one worker thread that POSTs them."""

    def __init__(
        self,
        targets: Sequence[Target],
        *,
        redact: Callable[[Any], Any] = lambda value: value,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 1.0,
        queue_size: int = 100,
        poll: Callable[[], None] | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.targets = list(targets)
        self._redact = redact
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self.poll = poll  # called on the worker thread about every poll_interval (events.py)
        self._poll_interval = poll_interval
        self.accepted = 0  # messages taken into the queue
        self.sent = 0  # messages delivered (to every target that took them)
        self.failed = 0  # deliveries that gave up after their attempts
        self.dropped = 0  # messages refused because the queue was full

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
            self._thread.start()

    def send(self, message: Message) -> bool:
        """Queue `message` for delivery; never blocks. False when it was dropped."""
        try:
            self._queue.put_nowait(message)
            self.accepted += 1
            return True
        except queue.Full:
            self.dropped += 1
            log.warning("notification dropped: the queue is full", extra={"event": message.event})
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued within `timeout` seconds, then give up on the rest."""
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            self._abort.set()
            log.warning("notifications still queued at shutdown were not sent")

    # --- the worker thread -----------------------------------------------------------------

    def _run(self) -> None:
        next_poll = time.monotonic()
        with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
            while not self._abort.is_set():
                if self.poll is not None and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self._poll_interval
                    try:
                        self.poll()
                    except Exception:
                        log.exception("looking for notifications failed")
                try:
                    item = self._queue.get(timeout=self._poll_interval)
                except queue.Empty:
                    continue
                if item is _STOP:
                    return
                self._deliver(client, item)

    def _deliver(self, client: httpx.Client, message: Message) -> None:
        delivered = False
        for target in self.targets:
            if not target.accepts(message.event):
                continue
            url, headers, data = target.url, {}, message.body(target.format)
            if target.forge is not None:
                url, data = target.forge.status_request(
                    message.fields["revision"], message.fields["ok"], message.text,
                    f"border0-reconciler/{message.instance}")
                headers = target.forge.headers()
            body = json.dumps(self._redact(data)).encode()
            delivered = self._post(client, target, body, message.event, url, headers) \
                or delivered
        self.sent += delivered

    def _post(self, client: httpx.Client, target: Target, body: bytes, event: str,
              url: str, headers: dict[str, str]) -> bool:
        problem = ""
        for attempt in range(self._attempts):
            if attempt and self._abort.wait(backoff(attempt, base=self._backoff, cap=float("inf"))):
                break
            try:
                response = client.post(
                    url, content=body, headers={**headers, "Content-Type": "application/json"}
                )
            except httpx.HTTPError as exc:
                problem = type(exc).__name__  # the message could hold the URL
                continue
            if response.is_success:
                log.debug("notification sent", extra={"event": event, "to": target.shown})
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code not in _RETRY_STATUSES:
                break
        self.failed += 1
        log.warning(
            "notification not delivered",
            extra={"event": event, "to": target.shown, "problem": problem},
        )
        return False
