"""Issue 26: a socket of which nothing changed since a plan found it in sync is not compared
again (plan/in_sync.py). What a user relies on is that this changes nothing in a plan but its
cost: every kind of change is still found, on either side. Real parts: the emulator over HTTP,
manifests on disk, the CLI in this process and as a child process."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from documents import ENV, SECRET, base_docs, opts, policy_doc, socket_doc, write
from helpers import cli, cli_process, comparisons, edit_by_hand
from test_details_digest import DETAILS_TAG, typed_docs
from test_full_refresh import edit_port_in_the_portal

from reconciler.border0.api_json import answer_digest, socket_from_api
from reconciler.plan.in_sync import IN_SYNC_FILE, InSync
from reconciler.plan.types import Action, Kind
from reconciler.reconcile import prepare, reconcile


def plan_with(client: Any, folder: Path, record: InSync, **options: Any) -> Any:
    result = prepare([folder], client, replace(opts(in_sync=record), **options))
    assert result.plan is not None, result.error
    return result.plan


@pytest.fixture
def in_sync(emulator, tmp_path: Path) -> tuple[Any, Path, InSync]:
    """The base manifests applied, and the record of a plan that found them all in sync."""
    client = emulator.client()
    folder = write(tmp_path / "m", base_docs())
    assert reconcile([folder], client, opts()).ok
    plan = plan_with(client, folder, InSync())
    assert not plan.changes
    assert set(plan.in_sync.keys) == {"web", "db", "box"}
    return client, folder, plan.in_sync


def test_an_unchanged_socket_is_not_compared_again(in_sync, monkeypatch) -> None:
    client, folder, record = in_sync
    seen = comparisons(monkeypatch)

    plan = plan_with(client, folder, record)

    assert not plan.changes and not plan.conflicts
    assert seen == []  # nothing compared: every key as recorded
    assert plan.in_sync == record  # and the record stays as it was (nothing to write)


def test_a_change_made_in_border0_is_found(in_sync, monkeypatch) -> None:
    client, folder, record = in_sync
    edit_by_hand(client, client.find_socket("web"), description="changed in the portal")
    seen = comparisons(monkeypatch)

    plan = plan_with(client, folder, record)

    assert seen == ["the web site"]  # only the socket whose answer changed
    (change,) = plan.changes
    assert (change.name, change.action) == ("web", Action.UPDATE)
    assert "web" not in plan.in_sync.keys  # not in sync: compared again next time


def test_a_changed_manifest_is_found(in_sync) -> None:
    client, folder, record = in_sync
    docs = base_docs()
    docs[3]["spec"]["description"] = "a box, renamed"
    write(folder, docs)

    plan = plan_with(client, folder, record)

    assert [(c.name, c.action) for c in plan.changes] == [("box", Action.UPDATE)]


def test_a_secret_changed_in_the_environment_is_found(in_sync) -> None:
    client, folder, record = in_sync

    plan = plan_with(client, folder, record, env={"DB_PASSWORD": SECRET + "-rotated"})

    (change,) = plan.changes
    assert (change.name, change.action) == ("db", Action.UPDATE)
    assert [d.path for d in change.diffs] == ["upstream_password"]


def test_a_policy_attached_from_the_policys_side_is_found(in_sync) -> None:
    client, folder, record = in_sync
    other = client.create_policy({"name": "elsewhere", "description": "",
                                  "policy_data": policy_doc("x")["spec"]["policyData"]})
    client.update_policy_sockets(other["id"], add=[client.find_socket("box")["socket_id"]])

    plan = plan_with(client, folder, record)

    assert [(c.kind, c.name, c.action) for c in plan.changes] == [
        (Kind.ATTACHMENT, "box/elsewhere", Action.DETACH)]


def test_a_policy_deleted_in_border0_plans_its_attachments_again(in_sync) -> None:
    client, folder, record = in_sync
    client.delete_policy(client.find_policy("ops")["id"])

    plan = plan_with(client, folder, record)

    planned = {(c.kind, c.name, c.action) for c in plan.changes}
    assert (Kind.POLICY, "ops", Action.CREATE) in planned
    assert {(Kind.ATTACHMENT, "web/ops", Action.ATTACH),
            (Kind.ATTACHMENT, "db/ops", Action.ATTACH)} <= planned


def test_an_option_that_changes_the_specs_is_not_taken_as_unchanged(emulator, tmp_path) -> None:
    client = emulator.client()
    folder = write(tmp_path / "m", [socket_doc("web", labels={"team": "web"})])
    assert reconcile([folder], client, opts()).ok
    live = client.find_socket("web")
    edit_by_hand(client, live, tags={**live["tags"], "cost-center": "set elsewhere"})
    record = plan_with(client, folder, InSync()).in_sync
    assert "web" in record.keys  # a tag set elsewhere is left alone: in sync

    plan = plan_with(client, folder, record, labels_authoritative=True)

    (change,) = plan.changes
    assert change.name == "web" and [d.path for d in change.diffs] == ["labels.cost-center"]


def test_a_full_refresh_compares_every_socket(in_sync, monkeypatch) -> None:
    """A full refresh trusts nothing kept: no details tag, and no record either (it makes a
    new one), as Argo CD's hard refresh ignores its cache."""
    client, folder, record = in_sync
    seen = comparisons(monkeypatch)

    plan = plan_with(client, folder, record, full_refresh=True)

    assert sorted(seen) == ["a box", "the database", "the web site"]
    assert not plan.changes and plan.in_sync == record  # the same verdicts, recorded again


