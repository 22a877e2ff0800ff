"""Token rotation that cannot cost the token in use, against the twin over HTTP with real files.

- An apply that dies between `POST /connector/token` and the write of the value leaves two
  tokens of one name; the next apply keeps the one whose value is at the destination (its
  record, connectors/token_records.py), revokes the other, and rotates again if still due.
  The crash is simulated in a child process whose destination writer calls `os._exit(137)`
  (what SIGKILL or the OOM killer leave behind: no `except`, no `finally` runs).
- `expiresAt` counts to the second, as border0 keeps it: a fraction never rotates again.
- A fixed `expiresAt` is never rotated for its nearing expiry; the plan warns as the date
  nears and once it has passed, and makes no token that would expire in the past.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from helpers import PYTHON, cli

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_token_destinations import kube  # noqa: F401 - the fixture

HEAD = {"apiVersion": "border0-reconciler/v1"}

#: A child `apply` whose destination writer dies like a killed process (exit 137, nothing
#: caught, nothing cleaned up): `sys.argv[1]` names the writer to replace.
KILLED = ("import os, sys, reconciler.apply.tokens as t\n"
          "setattr(t, sys.argv[1], lambda *a, **k: os._exit(137))\n"
          "from reconciler.cli import main\n"
          "main(sys.argv[2:])\n")


def manifests(folder: Path, destination: dict, **expiry: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "edge.yaml").write_text(yaml.safe_dump({**HEAD, "kind": "Connector", "metadata": {
        "name": "edge"}, "spec": {"tokens": [{"name": "edge-1", **expiry,
                                              "destination": destination}]}}))
    return folder


def run(args: list[str], emulator) -> tuple[int, str, str]:
    return cli([*args, "--api", emulator.url], env={"BORDER0_ADMIN_TOKEN": emulator.token})


def tokens(emulator) -> list[dict]:
    client = emulator.client()
    [connector] = client.list_all_connectors()
    return client.list_connector_tokens(connector["connector_id"])


DESTINATIONS = {
    "file": ({"file": "edge.token"}, "write_secret_file"),
    "agent": ({"agent": True}, "write_secret_file"),
    "kubernetesSecret": ({"kubernetesSecret": {"name": "edge-token"}}, "write_secret"),
}


@pytest.mark.slow  # its subject is a killed apply process
@pytest.mark.parametrize("kind", sorted(DESTINATIONS))
def test_an_apply_killed_between_making_a_token_and_writing_it_never_revokes_the_one_in_use(
    tmp_path, emulator, request, kind
):
    destination, writer = DESTINATIONS[kind]
    secrets = request.getfixturevalue("kube") if kind == "kubernetesSecret" else None
    folder = tmp_path / "m"
    path = (folder / "edge.token" if kind == "file"
            else folder / ".border0-reconciler" / "agent-tokens" / "edge" / "edge-1.token")

    def held() -> str | None:
        if secrets is not None:
            return secrets.value("edge-token")
        return path.read_text().strip() if path.exists() else None

    manifests(folder, destination, expiresAt="2030-01-01T00:00:00Z")
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    first = held()
    assert first and emulator.store.connector_of_token(first)

    # a rotation (expiresAt moved) whose apply dies after border0 made the new token
    manifests(folder, destination, expiresAt="2031-01-01T00:00:00Z")
    child = subprocess.run(
        [PYTHON, "-c", KILLED, writer, "apply", str(folder), "--auto-approve",
         "--api", emulator.url],
        env={**os.environ, "BORDER0_ADMIN_TOKEN": emulator.token},
        capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode == 137, (child.stdout, child.stderr)
    assert held() == first and len(tokens(emulator)) == 2  # the new value is nowhere

    code, out, err = run(["plan", str(folder)], emulator)
    assert code == 0, (out, err)
    assert ("-/+ token edge-1: replace (sensitive)  (connector edge; expiresAt changed to "
            "2031-01-01T00:00:00Z)") in out, out
    assert ("- token edge-1: delete (sensitive)  (connector edge; its value never reached the "
            "destination, which holds another token of this name") in out, out

    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    now = held()
    assert now and now != first
    assert emulator.store.connector_of_token(now) is not None  # the destination's token works
    assert emulator.store.connector_of_token(first) is None  # the old one revoked after
    [live] = tokens(emulator)
    assert live["expires_at"] == "2031-01-01T00:00:00Z"
    assert first not in out + err and now not in out + err
    code, out, err = run(["plan", str(folder)], emulator)
    assert code == 0 and "No changes." in out, (out, err)


def test_a_token_border0_made_but_answered_500_for_is_revoked_by_the_next_apply(
    tmp_path, emulator
):
    """The POST is carried out and answered 500 (the "500-after" fault): the value is lost
    with the answer, and the apply fails; the next one revokes that token, not the one in use."""
    folder = manifests(tmp_path / "m", {"file": "edge.token"}, expiresAt="2030-01-01T00:00:00Z")
    assert run(["apply", str(folder), "--auto-approve"], emulator)[0] == 0
    first = (folder / "edge.token").read_text().strip()

    manifests(folder, {"file": "edge.token"}, expiresAt="2031-01-01T00:00:00Z")
    faults = emulator.app.faults
    faults.fail_methods, faults.fail_rate = {"POST"}, 1.0
    faults.random.choice = lambda kinds: "500-after"  # every POST runs, then answers 500
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    faults.fail_rate = 0.0
    assert code != 0, (out, err)
    assert (folder / "edge.token").read_text().strip() == first
    assert len(tokens(emulator)) >= 2  # made, its value lost with the answer

    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    now = (folder / "edge.token").read_text().strip()
    assert emulator.store.connector_of_token(now) is not None
    [live] = tokens(emulator)
    assert live["expires_at"] == "2031-01-01T00:00:00Z"
    code, out, err = run(["plan", str(folder)], emulator)
    assert code == 0 and "No changes." in out, (out, err)


def test_a_fractional_expires_at_counts_to_the_second_and_is_not_rotated_again(
    tmp_path, emulator
):
    folder = manifests(tmp_path / "m", {"file": "edge.token"},
                       expiresAt="2030-06-30T00:00:00.500Z")
    code, out, err = cli(["validate", str(folder)])
    assert code == 0, (out, err)
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    [live] = tokens(emulator)
    assert live["expires_at"] == "2030-06-30T00:00:00Z"
    value = (folder / "edge.token").read_text()
    for _ in range(2):
        code, out, err = run(["plan", str(folder)], emulator)
        assert code == 0 and "No changes." in out, (out, err)
    assert (folder / "edge.token").read_text() == value


def test_a_fixed_expires_at_is_not_rotated_and_the_plan_warns_as_it_nears_and_once_it_passed(
    tmp_path, emulator
):
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=7)
    stamp = f"{expires:%Y-%m-%dT%H:%M:%SZ}"
    folder = manifests(tmp_path / "m", {"file": "edge.token"}, expiresAt=stamp)
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0, (out, err)
    [first] = tokens(emulator)
    code, out, err = run(["plan", str(folder)], emulator)
    assert code == 0 and "No changes." in out and "expires" not in out + err, (out, err)

    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds() - 1.5))  # < 1/3 left
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0 and "No changes." in out, (out, err)
    assert (f"connector edge, token edge-1: expires {stamp} (a fixed expiresAt) and is not "
            "rotated, since a new token would expire at the same moment") in out + err
    assert tokens(emulator) == [first]  # no rotation, no restart of the connector

    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds() + 0.5))
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0 and "No changes." in out, (out, err)
    assert (f"connector edge, token edge-1: its expiresAt {stamp} has passed, so it no longer "
            "authenticates") in out + err

    (folder / "edge.token").unlink()  # a lost destination would need a new token: impossible
    code, out, err = run(["apply", str(folder), "--auto-approve"], emulator)
    assert code == 0 and "No changes." in out, (out, err)
    assert (f"connector edge, token edge-1: not replaced (destination {folder}/edge.token is "
            "missing") in out + err
    assert f"its expiresAt {stamp} has passed and border0 makes no token" in out + err
