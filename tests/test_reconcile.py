"""The one pipeline (reconciler/reconcile.py) in its halves, against the in-process emulator over
real HTTP: `prepare` (load while listing, then plan) and `carry_out` (apply, re-list), which
`plan`, `apply`, `run` and `run --once` all go through."""

from __future__ import annotations

from pathlib import Path

from documents import base_docs, opts, socket_doc, write
from helpers import sent

from reconciler.border0.errors import Unauthorized
from reconciler.reconcile import Stage, carry_out, observe, prepare, reconcile


def test_prepare_then_carry_out_is_what_reconcile_does(emulator, tmp_path: Path) -> None:
    folder = write(tmp_path / "m", base_docs())
    client = emulator.client()
    prepared = prepare([folder], client, opts())
    assert prepared.ok and prepared.stage is Stage.DONE and prepared.applied is None
    assert prepared.plan is not None and len(prepared.plan.changes) == 6
    assert client.list_sockets() == []  # preparing writes nothing

    done = carry_out(prepared, client, opts())
    assert done.ok and done.stage is Stage.DONE and done.error is None
    assert done.applied is not None and len(done.applied.succeeded) == 6
    assert sorted(done.actual.sockets) == ["box", "db", "web"]  # re-listed
    again = reconcile([folder], client, opts())
    assert again.ok and not again.plan.has_changes and again.applied is None


def test_relist_off_sends_no_list_after_applying(emulator, tmp_path: Path) -> None:
    folder = write(tmp_path / "m", base_docs())
    client = emulator.client()
    prepared = prepare([folder], client, opts(relist=False))
    before = sent(client, "GET")
    done = carry_out(prepared, client, opts(relist=False))
    assert done.ok
    assert done.actual is prepared.actual  # what was listed before applying, not re-listed
    without_relist = sent(client, "GET") - before

    write(tmp_path / "m", [*base_docs(), socket_doc("extra", description="x")])
    prepared = prepare([folder], client, opts())
    before = sent(client, "GET")
    done = carry_out(prepared, client, opts())
    assert "extra" in done.actual.sockets
    assert sent(client, "GET") - before > without_relist  # the re-list


def test_the_manifests_errors_win_over_borders0s(emulator, tmp_path: Path) -> None:
    """Both fail: the user fixes the manifests first, as `plan` has always said."""
    folder = write(tmp_path / "m", [socket_doc("web", description="w")])
    (folder / "bad.yaml").write_text("apiVersion: border0-reconciler/v1\nkind: Socket\n")
    bad_token = emulator.client(token="wrong-token")
    result = prepare([folder], bad_token, opts())
    assert not result.ok and result.stage is Stage.LOAD
    assert result.error == "the manifests have 2 errors; nothing was planned"
    assert [d.message for d in result.diagnostics if "bad.yaml" in str(d)] == [
        d.message for d in result.diagnostics]  # no word of the token

    (folder / "bad.yaml").unlink()
    result = prepare([folder], bad_token, opts())
    assert result.stage is Stage.FETCH and isinstance(result.cause, Unauthorized)
    assert result.error.startswith("listing border0 failed: ")
    assert result.desired is not None and "web" in result.desired.sockets


def test_a_refused_plan_has_one_message_for_every_caller(emulator, tmp_path: Path) -> None:
    """Objects of another instance: each is a conflict; the one message names the first and
    counts the rest (the CLI prints exactly this; the daemon reports it)."""
    folder = write(tmp_path / "m", base_docs())
    client = emulator.client()
    assert reconcile([folder], client, opts(instance="other")).ok
    result = prepare([folder], client, opts())
    assert not result.ok and result.stage is Stage.PLAN and result.plan is not None
    conflicts = result.plan.conflicts
    assert len(conflicts) == 4
    assert result.error == (
        f"the plan cannot be applied: {conflicts[0].message} (and 3 more)")
    assert reconcile([folder], client, opts()).error == result.error
    assert observe([folder], client, opts()).ok  # observing plans nothing, so refuses nothing


def test_unstable_and_bad_instance_stop_before_border0_is_asked(emulator, tmp_path: Path) -> None:
    client = emulator.client()
    result = prepare([tmp_path], client, opts(instance="Not An Instance"))
    assert result.stage is Stage.LOAD and "instance" in result.error
    assert sent(client, "GET") == 0
    assert prepare([], client, opts()).error == "no manifest path given"
