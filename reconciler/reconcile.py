"""The one pipeline: load → fetch actual → plan → defer removals → apply → re-list.

`plan`, `apply`, `run` and `run --once` all go through it, in two halves so that the CLI can
show and review a plan between them: `prepare` reads the manifests and border0 and plans;
`carry_out` applies a prepared plan. `reconcile` is both, for the daemon. Each step returns data
and prints nothing, and none raises for a user's or border0's error: the outcome is a
`ReconcileResult` whose `stage` says where it stopped and whose `error` is the one message for
it, which the CLI and the daemon turn into output, exit codes, status and retry decisions.

The manifests load in a thread while border0 is listed, so a plan takes the longer of the two,
not their sum; when both fail, the manifests' own errors win (they are the user's to fix first).

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from reconciler.apply import ActionResult, ApplyResult, apply_plan
from reconciler.border0.errors import Border0Error
from reconciler.border0.inventory import fetch_actual, fetch_details
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.manifests.cache import ParseCache
from reconciler.manifests.loader import LoadResult, load
from reconciler.model import Actual, Desired
from reconciler.plan.planner import check_instance, make_plan
from reconciler.plan.types import Action, Plan

__all__ = [
    "ReconcileOptions", "ReconcileResult", "Stage", "carry_out", "defer_removals", "observe",
    "prepare", "reconcile",
]

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
    #: Asked before each write batch (leader election); None: always allowed.
    may_write: Callable[[], bool] | None = field(default=None, compare=False)
    secret_roots: Sequence[str] | None = None  # None: secret_files.DEFAULT_SECRET_ROOTS
    delete_grace: float = 0.0  # seconds the manifests must be unchanged before a delete
    # What the caller (the daemon) saw last: the files' stamps and when they last changed
    # (seconds since the epoch); a different snapshot now means they changed just now.
    known_snapshot: Any = field(default=None, compare=False)
    changed_at: float = 0.0
    parse_cache: ParseCache | None = field(default=None, compare=False)  # the daemon's
    #: List border0 again after applying, for what the caller keeps (the daemon's status and
    #: connectors). A command that exits reads nothing of it: `apply` turns it off.
    relist: bool = True
    #: False: border0 policies are not managed (access is granted elsewhere, e.g. Tailscale
    #: PAM): no request touches /policies or /policy, and the plan says so.
    manage_policies: bool = True


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
    #: The exception behind a LOAD or FETCH failure, for the CLI to report as it reports any.
    cause: Exception | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))  # "load" is accepted, Stage is kept


def reconcile(
    paths: Sequence[str | os.PathLike[str]], client: Any, options: ReconcileOptions | None = None
) -> ReconcileResult:
    """Make border0 match the manifests under `paths` (or only plan, with `dry_run`)."""
    options = options or ReconcileOptions()
    prepared = prepare(paths, client, options)
    if not prepared.ok or options.dry_run or prepared.plan is None or not prepared.plan.has_changes:
        return prepared
    return carry_out(prepared, client, options)


def observe(
    paths: Sequence[str | os.PathLike[str]], client: Any, options: ReconcileOptions | None = None
) -> ReconcileResult:
    """The manifests and border0 as they are: DONE with `desired` and `actual`, or LOAD/FETCH.
    Writes nothing, plans nothing (connector agents stop here)."""
    options = options or ReconcileOptions()
    problem = check_instance(options.instance)
    if problem:
        return ReconcileResult(False, Stage.LOAD, error=problem)
    if not paths:
        return ReconcileResult(False, Stage.LOAD, error="no manifest path given")

    with ThreadPoolExecutor(1, thread_name_prefix="load") as pool:
        loading = pool.submit(_load, paths, options)
        try:
            actual, failed = fetch_actual(client, policies=options.manage_policies), None
        except Border0Error as exc:
            actual, failed = None, exc
        loaded = loading.result()
    if isinstance(loaded, ReconcileResult):
        return loaded
    diagnostics = list(loaded.diagnostics)
    if loaded.changed:
        return ReconcileResult(
            False, Stage.LOAD, diagnostics, unstable=loaded.changed,
            error=f"the manifests changed while being read ({', '.join(loaded.changed[:3])}); "
            "nothing was planned",
        )
    stamps: dict[str, Any] = {
        "snapshot": loaded.snapshot, "changed_at": _changed_at(loaded, options)}
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    if errors:
        return ReconcileResult(
            False, Stage.LOAD, diagnostics,
            error=f"the manifests have {_count(errors, 'error')}; nothing was planned", **stamps,
        )
    if failed is not None:
        return ReconcileResult(
            False, Stage.FETCH, diagnostics, desired=loaded.desired,
            error=f"listing border0 failed: {failed}", cause=failed, **stamps,
        )
    assert actual is not None
    try:
        actual = fetch_details(client, loaded.desired, actual)
    except Border0Error as exc:
        return ReconcileResult(
            False, Stage.FETCH, diagnostics, desired=loaded.desired,
            error=f"reading socket links, upstreams or connector tokens failed: {exc}",
            cause=exc, **stamps,
        )
    return ReconcileResult(True, Stage.DONE, diagnostics, desired=loaded.desired, actual=actual,
                           **stamps)


def prepare(
    paths: Sequence[str | os.PathLike[str]], client: Any, options: ReconcileOptions | None = None
) -> ReconcileResult:
    """Observe, then plan: DONE with a plan `carry_out` can apply, or where it stopped (PLAN:
    the plan is there to show, with its conflicts)."""
    options = options or ReconcileOptions()
    observed = observe(paths, client, options)
    if not observed.ok:
        return observed
    assert observed.desired is not None and observed.actual is not None
    plan = make_plan(
        observed.desired,
        observed.actual,
        instance=options.instance,
        max_delete=options.max_delete,
        allow_mass_delete=options.allow_mass_delete,
        manage_policies=options.manage_policies,
    )
    deferred_until = None
    quiet = time.time() - observed.changed_at
    if quiet < options.delete_grace:
        plan, deferred = defer_removals(plan, quiet)
        if deferred:
            deferred_until = observed.changed_at + options.delete_grace
            log.warning(plan.warnings[-1].message)
    prepared = replace(observed, plan=plan, deferred_until=deferred_until)
    if not plan.ok:
        return replace(prepared, ok=False, stage=Stage.PLAN, error=refusal(plan))
    return prepared


def carry_out(
    prepared: ReconcileResult, client: Any, options: ReconcileOptions | None = None
) -> ReconcileResult:
    """Apply a prepared plan (and re-list border0, unless `options.relist` is off)."""
    options = options or ReconcileOptions()
    plan, desired, actual = prepared.plan, prepared.desired, prepared.actual
    assert prepared.ok and plan is not None and desired is not None and actual is not None
    applied = apply_plan(
        plan,
        client,
        desired,
        actual,
        instance=options.instance,
        parallelism=options.parallelism,
        progress=options.progress,
        may_write=options.may_write,
    )
    after = _relist(client, options.manage_policies) if options.relist else None
    error = None
    if not applied.ok:
        error = f"{len(applied.failed)} of {len(applied.results)} action(s) failed"
    return replace(
        prepared, ok=applied.ok, stage=Stage.DONE if applied.ok else Stage.APPLY,
        applied=applied, actual=after if after is not None else actual, error=error,
    )


def refusal(plan: Plan) -> str:
    """Why a plan with conflicts cannot be applied: the first, and how many more."""
    errors = [d for d in plan.conflicts if d.severity is Severity.ERROR]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"the plan cannot be applied: {errors[0].message}{more}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _load(
    paths: Sequence[str | os.PathLike[str]], options: ReconcileOptions
) -> LoadResult | ReconcileResult:
    """The manifests, or (a bug in loading) a LOAD result that names the exception."""
    try:
        return load(paths, env=options.env, secret_roots=options.secret_roots,
                    cache=options.parse_cache)
    except Exception as exc:
        log.exception("loading manifests failed")
        return ReconcileResult(
            False, Stage.LOAD, cause=exc,
            error=f"loading manifests failed (internal error: {type(exc).__name__})",
        )


def _changed_at(loaded: LoadResult, options: ReconcileOptions) -> float:
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


def _relist(client: Any, policies: bool = True) -> Actual | None:
    """The state after an apply, read after border0's read-after-write delay."""
    try:
        delay = float(client.read_after_write_delay())
        if delay > 0:
            time.sleep(delay)
        return fetch_actual(client, policies=policies)
    except Border0Error as exc:
        log.warning("re-listing border0 after apply failed: %s", exc)
        return None
