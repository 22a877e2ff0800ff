"""Issue 26 follow-up: the hard refresh. A fast plan trusts a socket's details tag
(`border0-reconciler/details`) and does not read its links and typed upstream; an edit made in
border0's portal that leaves the tag alone is therefore found only by a full refresh:
`plan`/`apply --refresh=full`, and the daemon on `--full-refresh-interval`. Real parts: the
emulator over HTTP, the CLI as a child process, the daemon's loop with its APScheduler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from documents import SECRET, opts, postgres_upstream, socket_doc, write
from helpers import cli, edit_by_hand, wait_for
from test_details_digest import DETAILS_TAG, socket_reads, typed_docs

from reconciler.daemon.loop import Daemon, DaemonConfig
from reconciler.daemon.status import status_problems
from reconciler.reconcile import reconcile


def port_of(client: Any, name: str = "web") -> int:
    config = client.get_upstream_configuration(client.find_socket(name)["socket_id"])
    return config["http_service_configuration"]["standard_http_service_configuration"]["port"]


def edit_port_in_the_portal(client: Any, port: int) -> None:
    """The typed upstream's port changed by hand; the socket's tags (the digest) sent back as
    they were, as the portal does."""
    live = client.find_socket("web")
    tag = live["tags"][DETAILS_TAG]
    config = client.get_upstream_configuration(live["socket_id"])
    config["http_service_configuration"]["standard_http_service_configuration"]["port"] = port
    edit_by_hand(client, live, upstream_configuration=config)
    assert port_of(client) == port and client.find_socket("web")["tags"][DETAILS_TAG] == tag


@pytest.fixture
def applied(emulator, tmp_path: Path) -> tuple[Any, Path]:
    client = emulator.client()
    folder = write(tmp_path / "m", typed_docs(8080))
    assert reconcile([folder], client, opts()).ok
    return client, folder


def test_a_portal_edit_is_missed_by_a_fast_plan_and_repaired_by_a_full_refresh(
    emulator, applied, tmp_path: Path
) -> None:
    client, folder = applied
    edit_port_in_the_portal(client, 9999)
    api = ["--api", emulator.url]
    env = {"BORDER0_TOKEN": emulator.token}

    code, out, err = cli(["plan", str(folder), "--detailed-exitcode", *api], env=env,
                         cwd=tmp_path)
    assert code == 0, out + err  # the tag matches the manifest: trusted, not read

    code, out, err = cli(["plan", str(folder), "--detailed-exitcode", "--refresh=full", *api],
                         env=env, cwd=tmp_path)
    assert code == 2, out + err
    assert ("upstream_configuration.http_service_configuration."
            "standard_http_service_configuration.port: 9999 → 8080") in out

    code, out, err = cli(["apply", str(folder), "--auto-approve", "--refresh=full", *api],
                         env=env, cwd=tmp_path)
    assert code == 0, out + err
    assert port_of(client) == 8080
    code, out, err = cli(["plan", str(folder), "--detailed-exitcode", *api], env={
        **env, "BORDER0_RECONCILER_REFRESH": "full"}, cwd=tmp_path)
    assert code == 0, out + err  # the flag's environment variable, and nothing left to do


def test_a_typed_password_changed_in_the_portal_is_found_by_a_full_refresh(
    emulator, tmp_path: Path
) -> None:
    """GET /socket/{id}/upstream_configurations answers credentials (the Terraform provider
    stores passwords from there, internal/schemautil/socket/*/from_upstream_config.go), so a
    full refresh sees a typed upstream's password changed in the portal: drift, shown as
    (sensitive), and put back. Only the fingerprint tag was compared, and it still matched."""
    client = emulator.client()
    upstream = postgres_upstream("db.internal")
    folder = write(tmp_path / "m", [socket_doc("db", "database", upstream=upstream)])
    assert reconcile([folder], client, opts()).ok
    live = client.find_socket("db")
    config = client.get_upstream_configuration(live["socket_id"])
    login = config["database_service_configuration"]["standard_database_service_configuration"][
        "username_and_password_auth_configuration"]
    login["password"] = "set-in-the-portal-Pa55"
    edit_by_hand(client, live, upstream_configuration=config)

    result = reconcile([folder], client, opts(full_refresh=True))
    assert result.ok, result.error
    assert [(c.name, [d.path for d in c.diffs]) for c in result.plan.changes] == [
        ("db", ["upstream_secrets"])]
    assert "set-in-the-portal" not in json.dumps(result.plan.to_json())
    config = client.get_upstream_configuration(live["socket_id"])
    assert config["database_service_configuration"]["standard_database_service_configuration"][
        "username_and_password_auth_configuration"]["password"] == SECRET
    again = reconcile([folder], client, opts(dry_run=True, full_refresh=True))
    assert again.plan is not None and again.plan.changes == []


def test_a_bad_refresh_value_is_one_clear_error(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", typed_docs(8080))
    code, _, err = cli(["plan", str(folder), "--refresh=slow", "--api", "local"], cwd=tmp_path)
    assert code == 1 and "Invalid value for '--refresh'" in err and "Traceback" not in err


def test_request_counts_fast_reads_no_sub_resource_full_reads_one_pair_per_socket(
    applied,
) -> None:
    client, folder = applied
    reads = socket_reads(client)
    fast = reconcile([folder], client, opts(dry_run=True))
    assert fast.ok and fast.plan is not None and not fast.plan.has_changes
    assert reads == []

    full = reconcile([folder], client, opts(dry_run=True, full_refresh=True))
    assert full.ok and full.plan is not None and not full.plan.has_changes
    sid = client.find_socket("web")["socket_id"]
    assert sorted(reads) == [f"/api/v1/socket/{sid}/connectors",
                             f"/api/v1/socket/{sid}/upstream_configurations"]


def test_the_daemon_repairs_a_portal_edit_on_its_full_refresh_schedule(applied, running) -> None:
    client, folder = applied
    daemon = running(Daemon(DaemonConfig(
        path=str(folder), listen=None, interval=3600, full_refresh_interval=0.5), client))
    wait_for(lambda: daemon.reconciles_run >= 1, message="the start reconcile")

    edit_port_in_the_portal(client, 9999)
    wait_for(lambda: port_of(client) == 8080, timeout=20,
             message="the full refresh to undo the portal edit")
    # the repair is written inside the reconcile; /status has it once that reconcile is published
    status = wait_for(lambda: (s := daemon.status())["last_full_refresh"] is not None and s,
                      timeout=20, message="the full refresh in /status")
    assert any(h["trigger"] == "full refresh" for h in status["history"]), status["history"]


def test_every_reconcile_is_a_full_refresh_at_interval_zero(applied) -> None:
    client, folder = applied
    daemon = Daemon(DaemonConfig(path=str(folder), listen=None, interval=3600,
                                 full_refresh_interval=0), client)
    edit_port_in_the_portal(client, 9999)
    assert daemon.reconcile_now(["start"]).ok
    status = daemon.status()
    assert port_of(client) == 8080 and status["last_full_refresh"] is not None
    assert status_problems(status) == []  # schemas/status.schema.json
    with_bad_time = {**status, "last_full_refresh": "an hour ago"}
    assert [p for p in status_problems(with_bad_time) if p.startswith("last_full_refresh")]


def test_after_a_failed_reconcile_the_next_is_a_full_refresh(emulator, applied) -> None:
    client, folder = applied
    daemon = Daemon(DaemonConfig(path=str(folder), listen=None, interval=3600),
                    emulator.client(deadline=1.0))
    assert daemon.reconcile_now(["start"]).ok and daemon.status()["last_full_refresh"] is None
    edit_port_in_the_portal(client, 9999)
    emulator.app.faults.fail_rate = 1.0  # border0 fails every request: the reconcile fails
    try:
        assert not daemon.reconcile_now(["interval"]).ok
    finally:
        emulator.app.faults.fail_rate = 0.0
    assert daemon.status()["last_full_refresh"] is None
    assert daemon.reconcile_now(["retry"]).ok
    assert port_of(client) == 8080 and daemon.status()["last_full_refresh"] is not None
