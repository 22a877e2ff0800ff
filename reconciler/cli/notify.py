"""`run`'s notification flags (one decorator) and the reporter they build (daemon/events.py,
daemon/notify.py). README: "Notifications"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from reconciler.cli.options import setting_option
from reconciler.errors import UserError

__all__ = ["make_reporter", "notify_options"]


def notify_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--notify (repeatable, or BORDER0_RECONCILER_NOTIFY), --notify-format,
    --notify-after-failures."""
    for option in reversed((
        click.option("--notify", multiple=True, metavar="URL", envvar="BORDER0_RECONCILER_NOTIFY",
                     help="POST notifications here (repeatable; or BORDER0_RECONCILER_NOTIFY, "
                     "URLs separated by spaces): failures, drift corrected, FATAL connectors, "
                     "access granted. slack+https://... for a Slack incoming webhook; "
                     "github+https://TOKEN@api.github.com/repos/OWNER/REPO or "
                     "gitlab+https://TOKEN@HOST/api/v4/projects/ID sets each applied "
                     "revision's commit status."),
        setting_option("--notify-format", name="notify_format",
                       type=click.Choice(["json", "slack"])),
        setting_option("--notify-after-failures", name="notify_after_failures",
                       type=click.IntRange(min=1)),
    )):
        command = option(command)
    return command


def make_reporter(
    urls: Sequence[str], fmt: str, after_failures: int, instance: str, redactor: Any
) -> Any:
    """The notifications' reporter and its sender, or None without --notify."""
    from reconciler.daemon.events import EventReporter
    from reconciler.daemon.notify import Notifier, parse_targets

    if not urls:
        return None
    try:
        targets = parse_targets(urls, fmt)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    redactor.add_secrets([t.forge.token for t in targets if t.forge is not None])
    notifier = Notifier(targets, redact=redactor.redact_data)
    return EventReporter(notifier, instance=instance, after_failures=after_failures)
