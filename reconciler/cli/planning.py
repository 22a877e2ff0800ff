"""The bodies of `plan`, `apply` and `show FILE`: the commands (cli/plan.py, cli/apply.py,
cli/show.py) parse the flags and call these; they return exit codes. Imported only when one of
those commands runs: it loads the whole pipeline.

Output contract: the rendering (in `-o`) goes to stdout, `--out FILE` saves the plan (as
Terraform's `-out`, for `plan` and `apply PATH...`; not with manifests from stdin, nor on
`apply PLANFILE`), `--render-to FILE` writes the rendering to a file,
diagnostics and progress go to stderr, user errors end as one `error: ...` line (raised as
`UserError`; with `-o json|yaml` also a JSON/YAML error document with the diagnostics on
stdout). Exit codes: 0 ok, 1 error, 2 changes present (only with `--detailed-exitcode`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

import reconciler.plan.saved as saved_plan
from reconciler.apply import ApplyResult
from reconciler.border0.errors import Border0Error, ConfigurationError
from reconciler.border0.session import open_api, private_state_dir, state_path
from reconciler.cli.bulk import bulk_gc, keep
from reconciler.cli.options import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, document_written
from reconciler.cli.plan_memo import MemoCheck
from reconciler.cli.progress import Progress
from reconciler.cli.terminal import color_enabled
from reconciler.errors import UserError
from reconciler.manifests.files import environment
from reconciler.manifests.stored_cache import CACHE_FILE, StoredParseCache, cache_enabled
from reconciler.ownership import DEFAULT_INSTANCE
from reconciler.plan.in_sync import IN_SYNC_FILE, InSync, read_in_sync, write_in_sync
from reconciler.plan.inventory import INVENTORY_FILE, Inventory
from reconciler.plan.types import Plan
from reconciler.reconcile import ReconcileOptions, ReconcileResult, Stage, carry_out, prepare
from reconciler.render import render
from reconciler.settings import DEFAULTS

__all__ = ["PlanArgs", "open_client", "reconcile_options", "run_apply", "run_plan",
           "run_show_plan"]

#: `plan --out FILE` with these endings still writes the rendering (the old meaning), for one
#: release, with a deprecation note.
RENDERING_SUFFIXES = (".md", ".markdown", ".txt")

#: The options that shape a plan (PlanArgs field -> flag): `plan --out` records them and
#: `apply PLANFILE` plans with them again, as Terraform applies a saved plan with its own
#: options; given again with another value, they are refused.
PLAN_OPTIONS = {
    "instance": "--instance", "max_delete": "--max-delete",
    "allow_mass_delete": "--allow-mass-delete", "confirm_delete": "--confirm-delete",
    "allow_replace": "--allow-replace", "allow_clear_credentials": "--allow-clear-credentials",
    "labels": "--labels", "no_policies": "--no-policies", "refresh": "--refresh",
    "secret_roots": "--secret-root",
}
#: What a plan saved by an older release (format "1" or "2") records of them.
OLDER_PLAN_OPTIONS = ("instance", "max_delete", "allow_mass_delete")


@dataclass(frozen=True)
class PlanArgs:
    paths: tuple[str, ...]
    api: str | None = None
    token_file: str | None = None
    state: str | None = None
    instance: str = DEFAULT_INSTANCE
    env_file: str | None = None
    fmt: str = "text"
    out: str | None = None
    no_color: bool = False
    detailed_exitcode: bool = False
    max_delete: int | None = None
    allow_mass_delete: bool = False
    save: str | None = None  # deprecated spelling of plan --out
    render_to: str | None = None
    deny_access_gain: bool = False
    allow_replace: bool = False
    allow_clear_credentials: bool = False
    labels: str = DEFAULTS.labels
    confirm_delete: tuple[str, ...] = ()
    secret_roots: tuple[str, ...] = ()
    no_policies: bool = False
    refresh: str = DEFAULTS.refresh  # "full": ReconcileOptions.full_refresh
    # apply only
    auto_approve: bool = False
    dry_run: bool = False
    parallelism: int = DEFAULTS.parallelism
    verbose: bool = False
    #: the options given on the command line or in the environment (not defaults)
    given: frozenset[str] = frozenset()


class _Notices:
    """Messages for the user while a command runs (a retry, a new state file): on stderr,
    above the progress bar while there is one."""

    progress: Progress | None = None

    def __call__(self, message: str) -> None:
        if self.progress is not None:
            self.progress.note(message)
        else:
            click.echo(message, err=True)


def _deprecated(message: str) -> None:
    click.echo(f"warning: deprecated: {message}", err=True)


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _show(data: Mapping[str, Any], args: PlanArgs, render_to: str | None = None) -> None:
    """The rendering of a plan's JSON form in -o on stdout; `render_to` also gets it (then
    stdout gets text)."""
    tty = color_enabled(sys.stdout, args.no_color)
    fmt = args.fmt
    if render_to:
        _write(render_to, render(data, args.fmt))
        fmt = "text"  # the file has the machine form; the terminal gets the text
    color = fmt == "text" and tty
    click.echo(render(data, fmt, color=color), nl=False, color=color)
    document_written()  # a refusal from here on: the plan is stdout's one document


def _plan_outputs(args: PlanArgs) -> tuple[str | None, str | None]:
    """(saved-plan path, rendering path) from --out, --render-to and the deprecated
    spellings."""
    if args.save:
        _deprecated(f"--save {args.save}: use --out {args.save} (it saves the plan, as "
                    "terraform plan -out does)")
        if args.out:
            return args.save, args.out
        return args.save, args.render_to
    if args.out and args.out.lower().endswith(RENDERING_SUFFIXES):
        _deprecated(
            f"--out {args.out} writes a rendering only for one more release; --out now saves "
            f"the plan: write renderings with --render-to {args.out} (or -o {args.fmt} > "
            f"{args.out})"
        )
        return None, args.out
    return args.out, args.render_to


def _refuse_stdin_save(save_to: str | None, args: PlanArgs) -> None:
    """`plan - --out FILE`: apply reads a saved plan's manifests again, from their files."""
    if save_to and "-" in args.paths:
        raise UserError(
            "--out: manifests read from stdin (-) cannot be saved as a plan, as apply could "
            "not read them again; plan their files or folder with --out"
        )


