"""One home for every default (issue 25): `reconciler.settings.DEFAULTS`. The flags show it, and
the containers built from the flags take it, so a default changed in one place is changed
everywhere, and `--debounce` cannot say 100 ms while the daemon waits 0.3 s again."""

from __future__ import annotations

import ast
import inspect
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from reconciler.apply.runner import apply_plan
from reconciler.border0.inventory import fetch_actual
from reconciler.cli.main import cli
from reconciler.cli.planning import PlanArgs
from reconciler.cli.run import RunArgs, parse_jitter
from reconciler.cli.run_roles import RoleArgs
from reconciler.connectors.supervisor import Supervisor
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.events import EventReporter
from reconciler.daemon.lease import LeaseConfig
from reconciler.daemon.logs import setup_logging
from reconciler.daemon.notify import Message
from reconciler.daemon.watch import ManifestWatcher
from reconciler.ownership import DEFAULT_INSTANCE
from reconciler.reconcile import ReconcileOptions
from reconciler.settings import DEFAULTS, FRACTION, Defaults, help_of, unit_of

SETTINGS = {f.name for f in fields(Defaults)}
#: Settings that no flag sets (the daemon's internals, still stated once).
NO_FLAG = {"heartbeat_stale", "backoff_base", "backoff_max", "connector_backoff_base",
           "connector_backoff_max"}
#: Defaults with a home of their own (not settings.py), held to it the same way.
OTHER_HOMES = {"instance": DEFAULT_INSTANCE}  # ownership.Instance's rule
#: Non-setting defaults a flag may show: those, and how to print (not what to do).
ELSEWHERE = {**OTHER_HOMES, "fmt": "text", "color": "auto"}
#: Commands that serve something else than the daemon, with their own settings (the emulator's
#: port, a local connector's upstream): not the daemon's.
OTHER_PROGRAMS = {"emulator", "local-connector"}
#: Container field -> the setting it holds, where the names differ.
ALIASES = {"stop_timeout": "connector_stop_timeout", "startsecs": "connector_startsecs",
           "after_failures": "notify_after_failures"}
#: The same, for one module's fields (the supervisor's restart backoff is not the daemon's).
MODULE_ALIASES = {"supervisor": {"backoff_base": "connector_backoff_base",
                                 "backoff_max": "connector_backoff_max",
                                 "fatal_after": "connector_start_retries"},
                  "logs": {"fmt": "log_format", "level": "log_level"},
                  "lease": {"name": "lease_name"}}
#: (container, field) that differ from the setting on purpose, and why.
DIFFER = {
    ("ReconcileOptions", "delete_grace"): "one-shot plan/apply never defer a delete",
    ("DaemonConfig", "delete_grace"): "off unless `run` passes its flag (docs/deferral.md)",
}
CONTAINERS = (DaemonConfig, ReconcileOptions, PlanArgs, RoleArgs, RunArgs, Message)
FUNCTIONS = (Supervisor.__init__, ManifestWatcher.__init__, EventReporter.__init__,
             LeaseConfig.__init__, setup_logging, apply_plan, fetch_actual)


def _commands() -> list[tuple[str, click.Command]]:
    ctx = cli.make_context("border0-reconciler", ["--help"], resilient_parsing=True)
    found = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        subs = [(f"{name} {n}", command.get_command(ctx, n)) for n in
                command.list_commands(ctx)] if isinstance(command, click.Group) else []
        found += subs or [(name, command)]
    return [(n, c) for n, c in found if n.split()[0] not in OTHER_PROGRAMS]


def _options() -> list[tuple[str, click.Option]]:
    return [(name, p) for name, command in _commands() for p in command.params
            if isinstance(p, click.Option)]


def _as_set(param: click.Option) -> Any:
    """The option's default as the command receives it (a duration in seconds)."""
    ctx = click.Context(click.Command("x"))
    value = param.type_cast_value(ctx, param.default)
    if param.name and unit_of(param.name) == FRACTION:
        return parse_jitter(value, DEFAULTS.interval)
    return value


def test_every_flag_shows_the_settings_default() -> None:
    seen = set()
    for command, param in _options():
        if param.name in SETTINGS and not param.is_flag:  # `status --history` is no count
            seen.add(param.name)
            assert _as_set(param) == getattr(DEFAULTS, param.name), (command, param.name)
            assert param.show_default, (command, param.name)
    # the check covers something: every setting with a flag was found on one
    assert seen == SETTINGS - NO_FLAG


