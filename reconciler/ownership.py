"""Who owns a live object: its tags (sockets) or, for objects without tags (policies,
connectors), a marker at the end of the description, which also carries its prune and
confirm-delete marks:

    "<user description> [managed-by=border0-reconciler instance=<id>]"
    "<user description> [managed-by=border0-reconciler instance=<id> prune=false]"
    "<user description> [managed-by=border0-reconciler instance=<id> confirm-delete=true]"
    "<user description> [managed-by=border0-reconciler instance=<id> tokens=<a>,<b>]"

A connector's marker names the tokens this reconciler manages (`tokens=`, its manifest's
`spec.tokens`): the only ones it ever revokes, and with none named and none declared its
tokens are not even listed (docs/connectors.md). This version always writes `tokens=`, even
empty, so a marker without it is recognisable as v0.2's (`Ownership.tokens` None): for that
one, v0.2's rule applies once (plan/connectors.py).

`reconciler.model` re-exports `Ownership`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

__all__ = [
    "DEFAULT_INSTANCE", "Instance", "InvalidInstance", "Ownership", "parse_policy_marker",
    "policy_marker",
]

#: The instance when none is given (`--instance`, `ReconcileOptions`, `DaemonConfig`).
DEFAULT_INSTANCE = "default"

_INSTANCE = re.compile(r"^[A-Za-z0-9._-]{1,63}$")


class InvalidInstance(ValueError):
    """An instance name that cannot be used; the message says what to use instead."""


class Instance(str):
    """This reconciler's instance name, valid by construction: it goes into a tag value and the
    policy marker, so 1 to 63 letters, digits, '.', '_' or '-'. The one home of that rule:
    build it once at the edge (`Instance(text)` raises `InvalidInstance`), pass it on as a str."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str) or not _INSTANCE.match(value):
            raise InvalidInstance(
                f"invalid instance {value!r}: use 1 to 63 letters, digits, '.', '_' or '-'")
        return super().__new__(cls, value)


@dataclass(frozen=True)
class Ownership:
    """Who owns a live object, read from its tags (sockets) or description marker (policies)."""

    managed: bool = False  # created by a border0-reconciler (any instance)
    instance: str | None = None
    prune: bool = True
    confirm_delete: bool = False  # its deletion waits for a confirmation naming it
    #: a connector's tokens this reconciler manages (sorted names; the marker's `tokens=`);
    #: None when the marker states none (a policy, or a connector written by v0.2)
    tokens: tuple[str, ...] | None = None

    def owned_by(self, instance: str) -> bool:
        return self.managed and self.instance == instance


_MARKER_RE = re.compile(
    r"\[managed-by=border0-reconciler instance=(?P<instance>[A-Za-z0-9._-]+)"
    r"(?P<noprune> prune=false)?(?P<confirm> confirm-delete=true)?"
    r"(?: tokens=(?P<tokens>[A-Za-z0-9._,-]*))?\]\s*$"
)


def policy_marker(instance: str, prune: bool = True, confirm_delete: bool = False,
                  tokens: Iterable[str] | None = None) -> str:
    """`tokens` (connectors): stated even when empty, so the marker says it knows its tokens."""
    names = None if tokens is None else ",".join(sorted(set(tokens)))
    return (f"[managed-by=border0-reconciler instance={instance}{'' if prune else ' prune=false'}"
            f"{' confirm-delete=true' if confirm_delete else ''}"
            f"{'' if names is None else f' tokens={names}'}]")


def parse_policy_marker(description: str) -> tuple[str, Ownership]:
    """Split a live description into the user's text and the ownership it records: the text
    exactly as written before the one space that joins the marker to it (`api_json`), so a
    description ending in a newline (a YAML `|` block) reads back as it is, not as a change."""
    match = _MARKER_RE.search(description or "")
    if not match:
        return description or "", Ownership()
    text = description[: match.start()]
    return text.removesuffix(" "), Ownership(
        managed=True, instance=match.group("instance"), prune=match.group("noprune") is None,
        confirm_delete=match.group("confirm") is not None,
        tokens=None if match.group("tokens") is None
        else tuple(sorted(t for t in match.group("tokens").split(",") if t)),
    )