def _save(save_to: str | None, prepared: ReconcileResult, args: PlanArgs) -> None:
    """--out: the plan shown, saved for `apply PLANFILE` (Terraform's -out)."""
    if not save_to:
        return
    plan, desired, actual = prepared.plan, prepared.desired, prepared.actual
    assert plan is not None and desired is not None and actual is not None
    try:
        saved_plan.write(
            save_to, plan=plan, desired=desired,
            actual_fingerprint=saved_plan.actual_fingerprint(actual), paths=list(args.paths),
            max_delete=args.max_delete, allow_mass_delete=args.allow_mass_delete,
            options=_recorded(args),
        )
    except OSError as exc:
        raise UserError(f"cannot write {save_to}: {exc.strerror or exc}") from None
    click.echo(f"Saved the plan to {save_to}; apply it with: "
               f"border0-reconciler apply {save_to}", err=True)


def _recorded(args: PlanArgs) -> dict[str, Any]:
    """The options that shaped the plan, as JSON values; secret roots as given, as the manifest
    paths are (apply resolves them from the same folder)."""
    out: dict[str, Any] = {}
    for name in PLAN_OPTIONS:
        value = getattr(args, name)
        if name == "secret_roots":
            value = [os.path.normpath(r) for r in value]
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _with_saved_options(args: PlanArgs, saved: saved_plan.SavedPlan) -> PlanArgs:
    """`apply PLANFILE`'s arguments: the saved manifest paths and the options the plan was made
    with (those an older plan does not record stay this command line's); one given again with
    another value is refused, naming it."""
    paths, root = saved_plan.manifest_paths(saved)
    if saved.options is None:
        recorded: dict[str, Any] = {name: getattr(saved, name) for name in OLDER_PLAN_OPTIONS}
    else:
        recorded = {k: v for k, v in saved.options.items() if k in PLAN_OPTIONS}
    for name, value in recorded.items():
        if isinstance(value, list):
            value = tuple(str(v) for v in value)
        if name == "secret_roots":
            value = tuple(os.path.join(root, r) for r in value)
        recorded[name] = value
    for name in sorted(set(recorded) & args.given, key=list(PLAN_OPTIONS).index):
        if _same(name, getattr(args, name)) != _same(name, recorded[name]):
            flag = PLAN_OPTIONS[name]
            now, then = _flag(flag, getattr(args, name)), _flag(flag, recorded[name])
            raise UserError(
                f"{now or 'without ' + flag}: the plan was saved "
                f"{'with ' + then if then else 'without it'}; a saved plan is applied with the "
                "options it was planned with: leave the option out, or plan again with it "
                "(plan --out FILE)"
            )
    # the deletions a reviewed plan holds were confirmed when it was saved
    deletes = tuple(c["name"] for c in saved.plan.get("changes", [])
                    if c.get("action") == "delete")
    confirmed = recorded.pop("confirm_delete", args.confirm_delete)
    return replace(args, paths=paths, confirm_delete=tuple(confirmed) + deletes, **recorded)


