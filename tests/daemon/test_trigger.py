"""`POST /reconcile` over real HTTP against the `run` command (run in this process by
daemon_host.py) and the emulator.

Refused requests (no token, a wrong one, a bad GitHub signature, git-sync's plain POST, a body
too large) change nothing: the daemon's trigger count and reconcile count stay as they were, and
drift made by hand stays. Accepted ones (Bearer, GitHub HMAC, GitLab token) reconcile now, well
before the one-hour interval.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import edit_by_hand, wait_for
from test_daemon import socket_yaml
from test_daemon_process import description, manifests  # noqa: F401 - a fixture

TOKEN = "s3cret-trigger-token-0123456789"


def start(daemon_run, emulator, manifests, tmp_path, *extra):  # noqa: F811
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed"))
    token_file = tmp_path / "trigger-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    daemon = daemon_run(
        manifests, emulator.url, emulator.token,
        "--interval", "1h", "--trigger-token-file", str(token_file), *extra,
    )
    wait_for(lambda: daemon.last("result") == "success", timeout=20, message="the first reconcile")
    return daemon


def test_an_unauthenticated_trigger_is_refused_and_changes_nothing(
    emulator, manifests, daemon_run, tmp_path  # noqa: F811
):
    daemon = start(daemon_run, emulator, manifests, tmp_path)
    client = emulator.client()
    web = client.get_socket("web")
    edit_by_hand(client, web, description="edited by hand")
    before = daemon.status()
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    wrong_sig = "sha256=" + hmac.new(b"not the token", body, hashlib.sha256).hexdigest()
    refused = [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"X-Hub-Signature-256": wrong_sig, "X-GitHub-Event": "push"},
        {"X-Hub-Signature-256": "sha256=" + hmac.new(TOKEN.encode(), b"other body",
                                                     hashlib.sha256).hexdigest()},
        {"X-Gitlab-Token": TOKEN + "x"},
        {"Gitsync-Hash": "0123abcd"},  # what git-sync's --webhook-url sends: no credentials
    ]
    for headers in refused:
        response = daemon.http.post("/reconcile", content=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert TOKEN not in response.text
    assert daemon.http.get("/reconcile").status_code == 405
    too_big = daemon.http.post("/reconcile", content=b"x" * (1024 * 1024 + 1),
                               headers={"Authorization": f"Bearer {TOKEN}"})
    assert too_big.status_code == 413
    after = daemon.status()
    assert after["triggers"] == before["triggers"]
    assert after["reconciles"] == before["reconciles"]
    assert description(client, "web") == "edited by hand"
    assert not any(TOKEN in line for line in daemon.lines)


def test_bearer_github_and_gitlab_triggers_reconcile_now(
    emulator, manifests, daemon_run, tmp_path  # noqa: F811
):
    daemon = start(daemon_run, emulator, manifests, tmp_path)
    client = emulator.client()
    body = json.dumps({"ref": "refs/heads/main", "after": "abc"}).encode()
    signature = "sha256=" + hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    for headers in (
        {"Authorization": f"Bearer {TOKEN}"},
        {"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"},
        {"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook"},
    ):
        web = client.get_socket("web")
        edit_by_hand(client, web, description="edited by hand")
        runs = daemon.status()["reconciles"]
        response = daemon.http.post("/reconcile", content=body, headers=headers)
        assert response.status_code == 202, response.text
        wait_for(lambda: description(client, "web") == "managed", timeout=10,
                 message=f"the drift repaired after a trigger with {sorted(headers)}")
        wait_for(lambda runs=runs: daemon.status()["reconciles"] > runs, timeout=10)
        assert daemon.last("trigger").startswith("POST /reconcile")


def test_a_burst_of_triggers_is_coalesced(
    emulator_factory, manifests, daemon_run, tmp_path  # noqa: F811
):
    """Triggers that arrive while a reconcile runs cause exactly one more run, not one each."""
    held = emulator_factory()
    daemon = start(daemon_run, held, manifests, tmp_path)
    runs = daemon.status()["reconciles"]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    wait_for(lambda: daemon.status()["in_flight"] is None, timeout=5)  # the start published
    held.app.faults.held = True  # border0 does not answer: the reconcile stays in flight
    try:
        assert daemon.http.post("/reconcile", headers=bearer).status_code == 202
        running = wait_for(lambda: daemon.status()["in_flight"], timeout=5, interval=0.01)
        assert running["trigger"].startswith("POST /reconcile")
        with ThreadPoolExecutor(19) as pool:
            codes = list(pool.map(
                lambda _: daemon.http.post("/reconcile", headers=bearer).status_code, range(19)))
        assert codes == [202] * 19
        assert daemon.status()["in_flight"] == running, "the burst outlasted the reconcile"
    finally:
        held.app.faults.held = False
    wait_for(lambda: daemon.status()["reconciles"] >= runs + 2, timeout=20)
    wait_for(lambda: daemon.status()["in_flight"] is None, timeout=5)
    assert daemon.status()["reconciles"] == runs + 2


def test_without_a_token_file_there_is_no_trigger_endpoint(
    emulator, manifests, daemon_run  # noqa: F811
):
    (manifests / "web.yaml").write_text(socket_yaml("web", "managed"))
    daemon = daemon_run(manifests, emulator.url, emulator.token, "--interval", "1h")
    wait_for(lambda: daemon.last("result") == "success", timeout=20)
    response = daemon.http.post("/reconcile", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code in (404, 405)
    assert daemon.status()["reconciles"] == 1


def test_a_missing_token_file_is_a_one_line_error(emulator, manifests, tmp_path):  # noqa: F811
    from helpers import cli

    code, _, err = cli(["run", str(manifests), "--api", emulator.url,
                        "--trigger-token-file", str(tmp_path / "absent")],
                       env={"BORDER0_ADMIN_TOKEN": emulator.token})
    assert code != 0
    assert "--trigger-token-file" in err and len(err.strip().splitlines()) == 1, err


def test_the_trigger_token_stays_redacted_after_reconciles():
    """The token is not a manifest secret: the swap of secrets after each reconcile keeps it."""
    from reconciler.daemon.logs import RedactFilter

    redactor = RedactFilter()
    redactor.add_secrets([TOKEN])
    redactor.set_secrets(["a-manifest-secret"])  # what the daemon does after each reconcile
    assert redactor.redact(f"x {TOKEN} a-manifest-secret") == "x (sensitive) (sensitive)"
    redactor.set_secrets([])
    assert TOKEN not in redactor.redact(TOKEN)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_token_file_others_can_read_is_refused_with_the_fix(emulator, manifests, tmp_path,  # noqa: F811
                                                             mode):
    from helpers import cli

    token_file = tmp_path / "trigger-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(mode)
    code, _, err = cli(["run", str(manifests), "--api", emulator.url,
                        "--trigger-token-file", str(token_file)],
                       env={"BORDER0_ADMIN_TOKEN": emulator.token})
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"permissions {mode:04o} are too open" in err and f"chmod 600 {token_file}" in err
    assert TOKEN not in err


def test_an_emptied_opened_or_missing_token_file_disables_the_trigger(
    emulator, manifests, daemon_run, tmp_path  # noqa: F811
):
    """Never the old token: 401 to it (and to everyone) while the file is bad, said in the log;
    the new token works once the file holds one."""
    daemon = start(daemon_run, emulator, manifests, tmp_path)
    token_file = tmp_path / "trigger-token"
    old = {"Authorization": f"Bearer {TOKEN}"}
    assert daemon.http.post("/reconcile", headers=old).status_code == 202
    for spoil, why in ((lambda: token_file.write_text(""), "the file is empty"),
                       (lambda: token_file.chmod(0o644), "are too open"),
                       (token_file.unlink, "cannot read it")):
        spoil()
        response = daemon.http.post("/reconcile", headers=old)
        assert response.status_code == 401, (why, response.text)
        wait_for(lambda why=why: any(why in m and "POST /reconcile is disabled" in m
                                     for m in daemon.messages()), timeout=5, message=why)
        token_file.write_text("a-new-token-9876543210\n")
        token_file.chmod(0o600)
        assert daemon.http.post("/reconcile", headers=old).status_code == 401
        new = {"Authorization": "Bearer a-new-token-9876543210"}
        assert daemon.http.post("/reconcile", headers=new).status_code == 202
        token_file.write_text(TOKEN + "\n")
        assert daemon.http.post("/reconcile", headers=old).status_code == 202


def test_the_trigger_is_rate_limited_with_retry_after(
    emulator, manifests, daemon_run, tmp_path  # noqa: F811
):
    """Past a burst of BURST, 429 with Retry-After and no trigger counted; then it recovers."""
    from reconciler.daemon.trigger import BURST

    daemon = start(daemon_run, emulator, manifests, tmp_path)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    before = daemon.status()["triggers"]
    codes, retry = [], []
    for _ in range(BURST + 10):
        response = daemon.http.post("/reconcile", headers=bearer)
        codes.append(response.status_code)
        if response.status_code == 429:
            retry.append(int(response.headers["retry-after"]))
    assert codes[:BURST] == [202] * BURST
    assert codes.count(429) >= 5 and all(r >= 1 for r in retry), codes
    unauthenticated = daemon.http.post("/reconcile")
    assert unauthenticated.status_code == 429  # before any token is compared
    assert daemon.status()["triggers"] - before <= codes.count(202)
    wait_for(lambda: daemon.http.post("/reconcile", headers=bearer).status_code == 202,
             timeout=max(retry) + 5, interval=0.5, message="a trigger accepted again")
