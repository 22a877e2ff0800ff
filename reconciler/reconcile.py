"""The one pipeline: load → fetch actual → plan → apply → re-list.

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
"deletion deferred: manifests changed N ms ago"). So do the changes that grant access or lower a
guard, and every change from a file that cannot be a complete write (plan/settling.py: "held
back until the manifests settle"); changes that narrow access or are neutral are not delayed.
The planner decides this (it is given the grace as a `Settle`): what waits is the plan's
`deferred` list, and nothing here takes changes out of the plan.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from reconciler.apply import ActionResult, ApplyResult, apply_plan
from reconciler.apply.tokens import check_destinations
from reconciler.border0.api import Border0API
from reconciler.border0.errors import Border0Error
from reconciler.border0.inventory import fetch_actual, fetch_details, refresh_sockets
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.manifests.cache import ParseCache
from reconciler.manifests.loader import LoadResult, load
from reconciler.model import Actual, Desired, with_defaults
from reconciler.ownership import DEFAULT_INSTANCE
from reconciler.plan.ignore import respect_ignored
from reconciler.plan.in_sync import InSync
from reconciler.plan.planner import check_instance, make_plan
from reconciler.plan.settling import Settle
from reconciler.plan.types import Blocked, Plan
from reconciler.settings import DEFAULTS

__all__ = [
    "FOCUS_LIMIT", "Blocked", "Focus", "ReconcileOptions", "ReconcileResult", "Stage",
    "carry_out", "observe", "prepare", "reconcile",
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
class Focus:
    """The daemon's last complete picture, for planning an edit of a few files against it: the
    listing (as re-read after that reconcile's writes), the desired state, and the stamps of the
    files it was loaded from (`LoadResult.snapshot`)."""

    actual: Actual
    desired: Desired
    stamps: Mapping[str, Any]
    #: the manifests as loaded (`ReconcileResult.declared`): what an edit is compared with
    declared: Desired | None = None


#: An edit of more sockets than this (or of any policy, or files added or removed) is planned
#: against a full listing: re-reading them one by one would cost more than the pages.
FOCUS_LIMIT = 200


@dataclass(frozen=True)
class ReconcileOptions:
    instance: str = DEFAULT_INSTANCE
    dry_run: bool = False
    max_delete: int | None = None
    allow_mass_delete: bool = False
    allow_replace: bool = False  # --allow-replace: every object's replace is allowed
    allow_clear_credentials: bool = False  # --allow-clear-credentials
    labels_authoritative: bool = False  # --labels authoritative
    parallelism: int = DEFAULTS.parallelism
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
    #: Names whose deletion waits for a confirmation (the confirm-delete annotation) and is
    #: confirmed for this run: `apply --confirm-delete NAME`, a trigger naming it.
    confirm_delete: frozenset[str] = frozenset()
    #: List border0 again after applying, for what the caller keeps (the daemon's status and
    #: connectors). A command that exits reads nothing of it: `apply` turns it off.
    relist: bool = True
    #: The ids this reconciler manages (plan/inventory.Inventory): recognises its own objects
    #: that lost their ownership marks. None: ownership is read from the marks alone.
    inventory: Any = field(default=None, compare=False)
    #: An object that cannot go ahead (it belongs to someone else, or its replace has no
    #: allowance) blocks only its own change (the daemon): the rest of the plan is applied,
    #: the object is listed in `ReconcileResult.blocked` and the reconcile still fails.
    #: Off (the CLI): the whole plan is refused.
    isolate_conflicts: bool = False
    #: The daemon's last complete picture: when only a few sockets' files changed since, those
    #: sockets are read again (one GET each) instead of listing the organization.
    focus: Focus | None = field(default=None, compare=False)
    #: False: border0 policies are not managed (access is granted elsewhere, e.g. Tailscale
    #: PAM): no request touches /policies or /policy, and the plan says so.
    manage_policies: bool = True
    #: False (`ls --manifests` without --env-file): secret references are not resolved, and the
    #: plan compares no secret (a secret it cannot read is neither in sync nor drifted).
    resolve_secrets: bool = True
    #: A full refresh (`--refresh=full`; the daemon on `--full-refresh-interval` and after an
    #: error): every declared socket's links and typed upstream are read, its
    #: border0-reconciler/details tag not trusted (inventory.fetch_details), and the
    #: organization is listed even after an edit (no `focus`).
    full_refresh: bool = False
    #: The sockets an earlier plan found in sync (plan/in_sync.py), or what reads them when
    #: the plan starts: not compared again while nothing they were compared on changed
    #: (a full refresh compares every socket and makes the record anew).
    #: None: no record kept (the plan makes none).
    in_sync: Any = field(default=None, compare=False)
    #: border0 as the caller listed it already (`plan`'s memo check: plan/memo.py): planned
    #: against, not listed again. None: listed here.
    listed: Actual | None = field(default=None, compare=False)


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
    incomplete: list[str] = field(default_factory=list)  # files that look cut mid-write
    #: The exception behind a LOAD or FETCH failure, for the CLI to report as it reports any.
    cause: Exception | None = field(default=None, compare=False, repr=False)
    #: The sockets read again for a focused plan (`ReconcileOptions.focus`); None: a full listing.
    focused: tuple[str, ...] | None = None
    #: `actual` is border0 as it is after this run (False: the re-read after writing failed).
    fresh: bool = True
    #: A connector agent's hold (it plans nothing): the sockets the manifests lost keep their
    #: connectors until then, as the writer defers their deletes (`daemon.agent.observe_for`).
    held_until: float | None = None
    #: The manifests as loaded, before the command's defaults (`--allow-replace`, `--labels
    #: authoritative`) and ignored fields: the daemon compares the next load with them.
    declared: Desired | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))  # "load" is accepted, Stage is kept

    @property
    def blocked(self) -> list[Blocked]:
        """Objects whose change was left out while the rest went ahead (`isolate_conflicts`:
        the planner's `Plan.isolated`)."""
        return self.plan.isolated if self.plan is not None else []

    @property
    def deferred_until(self) -> float | None:
        """Changes are held back (`Plan.deferred`, or an agent's `held_until`): run again at
        this time (epoch seconds)."""
        return self.plan.deferred_until if self.plan is not None else self.held_until


def reconcile(
    paths: Sequence[str | os.PathLike[str]],
    client: Border0API,
    options: ReconcileOptions | None = None,
) -> ReconcileResult:
    """Make border0 match the manifests under `paths` (or only plan, with `dry_run`)."""
    options = options or ReconcileOptions()
    prepared = prepare(paths, client, options)
    if not prepared.ok or options.dry_run or prepared.plan is None or not prepared.plan.has_changes:
        return _with_blocked(prepared)
    return _with_blocked(carry_out(prepared, client, options))


def _with_blocked(result: ReconcileResult) -> ReconcileResult:
    """A reconcile with blocked objects fails (the daemon counts it) even when all the rest was
    applied."""
    if not result.ok or not result.blocked:
        return result
    more = f" (and {len(result.blocked) - 1} more)" if len(result.blocked) > 1 else ""
    return replace(result, ok=False, stage=Stage.APPLY, error=(
        f"{_count(len(result.blocked), 'object')} blocked, the rest applied: "
        f"{result.blocked[0]}{more}"))


def observe(
    paths: Sequence[str | os.PathLike[str]],
    client: Border0API,
    options: ReconcileOptions | None = None,
) -> ReconcileResult:
    """The manifests and border0 as they are: DONE with `desired` and `actual`, or LOAD/FETCH.
    Writes nothing, plans nothing (connector agents stop here)."""
    options = options or ReconcileOptions()
    problem = check_instance(options.instance)
    if problem:
        return ReconcileResult(False, Stage.LOAD, error=problem)
    if not paths:
        return ReconcileResult(False, Stage.LOAD, error="no manifest path given")

    listed = options.listed
    listing: Callable[[], Actual] = (
        functools.partial(fetch_actual, client, policies=options.manage_policies)
        if listed is None else lambda: listed)
    focused: tuple[str, ...] | None = None
    focus = options.focus
    # the daemon after an edit: load first, then read what changed (a full refresh reads all)
    if focus is not None and not options.full_refresh:
        loaded = _load(paths, options)
        actual = failed = None
        if isinstance(loaded, LoadResult) and loaded.ok and not loaded.changed:
            focused = edited_sockets(loaded, focus)
            actual, failed = _read(
                listing if focused is None else
                functools.partial(refresh_sockets, client, focus.actual, focused,
                                  options.parallelism, policies=options.manage_policies,
                                  list_policies=False))
    else:
        with ThreadPoolExecutor(1, thread_name_prefix="load") as pool:
            loading = pool.submit(_load, paths, options)
            actual, failed = _read(listing)
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
        "snapshot": loaded.snapshot, "changed_at": _changed_at(loaded, options),
        "incomplete": list(loaded.incomplete)}
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
        actual = fetch_details(client, loaded.desired, actual, only=focused,
                               trust_tag=not options.full_refresh)
    except Border0Error as exc:
        return ReconcileResult(
            False, Stage.FETCH, diagnostics, desired=loaded.desired,
            error=f"reading socket links, upstreams or connector tokens failed: {exc}",
            cause=exc, **stamps,
        )
    desired = with_defaults(loaded.desired, labels_authoritative=options.labels_authoritative,
                            allow_replace=options.allow_replace)
    return ReconcileResult(True, Stage.DONE, diagnostics, desired=desired, actual=actual,
                           focused=focused, declared=loaded.desired, **stamps)


def _read(listing: Callable[[], Actual]) -> tuple[Actual | None, Border0Error | None]:
    try:
        return listing(), None
    except Border0Error as exc:
        return None, exc


def edited_sockets(loaded: LoadResult, focus: Focus) -> tuple[str, ...] | None:
    """The sockets declared differently now than at `focus` (added, removed or changed: in the
    files changed since, or with a secret that reads differently), () when no file changed;
    None when the change needs a full listing (a policy's or a connector's file, files added or
    removed, too many)."""
    now = dict(loaded.snapshot)
    if now.keys() != focus.stamps.keys() or None in now.values():
        return None
    files = {path for path, stamp in now.items() if focus.stamps[path] != stamp}
    if not files:
        return ()

    def in_files(specs: Mapping[str, Any]) -> set[str]:
        return {n for n, s in specs.items() if s.source is not None and s.source.file in files}

    if any(in_files(specs) for specs in (
            loaded.desired.policies, focus.desired.policies,
            loaded.desired.connectors, focus.desired.connectors)):
        return None
    declared, before = loaded.desired.sockets, (focus.declared or focus.desired).sockets
    # the sockets declared differently: a file not changed gives the very specs the last load
    # gave (the parse cache), so identity rules out all but the edited files' sockets (and one
    # whose secret reads differently now) without a walk of their files; equality the rest
    # (a socket left as it was, or only moved to another file, is as the last reconcile left it)
    names = {n for n, spec in declared.items()
             if (old := before.get(n)) is not spec and old != spec}
    names |= before.keys() - declared.keys()
    return tuple(sorted(names)) if len(names) <= FOCUS_LIMIT else None


def prepare(
    paths: Sequence[str | os.PathLike[str]],
    client: Border0API,
    options: ReconcileOptions | None = None,
) -> ReconcileResult:
    """Observe, then plan: DONE with a plan `carry_out` can apply, or where it stopped (PLAN:
    the plan is there to show, with its conflicts)."""
    options = options or ReconcileOptions()
    observed = observe(paths, client, options)
    if not observed.ok:
        return observed
    assert observed.desired is not None and observed.actual is not None
    inventory = options.inventory
    # ignored fields take border0's values, for the plan and for what apply writes
    observed = replace(observed, desired=respect_ignored(observed.desired, observed.actual))
    assert observed.desired is not None
    # token Secrets still holding their token (a lost one plans a new token: apply/tokens.py)
    checked, unreadable = check_destinations(observed.desired)
    observed = replace(observed, desired=checked)
    assert observed.desired is not None and observed.actual is not None
    plan = make_plan(
        observed.desired,
        observed.actual,
        instance=options.instance,
        max_delete=options.max_delete,
        allow_mass_delete=options.allow_mass_delete,
        allow_clear_credentials=options.allow_clear_credentials,
        inventory=inventory.ids(options.instance) if inventory is not None else frozenset(),
        confirm_delete=options.confirm_delete,
        manage_policies=options.manage_policies,
        settle=Settle(observed.changed_at, options.delete_grace, time.time(),
                      tuple(observed.incomplete)),
        isolate_conflicts=options.isolate_conflicts,
        notes=unreadable,
        only=observed.focused,
        in_sync=_in_sync(options),
    )
    for warning in plan.warnings:
        if warning.code in ("deletion-deferred", "change-held"):
            log.warning(warning.message)
    if inventory is not None:
        inventory.record(options.instance, observed.actual, only=observed.focused)
    for each in plan.isolated:
        log.warning("blocked, the rest of the plan goes ahead: %s", each)
    prepared = replace(observed, plan=plan)
    if not plan.ok:
        return replace(prepared, ok=False, stage=Stage.PLAN, error=refusal(plan))
    if plan.blocked:
        more = f" (and {len(plan.blocked) - 1} more)" if len(plan.blocked) > 1 else ""
        return replace(prepared, ok=False, stage=Stage.PLAN,
                       error=f"the plan cannot be applied: {plan.blocked[0].blocked}{more}")
    return prepared


def carry_out(
    prepared: ReconcileResult, client: Border0API, options: ReconcileOptions | None = None
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
        manage_policies=options.manage_policies,
    )
    after = (_relist(client, actual, prepared.focused, prepared.desired,
                     options.manage_policies) if options.relist else None)
    if after is not None and options.inventory is not None:
        options.inventory.record(options.instance, after, only=prepared.focused)
    error = None
    if not applied.ok:
        error = f"{len(applied.failed)} of {len(applied.results)} action(s) failed"
    return replace(
        prepared, ok=applied.ok, stage=Stage.DONE if applied.ok else Stage.APPLY,
        applied=applied, actual=after if after is not None else actual, error=error,
        fresh=after is not None,
    )


def _in_sync(options: ReconcileOptions) -> InSync | None:
    """The record of sockets in sync this plan starts from (read now if it is the CLI's
    file); a full refresh trusts none of it and makes a new one, as it trusts no details tag."""
    if options.in_sync is None:
        return None
    if options.full_refresh:
        return InSync()
    record: InSync = options.in_sync() if callable(options.in_sync) else options.in_sync
    return record


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
    """The manifests (without `resolve_secrets`, with no secret to compare), or (a bug in
    loading) a LOAD result that names the exception."""
    try:
        loaded = load(paths, env=options.env, resolve_secrets=options.resolve_secrets,
                      secret_roots=options.secret_roots, cache=options.parse_cache)
    except Exception as exc:
        log.exception("loading manifests failed")
        return ReconcileResult(
            False, Stage.LOAD, cause=exc,
            error=f"loading manifests failed (internal error: {type(exc).__name__})",
        )
    if not options.resolve_secrets:
        sockets = {name: replace(spec, secrets_by_field={})
                   for name, spec in loaded.desired.sockets.items()}
        loaded = replace(loaded, desired=replace(loaded.desired, sockets=sockets))
    if loaded.ok:  # in the load's thread, while the listing waits on border0
        for spec in loaded.desired.sockets.values():
            spec.warm()
    return loaded


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


def _relist(client: Border0API, before: Actual, focused: Sequence[str] | None,
            desired: Desired | None, policies: bool = True) -> Actual | None:
    """The state after an apply (the client's reads wait out border0's read-after-write delay):
    listed again, or after a focused plan, its sockets read again into the listing it was planned
    against; with the details (links, typed upstreams, tokens) the declared objects compare with."""
    try:
        if focused is not None:
            after = refresh_sockets(client, before, focused, policies=policies,
                                    list_policies=False)
        else:
            after = fetch_actual(client, policies=policies)
        return after if desired is None else fetch_details(client, desired, after, only=focused)
    except Border0Error as exc:
        log.warning("re-listing border0 after apply failed: %s", exc)
        return None
