"""The ownership marker at the end of a policy's description: border0 has no tags on policies,
so the reconciler records who owns one (and its prune and confirm-delete marks) there:

    "<user description> [managed-by=border0-reconciler instance=<id>]"
    "<user description> [managed-by=border0-reconciler instance=<id> prune=false]"
    "<user description> [managed-by=border0-reconciler instance=<id> confirm-delete=true]"
"""

from __future__ import annotations

import re

from reconciler.model import Ownership

__all__ = ["parse_policy_marker", "policy_marker"]

_MARKER_RE = re.compile(
    r"\s*\[managed-by=border0-reconciler instance=(?P<instance>[A-Za-z0-9._-]+)"
    r"(?P<noprune> prune=false)?(?P<confirm> confirm-delete=true)?\]\s*$"
)


def policy_marker(instance: str, prune: bool = True, confirm_delete: bool = False) -> str:
    return (f"[managed-by=border0-reconciler instance={instance}{'' if prune else ' prune=false'}"
            f"{' confirm-delete=true' if confirm_delete else ''}]")


def parse_policy_marker(description: str) -> tuple[str, Ownership]:
    """Split a live policy description into the user's text and the ownership it records."""
    match = _MARKER_RE.search(description or "")
    if not match:
        return description or "", Ownership()
    return description[: match.start()], Ownership(
        managed=True, instance=match.group("instance"), prune=match.group("noprune") is None,
        confirm_delete=match.group("confirm") is not None,
    )