def _same(name: str, value: Any) -> Any:
    """An option's value as compared: secret roots as folders, confirmations as a set."""
    if name == "secret_roots":
        return sorted(str(Path(r).resolve()) for r in value)
    if name == "confirm_delete":
        return sorted(set(value))
    return value


def _flag(flag: str, value: Any) -> str:
    """An option as typed (`--labels merge`, `--no-policies`); "" when it is off or unset."""
    if value is None or value is False or value == ():
        return ""
    if value is True:
        return flag
    if isinstance(value, tuple):
        return " ".join(f"{flag} {v}" for v in value)
    return f"{flag} {value}"


def _not_recorded(saved: saved_plan.SavedPlan) -> str:
    """What a refusal adds for a plan saved by an older release: it may be an option."""
    if saved.options is not None:
        return ""
    older = [PLAN_OPTIONS[name] for name in OLDER_PLAN_OPTIONS]
    return (", or it was planned with an option not given now (a plan saved by an older "
            f"release records only {', '.join(older[:-1])} and {older[-1]}: repeat the "
            "others)")


def _refuse_access_gain(plan: Plan, args: PlanArgs) -> None:
    """--deny-access-gain: the list on stderr, then one error line (exit 1)."""
    gains = plan.access_gains if args.deny_access_gain else []
    if not gains:
        return
    from reconciler.render.text import access_line

    for change in gains:
        click.echo(f"  {access_line(change.to_json())}", err=True)
    n = len(gains)
    raise UserError(
        f"--deny-access-gain: the plan widens access {n} time{'s' if n != 1 else ''} (listed "
        "above); nothing was saved or applied"
    )


def reconcile_options(args: PlanArgs, env: Mapping[str, str]) -> ReconcileOptions:
    """The pipeline's options from the flags. No re-list after applying: the command exits."""
    return ReconcileOptions(
        instance=args.instance, max_delete=args.max_delete,
        allow_mass_delete=args.allow_mass_delete, parallelism=args.parallelism, env=env,
        secret_roots=list(args.secret_roots) or None, relist=False,
        allow_replace=args.allow_replace,
        allow_clear_credentials=args.allow_clear_credentials,
        labels_authoritative=args.labels == "authoritative",
        inventory=_inventory(state_path(args.state, args.api, args.paths)),
        confirm_delete=frozenset(args.confirm_delete),
        manage_policies=not args.no_policies,
        full_refresh=args.refresh == "full",
        parse_cache=_stored_parses(args, env),
        in_sync=_stored_in_sync(args, env),
    )