def test_a_socket_whose_details_were_read_is_compared_every_time(emulator, tmp_path) -> None:
    """No details tag (a socket an older version wrote, or one written back without it): its
    links and typed upstream are read beside its answer, so the answer's digest does not cover
    them and it gets no key; a later edit of its upstream alone is found by the next plan."""
    client = emulator.client()
    folder = write(tmp_path / "m", typed_docs(8080))
    assert reconcile([folder], client, opts()).ok
    live = client.find_socket("web")
    edit_by_hand(client, live, tags={k: v for k, v in live["tags"].items() if k != DETAILS_TAG})
    record = plan_with(client, folder, InSync()).in_sync
    assert "web" not in record.keys

    live = client.find_socket("web")
    config = client.get_upstream_configuration(live["socket_id"])
    config["http_service_configuration"]["standard_http_service_configuration"]["port"] = 9999
    edit_by_hand(client, live, upstream_configuration=config)  # the tag still absent
    plan = plan_with(client, folder, record)

    (change,) = plan.changes
    assert change.name == "web" and change.action is Action.UPDATE


def test_a_full_refresh_compares_what_it_reads(emulator, tmp_path) -> None:
    client = emulator.client()
    folder = write(tmp_path / "m", typed_docs(8080))
    assert reconcile([folder], client, opts()).ok
    record = plan_with(client, folder, InSync()).in_sync
    assert "web" in record.keys
    edit_port_in_the_portal(client, 9999)  # the details tag left as it was
    assert not plan_with(client, folder, record).changes  # a fast plan trusts the tag (as before)

    plan = plan_with(client, folder, record, full_refresh=True)

    (change,) = plan.changes
    assert change.name == "web" and change.action is Action.UPDATE


# --- the command line keeps the record in the state folder ----------------------------------


def _plan(emulator: Any, folder: Path, cwd: Path, *flags: str, **env: str
          ) -> tuple[int, str, str]:
    return cli(["plan", str(folder), "--detailed-exitcode", "--api", emulator.url, *flags],
               env={"BORDER0_TOKEN": emulator.token, **ENV, **env}, cwd=cwd)


@pytest.fixture
def applied_here(emulator, tmp_path: Path) -> tuple[Any, Path]:
    """The base manifests applied by the command line from tmp_path (its state folder, its
    fingerprint key)."""
    folder = write(tmp_path / "m", base_docs())
    code, out, err = cli(["apply", str(folder), "--auto-approve", "--api", emulator.url],
                         env={"BORDER0_TOKEN": emulator.token, **ENV}, cwd=tmp_path)
    assert code == 0, out + err
    return emulator.client(), folder


