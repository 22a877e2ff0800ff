"""Problems a user can cause, collected as values (never raised one by one).

A `Diagnostic` names where (file:line:column), how bad (error or warning) and what is wrong.
`validate`, `plan` and the daemon all report the same objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

__all__ = ["MASS_DELETE", "Diagnostic", "Severity", "has_errors"]

#: The mass-delete guard's code (plan/guard.py raises it; deferral lifts it; the views word it):
#: here, beside the Diagnostic, so a renderer can name it without importing the planner.
MASS_DELETE = "mass-delete"


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    code: str = ""  # a short stable identifier, e.g. "yaml-syntax", "schema", "duplicate-name"
    #: The object it is about, where it is about one (a plan's conflicts): kind and name.
    #: Readers take `subject`, never the words of `message`.
    kind: str | None = None
    name: str | None = None

    @property
    def subject(self) -> tuple[str, str] | None:
        """(kind, name) of the object it is about, or None."""
        if self.kind is None or self.name is None:
            return None
        return self.kind, self.name

    def location(self) -> str:
        if self.file is None:
            return ""
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        where = self.location()
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.severity.value}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        for key in ("kind", "name"):
            if data[key] is None:
                del data[key]
        return data


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)
