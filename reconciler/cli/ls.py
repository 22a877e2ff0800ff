"""`ls`, `show NAME` and `policies`: what border0 holds, as `border0 socket ls` shows it, plus
who manages each socket and (with manifests) whether it matches them.

Rows are plain data built from `Actual` (the JSON form prints them as they are); the tables are
drawn by `render.table`, fitted to 120 columns unless `--wide`. A socket's STATE comes from the
planner itself (`make_plan` + `daemon_state.object_states`), never from a second comparison.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import click

from reconciler.cli.options import (
    api_options,
    friendly_errors,
    instance_option,
    list_format_option,
    wide_option,
)
from reconciler.daemon.state import IN_SYNC, OUT_OF_SYNC, object_states
from reconciler.errors import UserError
from reconciler.model import Actual, Desired, LivePolicy, LiveSocket, Ownership
from reconciler.plan.access import policy_grants
from reconciler.plan.fields import SECRET_FIELDS
from reconciler.render.table import WIDTH, render_table

__all__ = [
    "ls", "ls_command", "manifest_states", "policies", "policies_command", "policy_rows",
    "run_ls", "run_policies", "run_show", "show", "socket_rows",
]

Echo = Callable[[str], None]
LS_COLUMNS = ("NAME", "SOCKET ID", "DNS NAME", "PORT(S)", "TYPE", "DESCRIPTION", "MANAGED")
LS_SHRINK = (("DESCRIPTION", 11), ("SOCKET ID", 9), ("DNS NAME", 16), ("NAME", 12))
POLICY_COLUMNS = ("NAME", "POLICY ID", "ACTIONS", "WHO", "SOCKETS", "MANAGED", "DESCRIPTION")
POLICY_SHRINK = (("POLICY ID", 9), ("DESCRIPTION", 11), ("SOCKETS", 16), ("WHO", 16))
SNAP = ("SOCKET ID", "POLICY ID")
DRIFTED, TO_ADOPT, CONFLICT = "drifted", "to adopt", "conflict"
NOT_DECLARED = "not in manifests"


def managed(own: Ownership, instance: str) -> str:
    """`this`, `other` or `unmanaged`: who may change the object."""
    if own.owned_by(instance):
        return "this"
    return "other" if own.managed else "unmanaged"


def _managed_cell(row: Mapping[str, Any]) -> str:
    return f"other ({row['owner']})" if row["managed"] == "other" else row["managed"]


# --- sockets ----------------------------------------------------------------------------------


def socket_rows(
    actual: Actual, instance: str, states: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per live socket, by name; `state` only when manifests were given."""
    rows = []
    for name in sorted(actual.sockets):
        live = actual.sockets[name]
        row = _socket_row(live, instance)
        if states is not None:
            row["state"] = states.get(name, NOT_DECLARED)
        rows.append(row)
    return rows


def _socket_row(live: LiveSocket, instance: str) -> dict[str, Any]:
    own = live.ownership
    return {
        "name": live.name,
        "socket_id": live.socket_id,
        "dns_name": live.dnsname,
        "ports": list(live.tcp_ports),
        "type": live.type,
        "description": live.description,
        "managed": managed(own, instance),
        "owner": own.instance if own.managed else None,
        "labels": live.labels,
        "policies": list(dict.fromkeys(live.policy_names)),
    }


def manifest_states(desired: Desired, actual: Actual, instance: str) -> dict[str, str]:
    """Socket name -> in-sync / drifted / to adopt / conflict / not in manifests, as the
    planner sees it (`to adopt`: the adopt annotation takes it over, no field changes)."""
    from reconciler.plan.planner import make_plan

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
    for name, changes in touched.items():  # only the ownership changes: adopted, not drifted
        if name in result and all(
            c.reason == "adopt" and [d.path for d in c.diffs] == ["managed_by"] for c in changes
        ):
            result[name] = TO_ADOPT
    for diagnostic in plan.conflicts:  # the planner words each as "socket NAME: why"
        subject = diagnostic.message.split(":", 1)[0].split(" ", 1)
        if subject[0] == "socket" and len(subject) == 2 and subject[1] in desired.sockets:
            result[subject[1]] = CONFLICT
    return result


