"""`ls`, `show NAME` and `policies`: border0's own listing commands, read straight from the API
and aware of who manages what. Rows and tables come from `render.inventory`; this module reads
border0 (and the manifests, for `ls --manifests`) and prints them as text or JSON.

A socket's STATE comes from the planner itself (`make_plan` + `daemon.state.object_states`),
never from a second comparison. Heavy modules are imported on use: every CLI start loads this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.options import (
    api_options,
    friendly_errors,
    instance_option,
    list_format_option,
    wide_option,
)
from reconciler.errors import UserError

if TYPE_CHECKING:
    from reconciler.model import Actual, Desired

__all__ = ["ls", "ls_command", "manifest_states", "policies", "policies_command", "show"]

Echo = Callable[[str], None]
DRIFTED, TO_ADOPT, CONFLICT = "drifted", "to adopt", "conflict"


@click.command("ls")
@api_options
@instance_option
@click.option("--manifests", multiple=True, type=click.Path(exists=True, allow_dash=True),
              metavar="PATH",
              help="Add STATE: in-sync, drifted, to adopt, conflict or not in manifests "
              "(repeatable).")
@click.option("--env-file", type=click.Path(dir_okay=False), default=None,
              help="With --manifests: resolve secrets, so they are compared too.")
@list_format_option
@wide_option
@friendly_errors
def ls_command(**options: Any) -> None:
    """List border0's sockets as `border0 socket ls` does, with who manages each."""
    raise SystemExit(ls(echo=click.echo, **options))


@click.command("policies")
@api_options
@instance_option
@list_format_option
@wide_option
@friendly_errors
def policies_command(**options: Any) -> None:
    """List border0's policies, what they allow to whom, and the sockets they attach to."""
    raise SystemExit(policies(echo=click.echo, **options))


def ls(*, api: str | None, token_file: str | None, state: str | None, instance: str,
       manifests: Sequence[str], env_file: str | None, fmt: str, wide: bool,
       echo: Echo = print) -> int:
    """`ls`: every socket of border0; STATE against the manifests under `manifests` if given."""
    from reconciler.render.inventory import ls_table, socket_rows

    _check_instance(instance)
    desired = _load(manifests, env_file) if manifests else None
    actual = _fetch(api, token_file, state, desired, near=manifests)
    states = manifest_states(desired, actual, instance) if desired is not None else None
    rows = socket_rows(actual, instance, states)
    echo(_view(rows, fmt, lambda markdown: ls_table(
        rows, with_state=states is not None, wide=wide, markdown=markdown)))
    return 0


def _view(data: Any, fmt: str, table: Callable[[bool], str]) -> str:
    """The rows as data (json, yaml) or as a table (text, markdown: `table(markdown)`)."""
    from reconciler.render.output import MACHINE_FORMATS, structured

    if fmt in MACHINE_FORMATS:
        return structured(data, fmt).rstrip("\n")
    return table(fmt == "markdown").rstrip()


def show(name: str, *, api: str | None, token_file: str | None, state: str | None,
         instance: str, fmt: str, wide: bool, echo: Echo = print) -> int:
    """`show NAME`: one socket, read with one GET, and the policies that apply to it."""
    from reconciler.border0.api_json import policy_from_api, socket_from_api
    from reconciler.border0.errors import NotFound
    from reconciler.border0.session import open_api
    from reconciler.render.inventory import show_row, show_text

    _check_instance(instance)
    with open_api(api, token_file, state) as client:
        try:
            live = socket_from_api(client.get_socket(name))
        except NotFound:
            raise UserError(f"no socket named {name!r} in border0 (list them with ls)") from None
        policies = [policy_from_api(p) for p in client.list_policies()]
    row = show_row(live, policies, instance)
    echo(_view(row, fmt, lambda markdown: show_text(row, wide=wide, markdown=markdown)))
    return 0


def policies(*, api: str | None, token_file: str | None, state: str | None, instance: str,
             fmt: str, wide: bool, echo: Echo = print) -> int:
    """`policies`: every policy and the sockets it is attached to."""
    from reconciler.render.inventory import policies_table, policy_rows

    _check_instance(instance)
    rows = policy_rows(_fetch(api, token_file, state), instance)
    echo(_view(rows, fmt, lambda markdown: policies_table(rows, wide=wide, markdown=markdown)))
    return 0


def manifest_states(desired: Desired, actual: Actual, instance: str) -> dict[str, str]:
    """Socket name -> in-sync / drifted / to adopt / conflict / not in manifests, as the
    planner sees it (`to adopt`: the adopt annotation takes it over, no field changes)."""
    from reconciler.daemon.state import IN_SYNC, OUT_OF_SYNC, object_states
    from reconciler.plan.planner import make_plan
    from reconciler.render.inventory import NOT_DECLARED

    plan = make_plan(desired, actual, instance=instance, allow_mass_delete=True)
    shown = {IN_SYNC: IN_SYNC, OUT_OF_SYNC: DRIFTED}
    result = {
        name: shown.get(state, NOT_DECLARED)
        for (kind, name), state in object_states(desired, actual, plan, None, True).items()
        if kind == "socket"
    }
    touched: dict[str, list[Any]] = {}
    for change in plan.changes:
        if change.kind != "policy":
            touched.setdefault(change.socket or change.name, []).append(change)
    for name, changes in touched.items():
        if name in result and all(_only_adoption(c) for c in changes):
            result[name] = TO_ADOPT
    for diagnostic in plan.conflicts:
        kind, name = diagnostic.subject or ("", "")
        if kind == "socket" and name in desired.sockets:
            result[name] = CONFLICT
    return result


def _only_adoption(change: Any) -> bool:
    """Taken over and nothing else changes: no field but the owner differs, and a secret is
    only written because border0 cannot show it (before: none)."""
    return change.adopting and all(
        d.before is None if d.sensitive else d.path == "managed_by" for d in change.diffs
    )


def _fetch(api: str | None, token_file: str | None, state: str | None,
           desired: Desired | None = None, near: Sequence[str] = ()) -> Actual:
    """border0's objects; with manifests, also what their sockets compare with (links, typed
    upstreams: `inventory.fetch_details`); with --api local, the state of the manifests `near`
    (`ls --manifests`), else the working directory's."""
    from reconciler.border0.inventory import fetch_actual, fetch_details
    from reconciler.border0.session import open_api

    with open_api(api, token_file, state, near=near) as client:
        actual = fetch_actual(client)
        return fetch_details(client, desired, actual) if desired is not None else actual


def _check_instance(instance: str) -> None:
    from reconciler.plan.planner import check_instance

    problem = check_instance(instance)
    if problem:
        raise UserError(problem)


def _load(paths: Sequence[str], env_file: str | None) -> Desired:
    """The manifests; their secrets resolved only with an env file (else not compared)."""
    import sys
    from dataclasses import replace

    from reconciler.manifests.files import environment
    from reconciler.manifests.loader import load

    env = environment(env_file) if env_file else None
    result = load(list(paths), env=env, resolve_secrets=env is not None)
    for diagnostic in result.diagnostics:
        print(diagnostic, file=sys.stderr)
    if not result.ok:
        raise UserError("the manifests have errors; fix them or leave out --manifests")
    if env is not None:
        return result.desired
    # not resolved: not compared
    sockets = {n: replace(s, secrets_by_field={}) for n, s in result.desired.sockets.items()}
    return replace(result.desired, sockets=sockets)
