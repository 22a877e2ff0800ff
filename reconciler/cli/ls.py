"""`ls`, `show NAME` and `policies`: border0's own listing commands, read straight from the API
and aware of who manages what. Rows and tables come from `render.inventory`; this module reads
border0 (and the manifests, for `ls --manifests`) and prints them as text or JSON.

A socket's STATE comes from the plan itself: `ls --manifests` takes the step `plan` takes
(`reconcile.prepare`, with plan's options for its flags), then `daemon.state.object_states`;
never a second comparison. Heavy modules are imported on use: `--help` loads this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.options import (
    api_options,
    env_file_option,
    friendly_errors,
    instance_option,
    list_format_option,
    wide_option,
)
from reconciler.errors import UserError

if TYPE_CHECKING:
    from reconciler.model import Actual, Desired
    from reconciler.plan.types import Plan

__all__ = [
    "ls", "ls_command", "ls_connectors", "manifest_states", "policies", "policies_command", "show",
]

Echo = Callable[[str], None]
DRIFTED, TO_ADOPT, CONFLICT = "drifted", "to adopt", "conflict"


@click.command("ls")
@api_options
@instance_option()
@click.option("--manifests", multiple=True, type=click.Path(exists=True, allow_dash=True),
              metavar="PATH",
              help="Add STATE: in-sync, drifted, to adopt, conflict or not in manifests "
              "(repeatable).")
@env_file_option("With --manifests: resolve secrets, so they are compared too.")
@click.option("--connectors", "list_connectors", is_flag=True,
              help="List the connectors instead: the sockets each serves, its tokens (names "
              "and expiry, never a value) and who manages it.")
@list_format_option
@wide_option()
@friendly_errors
def ls_command(list_connectors: bool = False, **options: Any) -> None:
    """List border0's sockets as `border0 socket ls` does, with who manages each."""
    if list_connectors:
        raise SystemExit(ls_connectors(echo=click.echo, **options))
    raise SystemExit(ls(echo=click.echo, **options))


@click.command("policies")
@api_options
@instance_option()
@list_format_option
@wide_option()
@friendly_errors
def policies_command(**options: Any) -> None:
    """List border0's policies, what they allow to whom, and the sockets they attach to."""
    raise SystemExit(policies(echo=click.echo, **options))


def ls(*, api: str | None, token_file: str | None, state: str | None, instance: str,
       manifests: Sequence[str], env_file: str | None, fmt: str, wide: bool,
       echo: Echo = print) -> int:
    """`ls`: every socket of border0; STATE against the manifests under `manifests` if given."""
    from reconciler.render.inventory import ls_table, socket_rows

    if manifests:
        actual, states = _planned(manifests, api, token_file, state, instance, env_file)
    else:
        actual, states = _fetch(api, token_file, state), None
    rows = socket_rows(actual, instance, states)
    echo(_view(rows, fmt, lambda markdown: ls_table(
        rows, with_state=states is not None, wide=wide, markdown=markdown)))
    return 0


def _planned(manifests: Sequence[str], api: str | None, token_file: str | None,
             state: str | None, instance: str,
             env_file: str | None) -> tuple[Actual, dict[str, str]]:
    """border0 and each socket's STATE, from the step `plan` takes (`reconcile.prepare`, with
    plan's options for these flags); the secrets compared only with an env file."""
    from dataclasses import replace

    from reconciler.cli.planning import PlanArgs, open_client, reconcile_options
    from reconciler.diagnostics import has_errors
    from reconciler.manifests.files import environment
    from reconciler.reconcile import Stage, prepare

    args = PlanArgs(paths=tuple(manifests), api=api, token_file=token_file, state=state,
                    instance=instance, env_file=env_file, allow_mass_delete=True)
    env = environment(env_file)
    options = replace(reconcile_options(args, env), resolve_secrets=env_file is not None)
    with open_client(args, env) as client:
        prepared = prepare(args.paths, client, options)
    for diagnostic in prepared.diagnostics:
        click.echo(str(diagnostic), err=True)
    if prepared.stage is Stage.LOAD:
        raise UserError("the manifests have errors; fix them or leave out --manifests"
                        if has_errors(prepared.diagnostics) else prepared.error or "")
    if prepared.stage is Stage.FETCH:
        raise prepared.cause or UserError(prepared.error or "listing border0 failed")
    desired, actual, plan = prepared.desired, prepared.actual, prepared.plan
    assert desired is not None and actual is not None and plan is not None
    return actual, manifest_states(desired, actual, plan)