def _stored_parses(args: PlanArgs, env: Mapping[str, str]) -> StoredParseCache | None:
    """The manifests' parses kept in the state folder between runs (manifests/stored_cache.py),
    unless BORDER0_RECONCILER_CACHE=off."""
    if not cache_enabled(env):
        return None
    return StoredParseCache(state_path(args.state, args.api, args.paths).parent / CACHE_FILE)


@dataclass
class _StoredInSync:
    """The sockets the last plan here found in sync (plan/in_sync.py), in the state folder;
    read when the plan asks for them: the fingerprint key that seals the file is known then
    (the session sets it when the client opens)."""

    file: Path
    read: InSync | None = None

    def __call__(self) -> InSync:
        if self.read is None:
            self.read = read_in_sync(self.file)
        return self.read


def _stored_in_sync(args: PlanArgs, env: Mapping[str, str]) -> _StoredInSync | None:
    """The record kept between runs, unless BORDER0_RECONCILER_CACHE=off."""
    if not cache_enabled(env):
        return None
    return _StoredInSync(state_path(args.state, args.api, args.paths).parent / IN_SYNC_FILE)


def _keep_for_next_run(options: ReconcileOptions, args: PlanArgs, plan: Plan) -> None:
    """Write this load's parses and the sockets this plan found in sync, for the next run
    (the state folder made as the key's is); the record only when it changed."""
    cache, stored = options.parse_cache, options.in_sync
    record = plan.in_sync if isinstance(stored, _StoredInSync) and plan.in_sync != stored.read \
        else None
    if not isinstance(cache, StoredParseCache) and record is None:
        return
    folder = state_path(args.state, args.api, args.paths).parent
    try:
        private_state_dir(folder, always=args.state is None)
    except OSError:
        return
    if isinstance(cache, StoredParseCache):
        cache.save()
    if record is not None:
        write_in_sync(folder / IN_SYNC_FILE, record)


def _inventory(state: Path) -> Inventory | None:
    """The daemon's inventory (plan/inventory.py) when a state folder exists: the ids it
    manages, so a socket that lost its tags plans as a repair, not as a conflict."""
    directory = state.parent
    return Inventory(directory / INVENTORY_FILE) if directory.is_dir() else None


class _Unavailable:
    """The client that could not be opened (no token, a bad --api): listing border0 fails with
    that error, so the pipeline reports the manifests' own errors first, as for any failed
    listing."""

    def __init__(self, error: Border0Error) -> None:
        self.error = error

    def __getattr__(self, name: str) -> object:
        raise self.error


@contextmanager
def open_client(args: PlanArgs, env: Mapping[str, str],
                say: _Notices | None = None) -> Iterator[object]:
    """border0's API for the command (`border0.session.open_api`), or `_Unavailable`."""
    with ExitStack() as stack:
        try:
            client: object = stack.enter_context(
                open_api(args.api, args.token_file, args.state, env=env, say=say or _Notices(),
                         near=args.paths))
        except ConfigurationError as exc:
            client = _Unavailable(exc)
        yield client


def _prepare(args: PlanArgs, client: object, options: ReconcileOptions) -> ReconcileResult:
    """`reconcile.prepare`, reported as a command reports: the manifests' diagnostics on
    stderr, then the manifests' or border0's error as the command's one error. A plan with
    conflicts is returned, to be shown before `_refuse_conflicts` ends the command."""
    prepared = prepare(args.paths, client, options)
    if not prepared.unstable:
        for diagnostic in prepared.diagnostics:
            click.echo(str(diagnostic), err=True)
    if prepared.stage is Stage.LOAD and prepared.unstable:
        raise UserError(f"{prepared.error}: run again once they are written")
    if prepared.stage in (Stage.LOAD, Stage.FETCH):
        error = prepared.cause or UserError(prepared.error or "nothing was planned")
        error.diagnostics = prepared.diagnostics  # type: ignore[attr-defined]  # for -o json
        raise error
    return prepared


