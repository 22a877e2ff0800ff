"""`plan`, `apply` and `run --once` go through the one pipeline (reconciler/reconcile.py): the same
manifests and the same border0 give the same refusal, word for word, from each. The CLI in
this process against the embedded emulator (`--api local`) with its state in a file."""

from __future__ import annotations

import os
import re
from pathlib import Path

from documents import base_docs, write
from helpers import cli

ENV = {"DB_PASSWORD": "pipeline-secret-1"}


def test_plan_apply_and_run_once_refuse_with_one_message(tmp_path: Path) -> None:
    docs = base_docs()
    # the daemon's log redacts the manifests' secrets, the username too: not one that is a word
    docs[2]["spec"]["upstream"]["username"] = "orders-svc-7"
    folder = write(tmp_path / "m", docs)
    common = ["--api", "local", "--state", str(tmp_path / "state.db")]
    code, _, err = cli(["apply", str(folder), *common, "--auto-approve", "--instance", "other"],
                       env=ENV, cwd=tmp_path)
    assert code == 0, err

    errors = []
    for command in (["plan"], ["apply", "--auto-approve"]):
        code, _, err = cli([command[0], str(folder), *common, *command[1:]], env=ENV, cwd=tmp_path)
        assert code == 1
        errors.append(err.strip().splitlines()[-1].removeprefix("error: "))
    code, _, err = cli(["run", str(folder), "--once", *common, "--no-connectors",
                        "--listen", "127.0.0.1:0"], env=ENV, cwd=tmp_path)
    assert code == 1
    # the daemon lets objects of someone else block only themselves (issue 23), with the same
    # first conflict and count
    logged = re.search(r'reconcile failed at apply .* error="(.*)"', err)
    assert logged, err

    assert errors[0].startswith("the plan cannot be applied: ")
    assert errors[0].endswith(" (and 3 more)")  # 1 policy and 3 sockets of another instance
    assert errors == [errors[0]] * 2
    assert logged.group(1) == "4 objects blocked, the rest applied: " + errors[0].removeprefix(
        "the plan cannot be applied: ")


def test_the_manifests_errors_come_before_a_missing_token(tmp_path: Path) -> None:
    """Without a token the API cannot even be opened; the manifests are still read and their
    errors reported first, as when border0 answers with an error."""
    folder = write(tmp_path / "m", base_docs())
    (folder / "bad.yaml").write_text("apiVersion: border0-reconciler/v1\nkind: Socket\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BORDER0_")}
    args = ["plan", str(folder), "--api", "https://api.border0.invalid/api/v1"]
    code, out, err = cli(args, env={**env, **ENV}, inherit_env=False, cwd=tmp_path)
    assert code == 1 and out == ""
    assert "bad.yaml:1:1: error: metadata is required" in err
    assert err.strip().splitlines()[-1] == "error: the manifests have 2 errors; nothing was planned"
    assert "token" not in err

    (folder / "bad.yaml").unlink()
    code, _, err = cli(args, env={**env, **ENV}, inherit_env=False, cwd=tmp_path)
    assert code == 1
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "token" in line
