"""The bodies of `plan`, `apply` and `show FILE`: cli.py parses flags and calls these; they return
exit codes.

Output contract: the rendering goes to stdout, `plan --out FILE` saves the plan (as Terraform's
`-out`), diagnostics and progress go to stderr, user errors end as one `error: ...` line (raised as `UserError`). Exit codes: 0 ok,
1 error, 2 changes present (only with `--detailed-exitcode`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

import reconciler.plan.saved as saved_plan
from reconciler.apply import ActionResult, apply_plan
from reconciler.border0.inventory import fetch_actual
from reconciler.diagnostics import Severity
from reconciler.errors import UserError
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


def _env(env_file: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if env_file:
        from reconciler.manifests.loader import EnvFileError, read_env_file

        try:
            env.update(read_env_file(env_file))
        except EnvFileError as exc:
            raise UserError(str(exc)) from None
    return env


def _load(
    paths: Sequence[str], env: Mapping[str, str], secret_roots: Sequence[str] = ()
) -> Desired:
    """All manifests valid, or nothing happens: diagnostics on stderr, then one error line."""
    from reconciler.manifests.loader import load

    if not paths:
        raise UserError("no manifest path given")
    result = load(list(paths), env=env, secret_roots=list(secret_roots) or None)
    if result.changed:
        raise UserError(
            f"the manifests changed while being read ({', '.join(result.changed[:3])}); "
            "nothing was planned: run again once they are written"
        )
    for diagnostic in result.diagnostics:
        click.echo(str(diagnostic), err=True)
    errors = sum(1 for d in result.diagnostics if d.severity is Severity.ERROR)
    if errors:
        raise UserError(
            f"the manifests have {errors} error{'s' if errors != 1 else ''}; nothing was planned"
        )
    return result.desired


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
    tty = not args.no_color and sys.stdout.isatty()
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


def _plan(args: PlanArgs, client: Any, desired: Desired) -> tuple[Plan, Actual]:
    actual = fetch_actual(client)
    plan = make_plan(
        desired,
        actual,
        instance=args.instance,
        max_delete=args.max_delete,
        allow_mass_delete=args.allow_mass_delete,
    )
    return plan, actual


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
    from reconciler.border0.session import open_api

    _check(args)
    save_to, render_to = _plan_outputs(args)
    env = _env(args.env_file)
    desired = _load(args.paths, env, args.secret_roots)
    with open_api(args.api, args.token_file, args.state, env=env) as client:
        plan, actual = _plan(args, client, desired)
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
    color = fmt == "text" and not no_color and sys.stdout.isatty()
    click.echo(render(saved.plan, fmt, color=color), nl=False, color=color)
    return EXIT_OK


def _progress(result: ActionResult) -> None:
    color = sys.stderr.isatty()
    text = result.message
    if color:
        text = click.style(text, fg="green" if result.ok else "red")
    click.echo(text, err=True, color=color)


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
    from reconciler.border0.session import open_api

    _check(args)
    env = _env(args.env_file)
    saved = None
    _refuse_rendering(args.paths)
    if len(args.paths) == 1 and saved_plan.is_saved_plan(args.paths[0]):
        try:
            saved = saved_plan.read(args.paths[0])
        except ValueError as exc:
            raise UserError(str(exc)) from None
        args = replace(args, paths=saved.paths, instance=saved.instance,
                       max_delete=saved.max_delete, allow_mass_delete=saved.allow_mass_delete)
    desired = _load(args.paths, env, args.secret_roots)
    if saved is not None and (
        saved_plan.desired_fingerprint(desired, saved.salt) != saved.desired_fingerprint
    ):
        raise UserError(
            "the manifests changed since the plan was saved; run plan --out again"
        )
    with open_api(args.api, args.token_file, args.state, env=env) as client:
        plan, actual = _plan(args, client, desired)
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
        result = apply_plan(
            plan, client, desired, actual, instance=args.instance,
            parallelism=args.parallelism, progress=_progress,
        )
    done, failed = len(result.succeeded), len(result.failed)
    to_stderr = args.fmt != "text" and not args.out  # keep stdout a clean json/markdown document
    if failed:
        click.echo(
            f"Apply finished with errors: {done} action{'s' if done != 1 else ''} succeeded, "
            f"{failed} failed. Run apply again to finish.", err=to_stderr,
        )
        return EXIT_ERROR
    click.echo(f"Apply complete: {done} action{'s' if done != 1 else ''} succeeded.",
               err=to_stderr)
    return EXIT_OK
