"""`plan`'s memo of its last plan with nothing to do (reconciler/plan/memo.py): the same plan on
the same inputs is shown again without the manifests being loaded or anything compared; when
anything it read changed (a manifest, a secret in the environment, border0, an option) the
plan is made as always. The real CLI against the twin over HTTP, on real manifest files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from documents import SECRET, base_docs, write
from helpers import applied_project, cli, edit_by_hand

from reconciler import reconcile
from reconciler.cli import plan_memo
from reconciler.manifests.stored_cache import CACHE_ENV
from reconciler.plan.memo import PLAN_MEMO_FILE, read_memo, write_memo
from reconciler.secret_key import load_fingerprint_key
from reconciler.secrets import use_fingerprint_key

OTHER_SECRET = "plan-memo-test-password-2b7d"


@pytest.fixture
def project(tmp_path: Path, emulator) -> dict:
    """base_docs() applied to the twin; no memo yet."""
    p = applied_project(tmp_path, emulator)
    assert not _memo(p).exists()  # apply keeps none
    return p


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each load of the manifests by a plan (what a plan from the memo does not do)."""
    calls: list[int] = []
    original = reconcile.load

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(reconcile, "load", spy)
    return calls


def run(p: dict, *args: str, env: dict | None = None) -> tuple[int, str, str]:
    code, out, err = cli([*args, *p["args"]], cwd=p["dir"], env=env)
    assert "Traceback" not in err, err
    assert SECRET not in out + err and OTHER_SECRET not in out + err
    return code, out, err


def _memo(p: dict) -> Path:
    return p["dir"] / ".border0-reconciler" / PLAN_MEMO_FILE


def _plan(p: dict, *args: str, env: dict | None = None) -> tuple[int, str, str]:
    return run(p, "plan", str(p["m"]), "--detailed-exitcode", *args, env=env)


def _kept(p: dict) -> tuple[int, str, str]:
    """Plans until one is kept: the first plan after an apply records the sockets it made in
    the inventory, which a plan reads, so it keeps no memo; the second does."""
    first = _plan(p)
    assert first[0] == 0 and not _memo(p).exists()
    second = _plan(p)
    assert second == first and _memo(p).exists()
    return second


def test_a_plan_with_nothing_to_do_is_shown_again_from_its_memo(project, loads) -> None:
    p = project
    first = _kept(p)
    assert loads == [1, 1]
    assert oct(_memo(p).stat().st_mode & 0o777) == "0o600"
    assert SECRET.encode() not in _memo(p).read_bytes()
    for fmt in ("text", "json", "markdown"):
        made = _plan(p, "-o", fmt, env={CACHE_ENV: "off"})  # made as always, no memo read
        loads.clear()
        again = _plan(p, "-o", fmt)
        assert again == made and loads == [], fmt  # the same output, nothing loaded
    assert _plan(p) == first


def _edit_manifest(p: dict) -> tuple[list[str], int]:
    docs = base_docs()
    docs[1]["spec"]["description"] = "the web site, edited"
    write(p["m"], docs)
    return [], 2


def _change_secret(p: dict) -> tuple[list[str], int]:
    p["env_file"].write_text(f"DB_PASSWORD={OTHER_SECRET}\n")
    return [], 2


def _edit_in_border0(p: dict) -> tuple[list[str], int]:
    client = p["client"]
    edit_by_hand(client, client.find_socket("box"), description="edited in the portal")
    return [], 2


def _another_option(p: dict) -> tuple[list[str], int]:
    return ["--max-delete", "5"], 0


def _state_kept_elsewhere(p: dict) -> tuple[list[str], int]:
    """The inventory the plan reads is part of its inputs."""
    (p["dir"] / ".border0-reconciler" / "inventory.json").unlink()
    return [], 0


@pytest.mark.parametrize("change", [_edit_manifest, _change_secret, _edit_in_border0,
                                    _another_option, _state_kept_elsewhere])
def test_a_plan_is_made_again_when_anything_the_memo_read_changed(project, loads,
                                                                  change) -> None:
    p = project
    _kept(p)
    args, expected = change(p)
    loads.clear()
    code, out, err = _plan(p, *args)
    assert loads == [1] and code == expected, out + err
    if change is _edit_in_border0:
        assert "edited in the portal" in out  # the drift is shown, from the listing taken


