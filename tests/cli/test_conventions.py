"""The CLI's conventions, as kubectl and Terraform users expect them, run through the CLI in
this process against `--api local` (and a daemon on a thread for `status`): `-o json` on every
command that prints objects, with nothing else on stdout; errors as JSON documents; `-` for
stdin; Go durations; BORDER0_RECONCILER_<FLAG>; colour; completion; `run --once
--detailed-exitcode`."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers import REPO, cli, copy_examples, free_port, wait_for

from reconciler.cli.main import cli as click_group

#: The examples this module's tests read and apply: a copy (`_examples_copy`), since an apply
#: writes the example connectors' token files beside their manifests.
EXAMPLES = str(REPO / "examples")
ENV_FILE = str(REPO / "examples" / "demo.env")
#: Commands that serve or supervise (logs on stderr), not print objects: no -o.
SERVERS = {"run", "emulator", "local-connector"}


@pytest.fixture(scope="module", autouse=True)
def _examples_copy(tmp_path_factory: pytest.TempPathFactory) -> None:
    global EXAMPLES, ENV_FILE
    copy = copy_examples(tmp_path_factory.mktemp("checkout") / "examples")
    EXAMPLES, ENV_FILE = str(copy), str(copy / "demo.env")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The examples applied to a local state and a saved plan (in this process)."""
    root = tmp_path_factory.mktemp("conventions")
    state = root / "local.db"
    api = ["--api", "local", "--state", str(state)]
    code, _, err = cli(["apply", EXAMPLES, *api, "--env-file", ENV_FILE, "--auto-approve"],
                       cwd=root)
    assert code == 0, err
    code, _, err = cli(["plan", EXAMPLES, *api, "--env-file", ENV_FILE, "--out",
                        str(root / "saved.tfplan")], cwd=root)
    assert code == 0, err
    return {"root": root, "api": api, "listen": ""}


@pytest.fixture(scope="module")
def daemon(world: dict[str, Any]) -> Any:
    """A dry-run daemon serving /status over the world's state (for `status`): its address. In
    this process on a thread (the one builder `run` uses), over a copy of the examples (outside
    a git checkout: no `git rev-parse` process)."""
    from reconciler.border0.session import open_api
    from reconciler.daemon.build import build_daemon
    from reconciler.daemon.config import DaemonConfig
    from reconciler.daemon.logs import RedactFilter
    from reconciler.manifests.files import environment

    examples = shutil.copytree(EXAMPLES, world["root"] / "daemon-examples")
    listen = f"127.0.0.1:{free_port()}"
    env = environment(ENV_FILE)
    with open_api("local", None, world["api"][-1], env=env, near=[str(examples)]) as client:
        config = DaemonConfig(path=str(examples), listen=listen, dry_run=True, env=env)
        daemon = build_daemon(config, client, redactor=RedactFilter(), signals=False)
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: httpx.get(f"http://{listen}/status").json()["last_reconcile"],
                     timeout=60, message="the daemon's first reconcile")
            yield listen
        finally:
            daemon.request_stop()
            thread.join(20)


def with_status(world: dict[str, Any], name: str, request: pytest.FixtureRequest) -> Any:
    """`world`, with a daemon's address when the command is `status` (which reads a daemon)."""
    return {**world, "listen": request.getfixturevalue("daemon")} if name == "status" else world


def commands(w: dict[str, Any]) -> dict[str, list[str]]:
    """Every command that prints objects, as a user would run it."""
    api, env = w["api"], ["--env-file", ENV_FILE]
    return {
        "validate": ["validate", EXAMPLES],
        "plan": ["plan", EXAMPLES, *api, *env],
        "apply": ["apply", EXAMPLES, *api, *env, "--auto-approve"],
        "show PLANFILE": ["show", str(w["root"] / "saved.tfplan")],
        "show NAME": ["show", "web", *api],
        "ls": ["ls", *api, "--manifests", EXAMPLES, *env],
        "policies": ["policies", *api],
        "import": ["import", str(w["root"] / "imported"), *api, "--force"],
        "migrate": ["migrate", str(REPO / "examples" / "connectors")],  # typed: writes nothing
        "status": ["status", "--listen", w["listen"]],
    }


NAMES = list(commands({"api": [], "root": Path(), "listen": ""}))


def test_every_command_that_prints_objects_takes_dash_o() -> None:
    ctx = click_group.make_context("border0-reconciler", ["--help"], resilient_parsing=True)
    printing = set(click_group.list_commands(ctx)) - SERVERS
    assert printing == {name.split()[0] for name in NAMES}
    for name in printing:
        command = click_group.get_command(ctx, name)
        assert command is not None
        output = next(p for p in command.params if p.name == "fmt")
        assert "-o" in output.opts and "--output" in output.opts
        assert list(output.type.choices) == ["text", "json", "yaml", "markdown"]


