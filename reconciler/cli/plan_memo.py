"""`plan`'s memo of its last plan with nothing to do (plan/memo.py), in the state folder:
looked at before the plan, written after one. Only `plan` keeps one, and not with `--out` (a
saved plan holds the whole plan), `--refresh=full` (which reads what no listing shows),
manifests from stdin, or `BORDER0_RECONCILER_CACHE=off`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.border0.errors import Border0Error
from reconciler.border0.inventory import fetch_actual
from reconciler.border0.session import state_path
from reconciler.manifests.files import discover, read_manifest_file
from reconciler.manifests.schema_check import schemas_digest
from reconciler.manifests.stored_cache import cache_enabled
from reconciler.model import Actual
from reconciler.plan.inventory import INVENTORY_FILE
from reconciler.plan.memo import (
    PLAN_MEMO_FILE,
    PlanMemo,
    env_secret_names,
    inputs_key,
    listing_key,
    read_memo,
    write_memo,
)
from reconciler.plan.types import Plan
from reconciler.reconcile import ReconcileResult

__all__ = ["MemoCheck"]


@dataclass
class MemoCheck:
    """One plan's use of the memo: `replay` before planning, `keep` after."""

    file: Path | None  # None: no memo for this command
    options: Mapping[str, Any]  # the options that shape a plan (`planning._recorded`)
    env: Mapping[str, str]
    paths: tuple[str, ...]
    #: the manifests as read before the plan: (path, SHA-256 of the content)
    files: list[tuple[str, bytes]] | None = None
    inventory: bytes | None = None  # the inventory file's SHA-256

    @classmethod
    def start(cls, paths: tuple[str, ...], api: str | None, state: str | None,
              options: Mapping[str, Any], env: Mapping[str, str],
              eligible: bool) -> MemoCheck:
        folder = state_path(state, api, paths).parent
        usable = eligible and cache_enabled(env) and "-" not in paths
        # the schemas too: a manifest they would now refuse is not shown as planned before
        check = cls(folder / PLAN_MEMO_FILE if usable else None,
                    dict(options, api=api, schemas=schemas_digest()), env, paths)
        if check.file is not None:
            check.files = _manifest_digests(paths)
            check.inventory = _file_digest(folder / INVENTORY_FILE)
        return check

    def replay(self, client: Any, policies: bool) -> tuple[PlanMemo | None, Actual | None]:
        """(the memo, when this plan's inputs and border0's listing are those it was made
        from; else None, and the listing taken to compare, for the plan to use)."""
        if self.file is None or self.files is None:
            return None, None
        memo = read_memo(self.file)
        if memo is None or memo.inputs != inputs_key(
                self.files, self.options, self.inventory, self.env, memo.secret_names):
            return None, None
        try:
            actual = fetch_actual(client, policies=policies)
        except Border0Error:  # the plan lists again and reports it as it always does
            return None, None
        return (memo if listing_key(actual) == memo.listing else None), actual

    def keep(self, prepared: ReconcileResult) -> None:
        """Keep `prepared`'s plan when it found nothing to do and read nothing but the
        listing and the files it was given (plan/memo.py), while those are as they were."""
        plan, desired, actual = prepared.plan, prepared.desired, prepared.actual
        if self.file is None or self.files is None or plan is None or desired is None \
                or actual is None or not _nothing_to_do(plan) \
                or any(c.tokens for c in desired.connectors.values()):
            return
        names = env_secret_names(desired)
        key = listing_key(actual)
        if names is None or key is None or _manifest_digests(self.paths) != self.files \
                or _file_digest(self.file.parent / INVENTORY_FILE) != self.inventory:
            return
        write_memo(self.file, PlanMemo(
            inputs_key(self.files, self.options, self.inventory, self.env, names), key, names,
            tuple(str(d) for d in prepared.diagnostics), plan.to_json()))


def _nothing_to_do(plan: Plan) -> bool:
    return plan.ok and not plan.changes and not plan.deferred and not plan.blocked \
        and not plan.isolated


def _manifest_digests(paths: tuple[str, ...]) -> list[tuple[str, bytes]] | None:
    """The manifests' files as the loader finds and reads them, each with the SHA-256 of its
    content; None when a path or a file is not readable or holds none (the plan says why)."""
    problems: list[str] = []
    files = discover(paths, lambda path, message, is_error: problems.append(message))
    if problems:
        return None
    try:  # as the loader reads them: a FIFO, a device or too big a file is refused unread
        return [(str(path), hashlib.sha256(read_manifest_file(path)[0]).digest())
                for path in files]
    except OSError:
        return None


def _file_digest(file: Path) -> bytes | None:
    """The SHA-256 of `file`'s content (the inventory, which this reconciler writes); None
    when it cannot be read."""
    try:
        return hashlib.sha256(file.read_bytes()).digest()
    except OSError:
        return None
