"""Only what a command needs is imported (issue 26): `--help` loads click and the commands' flags,
none of the libraries that plan, apply or the daemon use; `validate` loads the manifest readers
and nothing that talks to border0 or serves. Read from `python -X importtime` of the real entry
point; structural, not timed (benchmarks/bench.py measures the times)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from documents import base_docs, write
from helpers import PYTHON, REPO

# The subject is a fresh interpreter's imports: each test starts one (tests/process_audit.py).
pytestmark = pytest.mark.slow

#: Libraries (and our own modules) that no `--help` needs: network, serving, scheduling,
#: watching, diffing, progress bars, YAML and JSON Schema.
HEAVY = (
    "httpx", "httpcore", "anyio", "jsonschema", "jsonschema_rs", "deepdiff", "starlette",
    "uvicorn", "fastapi", "pydantic", "prometheus_client", "apscheduler", "watchdog", "tqdm",
    "jinja2", "yaml", "orjson", "lightkube",
    "reconciler.reconcile", "reconciler.daemon", "reconciler.border0.client",
    "reconciler.manifests", "reconciler.plan", "reconciler.apply", "reconciler.connectors",
)
#: What reads manifests: `validate` needs these and no more.
READERS = ("yaml", "jsonschema_rs", "reconciler.manifests")
FOR_VALIDATE = tuple(m for m in HEAVY if m not in READERS and m != "jsonschema")


def imported(*args: str) -> set[str]:
    """The modules `border0-reconciler ARGS` imports, from `-X importtime`'s report."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-m", "reconciler", *args],
                          capture_output=True, text=True, timeout=60, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def among(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The `modules` that are one of `names` or inside one of them."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_help_imports_no_heavy_module() -> None:
    for args in (["--help"], ["plan", "--help"], ["run", "--help"], ["--version"]):
        assert among(imported(*args), HEAVY) == [], args


def test_validate_imports_the_manifest_readers_only(tmp_path: Path) -> None:
    modules = imported("validate", str(write(tmp_path / "m", base_docs())))
    # the check can fail: what a command really loads is in the report
    assert among(modules, READERS) != []
    assert among(modules, FOR_VALIDATE) == []
    # nor another command's body
    assert among(modules, ("reconciler.cli.planning", "reconciler.cli.run",
                           "reconciler.cli.ls")) == []


def test_every_command_in_the_table_loads_under_its_name() -> None:
    """`COMMANDS` is the one list of commands: each entry names a click command of that name,
    and each loaded command reads BORDER0_RECONCILER_<FLAG> (not ..._<COMMAND>_<FLAG>)."""
    from reconciler.cli.main import COMMANDS, cli

    ctx = cli.make_context("border0-reconciler", ["--help"], resilient_parsing=True)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.context_settings["auto_envvar_prefix"] == "BORDER0_RECONCILER"
