"""`plan` and `apply` as a user runs them: the real CLI in a child process, `--api local` with a
state file (the embedded emulator), and a secret that must show up in no output at all."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
from documents import SECRET, base_docs, socket_doc, write
from helpers import PYTHON, REPO, cli, copy_examples

SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())


@pytest.fixture
def project(tmp_path: Path) -> dict:
    folder = write(tmp_path / "manifests", base_docs())
    env_file = tmp_path / "demo.env"
    env_file.write_text(f"DB_PASSWORD={SECRET}\n")
    return {"dir": tmp_path, "m": folder, "env": str(env_file),
            "api": ["--api", "local", "--state", str(tmp_path / "tmp" / "local.db")]}


def run(p: dict, *args: str, input: str | None = None) -> tuple[int, str, str]:
    code, out, err = cli([*args, *p["api"], "--env-file", p["env"]], cwd=p["dir"], input=input)
    assert "Traceback" not in err, err
    assert SECRET not in out and SECRET not in err
    return code, out, err


def test_apply_plan_cycle_and_exit_codes(project: dict) -> None:
    m = str(project["m"])
    code, out, _ = run(project, "plan", m, "--detailed-exitcode")
    assert code == 2
    assert "Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 2 to attach, 0 to detach." \
        in out
    assert "upstream_password: (sensitive)" in out

    # non-interactive apply without --auto-approve refuses, nothing applied
    code, out, err = run(project, "apply", m, input="yes\n")
    assert code == 1 and "error: refusing to apply without confirmation" in err
    code, out, err = run(project, "apply", m, "--dry-run")
    assert code == 0 and "Dry run" in err

    code, out, err = run(project, "apply", m, "--auto-approve", "-v")
    assert code == 0, err
    assert "created socket db" in err and "attached policy ops to socket web" in err
    assert "Apply complete: 6 actions succeeded." in err  # with the progress, on stderr

    code, out, _ = run(project, "plan", m, "--detailed-exitcode")
    assert code == 0 and "No changes. border0 matches the manifests." in out

    docs = base_docs()
    docs[2]["spec"]["description"] = "the new database"
    write(project["m"], docs)
    code, out, _ = run(project, "plan", m, "--detailed-exitcode")
    assert code == 2
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 to attach, 0 to detach." \
        in out
    assert '~ socket db' in out and '"the database" → "the new database"' in out

    write(project["m"], [d for d in docs if d["metadata"]["name"] != "box"])
    code, out, err = run(project, "apply", m, "--auto-approve", "--verbose")
    assert code == 0, err
    assert "Plan: 0 to create, 1 to update, 0 to replace, 1 to delete" in out
    assert "deleted socket box" in err


def test_outputs_never_hold_the_secret_and_match_their_shape(project: dict) -> None:
    m, d = str(project["m"]), project["dir"]
    code, out, err = run(project, "plan", m, "--format", "json")
    assert code == 0
    data = json.loads(out)
    jsonschema.validate(data, SCHEMA)
    assert data["summary"]["create"] == 4

    code, out, err = run(project, "plan", m, "--format", "markdown", "--out", str(d / "plan.md"),
                         "--save", str(d / "saved.json"))
    assert code == 0
    md = (d / "plan.md").read_text()
    assert md.startswith("## border0-reconciler plan") and "<details>" in md
    assert "| create | update | replace | delete | attach | detach |" in md
    assert "Plan: 4 to create" in out  # the terminal gets the text rendering
    saved = (d / "saved.json").read_text()
    assert "env:DB_PASSWORD" in saved
    for path in (d / "plan.md", d / "saved.json"):
        assert SECRET not in path.read_text()

    # the saved plan applies as it is, without a prompt
    code, out, err = run(project, "apply", str(d / "saved.json"), "-v")
    assert code == 0, err
    assert "created socket db" in err

    # a changed secret is shown as changed, without either value
    (d / "demo.env").write_text("DB_PASSWORD=another-" + SECRET + "\n")
    code, out, err = run(project, "plan", m, "--format", "json", "--out", str(d / "p.json"))
    assert "another-" not in out + err + (d / "p.json").read_text()
    diffs = json.loads((d / "p.json").read_text())["changes"][0]["diffs"]
    assert diffs == [{"path": "upstream_password", "before": "(sensitive)",
                      "after": "(sensitive)", "sensitive": True}]


def test_stale_or_edited_saved_plan_is_refused(project: dict) -> None:
    m, d = str(project["m"]), project["dir"]
    assert run(project, "apply", m, "--auto-approve")[0] == 0
    docs = base_docs()
    docs[1]["spec"]["description"] = "v2"
    write(project["m"], docs)
    assert run(project, "plan", m, "--save", str(d / "p1.json"))[0] == 0

    # border0 changes meanwhile (another apply) -> the saved plan is stale
    other = write(d / "other", [socket_doc("intruder")])
    assert run(project, "apply", str(other), "--auto-approve", "--instance", "other")[0] == 0
    code, _, err = run(project, "apply", str(d / "p1.json"))
    assert code == 1 and "error: the saved plan is stale" in err
    assert "updated" not in err

    # the manifests change after saving -> refused too
    assert run(project, "plan", m, "--save", str(d / "p2.json"))[0] == 0
    docs[1]["spec"]["description"] = "v3"
    write(project["m"], docs)
    code, _, err = run(project, "apply", str(d / "p2.json"))
    assert code == 1 and "changed since the plan was saved" in err


def test_guard_conflicts_and_bad_manifests_are_errors(project: dict) -> None:
    m, d = str(project["m"]), project["dir"]
    assert run(project, "apply", m, "--auto-approve")[0] == 0
    empty = d / "empty"
    empty.mkdir()
    code, _, err = run(project, "apply", str(empty), "--auto-approve")
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("error: the plan cannot be applied: refusing")
    assert "deleted" not in err
    code, _, _ = run(project, "plan", m, "--detailed-exitcode")
    assert code == 0  # nothing was deleted

    code, _, err = run(project, "plan", m, "--instance", "my team")
    assert code == 1 and err.startswith("error: invalid instance 'my team'")

    (project["m"] / "broken.yaml").write_text("kind: Socket\nmetadata: [\n")
    code, _, err = run(project, "plan", m)
    assert code == 1 and "broken.yaml" in err
    assert err.strip().splitlines()[-1].startswith("error: the manifests have")


def test_examples_apply_then_plan_is_empty(tmp_path: Path) -> None:
    """The README's main command: apply examples/ against --api local, then nothing to do."""
    secrets = [
        line.split("=", 1)[1].strip().strip('"')
        for line in (REPO / "examples" / "demo.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]
    args = ["--api", "local", "--state", str(tmp_path / "tmp" / "local.db"),
            "--env-file", str(REPO / "examples" / "demo.env")]
    # a copy: the example connectors' token files are written beside their manifests
    copy_examples(tmp_path / "examples")
    code, out, err = cli(["apply", "examples/", "--auto-approve", *args], cwd=tmp_path)
    assert code == 0, err
    assert "Apply complete" in err and "to create" in out
    code, out2, err2 = cli(["plan", "examples/", "--detailed-exitcode", "--format", "markdown",
                            *args], cwd=tmp_path)
    assert code == 0, out2 + err2
    assert "No changes. border0 matches the manifests." in out2
    for value in secrets:
        assert value not in out + err + out2 + err2


def _on_a_terminal(p: dict, answer: bytes) -> tuple[int, bytes]:
    """Run apply with a pseudo-terminal as stdin/stdout/stderr, answer the prompt."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "BORDER0_RECONCILER_DEBUG"}
    proc = subprocess.Popen(
        [PYTHON, "-m", "reconciler", "apply", str(p["m"]), *p["api"], "--env-file", p["env"]],
        stdin=slave, stdout=slave, stderr=slave, cwd=p["dir"], env=env,
    )
    os.close(slave)
    out = b""

    def read_until(marker: bytes, timeout: float = 60.0) -> None:
        nonlocal out
        deadline = time.monotonic() + timeout
        while marker not in out:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} in {out!r}"
            ready, _, _ = select.select([master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    assert marker in out, f"no {marker!r} in {out!r}"
                out += chunk

    try:
        read_until(b"Only 'yes' will be accepted")
        os.write(master, answer)
        read_until(b"Apply complete" if answer == b"yes\n" else b"error:")
        code = proc.wait(60)
        try:  # whatever is left
            while select.select([master], [], [], 0)[0] and (chunk := os.read(master, 65536)):
                out += chunk
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out


@pytest.mark.slow
def test_apply_asks_for_yes_on_a_terminal(project: dict) -> None:
    code, out = _on_a_terminal(project, b"no\n")
    assert code == 1 and b"error: apply cancelled; nothing was changed" in out
    code, out = _on_a_terminal(project, b"yes\n")
    assert code == 0 and b"Applying |" in out and b"6/6, 0 failed" in out  # the progress bar
    assert b"\x1b[" in out  # colour on a terminal
    assert SECRET.encode() not in out
    code, out, _ = run(project, "plan", str(project["m"]), "--detailed-exitcode")
    assert code == 0 and "\x1b[" not in out  # and none when piped


def test_apply_against_a_remote_api_with_a_token_file(emulator, tmp_path: Path) -> None:
    emu = emulator
    folder = write(tmp_path / "m", base_docs())
    token = tmp_path / "token"
    token.write_text(emu.token + "\n")
    env_file = tmp_path / "demo.env"
    env_file.write_text(f"DB_PASSWORD={SECRET}\n")
    args = ["--api", emu.url, "--env-file", str(env_file)]
    code, out, err = cli(["apply", str(folder), "--auto-approve", "--token-file", str(token),
                          *args], cwd=tmp_path)
    assert code == 0, err
    assert SECRET not in out + err and emu.token not in out + err
    code, out, err = cli(["plan", str(folder), "--detailed-exitcode", *args], cwd=tmp_path,
                         env={"BORDER0_TOKEN": emu.token})
    assert code == 0, err
    token.write_text("wrong-token")
    code, out, err = cli(["plan", str(folder), "--token-file", str(token), *args], cwd=tmp_path)
    assert code == 1 and err.splitlines()[-1].startswith("error: ") and "401" in err
    assert "Traceback" not in err and "wrong-token" not in err


def test_usage_errors_exit_1_never_the_changes_code(tmp_path):
    """A mistyped flag in CI must fail the job, not look like `--detailed-exitcode` changes."""
    for args in (
        ["plan", str(tmp_path), "--detailed-exitcode", "--no-such-flag"],
        ["plan", str(tmp_path / "missing"), "--detailed-exitcode"],
        ["apply", "--format", "xml", str(tmp_path)],
    ):
        code, _, err = cli(args)
        assert code == 1, (args, err)
        assert "Traceback" not in err and "Error:" in err


def test_a_saved_plan_of_a_relative_folder_applies_here_and_from_another_folder(
    project: dict,
) -> None:
    """`plan m --out p.json && apply p.json` with a relative `m` (the README's example), and
    the same apply run from another folder; a changed file is named in the refusal."""
    d = project["dir"]
    code, _, err = run(project, "plan", "manifests", "--out", "p.json")
    assert code == 0, err
    code, _, err = run(project, "apply", "p.json")
    assert code == 0 and "Apply complete" in err, err

    docs = base_docs()
    docs[1]["spec"]["description"] = "v2"
    write(project["m"], docs)
    assert run(project, "plan", "manifests", "--out", "p2.json")[0] == 0
    elsewhere = d / "elsewhere"
    elsewhere.mkdir()
    code, _, err = cli(["apply", str(d / "p2.json"), *project["api"], "--env-file",
                        project["env"]], cwd=elsewhere)
    assert code == 0 and "Apply complete: 1 action succeeded" in err, err

    assert run(project, "plan", "manifests", "--out", "p3.json")[0] == 0
    docs[2]["spec"]["description"] = "edited after the review"
    write(project["m"], docs)
    code, _, err = run(project, "apply", "p3.json")
    assert code == 1 and "changed since the plan was saved (manifests/socket-db.yaml)" in err, err