def test_other_schemas_make_the_plan_again(project, loads, monkeypatch) -> None:
    """A manifest the schemas now refuse is not shown as planned before (a checkout whose
    schemas changed, its Python left alone)."""
    p = project
    _kept(p)
    monkeypatch.setattr(plan_memo, "schemas_digest", lambda: "other schemas")
    loads.clear()
    assert _plan(p)[0] == 0 and loads == [1]


def test_no_memo_with_changes_a_saved_plan_a_full_refresh_or_the_cache_off(project,
                                                                           loads) -> None:
    p = project
    assert _plan(p)[0] == 0  # the inventory recorded (`_kept`)
    assert _plan(p, env={CACHE_ENV: "off"})[0] == 0 and not _memo(p).exists()
    assert _plan(p, "--out", str(p["dir"] / "plan.json"))[0] == 0 and not _memo(p).exists()
    assert _plan(p, "--refresh", "full")[0] == 0 and not _memo(p).exists()
    _edit_manifest(p)
    assert _plan(p)[0] == 2 and not _memo(p).exists()  # a plan with changes is not kept
    write(p["m"], base_docs())
    assert _plan(p)[0] == 0 and _memo(p).exists()
    loads.clear()
    for args in (["--out", str(p["dir"] / "plan.json")], ["--refresh", "full"]):
        assert _plan(p, *args)[0] == 0
    assert loads == [1, 1]  # neither shows a kept plan


def test_a_corrupt_or_foreign_memo_is_no_memo(project, loads) -> None:
    p = project
    _kept(p)
    good = _memo(p).read_bytes()
    for broken in (b"", b"\x00garbage", good[:len(good) // 2],
                   good.replace(b"\"inputs\"", b"\"inpxts\"")):
        assert broken != good
        _memo(p).write_bytes(broken)
        loads.clear()
        assert _plan(p)[0] == 0 and loads == [1]
        assert _memo(p).read_bytes() == good  # written again

    # the memo as this state's key made it, sealed with another key: not read
    ours = load_fingerprint_key(p["dir"] / ".border0-reconciler", os.environ)
    try:
        use_fingerprint_key(ours)
        memo = read_memo(_memo(p))
        assert memo is not None
        use_fingerprint_key(b"another key" * 3)
        write_memo(_memo(p), memo)
    finally:
        use_fingerprint_key(os.urandom(32))  # this process's own key again, as at its start
    loads.clear()
    assert _plan(p)[0] == 0 and loads == [1]


def _file_secret(p: dict) -> None:
    """db's password from a file beside the manifests (`{file: ...}`), which a memo's inputs
    do not read."""
    (p["m"] / "db.pass").write_text(SECRET + "\n")
    docs = base_docs()
    docs[2]["spec"]["upstream"]["password"] = {"file": "db.pass"}
    write(p["m"], docs)


def _token(p: dict) -> None:
    """A connector declaring a token: its destination is read by every plan."""
    write(p["m"], [*base_docs(), {
        "apiVersion": "border0-reconciler/v1", "kind": "Connector", "metadata": {"name": "edge"},
        "spec": {"tokens": [{"name": "edge-a", "expiresIn": "90d",
                             "destination": {"file": str(p["dir"] / "edge-a.token")}}]}}])


@pytest.mark.parametrize("setup", [_file_secret, _token])
def test_a_plan_that_read_more_than_the_files_and_the_listing_keeps_no_memo(project, loads,
                                                                             setup) -> None:
    p = project
    setup(p)
    assert run(p, "apply", str(p["m"]), "--auto-approve")[0] == 0
    loads.clear()
    for _ in range(3):
        assert _plan(p)[0] == 0
    assert not _memo(p).exists() and loads == [1, 1, 1]


def test_a_file_the_loader_refuses_unread_is_refused_unread(project) -> None:
    """The files are hashed as the loader reads them: a FIFO among the manifests (reading it
    would block for ever) is the loader's error, in bounded time, memo or not."""
    p = project
    _kept(p)
    os.mkfifo(p["m"] / "pipe.yaml")
    code, _, err = _plan(p)
    assert code == 1 and "pipe.yaml" in err and "not a regular file" in err
