"""The program leaves without freeing what a command built (`cli.bulk.exit_now`, as mypy's
`hard_exit`): what a user sees of it is only its exit status and its output, which must be
those of an ordinary exit. Real child processes: the subject is the process's end."""

from __future__ import annotations

import json
import subprocess
import textwrap
import weakref
from pathlib import Path

import pytest
from documents import ENV, socket_doc, write
from helpers import PYTHON, REPO, cli_process

from reconciler.cli import bulk


def _child(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-c", textwrap.dedent(script)], check=False, cwd=tmp_path,
                          text=True, capture_output=True, timeout=60,
                          env={"PYTHONPATH": str(REPO)})


@pytest.mark.slow
def test_a_plan_piped_out_is_whole_and_its_exit_status_is_the_commands(emulator, tmp_path):
    folder = write(tmp_path / "m", [socket_doc(f"web-{i:03d}", upstream={"type": "http",
                                    "httpHostname": f"h{i}.internal"}) for i in range(300)])
    env = {"BORDER0_API": emulator.url, "BORDER0_TOKEN": emulator.token, **ENV}

    code, out, err = cli_process(["plan", str(folder), "-o", "json", "--detailed-exitcode"],
                                 env=env, cwd=tmp_path)

    assert code == 2, err  # changes: the status given to os._exit, not 0
    plan = json.loads(out)  # every byte written before the process ended
    assert len([c for c in plan["changes"] if c["kind"] == "socket"]) == 300


@pytest.mark.slow
def test_the_exit_functions_run_before_the_program_leaves(tmp_path):
    (tmp_path / "ok.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Policy\nmetadata: {name: p}\n"
        "spec: {policyData: {version: v1, action: [http], condition: {who: {email: [a@b.c]}}}}\n")
    proc = _child("""
        import atexit, sys
        atexit.register(lambda: print("exit function ran", file=sys.stderr))
        sys.argv = ["border0-reconciler", "validate", "ok.yaml"]
        from reconciler.cli import program
        program()
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: 0 sockets, 1 policy in 1 file"), proc.stdout
    assert "exit function ran" in proc.stderr


@pytest.mark.slow
def test_a_thread_still_running_gets_the_usual_exit(tmp_path):
    proc = _child("""
        import threading
        from reconciler.cli import bulk
        bulk.keep_until_exit()
        bulk.keep(object())
        release = threading.Event()
        worker = threading.Thread(target=release.wait)
        worker.start()
        bulk.exit_now(0)
        print("returned: the interpreter waits for the thread as it always does")
        release.set()
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "returned" in proc.stdout


def test_nothing_is_held_unless_the_program_leaves_at_once() -> None:
    class Built:
        pass

    built = Built()
    gone = weakref.ref(built)
    bulk.keep(built)  # this test process never called keep_until_exit: `main` in a test
    del built
    assert gone() is None


def test_the_console_script_and_the_module_enter_through_program() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'border0-reconciler = "reconciler.cli:program"' in pyproject
    assert "program()" in (REPO / "reconciler" / "__main__.py").read_text()


@pytest.mark.slow
def test_under_a_profiler_the_program_exits_as_usual(tmp_path):
    """`python -m cProfile -m reconciler ...` prints its figures at exit."""
    proc = _child("""
        import sys
        from reconciler.cli import bulk
        bulk.keep_until_exit()
        bulk.keep(object())
        sys.setprofile(lambda *args: None)
        bulk.exit_now(0)
        sys.setprofile(None)
        print("returned: the profiler writes its figures at exit")
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "returned" in proc.stdout