def test_the_command_line_keeps_a_sealed_record_without_secrets(applied_here, emulator,
                                                                 tmp_path) -> None:
    client, folder = applied_here
    assert _plan(emulator, folder, tmp_path)[0] == 0
    record = tmp_path / ".border0-reconciler" / IN_SYNC_FILE

    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert SECRET.encode() not in record.read_bytes()
    written = record.stat().st_mtime_ns
    assert _plan(emulator, folder, tmp_path)[0] == 0
    assert record.stat().st_mtime_ns == written  # unchanged: not written again

    edit_by_hand(client, client.find_socket("web"), description="changed in the portal")
    code, out, err = _plan(emulator, folder, tmp_path)
    assert code == 2 and "~ socket web" in out, out + err


def test_a_record_sealed_with_another_key_is_not_trusted(applied_here, emulator,
                                                         tmp_path) -> None:
    """A record committed into the checkout, or another machine's: its HMAC does not hold
    under this state's fingerprint key, so every socket is compared."""
    client, folder = applied_here
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _plan(emulator, folder, elsewhere)  # a record under elsewhere's own fingerprint key
    theirs = elsewhere / ".border0-reconciler" / IN_SYNC_FILE
    assert theirs.exists()
    mine = tmp_path / ".border0-reconciler" / IN_SYNC_FILE
    mine.write_bytes(theirs.read_bytes())
    edit_by_hand(client, client.find_socket("web"), description="changed in the portal")

    code, out, err = _plan(emulator, folder, tmp_path)

    assert code == 2 and "~ socket web" in out, out + err


def test_no_record_is_kept_with_the_cache_off(applied_here, emulator, tmp_path) -> None:
    _, folder = applied_here
    record = tmp_path / ".border0-reconciler" / IN_SYNC_FILE
    record.unlink()  # the apply's
    assert _plan(emulator, folder, tmp_path, BORDER0_RECONCILER_CACHE="off")[0] == 0
    assert not record.exists()


@pytest.mark.slow
def test_a_corrupt_record_is_ignored_by_the_program(applied_here, emulator, tmp_path) -> None:
    client, folder = applied_here
    env = {"BORDER0_API": emulator.url, "BORDER0_TOKEN": emulator.token, **ENV}
    assert cli_process(["plan", str(folder)], env=env, cwd=tmp_path)[0] == 0
    record = tmp_path / ".border0-reconciler" / IN_SYNC_FILE
    record.write_bytes(record.read_bytes()[: os.path.getsize(record) // 2])
    edit_by_hand(client, client.find_socket("box"), description="changed in the portal")

    code, out, err = cli_process(["plan", str(folder), "--detailed-exitcode"], env=env,
                                 cwd=tmp_path)

    assert code == 2 and "~ socket box" in out, out + err



def test_a_policy_replaced_by_the_plan_is_attached_again_to_unchanged_sockets(in_sync) -> None:
    """org_wide cannot change in place: the policy is replaced (a new id), and every socket
    naming it is attached again, compared or not (the plan's policy ids are in the context)."""
    client, folder, record = in_sync
    docs = base_docs()
    docs[0]["spec"]["orgWide"] = True
    docs[0]["metadata"]["annotations"] = {"border0-reconciler/allow-replace": "true"}
    write(folder, docs)

    plan = plan_with(client, folder, record)

    planned = {(c.kind, c.name, c.action) for c in plan.changes}
    assert (Kind.POLICY, "ops", Action.REPLACE) in planned
    assert {(Kind.ATTACHMENT, "web/ops", Action.ATTACH),
            (Kind.ATTACHMENT, "db/ops", Action.ATTACH)} <= planned


def test_an_answers_digest_counts_every_field_but_the_contents_of_its_policies(in_sync) -> None:
    client, _, _ = in_sync
    answer = client.find_socket("web")
    digest = answer_digest(answer)

    assert answer_digest(dict(answer)) == digest  # the same answer, the same digest
    for field, value in answer.items():  # any field changed, one no plan compares too
        if field != "policies":
            changed = {**answer, field: [value, "changed"]}
            assert answer_digest(changed) != digest, field
    renamed = [{**p, "description": "edited on the policy's side"} for p in answer["policies"]]
    assert answer_digest({**answer, "policies": renamed}) == digest  # the policy's own
    live = socket_from_api(answer)  # its policies count by id and name, in the socket's key
    assert live.policy_ids and live.policy_names == ("ops",)
