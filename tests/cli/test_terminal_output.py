"""What a user sees: apply's progress (a bar on a terminal, a count line every 10% in a log),
NO_COLOR, what is said while border0 does not answer, a new `--api local` state file, and one
message per outcome. The real CLI in child processes; a pseudo-terminal (pty) where the
behaviour needs a terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from conftest import TEST_TOKEN
from documents import ENV, SECRET, base_docs, socket_doc, write
from helpers import PYTHON, cli, free_port

from reconciler.apply import apply_plan
from reconciler.border0.client import Border0Client
from reconciler.border0.inventory import fetch_actual
from reconciler.cli.planning import PlanArgs, _summary
from reconciler.manifests.loader import load
from reconciler.plan.planner import make_plan

ESCAPE = b"\x1b"
PLAINTEXT_SOCKET = (
    "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: plain\nspec:\n"
    "  type: http\n  protected:\n    username: ann\n    password: hunter2\n"
)


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str] | None = None,
                  timeout: float = 120) -> tuple[int, bytes]:
    """Run the CLI with a pseudo-terminal as stdin, stdout and stderr; all it wrote."""
    master, slave = pty.openpty()
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("BORDER0_RECONCILER_DEBUG", "NO_COLOR")}
    full_env.update(env or {})
    proc = subprocess.Popen([PYTHON, "-m", "reconciler", *args], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env=full_env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no end of output: {out[-2000:]!r}"
            ready, _, _ = select.select([master], [], [], min(left, 0.5))
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"Traceback" not in out and SECRET.encode() not in out
    return code, out


@pytest.fixture
def project(tmp_path: Path) -> dict:
    docs = base_docs() + [socket_doc(f"s{i:02d}", description=f"socket {i}") for i in range(30)]
    folder = write(tmp_path / "manifests", docs)
    env_file = tmp_path / "demo.env"
    env_file.write_text(f"DB_PASSWORD={SECRET}\n")
    common = ["--api", "local", "--state", str(tmp_path / "state" / "local.db"),
              "--env-file", str(env_file)]
    return {"dir": tmp_path, "m": str(folder), "common": common, "actions": 36}


@pytest.mark.slow
def test_apply_on_a_terminal_shows_a_progress_bar(project: dict) -> None:
    code, out = on_a_terminal(["apply", project["m"], *project["common"], "--auto-approve"],
                              project["dir"])
    assert code == 0, out[-2000:]
    bars = re.findall(rb"Applying \|[^|\r\n]*\| (\d+)/(\d+), (\d+) failed, [\d:]+ elapsed", out)
    assert bars, out[-2000:]
    assert bars[-1] == (b"36", b"36", b"0")  # done/total and failures, drawn in place
    assert b"\r" in out  # redrawn, not a new line each time
    assert b"created socket s01" not in out  # no line per object without -v
    assert b"Apply complete: 36 actions succeeded." in out.rstrip().splitlines()[-1]


def test_apply_in_a_log_prints_count_lines_not_a_line_per_object(project: dict) -> None:
    code, out, err = cli(["apply", project["m"], *project["common"], "--auto-approve"],
                         cwd=project["dir"])
    assert code == 0, err
    counts = [line for line in err.splitlines() if line.startswith("Applying: ")]
    # every 10% (and every 5 s on a slow machine): far fewer lines than the 36 objects
    assert 1 <= len(counts) < project["actions"], err
    assert re.fullmatch(r"Applying: 36/36 done, 0 failed, \d+s", counts[-1]), counts
    assert "created socket" not in err and "\r" not in err and "\x1b" not in err
    assert err.strip().splitlines()[-1] == "Apply complete: 36 actions succeeded."
    assert "Apply complete" not in out  # the summary goes with the progress

    # -v: one line per object, as before
    write(Path(project["m"]), base_docs()
          + [socket_doc(f"s{i:02d}", description=f"socket {i}") for i in range(1, 30)]
          + [socket_doc("late", description="one more")])
    code, _, err = cli(["apply", project["m"], *project["common"], "--auto-approve", "-v"],
                       cwd=project["dir"])
    assert code == 0, err
    assert "created socket late" in err and "deleted socket s00" in err


@pytest.mark.slow
def test_no_color_removes_every_escape_code(project: dict) -> None:
    (Path(project["m"]) / "plain.yaml").write_text(PLAINTEXT_SOCKET)  # a validate warning
    validate = ["validate", project["m"]]
    code, out = on_a_terminal(validate, project["dir"])
    assert code == 0 and ESCAPE + b"[" in out  # colour on a terminal, like plan
    no_color = {"NO_COLOR": "1"}
    code, out = on_a_terminal(validate, project["dir"], no_color)
    assert code == 0 and b"warning: spec.protected.password" in out and ESCAPE not in out
    code, out = on_a_terminal(["plan", project["m"], *project["common"]], project["dir"],
                              no_color)
    assert code == 0 and b"Plan: 35 to create" in out and ESCAPE not in out
    code, out = on_a_terminal(["apply", project["m"], *project["common"], "--auto-approve"],
                              project["dir"], no_color)
    assert code == 0 and b"Applying |" in out and b"Apply complete" in out
    assert ESCAPE not in out


@pytest.mark.slow
def test_an_unanswering_api_is_announced_while_retrying(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", base_docs())
    env = {k: v for k, v in os.environ.items() if k != "BORDER0_RECONCILER_DEBUG"}
    env.update(ENV, BORDER0_ADMIN_TOKEN=TEST_TOKEN)
    proc = subprocess.Popen(
        [PYTHON, "-m", "reconciler", "plan", str(folder), "--api",
         f"http://127.0.0.1:{free_port()}/api/v1"],  # nothing listens there
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )
    assert proc.stderr is not None
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"retrying 2/" not in seen:  # said at every retry, long before the last one
            assert time.monotonic() < deadline and proc.poll() is None, seen
            if select.select([proc.stderr], [], [], 0.5)[0]:
                seen += proc.stderr.readline()
    finally:
        proc.kill()
        proc.wait()
    lines = seen.decode().splitlines()
    assert lines[:2] == ["border0 API not reachable, retrying 1/4...",
                         "border0 API not reachable, retrying 2/4..."]


def test_api_local_says_when_it_creates_a_new_state_file(project: dict, tmp_path: Path) -> None:
    state = tmp_path / "elsewhere" / "local.db"
    args = ["plan", project["m"], "--api", "local", "--state", str(state),
            "--env-file", project["common"][-1]]
    code, _, err = cli(args, cwd=tmp_path)
    assert code == 0, err
    assert f"--api local: creating a new, empty state file {state.resolve()}" in err
    code, _, err = cli(args, cwd=tmp_path)
    assert code == 0 and "creating a new" not in err  # the second run uses it quietly


def test_a_refused_plan_says_so_once(project: dict, tmp_path: Path) -> None:
    m, common = project["m"], project["common"]
    code, _, err = cli(["apply", m, *common, "--auto-approve", "--instance", "other"],
                       cwd=project["dir"])
    assert code == 0, err
    # every object belongs to another instance: a conflict, and not also "No changes"
    code, out, err = cli(["plan", m, *common], cwd=project["dir"])
    assert code == 1 and "Conflicts:" in out and "managed by another instance" in out
    assert "No changes" not in out
    assert (out + err).count("cannot be applied") == 1
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        err.strip().splitlines()[-1]]

    # the mass-delete guard refuses; that is not called a conflict
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = cli(["plan", str(empty), *common, "--instance", "other"],
                         cwd=project["dir"])
    assert code == 1 and "Refused by the mass-delete guard:" in out
    assert "conflict" not in (out + err).lower() and "No changes" not in out
    assert err.strip().splitlines()[-1].startswith("error: the plan cannot be applied: refusing")


def test_run_apply_again_only_where_a_rerun_helps(emulator, tmp_path: Path, capsys) -> None:
    folder = write(tmp_path / "m", base_docs())
    desired = load([folder], env=ENV).desired
    client = emulator.client()
    actual = fetch_actual(client)
    plan = make_plan(desired, actual)

    # border0 does not answer: a rerun may well finish the job
    with Border0Client(f"http://127.0.0.1:{free_port()}/api/v1", TEST_TOKEN,
                       max_retries_5xx=0) as dead:
        result = apply_plan(plan, dead, desired, actual)
    assert _summary(result, PlanArgs(paths=())) == 1
    assert capsys.readouterr().err.strip().endswith("Run apply again to finish.")

    # border0 refuses (the name was taken meanwhile): the same apply would fail the same way
    client.create_socket({"name": "web", "socket_type": "http", "description": "by hand"})
    result = apply_plan(plan, client, desired, actual)
    assert not result.ok
    assert _summary(result, PlanArgs(paths=())) == 1
    err = capsys.readouterr().err
    assert "Apply finished with errors" in err and "Run apply again" not in err
