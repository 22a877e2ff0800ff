"""Log lines for the daemon: one line per event, as text for people or JSON for log shippers.

Structured fields travel as ``extra={...}`` on the log call; the text format appends them as
``key=value``, the JSON format as keys of the object. A `RedactFilter` on the handler replaces
every known secret value (the last loaded manifests' secrets, the API token) with
``(sensitive)`` in the message, the fields and any traceback, so no record can carry one.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, TextIO

from reconciler.secrets import MIN_SECRET_LENGTH, SENSITIVE, redaction_set, walk
from reconciler.secrets import redact as redact_values
from reconciler.settings import DEFAULTS

__all__ = [
    "MIN_SECRET_LENGTH", "OBJECT_NAME", "FluxJsonFormatter", "JsonFormatter", "RedactFilter", "TextFormatter",
    "setup_logging",
]

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)


#: `name` is taken on a LogRecord (the logger's): an object's name travels as `object_name`
#: and every format writes it as `name`.
OBJECT_NAME = "object_name"


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a log call passed with ``extra=``."""
    return {
        k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")
    }


def _shown_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields as the formats write them (`object_name` as `name`)."""
    return {("name" if k == OBJECT_NAME else k): v for k, v in record_fields(record).items()}


class RedactFilter(logging.Filter):
    """Replace known secret values with ``(sensitive)`` on every record that passes the handler.

    The set of values is swapped whole (`set_secrets`) after each manifest load, so the filter
    never sees a half-updated set. Values given to `add_secrets` (the API token, the trigger
    token) are not the manifests' and stay through every swap.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._lasting: set[str] = set()
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        values = redaction_set([*secrets, *self._lasting])
        with self._lock:
            self._secrets = values

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values redacted now (for a connector supervisor's output filter)."""
        return self._secrets

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Redact these from now on, whatever later `set_secrets` calls say."""
        self._lasting |= {s for s in secrets if isinstance(s, str)}
        self.set_secrets(self._secrets)

    def redact(self, text: str) -> str:
        return redact_values(text, self._secrets)

    def redact_data(self, value: Any) -> Any:
        """`value` (JSON-like: dicts, lists, strings) with every string redacted."""
        return self._redact_value(value)

    def _redact_value(self, value: Any) -> Any:
        return walk(value, on_secret=lambda _secret: SENSITIVE, on_leaf=self._redact_leaf)

    def _redact_leaf(self, value: Any) -> Any:
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self.redact(value if isinstance(value, str) else str(value))

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not lose the record
            message = str(record.msg)
        record.msg = self.redact(message)
        record.args = None
        for key, value in record_fields(record).items():
            setattr(record, key, self._redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _utc_time(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _field_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(c in text for c in ' "=\n'):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    """``2026-01-02T03:04:05.678Z INFO reconciler.daemon: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\n", "\\n")
        fields = " ".join(f"{k}={_field_text(v)}" for k, v in _shown_fields(record).items())
        line = f"{_utc_time(record)} {record.levelname} {record.name}: {message}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line} error={json.dumps(record.exc_text)}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _shown_fields(record).items():
            data.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, default=str)


class FluxJsonFormatter(logging.Formatter):
    """JSON with the keys of Flux's controllers (controller-runtime's zap: `level`, `ts`,
    `logger`, `msg`), so one log pipeline parses both; the fields as in `JsonFormatter`."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "level": record.levelname.lower(),
            "ts": _utc_time(record),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _shown_fields(record).items():
            data.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["error"] = record.exc_text
        return json.dumps(data, default=str)


FORMATTERS: dict[str, type[logging.Formatter]] = {
    "text": TextFormatter, "json": JsonFormatter, "flux": FluxJsonFormatter,
}


def setup_logging(
    fmt: str = DEFAULTS.log_format, level: str | int = DEFAULTS.log_level,
    stream: TextIO | None = None
) -> RedactFilter:
    """Send every log record to `stream` (stderr) in `fmt`, through a redact filter it returns."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(FORMATTERS[fmt]())
    redact = RedactFilter()
    handler.addFilter(redact)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Libraries that would log one line per poll or per request at INFO.
    for noisy in ("apscheduler", "uvicorn", "httpx", "httpcore", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redact
