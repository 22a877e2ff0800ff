"""One reconcile, read as its steps: load → fetch actual → plan → apply → re-list.

Each step is a named function that returns data and prints nothing. `reconcile()` never raises
for a user's or border0's error: the outcome is a `ReconcileResult` whose `stage` says where it
stopped, which the CLI and the daemon turn into output, exit codes, status and retry decisions.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.apply import ActionResult, ApplyResult, apply_plan
from reconciler.border0.errors import Border0Error
from reconciler.border0.inventory import fetch_actual
from reconciler.diagnostics import Diagnostic, Severity, has_errors
from reconciler.manifests.cache import ParseCache
from reconciler.manifests.loader import load
from reconciler.model import Actual, Desired
from reconciler.plan.planner import check_instance, make_plan
from reconciler.plan.types import Plan

__all__ = ["ReconcileOptions", "ReconcileResult", "Stage", "reconcile"]

log = logging.getLogger(__name__)


class Stage(StrEnum):
    """Where a reconcile stopped: the step that failed, or DONE."""

    LOAD = "load"  # the manifests (or the instance name) are invalid
    FETCH = "fetch"  # listing border0 failed
    PLAN = "plan"  # the plan has conflicts or is refused
    APPLY = "apply"  # some writes failed
    INTERNAL = "internal"  # a bug: an exception no step expected (the daemon catches it)
    DONE = "done"


@dataclass(frozen=True)
class ReconcileOptions:
    instance: str = "default"
    dry_run: bool = False
    max_delete: int | None = None
    allow_mass_delete: bool = False
    parallelism: int = 8
    env: Mapping[str, str] | None = None
    progress: Callable[[ActionResult], None] | None = field(default=None, compare=False)
    parse_cache: ParseCache | None = field(default=None, compare=False)  # the daemon's


@dataclass(frozen=True)
class ReconcileResult:
    ok: bool
    stage: Stage
    diagnostics: list[Diagnostic] = field(default_factory=list)
    plan: Plan | None = None
    applied: ApplyResult | None = None
    desired: Desired | None = None
    actual: Actual | None = None  # after an apply: re-listed
    error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))  # "load" is accepted, Stage is kept


def reconcile(
    paths: Sequence[str | os.PathLike[str]], client: Any, options: ReconcileOptions | None = None
) -> ReconcileResult:
    """Make border0 match the manifests under `paths` (or only plan, with `dry_run`)."""
    options = options or ReconcileOptions()
    problem = check_instance(options.instance)
    if problem:
        return ReconcileResult(False, Stage.LOAD, error=problem)

    try:
        loaded = load(paths, env=options.env, cache=options.parse_cache)
    except Exception as exc:
        log.exception("loading manifests failed")
        return ReconcileResult(
            False, Stage.LOAD, error=f"loading manifests failed (internal error: {type(exc).__name__})"
        )
    diagnostics = list(loaded.diagnostics)
    if has_errors(diagnostics):
        n = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
        return ReconcileResult(
            False, Stage.LOAD, diagnostics, error=f"the manifests have {n} error(s); nothing changed"
        )
    desired = loaded.desired

    try:
        actual = fetch_actual(client)
    except Border0Error as exc:
        return ReconcileResult(
            False, Stage.FETCH, diagnostics, desired=desired, error=f"listing border0 failed: {exc}"
        )

    plan = make_plan(
        desired,
        actual,
        instance=options.instance,
        max_delete=options.max_delete,
        allow_mass_delete=options.allow_mass_delete,
    )
    if not plan.ok:
        first = next(d for d in plan.conflicts if d.severity is Severity.ERROR)
        return ReconcileResult(
            False, Stage.PLAN, diagnostics, plan, desired=desired, actual=actual,
            error=f"the plan cannot be applied: {first.message}",
        )
    if options.dry_run or not plan.has_changes:
        return ReconcileResult(True, Stage.DONE, diagnostics, plan, desired=desired, actual=actual)

    applied = apply_plan(
        plan,
        client,
        desired,
        actual,
        instance=options.instance,
        parallelism=options.parallelism,
        progress=options.progress,
    )
    after = _relist(client)
    error = None
    if not applied.ok:
        error = f"{len(applied.failed)} of {len(applied.results)} action(s) failed"
    return ReconcileResult(
        applied.ok, Stage.DONE if applied.ok else Stage.APPLY, diagnostics, plan, applied,
        desired, after if after is not None else actual, error,
    )


def _relist(client: Any) -> Actual | None:
    """The state after an apply, read after border0's read-after-write delay."""
    try:
        delay = float(client.read_after_write_delay())
        if delay > 0:
            time.sleep(delay)
        return fetch_actual(client)
    except Border0Error as exc:
        log.warning("re-listing border0 after apply failed: %s", exc)
        return None
