"""A deletion that waits for a confirmation naming it (`border0-reconciler/confirm-delete`):
`apply --confirm-delete NAME`, a saved plan that holds the confirmed deletion, and the daemon's
`POST /reconcile?confirm-delete=NAME`, as real processes."""

from __future__ import annotations

import json
from pathlib import Path

from documents import socket_doc, write
from helpers import cli, wait_for

GUARD = {"border0-reconciler/confirm-delete": "true"}


def test_apply_deletes_a_guarded_socket_only_when_confirmed(tmp_path: Path) -> None:
    api = ["--api", "local", "--state", str(tmp_path / "local.db")]
    folder = write(tmp_path / "m", [socket_doc("keep"), socket_doc("vault", annotations=GUARD),
                                    socket_doc("safe", annotations=GUARD)])
    assert cli(["apply", str(folder), *api, "--auto-approve"])[0] == 0
    write(folder, [socket_doc("keep")])

    code, out, err = cli(["apply", str(folder), *api, "--auto-approve", "--allow-mass-delete"])
    assert code == 0 and "No changes" in out, err
    assert "socket vault is no longer in the manifests; its deletion waits for a confirmation" \
        in out + err and "apply --confirm-delete vault" in out + err

    code, out, err = cli(["plan", str(folder), *api, "--allow-mass-delete",
                          "--confirm-delete", "vault", "--out", str(tmp_path / "p.tfplan")])
    assert code == 0 and "- socket vault" in out and "- socket safe" not in out, err
    code, out, err = cli(["apply", str(tmp_path / "p.tfplan"), *api])  # the reviewed plan
    assert code == 0 and "deleted socket vault" not in out and "Apply complete: 1 action" in err
    code, out, _ = cli(["ls", *api, "-o", "json"])
    assert sorted(r["name"] for r in json.loads(out)) == ["keep", "safe"]

    code, out, err = cli(["apply", str(folder), *api, "--auto-approve", "--allow-mass-delete",
                          "--confirm-delete", "safe", "--confirm-delete", "nothing-waits"])
    assert code == 0 and "- socket safe" in out, err


def test_the_daemons_trigger_confirms_a_deletion(
    emulator, tmp_path: Path, daemon_run
) -> None:
    folder = write(tmp_path / "m", [socket_doc("keep"), socket_doc("vault", annotations=GUARD)])
    (tmp_path / "token").write_text("trigger-token-0123456789")
    (tmp_path / "token").chmod(0o600)  # a token file others can read is refused
    daemon = daemon_run(folder, emulator.url, emulator.token,
                        "--interval", "1h", "--delete-grace", "0", "--allow-mass-delete",
                        "--trigger-token-file", str(tmp_path / "token"))
    client = emulator.client()
    wait_for(lambda: client.find_socket("vault"), timeout=30, message="the first apply")
    write(folder, [socket_doc("keep")])
    held = wait_for(lambda: (daemon.status()["last_reconcile"] or {}).get(
        "deletions_waiting_for_confirmation"), timeout=30, message="the held deletion")
    assert "socket vault is no longer in the manifests" in held[0]
    assert any("its deletion waits for a confirmation" in m for m in daemon.messages())
    assert client.find_socket("vault") is not None
    response = daemon.http.post("/reconcile", params={"confirm-delete": "vault"},
                                headers={"Authorization": "Bearer trigger-token-0123456789"})
    assert response.status_code == 202 and response.json()["confirm_delete"] == ["vault"]
    wait_for(lambda: client.find_socket("vault") is None, timeout=30,
             message="the confirmed deletion")
