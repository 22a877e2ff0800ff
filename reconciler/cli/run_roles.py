"""`run`'s production roles: the trigger endpoint, leader election, connector agents.

The flags live here (one decorator for `run`), and so does turning them into the daemon's parts:
the `POST /reconcile` route (daemon/trigger.py), a `LeaderElector` (daemon/lease.py), and the
read-only `observe` loop of a connector agent (daemon/agent.py). The daemon's builder
(daemon/build.py) makes the parts from them. Combinations that cannot work
are one-line errors before anything starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from reconciler.cli.options import DurationType, setting_option
from reconciler.errors import UserError
from reconciler.settings import DEFAULTS

__all__ = ["RoleArgs", "role_options"]

log = logging.getLogger("reconciler.daemon")


@dataclass(frozen=True)
class RoleArgs:
    trigger_token_file: str | None = None
    leader_elect: bool = False
    lease_name: str = DEFAULTS.lease_name
    lease_namespace: str | None = None
    lease_duration: float = DEFAULTS.lease_duration
    renew_deadline: float = DEFAULTS.renew_deadline
    retry_period: float = DEFAULTS.retry_period
    connectors_only: bool = False
    connector_selector: str | None = None
    no_connectors: bool = False
    serve_connectors: tuple[str, ...] = ()
    connector_start_command: str | None = None

    @classmethod
    def pop_from(cls, options: dict[str, Any]) -> RoleArgs:
        """Take this group's options out of click's keyword arguments."""
        return cls(**{k: options.pop(k) for k in cls.__dataclass_fields__ if k in options})


def role_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags of this module, applied to `run`."""
    options = [
        click.option("--trigger-token-file", type=click.Path(dir_okay=False), default=None,
                     help="Serve POST /reconcile, authenticated with the token in this file "
                     "(Bearer, GitHub X-Hub-Signature-256 or GitLab X-Gitlab-Token)."),
        click.option("--leader-elect", is_flag=True,
                     help="Run as one of several replicas: only the holder of a Kubernetes "
                     "Lease writes to border0 and runs connectors."),
        setting_option("--lease-name", name="lease_name"),
        click.option("--lease-namespace", default=None,
                     help="[default: the pod's namespace, or the kubeconfig's]"),
        setting_option("--lease-duration", name="lease_duration", type=DurationType()),
        setting_option("--renew-deadline", name="renew_deadline", type=DurationType()),
        setting_option("--retry-period", name="retry_period", type=DurationType()),
        click.option("--connectors-only", is_flag=True,
                     help="Run connectors only (of --connector-selector's sockets); never write "
                     "to border0."),
        click.option("--connector-selector", default=None,
                     help="With --connectors-only: label selector, e.g. team=payments,env!=dev."),
        click.option("--no-connectors", is_flag=True,
                     help="Write to border0 but run no connectors (agents run them)."),
        click.option("--connector", "serve_connectors", multiple=True, metavar="NAME",
                     help="With --connectors-only: serve this declared Connector (one `border0 "
                     "connector start` with its token), repeatable [default: none]."),
        click.option("--connector-start-command", default=None,
                     help="With --connectors-only: the command run per served Connector, its "
                     "token in BORDER0_TOKEN [default: border0 connector start; placeholders "
                     "{name}, {connector_id}, {python}]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def check(args: RoleArgs, *, once: bool, dry_run: bool) -> None:
    if args.connector_selector is not None and not args.connectors_only:
        raise UserError("--connector-selector needs --connectors-only")
    if (args.serve_connectors or args.connector_start_command) and not args.connectors_only:
        raise UserError("--connector and --connector-start-command need --connectors-only")
    if args.connector_start_command and not args.serve_connectors:
        raise UserError("--connector-start-command needs --connector NAME (the connectors "
                        "this agent serves)")
    if args.connector_start_command is not None:
        from reconciler.connectors.agents import render_start
        from reconciler.connectors.argv import TemplateError

        try:
            render_start(args.connector_start_command, "example", "id")
        except TemplateError as exc:
            raise UserError(str(exc)) from None
    if args.connectors_only and args.no_connectors:
        raise UserError("--connectors-only and --no-connectors exclude each other")
    if args.connectors_only and (args.leader_elect or dry_run):
        raise UserError("--connectors-only makes no writes: drop --leader-elect/--dry-run")
    if once and (args.leader_elect or args.connectors_only or args.trigger_token_file):
        raise UserError("--once runs one reconcile: it takes no --leader-elect, "
                        "--connectors-only or --trigger-token-file")


@dataclass
class Roles:
    """What the daemon is built with: its extra routes (a function of the daemon's trigger and
    whether it accepts them), a reconcile_fn, the lease settings."""

    routes: Callable[..., list[Any]]
    reconcile_fn: Any | None
    secrets: list[str]
    lease: Any | None


def prepare(args: RoleArgs) -> Roles:
    """Validate files and flags now (one-line errors), before the daemon starts."""
    secrets: list[str] = []
    auth: Any = None
    if args.trigger_token_file:
        from reconciler.daemon.trigger import TriggerAuth

        auth = TriggerAuth(args.trigger_token_file)
        secrets.append(auth.token)

    def routes(trigger: Callable[..., None], accepting: Callable[[], bool]) -> list[Any]:
        if auth is None:
            return []
        from reconciler.daemon.trigger import trigger_route

        return [trigger_route(auth, trigger, accepting=accepting)]

    reconcile_fn = None
    if args.connectors_only:
        from reconciler.daemon.agent import observe_for, parse_selector

        reconcile_fn = observe_for(parse_selector(args.connector_selector or ""))
    lease = None
    if args.leader_elect:
        from reconciler.daemon.lease import LeaseConfig

        lease = LeaseConfig(args.lease_name, args.lease_namespace, None, args.lease_duration,
                            args.renew_deadline, args.retry_period)
    return Roles(routes, reconcile_fn, secrets, lease)
