"""One reconcile, read as its steps: load → fetch actual → plan → defer removals → apply → re-list.

Each step is a named function that returns data and prints nothing. `reconcile()` never raises
for a user's or border0's error: the outcome is a `ReconcileResult` whose `stage` says where it
stopped, which the CLI and the daemon turn into output, exit codes, status and retry decisions.

Partial input never prunes. Files being written one by one (`git pull`, `cp -r`, an editor
writing in place, a socket moved from one file to another) pass through states that lack objects
the final manifests keep. So: a load whose files changed while being read is not used (`unstable`:
the daemon reads again after the debounce), and with `delete_grace` the deletes and detaches of
a plan wait until the manifests have been unchanged that long (the plan and the log say
"deletion deferred: manifests changed N ms ago"); creations and updates are not delayed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from reconciler.plan.types import Action, Plan

__all__ = ["ReconcileOptions", "ReconcileResult", "Stage", "defer_removals", "reconcile"]

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
    secret_roots: Sequence[str] | None = None  # None: secret_files.DEFAULT_SECRET_ROOTS
    delete_grace: float = 0.0  # seconds the manifests must be unchanged before a delete
    # What the caller (the daemon) saw last: the files' stamps and when they last changed
    # (seconds since the epoch); a different snapshot now means they changed just now.
    known_snapshot: Any = field(default=None, compare=False)
    changed_at: float = 0.0
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
    unstable: list[str] = field(default_factory=list)  # files that changed while being read
    snapshot: Any = None  # the stamps of the files loaded (see LoadResult.snapshot)
    changed_at: float = 0.0  # when the manifests last changed, as far as this run knows
    deferred_until: float | None = None  # removals deferred: re-plan at this time (epoch s)

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
        loaded = load(paths, env=options.env, secret_roots=options.secret_roots,
                      cache=options.parse_cache)
    except Exception as exc:
        log.exception("loading manifests failed")
        return ReconcileResult(
            False, Stage.LOAD, error=f"loading manifests failed (internal error: {type(exc).__name__})"
        )
    diagnostics = list(loaded.diagnostics)
    if loaded.changed:
        return ReconcileResult(
            False, Stage.LOAD, diagnostics, unstable=loaded.changed,
            error=f"the manifests changed while being read ({', '.join(loaded.changed[:3])}); "
            "nothing changed",
        )
    changed_at = _changed_at(loaded, options)
    stamps: dict[str, Any] = {"snapshot": loaded.snapshot, "changed_at": changed_at}
    if has_errors(diagnostics):
        n = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
        return ReconcileResult(
            False, Stage.LOAD, diagnostics,
            error=f"the manifests have {n} error(s); nothing changed", **stamps,
        )
    desired = loaded.desired

    try:
        actual = fetch_actual(client)
    except Border0Error as exc:
        return ReconcileResult(
            False, Stage.FETCH, diagnostics, desired=desired,
            error=f"listing border0 failed: {exc}", **stamps,
        )

    plan = make_plan(
        desired,
        actual,
        instance=options.instance,
        max_delete=options.max_delete,
        allow_mass_delete=options.allow_mass_delete,
    )
    quiet = time.time() - changed_at
    if quiet < options.delete_grace:
        plan, deferred = defer_removals(plan, quiet)
        if deferred:
            stamps["deferred_until"] = changed_at + options.delete_grace
            log.warning(plan.warnings[-1].message)
    if not plan.ok:
        first = next(d for d in plan.conflicts if d.severity is Severity.ERROR)
        return ReconcileResult(
            False, Stage.PLAN, diagnostics, plan, desired=desired, actual=actual,
            error=f"the plan cannot be applied: {first.message}", **stamps,
        )
    if options.dry_run or not plan.has_changes:
        return ReconcileResult(True, Stage.DONE, diagnostics, plan, desired=desired, actual=actual,
                               **stamps)

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
        desired, after if after is not None else actual, error, **stamps,
    )


def _changed_at(loaded: Any, options: ReconcileOptions) -> float:
    """When the manifests last changed (epoch seconds): the newest file or folder mtime, or now
    when the files differ from the snapshot the caller saw last. An mtime in the future (a
    skewed clock) is not used: it would defer deletes until that time."""
    now = time.time()
    mtime = loaded.newest_mtime if loaded.newest_mtime <= now + 1 else 0.0
    changed = max(options.changed_at, mtime)
    if options.known_snapshot is not None and loaded.snapshot != options.known_snapshot:
        changed = now
    return changed


def defer_removals(plan: Plan, quiet: float) -> tuple[Plan, list[Any]]:
    """The plan without its deletes and detaches (and so without a mass-delete refusal), and
    the changes taken out; a warning in the plan says why."""
    deferred = [c for c in plan.changes if c.action in (Action.DELETE, Action.DETACH)]
    if not deferred:
        return plan, []
    names = ", ".join(f"{c.action.value} {c.kind} {c.name}" for c in deferred[:5])
    more = f" and {len(deferred) - 5} more" if len(deferred) > 5 else ""
    warning = Diagnostic(
        Severity.WARNING,
        f"deletion deferred: manifests changed {quiet * 1000:.0f} ms ago ({names}{more}); "
        "planned again once they have been unchanged for the grace period",
        code="deletion-deferred",
    )
    return replace(
        plan,
        changes=[c for c in plan.changes if c.action not in (Action.DELETE, Action.DETACH)],
        conflicts=[d for d in plan.conflicts if d.code != "mass-delete"],
        warnings=[*plan.warnings, warning],
    ), deferred


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