def without_secrets(desired: Desired) -> Desired:
    """Manifests read without an env file: their secrets are not compared."""
    cleared = {field: None for field in SECRET_FIELDS}
    return replace(
        desired, sockets={n: replace(s, **cleared) for n, s in desired.sockets.items()}
    )


# --- the commands ------------------------------------------------------------------------------


@click.command("ls")
@api_options
@instance_option
@click.option("--manifests", multiple=True, type=click.Path(exists=True), metavar="PATH",
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
    from reconciler.border0.session import open_api
    from reconciler.plan.planner import fetch_actual

    _check_instance(instance)
    desired = _load(manifests, env_file) if manifests else None
    with open_api(api, token_file, state) as client:
        actual = fetch_actual(client)
    states = manifest_states(desired, actual, instance) if desired is not None else None
    return run_ls(actual, instance, states=states, fmt=fmt, wide=wide, echo=echo)


def show(name: str, *, api: str | None, token_file: str | None, state: str | None,
         instance: str, fmt: str, wide: bool, echo: Echo = print) -> int:
    """`show NAME`: one socket, read with one GET, and the policies that apply to it."""
    from reconciler.border0.errors import NotFound
    from reconciler.border0.session import open_api
    from reconciler.model import policy_from_api, socket_from_api

    _check_instance(instance)
    if fmt not in ("text", "json"):
        raise UserError(f"--format {fmt} is for saved plans; a socket is shown as text or json")
    with open_api(api, token_file, state) as client:
        try:
            live = socket_from_api(client.get_socket(name))
        except NotFound:
            raise UserError(f"no socket named {name!r} in border0 (list them with ls)") from None
        policies = [policy_from_api(p) for p in client.list_policies()]
    return run_show(live, policies, instance, fmt=fmt, wide=wide, echo=echo)


def policies(*, api: str | None, token_file: str | None, state: str | None, instance: str,
             fmt: str, wide: bool, echo: Echo = print) -> int:
    """`policies`: every policy and the sockets it is attached to."""
    from reconciler.border0.session import open_api
    from reconciler.plan.planner import fetch_actual

    _check_instance(instance)
    with open_api(api, token_file, state) as client:
        actual = fetch_actual(client)
    return run_policies(actual, instance, fmt=fmt, wide=wide, echo=echo)


def _check_instance(instance: str) -> None:
    from reconciler.plan.planner import check_instance

    problem = check_instance(instance)
    if problem:
        raise UserError(problem)


def _load(paths: Sequence[str], env_file: str | None) -> Desired:
    """The manifests; their secrets resolved only with an env file (else not compared)."""
    import os
    import sys

    from reconciler.manifests.loader import EnvFileError, load, read_env_file

    try:
        env = {**os.environ, **read_env_file(env_file)} if env_file else None
    except EnvFileError as exc:
        raise UserError(str(exc)) from None
    result = load(list(paths), env=env, resolve_secrets=env is not None)
    for diagnostic in result.diagnostics:
        print(diagnostic, file=sys.stderr)
    if not result.ok:
        raise UserError("the manifests have errors; fix them or leave out --manifests")
    return result.desired if env is not None else without_secrets(result.desired)


def run_ls(actual: Actual, instance: str, *, states: Mapping[str, str] | None, fmt: str,
           wide: bool, echo: Echo) -> int:
    rows = socket_rows(actual, instance, states)
    if fmt == "json":
        echo(json.dumps(rows, indent=2))
        return 0
    columns = LS_COLUMNS + (("STATE",) if states is not None else ())
    cells = [
        [r["name"], r["socket_id"], r["dns_name"] or "-", _ports(r["ports"]), r["type"],
         r["description"], _managed_cell(r)] + ([r["state"]] if states is not None else [])
        for r in rows
    ]
    echo(render_table(columns, cells, width=None if wide else WIDTH, shrink=LS_SHRINK,
                      snap=SNAP).rstrip())
    return 0


def _ports(ports: Sequence[int]) -> str:
    return ", ".join(str(p) for p in ports) or "-"


# --- one socket -------------------------------------------------------------------------------


def run_show(live: LiveSocket, policies: Sequence[LivePolicy], instance: str, *, fmt: str,
             wide: bool, echo: Echo) -> int:
    """One socket: its fields, then every policy that applies (attached or org-wide)."""
    row = _socket_row(live, instance)
    attached = set(live.policy_ids)
    applying = [p for p in policies if p.policy_id in attached or p.org_wide]
    row["upstream_type"] = live.upstream_type
    row["policies"] = [
        {**_policy_summary(p), "via": "org-wide" if p.org_wide else "attached"}
        for p in sorted(applying, key=lambda p: p.name)
    ]
    if fmt == "json":
        echo(json.dumps(row, indent=2))
        return 0
    fields = [
        ("SOCKET ID", row["socket_id"]), ("DNS NAME", row["dns_name"] or "-"),
        ("PORT(S)", _ports(row["ports"])), ("TYPE", row["type"]),
        ("UPSTREAM", row["upstream_type"] or "-"), ("DESCRIPTION", row["description"] or "-"),
        ("LABELS", ", ".join(f"{k}={v}" for k, v in sorted(row["labels"].items())) or "-"),
        ("MANAGED", _managed_cell(row)),
    ]
    echo(f"socket {live.name}")
    for key, value in fields:
        echo(f"  {key:<12} {value}")
    if not row["policies"]:
        echo("\nno policy applies: nobody can use this socket")
        return 0
    cells = [[p["name"], p["via"], ", ".join(p["actions"]), ", ".join(p["who"]), p["description"]]
             for p in row["policies"]]
    table = render_table(("POLICY", "VIA", "ACTIONS", "WHO", "DESCRIPTION"), cells,
                         width=None if wide else WIDTH, shrink=(("DESCRIPTION", 11), ("WHO", 16)))
    echo("\n" + table.rstrip())
    return 0


# --- policies ---------------------------------------------------------------------------------


def _policy_summary(policy: LivePolicy) -> dict[str, Any]:
    actions, principals, _ = policy_grants(policy.policy_data)
    return {
        "name": policy.name,
        "policy_id": policy.policy_id,
        "org_wide": policy.org_wide,
        "actions": sorted(actions),
        "who": [f"{kind}:{name}" for kind, name in principals],
        "description": policy.description,
    }


def policy_rows(actual: Actual, instance: str) -> list[dict[str, Any]]:
    """One row per policy with the names of the sockets it is attached to."""
    names = {s.socket_id: s.name for s in actual.sockets.values()}
    rows = []
    for name in sorted(actual.policies):
        policy = actual.policies[name]
        own = policy.ownership
        rows.append({
            **_policy_summary(policy),
            "sockets": sorted(names.get(i, i) for i in policy.socket_ids),
            "managed": managed(own, instance),
            "owner": own.instance if own.managed else None,
        })
    return rows


def run_policies(actual: Actual, instance: str, *, fmt: str, wide: bool, echo: Echo) -> int:
    rows = policy_rows(actual, instance)
    if fmt == "json":
        echo(json.dumps(rows, indent=2))
        return 0
    cells = [
        [r["name"], r["policy_id"], ", ".join(r["actions"]), ", ".join(r["who"]),
         "(all: org-wide)" if r["org_wide"] else ", ".join(r["sockets"]) or "-",
         _managed_cell(r), r["description"]]
        for r in rows
    ]
    echo(render_table(POLICY_COLUMNS, cells, width=None if wide else WIDTH,
                      shrink=POLICY_SHRINK, snap=SNAP).rstrip())
    return 0