@pytest.mark.parametrize("name", NAMES)
def test_dash_o_json_prints_only_json(world: dict[str, Any], name: str,
                                      request: pytest.FixtureRequest) -> None:
    world = with_status(world, name, request)
    code, out, err = cli([*commands(world)[name], "-o", "json"], cwd=world["root"])
    data = json.loads(out)  # the whole of stdout, nothing else
    assert data is not None and "Traceback" not in err
    if name == "import":  # the example connectors' tokens: ours, and never imported
        assert code == 1 and data["undescribed"] and all(
            line.startswith("token ") for line in data["undescribed"]), (out, err)
    else:
        assert code == 0, err


@pytest.mark.parametrize("name", ["plan", "ls", "status", "validate"])
def test_dash_o_yaml_and_markdown(world: dict[str, Any], name: str,
                                  request: pytest.FixtureRequest) -> None:
    world = with_status(world, name, request)
    code, out, err = cli([*commands(world)[name], "-o", "yaml"], cwd=world["root"])
    assert code == 0, err
    assert yaml.safe_load(out) == json.loads(
        cli([*commands(world)[name], "-o", "json"], cwd=world["root"])[1])
    code, out, err = cli([*commands(world)[name], "-o", "markdown"], cwd=world["root"])
    assert code == 0, err
    assert "|---|" in out or name in ("plan", "validate")  # tables as GitHub tables


def test_out_saves_the_plan_and_render_to_writes_the_rendering(world: dict[str, Any]) -> None:
    root = world["root"]
    code, out, err = cli(["apply", EXAMPLES, *world["api"], "--env-file", ENV_FILE, "--dry-run",
                          "--out", str(root / "a.tfplan"), "-o", "markdown",
                          "--render-to", str(root / "plan.md")])
    assert code == 0, err
    assert "Saved the plan to" in err and "No changes" in out  # the terminal gets text
    assert (root / "plan.md").read_text().lstrip().startswith(("#", "**", "<", "No changes"))
    code, out, err = cli(["show", str(root / "a.tfplan"), "-o", "json"])
    assert code == 0 and json.loads(out)["changes"] == [], err
    code, _, err = cli(["plan", EXAMPLES, *world["api"], "--env-file", ENV_FILE,
                        "--out", str(root / "old.md")])
    assert code == 0 and "--out now saves the plan: write renderings with --render-to" in err


