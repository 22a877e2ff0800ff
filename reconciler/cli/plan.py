"""The bodies of `plan`, `apply` and `show FILE`: cli.py parses flags and calls these; they return
exit codes.

Output contract: the rendering goes to stdout, `plan --out FILE` saves the plan (as Terraform's
`-out`), diagnostics and progress go to stderr, user errors end as one `error: ...` line (raised as `UserError`). Exit codes: 0 ok,
1 error, 2 changes present (only with `--detailed-exitcode`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import click

import reconciler.plan.saved as saved_plan
from reconciler.apply import ApplyResult, apply_plan
from reconciler.border0.errors import Border0Error
from reconciler.border0.inventory import fetch_actual
from reconciler.cli.inputs import Manifests, bulk_gc
from reconciler.cli.progress import Progress
from reconciler.cli.terminal import color_enabled
from reconciler.diagnostics import Severity
from reconciler.errors import UserError
from reconciler.manifests.files import environment
from reconciler.model import Actual, Desired
from reconciler.plan.planner import check_instance, make_plan
from reconciler.plan.types import Plan
from reconciler.render import render

__all__ = ["PlanArgs", "looks_like_file", "run_apply", "run_plan", "run_show_plan"]

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
#: `plan --out FILE` with these endings still writes the rendering (the old meaning), for one
#: release, with a deprecation note.
RENDERING_SUFFIXES = (".md", ".markdown", ".txt")


@dataclass(frozen=True)
class PlanArgs:
    paths: tuple[str, ...]
    api: str | None = None
    token_file: str | None = None
    state: str | None = None
    instance: str = "default"
    env_file: str | None = None
    fmt: str = "text"
    out: str | None = None
    no_color: bool = False
    detailed_exitcode: bool = False
    max_delete: int | None = None
    allow_mass_delete: bool = False
    save: str | None = None  # deprecated spelling of plan --out
    deny_access_gain: bool = False
    secret_roots: tuple[str, ...] = ()
    # apply only
    auto_approve: bool = False
    dry_run: bool = False
    parallelism: int = 8
    verbose: bool = False


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


def _show(plan: Plan, args: PlanArgs, render_to: str | None = None) -> None:
    """The rendering in --format on stdout; `render_to` also gets it (then stdout gets text)."""
    data = plan.to_json()
    tty = color_enabled(sys.stdout, args.no_color)
    fmt = args.fmt
    if render_to:
        _write(render_to, render(data, args.fmt))
        fmt = "text"  # the file has the machine form; the terminal gets the text
    color = fmt == "text" and tty
    click.echo(render(data, fmt, color=color), nl=False, color=color)


def _plan_outputs(args: PlanArgs) -> tuple[str | None, str | None]:
    """(saved-plan path, rendering path) from --out and the deprecated spellings."""
    if args.save:
        _deprecated(f"--save {args.save}: use --out {args.save} (it saves the plan, as "
                    "terraform plan -out does)")
        if args.out:
            return args.save, args.out
        return args.save, None
    if args.out and args.out.lower().endswith(RENDERING_SUFFIXES):
        _deprecated(
            f"--out {args.out} writes a rendering only for one more release; --out now saves "
            f"the plan: write renderings with --format {args.fmt} > {args.out}, or "
            f"plan --out FILE then show FILE --format {args.fmt} > {args.out}"
        )
        return None, args.out
    return args.out, None


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


def _plan(args: PlanArgs, desired: Desired, actual: Actual) -> Plan:
    return make_plan(
        desired,
        actual,
        instance=args.instance,
        max_delete=args.max_delete,
        allow_mass_delete=args.allow_mass_delete,
    )


def _refuse_conflicts(plan: Plan) -> None:
    n = sum(1 for d in plan.conflicts if d.severity is Severity.ERROR)
    if n:
        first = next(d for d in plan.conflicts if d.severity is Severity.ERROR)
        more = f" (and {n - 1} more)" if n > 1 else ""
        raise UserError(f"the plan cannot be applied: {first.message}{more}")


def _check(args: PlanArgs) -> None:
    problem = check_instance(args.instance)
    if problem:
        raise UserError(problem)


def run_plan(args: PlanArgs) -> int:
    with bulk_gc():
        return _run_plan(args)


def _run_plan(args: PlanArgs) -> int:
    from reconciler.border0.session import open_api

    _check(args)
    save_to, render_to = _plan_outputs(args)
    env = environment(args.env_file)
    manifests = Manifests(args.paths, env, args.secret_roots)
    try:
        with open_api(args.api, args.token_file, args.state, env=env, say=_Notices()) as client:
            actual = fetch_actual(client)
    except Border0Error:
        manifests.desired()  # the manifests' own errors first
        raise
    desired = manifests.desired()
    plan = _plan(args, desired, actual)
    _show(plan, args, render_to)
    _refuse_conflicts(plan)
    _refuse_access_gain(plan, args)
    if save_to:
        try:
            saved_plan.write(
                save_to, plan=plan, desired=desired,
                actual_fingerprint=saved_plan.actual_fingerprint(actual), paths=list(args.paths),
                max_delete=args.max_delete, allow_mass_delete=args.allow_mass_delete,
            )
        except OSError as exc:
            raise UserError(f"cannot write {save_to}: {exc.strerror or exc}") from None
        click.echo(f"Saved the plan to {save_to}; apply it with: "
                   f"border0-reconciler apply {save_to}", err=True)
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


def looks_like_file(target: str) -> bool:
    """`show TARGET`: a path (exists, or has '/' or '.'), not a socket name (a DNS label)."""
    return Path(target).exists() or "/" in target or "." in target


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
    from reconciler.border0.session import open_api

    _check(args)
    env = environment(args.env_file)
    saved = None
    _refuse_rendering(args.paths)
    if len(args.paths) == 1 and saved_plan.is_saved_plan(args.paths[0]):
        try:
            saved = saved_plan.read(args.paths[0])
        except ValueError as exc:
            raise UserError(str(exc)) from None
        args = replace(args, paths=saved.paths, instance=saved.instance,
                       max_delete=saved.max_delete, allow_mass_delete=saved.allow_mass_delete)
    manifests = Manifests(args.paths, env, args.secret_roots)
    notices = _Notices()
    try:
        with open_api(args.api, args.token_file, args.state, env=env, say=notices) as client:
            actual = fetch_actual(client)
            desired = manifests.desired()
            if saved is not None and (
                saved_plan.desired_fingerprint(desired, saved.salt) != saved.desired_fingerprint
            ):
                raise UserError("the manifests changed since the plan was saved; "
                                "run plan --out again")
            plan = _plan(args, desired, actual)
            if saved is not None and (
                saved_plan.actual_fingerprint(actual) != saved.actual_fingerprint
            ):
                raise UserError(
                    "the saved plan is stale: border0 changed since it was made; "
                    "run plan --out again"
                )
            if saved is not None and not saved_plan.plan_matches(saved, plan):
                raise UserError(
                    "the plan is not the one saved: a secret changed since it was saved (or "
                    "border0's copy of one); run plan --out again"
                )
            _show(plan, args, args.out)
            _refuse_conflicts(plan)
            _refuse_access_gain(plan, args)
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
                result = apply_plan(
                    plan, client, desired, actual, instance=args.instance,
                    parallelism=args.parallelism,
                    progress=lambda r: progress.step(r.ok, r.message),
                )
                notices.progress = None
    except Border0Error:
        manifests.desired()  # the manifests' own errors first
        raise
    return _summary(result, args)


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