def test_no_flag_states_a_default_of_its_own() -> None:
    """A flag with a default is a setting (or one of the few with another home)."""
    stray = [
        (command, param.name, param.default) for command, param in _options()
        if not param.is_flag and not param.multiple and param.default not in (None, "", ())
        and param.name not in SETTINGS and ELSEWHERE.get(param.name or "") != param.default
    ]
    assert stray == []


def _defaults(owner: Any) -> dict[str, Any]:
    if is_dataclass(owner):
        return {f.name: f.default for f in fields(owner) if f.default is not MISSING}
    return {name: p.default for name, p in inspect.signature(owner).parameters.items()
            if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize("owner", CONTAINERS + FUNCTIONS, ids=lambda o: o.__qualname__)
def test_containers_take_the_settings_defaults(owner: Any) -> None:
    owner_name = owner.__qualname__.split(".")[0]
    aliases = {**ALIASES, **MODULE_ALIASES.get(owner.__module__.rpartition(".")[2], {})}
    for name, default in _defaults(owner).items():
        setting = aliases.get(name, name)
        if setting in OTHER_HOMES:
            assert default == OTHER_HOMES[setting], (owner.__qualname__, name)
        if setting not in SETTINGS or (owner_name, name) in DIFFER:
            continue
        assert default == getattr(DEFAULTS, setting), (owner.__qualname__, name)


def _restated(source: str, aliases: dict[str, str] = ALIASES) -> list[str]:
    """Fields and parameters named after a setting whose default is a literal."""
    found = []
    for node in ast.walk(ast.parse(source)):
        pairs: list[tuple[str, ast.expr | None]] = []
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            pairs.append((node.target.id, node.value))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs += zip([a.arg for a in positional[len(positional) - len(args.defaults):]],
                         args.defaults, strict=True)
            pairs += [(a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
        for name, value in pairs:
            setting = aliases.get(name, name)
            if (setting in {*SETTINGS, *OTHER_HOMES} and isinstance(value, ast.Constant)
                    and value.value not in (None, False, True)):
                found.append(f"{name} = {value.value!r}")
    return found


def test_no_container_restates_a_literal() -> None:
    """Equal is not enough: `parallelism: int = 8` is equal today and drifts tomorrow."""
    for path in sorted({inspect.getfile(owner) for owner in CONTAINERS + FUNCTIONS}):
        aliases = {**ALIASES, **MODULE_ALIASES.get(Path(path).stem, {})}
        restated = _restated(Path(path).read_text("utf-8"), aliases)
        # the deferral off (DIFFER) is no restatement of run's 5 s
        assert [r for r in restated if r != "delete_grace = 0.0"] == [], path


def test_the_restatement_check_can_fail() -> None:
    assert _restated("class C:\n    debounce: float = 0.3\n") == ["debounce = 0.3"]
    assert _restated("def f(*, startsecs=3.0): ...\n") == ["startsecs = 3.0"]
    assert _restated("class C:\n    debounce: float = DEFAULTS.debounce\n") == []
    assert _restated("def f(instance='default'): ...\n") == ["instance = 'default'"]


def test_debounce_is_the_documented_100ms() -> None:
    """The two disagreed (100 ms on the flag, 0.3 s in DaemonConfig and the watcher)."""
    assert DEFAULTS.debounce == 0.1 == DaemonConfig(path="m").debounce
    assert "100ms" in (Path(__file__).parents[1] / "docs" / "commands.md").read_text("utf-8")


def test_run_shows_each_settings_help() -> None:
    """The words are stated once too: `run --help` says what settings.py says."""
    run = dict(_commands())["run"]
    helped = [p for p in run.params if p.name in SETTINGS and help_of(p.name or "")]
    assert len(helped) >= 10
    for param in helped:
        assert isinstance(param, click.Option) and param.help == help_of(param.name or "")


def test_the_chart_shows_the_same_defaults() -> None:
    """The chart's values.yaml restates some defaults for its readers: they must not drift."""
    import yaml

    from reconciler.cli.options import flag_text

    chart = Path(__file__).parents[1] / "charts" / "border0-reconciler" / "values.yaml"
    values = yaml.safe_load(chart.read_text("utf-8"))
    shown = {
        "interval": values["reconciler"]["interval"],
        "full_refresh_interval": values["reconciler"]["fullRefreshInterval"],
        "lease_duration": values["leaderElection"]["leaseDuration"],
        "renew_deadline": values["leaderElection"]["renewDeadline"],
        "retry_period": values["leaderElection"]["retryPeriod"],
    }
    assert shown == {name: flag_text(name) for name in shown}
    assert values["reconciler"]["port"] == int(DEFAULTS.listen.rpartition(":")[2])