def _refuse_conflicts(prepared: ReconcileResult) -> None:
    if prepared.stage is Stage.PLAN:
        raise UserError(prepared.error or "the plan cannot be applied")


def run_plan(args: PlanArgs) -> int:
    with bulk_gc():
        return _run_plan(args)


def _run_plan(args: PlanArgs) -> int:
    save_to, render_to = _plan_outputs(args)
    _refuse_stdin_save(save_to, args)
    env = environment(args.env_file)
    options = reconcile_options(args, env)
    memo = MemoCheck.start(args.paths, args.api, args.state, _recorded(args), env,
                           eligible=save_to is None and args.refresh != "full")
    with open_client(args, env, _Notices()) as client:
        kept, listed = memo.replay(client, policies=not args.no_policies)
        if kept is not None:  # nothing it read has changed: the same plan, not made again
            for line in kept.diagnostics:
                click.echo(line, err=True)
            _show(kept.plan, args, render_to)
            return EXIT_OK
        prepared = _prepare(args, client, replace(options, listed=listed))
    keep(prepared, options)
    plan, desired, actual = prepared.plan, prepared.desired, prepared.actual
    assert plan is not None and desired is not None and actual is not None
    _show(plan.to_json(), args, render_to)
    _keep_for_next_run(options, args, plan)
    memo.keep(prepared)
    _refuse_conflicts(prepared)
    _refuse_access_gain(plan, args)
    _save(save_to, prepared, args)
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def _refuse_rendering(paths: Sequence[str]) -> None:
    """apply PATH...: a plan's output is neither manifests nor a saved plan; say so."""
    for path in paths:
        kind = saved_plan.classify(path)
        if kind == "rendering":
            raise UserError(
                f"{path} is a rendering of a plan (its text, JSON or Markdown output), not a "
                "saved plan or manifests: save a plan with `plan --out FILE` and apply FILE"
            )
        if kind == "saved-plan" and len(paths) > 1:
            raise UserError(f"{path} is a saved plan: apply it alone (apply {path})")


def run_show_plan(path: str, fmt: str, no_color: bool) -> int:
    """`show FILE`: render a saved plan, offline, as `plan` showed it."""
    kind = saved_plan.classify(path)
    if kind != "saved-plan":
        what = "a rendering of a plan, not a saved plan (read it as it is)" if kind else (
            "not a saved plan (make one with `plan --out FILE`)" if Path(path).exists()
            else "not found")
        raise UserError(f"{path}: {what}")
    try:
        saved = saved_plan.read(path)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    color = fmt == "text" and color_enabled(sys.stdout, no_color)
    click.echo(render(saved.plan, fmt, color=color), nl=False, color=color)
    return EXIT_OK


def _confirm(args: PlanArgs) -> None:
    if args.auto_approve:
        return
    if not sys.stdin.isatty():
        raise UserError(
            "refusing to apply without confirmation: stdin is not a terminal; "
            "pass --auto-approve (or review with plan --out FILE, then apply FILE)"
        )
    answer = click.prompt(
        "Do you want to apply these changes? Only 'yes' will be accepted", default="",
        show_default=False,
    )
    if answer.strip() != "yes":
        raise UserError("apply cancelled; nothing was changed")


def run_apply(args: PlanArgs) -> int:
    with bulk_gc():
        return _run_apply(args)


