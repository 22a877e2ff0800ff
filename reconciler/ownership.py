"""Who owns a live object: its tags (sockets) or, for objects without tags (policies,
connectors), a marker at the end of the description, which also carries its prune and
confirm-delete marks:

    "<user description> [managed-by=border0-reconciler instance=<id>]"
    "<user description> [managed-by=border0-reconciler instance=<id> prune=false]"
    "<user description> [managed-by=border0-reconciler instance=<id> confirm-delete=true]"

`reconciler.model` re-exports `Ownership`."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Ownership", "parse_policy_marker", "policy_marker"]


@dataclass(frozen=True)
class Ownership:
    """Who owns a live object, read from its tags (sockets) or description marker (policies)."""

    managed: bool = False  # created by a border0-reconciler (any instance)
    instance: str | None = None
    prune: bool = True
    confirm_delete: bool = False  # its deletion waits for a confirmation naming it

    def owned_by(self, instance: str) -> bool:
        return self.managed and self.instance == instance


_MARKER_RE = re.compile(
    r"\s*\[managed-by=border0-reconciler instance=(?P<instance>[A-Za-z0-9._-]+)"
    r"(?P<noprune> prune=false)?(?P<confirm> confirm-delete=true)?\]\s*$"
)


def policy_marker(instance: str, prune: bool = True, confirm_delete: bool = False) -> str:
    return (f"[managed-by=border0-reconciler instance={instance}{'' if prune else ' prune=false'}"
            f"{' confirm-delete=true' if confirm_delete else ''}]")


def parse_policy_marker(description: str) -> tuple[str, Ownership]:
    """Split a live description into the user's text and the ownership it records."""
    match = _MARKER_RE.search(description or "")
    if not match:
        return description or "", Ownership()
    return description[: match.start()], Ownership(
        managed=True, instance=match.group("instance"), prune=match.group("noprune") is None,
        confirm_delete=match.group("confirm") is not None,
    )