def test_plan_json_with_invalid_manifests_is_a_json_document_of_the_diagnostics(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "web.yaml"
    bad.write_text("apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata: {name: web}\n"
                   "spec: {type: htp}\n")
    code, out, err = cli(["plan", str(bad), "--api", "local", "--state",
                          str(tmp_path / "s.db"), "-o", "json"])
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False and "nothing was planned" in doc["error"]
    [problem] = doc["diagnostics"]
    assert (problem["file"], problem["line"], problem["code"]) == (str(bad), 4, "schema")
    assert "'htp' is not one of" in problem["message"]
    assert err.splitlines()[-1].startswith("error: the manifests have 1 error")


def test_an_api_failure_in_json_mode_is_a_json_error(emulator: Any) -> None:
    # a refused token: border0 answers at once (a port nobody listens on is retried for seconds)
    code, out, err = cli(["ls", "--api", emulator.url, "-o", "json"],
                         env={"BORDER0_ADMIN_TOKEN": "not-the-token"})
    assert code == 1
    assert json.loads(out)["error"] in err


def test_old_spellings_still_work_but_are_not_in_help(world: dict[str, Any], daemon: str) -> None:
    code, out, err = cli(["status", "--listen", daemon, "--format", "table"])
    assert code == 0 and "ready" in out, err
    code, out, _ = cli(["plan", EXAMPLES, "--db", world["api"][-1], "--api", "local",
                        "--env-file", ENV_FILE, "--format", "json"])
    assert code == 0 and json.loads(out)["format_version"]
    help_text = cli(["plan", "--help"])[1]
    assert "--output" in help_text and "--format" not in help_text and "--db" not in help_text


def test_manifests_from_stdin(world: dict[str, Any]) -> None:
    web = (REPO / "examples" / "sockets" / "web.yaml").read_text()
    code, out, err = cli(["validate", "-", "-o", "json"], input=web.replace("http", "htp", 1))
    assert code == 1
    assert {d["file"] for d in json.loads(out)} == {"<stdin>"}
    documents = "\n---\n".join(p.read_text() for p in sorted(Path(EXAMPLES).glob("*/*.yaml")))
    # stdin's relative paths are the working directory's: the connectors' token files are
    # named relative to examples/connectors
    code, out, err = cli(["plan", "-", *world["api"], "--env-file", ENV_FILE,
                          "--detailed-exitcode", "-o", "json"], input=documents,
                         cwd=Path(EXAMPLES) / "connectors")
    assert code == 0, err  # the same manifests as examples/: nothing to change
    assert json.loads(out)["changes"] == []


def test_environment_variables_set_every_flag_and_help_lists_them(world: dict[str, Any]) -> None:
    env = {"BORDER0_RECONCILER_OUTPUT": "json", "BORDER0_RECONCILER_STATE": world["api"][-1],
           "BORDER0_RECONCILER_API": "local", "BORDER0_RECONCILER_ENV_FILE": ENV_FILE}
    code, out, err = cli(["plan", EXAMPLES], env=env)
    assert code == 0, err
    assert json.loads(out)["changes"] == []
    help_text = " ".join(cli(["run", "--help"])[1].split())
    for name in ("BORDER0_RECONCILER_INTERVAL", "BORDER0_RECONCILER_DRY_RUN",
                 "BORDER0_RECONCILER_SYNC_WINDOWS", "BORDER0_RECONCILER_STATE"):
        assert name in help_text


def test_interval_from_the_environment_in_go_syntax(
    world: dict[str, Any], tmp_path: Path, daemon_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BORDER0_RECONCILER_INTERVAL", "1m30s")
    monkeypatch.setenv("BORDER0_RECONCILER_DEBOUNCE", "250ms")
    examples = shutil.copytree(EXAMPLES, tmp_path / "examples")  # outside git: no git process
    daemon = daemon_run(examples, "local", None, "--state", world["api"][-1],
                        "--env-file", ENV_FILE, "--dry-run")
    started = wait_for(lambda: next((r for r in daemon.records
                                     if r.get("message") == "daemon started"), None),
                       message="the daemon's start record")
    assert (started["interval"], started["debounce"]) == (90.0, 0.25)
    monkeypatch.delenv("BORDER0_RECONCILER_INTERVAL")
    monkeypatch.delenv("BORDER0_RECONCILER_DEBOUNCE")
    code, _, err = cli(["run", EXAMPLES, "--once"], env={"BORDER0_RECONCILER_INTERVAL": "1m30"})
    assert code == 1 and "'1m30' is not a duration" in err


def test_run_once_dry_run_detailed_exitcode_exits_2_on_drift(tmp_path: Path) -> None:
    state = str(tmp_path / "local.db")
    examples = str(shutil.copytree(EXAMPLES, tmp_path / "examples"))  # outside git: no git run
    run = ["run", examples, "--api", "local", "--state", state, "--env-file", ENV_FILE,
           "--once", "--dry-run", "--detailed-exitcode", "--listen", ""]
    code, _, err = cli(run)
    assert code == 2, err  # an empty border0: everything to create
    applying = [a for a in run if a not in ("--dry-run", "--detailed-exitcode")]
    code, _, err = cli(applying)  # --once without --dry-run applies it
    assert code == 0, err
    code, _, err = cli(run)
    assert code == 0, err  # nothing drifted


def test_color_flags_and_environment(world: dict[str, Any]) -> None:
    plan = ["plan", EXAMPLES, *world["api"], "--env-file", ENV_FILE]
    changed = world["root"] / "changed"
    shutil.copytree(EXAMPLES, changed, dirs_exist_ok=True)
    web = changed / "sockets" / "web.yaml"
    web.write_text(web.read_text().replace("description: ", "description: new ", 1))
    plan[1] = str(changed)
    assert "\x1b[" not in cli(plan)[1]  # not a terminal
    assert "\x1b[" in cli(plan, env={"FORCE_COLOR": "1"})[1]
    assert "\x1b[" not in cli(plan, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})[1]
    assert "\x1b[" in cli([*plan, "--color", "always"], env={"NO_COLOR": "1"})[1]
    assert "\x1b[" not in cli([*plan, "--color", "never"], env={"FORCE_COLOR": "1"})[1]


@pytest.mark.slow  # click's bash completion runs `bash --version`
def test_shell_completion_as_documented() -> None:
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "#compdef"),
                          ("fish", "complete --no-files --command")):
        code, out, err = cli([], env={"_BORDER0_RECONCILER_COMPLETE": f"{shell}_source"})
        assert code == 0 and marker in out, (shell, err)
    docs = (REPO / "docs" / "cli-conventions.md").read_text()
    assert "_BORDER0_RECONCILER_COMPLETE=bash_source" in docs