def _run_apply(args: PlanArgs) -> int:
    env = environment(args.env_file)
    saved = None
    _refuse_rendering(args.paths)
    save_to, render_to = _plan_outputs(args)
    _refuse_stdin_save(save_to, args)
    if len(args.paths) == 1 and saved_plan.is_saved_plan(args.paths[0]):
        if save_to:  # Terraform's apply takes no -out either
            raise UserError(f"--out {save_to}: {args.paths[0]} is a saved plan already; apply "
                            "it without --out (copy the file to keep it)")
        try:
            saved = saved_plan.read(args.paths[0])
        except ValueError as exc:
            raise UserError(str(exc)) from None
        args = _with_saved_options(args, saved)
    notices, options = _Notices(), reconcile_options(args, env)
    with open_client(args, env, notices) as client:
        prepared = _prepare(args, client, options)
        keep(prepared, options)
        plan, desired, actual = prepared.plan, prepared.desired, prepared.actual
        assert plan is not None and desired is not None and actual is not None
        if plan.has_changes and not args.dry_run:
            # border0's read-after-write window, asked while the plan is shown: asked beside
            # the first writes, it took one of their --parallelism slots, so one create more
            # waited a round trip after the rest (1,000 creates at 10: 101 rounds, not 100)
            client.learn_read_after_write_delay()
        _keep_for_next_run(options, args, plan)
        if saved is not None and (
            saved_plan.desired_fingerprint(desired, saved.salt) != saved.desired_fingerprint
        ):
            changed = [_shown_path(f) for f in saved_plan.changed_files(saved, desired)]
            raise UserError(
                "the manifests changed since the plan was saved"
                + (f" ({', '.join(changed)})" if changed else "") + _not_recorded(saved)
                + "; run plan --out again"
            )
        if saved is not None and saved_plan.is_stale(saved, actual):
            raise UserError(
                "the saved plan is stale: border0 changed since it was made"
                + _not_recorded(saved) + "; run plan --out again"
            )
        differ = saved_plan.plan_difference(saved, plan) if saved is not None else []
        if saved is not None and differ:
            # the manifests, border0 and the options are as saved: only secrets are left
            raise UserError(
                "the plan is not the one saved: a secret changed since it was saved (or "
                f"border0's copy of one; it differs in {', '.join(differ)})"
                + _not_recorded(saved) + "; run plan --out again"
            )
        _show(plan.to_json(), args, render_to)
        _refuse_conflicts(prepared)
        _refuse_access_gain(plan, args)
        if saved is None:
            _save(save_to, prepared, args)
        if not plan.has_changes:
            return EXIT_OK
        if args.dry_run:
            click.echo("Dry run: nothing was applied.", err=True)
            return EXIT_OK
        if saved is None:  # a saved plan was reviewed already, as Terraform's
            _confirm(args)
        with Progress(len(plan.changes), stream=sys.stderr, verbose=args.verbose,
                      no_color=args.no_color) as progress:
            notices.progress = progress
            done = carry_out(prepared, client, replace(
                options, progress=lambda r: progress.step(r.ok, r.message)))
            keep(done)
            notices.progress = None
    assert done.applied is not None
    return _summary(done.applied, args)


def _shown_path(path: str) -> str:
    """A manifest file as the user named it: relative to here when it is below here."""
    if not path:
        return "(no file)"
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _summary(result: ApplyResult, args: PlanArgs) -> int:
    """The outcome in one line, on stderr with the progress. "Run apply again" only when a
    failure may pass (a timeout, a 5xx): a refusal (400, 403) fails the same way again."""
    done, failed = len(result.succeeded), len(result.failed)
    actions = f"{done} action{'s' if done != 1 else ''} succeeded"
    color = color_enabled(sys.stderr, args.no_color)
    if not failed:
        click.echo(click.style(f"Apply complete: {actions}.", fg="green") if color
                   else f"Apply complete: {actions}.", err=True, color=color)
        return EXIT_OK
    if any(r.temporary for r in result.failed):
        hint = " Run apply again to finish."
    else:
        hint = " border0 refused them: fix what the errors above say, then apply again."
    line = f"Apply finished with errors: {actions}, {failed} failed.{hint}"
    click.echo(click.style(line, fg="red") if color else line, err=True, color=color)
    return EXIT_ERROR