def _view(data: Any, fmt: str, table: Callable[[bool], str]) -> str:
    """The rows as data (json, yaml) or as a table (text, markdown: `table(markdown)`)."""
    from reconciler.render.output import MACHINE_FORMATS, structured

    if fmt in MACHINE_FORMATS:
        return structured(data, fmt).rstrip("\n")
    return table(fmt == "markdown").rstrip()


def show(name: str, *, api: str | None, token_file: str | None, state: str | None,
         instance: str, fmt: str, wide: bool, echo: Echo = print) -> int:
    """`show NAME`: one socket, read with one GET, the connectors that serve it and the
    policies that apply to it; or, when no socket has that name, the connector NAME."""
    from reconciler.border0.api_json import policy_from_api, socket_from_api
    from reconciler.border0.errors import NotFound
    from reconciler.border0.session import open_api
    from reconciler.render.inventory import show_row, show_text

    with open_api(api, token_file, state) as client:
        try:
            live = socket_from_api(client.get_socket(name))
        except NotFound:
            if client.find_connector(name) is None:
                raise UserError(f"no socket or connector named {name!r} in border0 (list them "
                                "with ls and ls --connectors)") from None
            return _show_connector(client, name, instance, fmt, echo)
        policies = [policy_from_api(p) for p in client.list_policies()]
        served_by = [str(c.get("connector_name") or c.get("name") or "")
                     for c in client.list_connectors(live.socket_id)]
    row = {**show_row(live, policies, instance), "connectors": sorted(served_by)}
    echo(_view(row, fmt, lambda markdown: show_text(row, wide=wide, markdown=markdown)))
    return 0


def ls_connectors(*, api: str | None, token_file: str | None, state: str | None,
                  instance: str, fmt: str, wide: bool, echo: Echo = print,
                  manifests: Sequence[str] = (), env_file: str | None = None) -> int:
    """`ls --connectors`: every connector, the sockets it serves, its tokens by name."""
    from reconciler.border0.inventory import fetch_actual, fetch_connector_details
    from reconciler.border0.session import open_api
    from reconciler.render.connectors import connector_rows, connectors_table

    with open_api(api, token_file, state, near=manifests) as client:
        actual = fetch_connector_details(client, fetch_actual(client, policies=False))
    rows = connector_rows(actual, instance)
    echo(_view(rows, fmt, lambda markdown: connectors_table(rows, wide=wide, markdown=markdown)))
    return 0


def _show_connector(client: Any, name: str, instance: str, fmt: str, echo: Echo) -> int:
    from reconciler.border0.inventory import fetch_actual, fetch_connector_details
    from reconciler.render.connectors import connector_rows, connector_show_text

    actual = fetch_connector_details(client, fetch_actual(client, policies=False))
    [row] = [r for r in connector_rows(actual, instance) if r["name"] == name]
    echo(_view(row, fmt, lambda markdown: connector_show_text(row, markdown=markdown)))
    return 0


def policies(*, api: str | None, token_file: str | None, state: str | None, instance: str,
             fmt: str, wide: bool, echo: Echo = print) -> int:
    """`policies`: every policy and the sockets it is attached to."""
    from reconciler.render.inventory import policies_table, policy_rows

    rows = policy_rows(_fetch(api, token_file, state), instance)
    echo(_view(rows, fmt, lambda markdown: policies_table(rows, wide=wide, markdown=markdown)))
    return 0


def manifest_states(desired: Desired, actual: Actual, plan: Plan) -> dict[str, str]:
    """Socket name -> in-sync / drifted / to adopt / conflict / not in manifests, as the
    planner sees it (`to adopt`: the adopt annotation takes it over, no field changes)."""
    from reconciler.daemon.state import IN_SYNC, OUT_OF_SYNC, object_states
    from reconciler.render.inventory import NOT_DECLARED

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


def _fetch(api: str | None, token_file: str | None, state: str | None) -> Actual:
    """border0's objects (with --api local, the working directory's state)."""
    from reconciler.border0.inventory import fetch_actual
    from reconciler.border0.session import open_api

    with open_api(api, token_file, state) as client:
        return fetch_actual(client)
