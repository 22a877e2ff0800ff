"""The CLI's parse cache (reconciler/manifests/stored_cache.py): `plan` keeps the manifests'
parses in the state folder and a later plan of unchanged files reads them instead of the YAML.
A warm plan shows what a cold one shows; an edited file, a changed secret in the environment,
a corrupt or foreign cache file are all seen as they are; no secret value is ever in the file.
In this process (`cli`), against the embedded emulator (`--api local`), real files."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

from documents import policy_doc, socket_doc, write
from helpers import cli

from reconciler.manifests.loader import load
from reconciler.manifests.stored_cache import CACHE_ENV, CACHE_FILE, StoredParseCache
from reconciler.secrets import load_fingerprint_key, use_fingerprint_key

PASSWORD, NEW_PASSWORD = "cache-test-password-4f1c", "cache-test-password-9a2e"
LITERAL = "literal-password-in-the-manifest-77c3"


def _docs() -> list[dict]:
    return [policy_doc("ops")] + [
        socket_doc(f"web{i}", description=f"web {i}", policies=["ops"]) for i in range(3)
    ] + [socket_doc("db", "database", policies=["ops"], upstream={
        "type": "postgres", "username": "app", "password": {"env": "DB_PASS"}})]


def _plan(folder: Path, state: Path, password: str = PASSWORD,
          extra: dict[str, str] | None = None) -> tuple[int, dict, str]:
    code, out, err = cli(["plan", str(folder), "--api", "local", "--state", str(state),
                          "-o", "json", "--detailed-exitcode"],
                         env={"DB_PASS": password, **(extra or {})}, cwd=state.parent)
    assert code in (0, 2), err
    return code, json.loads(out), err


def _applied(tmp_path: Path) -> tuple[Path, Path]:
    folder = write(tmp_path / "m", _docs())
    state = tmp_path / "state" / "local.db"
    code, _, err = cli(["apply", str(folder), "--api", "local", "--state", str(state),
                        "--auto-approve"], env={"DB_PASS": PASSWORD}, cwd=tmp_path)
    assert code == 0, err
    return folder, state


def _changes(plan: dict) -> list[tuple[str, str]]:
    return [(c["name"], c["action"]) for c in plan["changes"]]


def test_a_warm_plan_shows_what_a_cold_one_does_and_an_edit_is_read(tmp_path: Path) -> None:
    folder, state = _applied(tmp_path)
    cache = state.parent / CACHE_FILE
    cache.unlink(missing_ok=True)
    cold = _plan(folder, state, extra={CACHE_ENV: "off"})
    assert not cache.exists()  # turned off: neither read nor written
    first = _plan(folder, state)
    assert cache.exists() and oct(cache.stat().st_mode & 0o777) == "0o600"
    warm = _plan(folder, state)
    assert cold[:2] == first[:2] == warm[:2] and cold[0] == 0

    (folder / "socket-web1.yaml").write_text(
        (folder / "socket-web1.yaml").read_text().replace("web 1", "web one"))
    code, plan, _ = _plan(folder, state)
    assert code == 2 and _changes(plan) == [("web1", "update")]
    assert [d["after"] for d in plan["changes"][0]["diffs"]] == ["web one"]


def test_a_secret_from_the_environment_is_read_on_every_plan_and_never_kept(
        tmp_path: Path) -> None:
    folder, state = _applied(tmp_path)
    assert _plan(folder, state)[0] == 0  # writes the cache
    assert _plan(folder, state)[0] == 0  # warm
    code, plan, _ = _plan(folder, state, password=NEW_PASSWORD)  # warm: the new value is seen
    assert code == 2 and _changes(plan) == [("db", "update")]
    assert plan["changes"][0]["diffs"][0]["sensitive"]

    (folder / "socket-literal.yaml").write_text(
        (folder / "socket-web0.yaml").read_text().replace("web0", "literal")
        .replace("type: http", f"type: ssh\n  upstream:\n    username: u\n"
                               f"    password: {LITERAL}"))
    _plan(folder, state, password=NEW_PASSWORD)
    text = (state.parent / CACHE_FILE).read_bytes()
    assert b"web 0" in text  # the other files are in it
    for value in (PASSWORD, NEW_PASSWORD, LITERAL):
        assert value.encode() not in text


def test_a_corrupt_or_foreign_cache_file_is_ignored(tmp_path: Path) -> None:
    folder, state = _applied(tmp_path)
    cache = state.parent / CACHE_FILE
    expected = _plan(folder, state)[:2]
    good = cache.read_bytes()

    for broken in (b"", b"\x00\xff garbage", good[:len(good) // 2], good.replace(b"web", b"wib")):
        cache.write_bytes(broken)
        code, plan, err = _plan(folder, state)
        assert (code, plan) == expected and "Traceback" not in err
        assert cache.read_bytes() == good  # written again, whole

    # a cache file whose MAC holds, saying these very files declare something else: used
    # with this state's key (what shows that the cache is read at all), ignored when made with
    # another key (another machine's, or a file committed into the checkout)
    ours = load_fingerprint_key(state.parent, os.environ)
    try:
        for key, used in ((ours, True), (b"another key" * 3, False)):
            use_fingerprint_key(key)
            cache.unlink()
            forged = StoredParseCache(cache)
            load([folder], cache=forged, env={"DB_PASS": PASSWORD})  # what save writes
            entries = json.loads(forged._body or b"")
            for docs, _ in entries.values():
                docs[0]["spec"]["description"] = "forged"
            forged._body = json.dumps(entries).encode()
            forged.save()
            code, plan, _ = _plan(folder, state)
            assert (code == 2 and ("web2", "update") in _changes(plan)) if used else (
                (code, plan) == expected)
    finally:
        use_fingerprint_key(os.urandom(32))  # this process's own key again, as at its start


def test_the_parsed_documents_are_let_go_once_the_load_is_over(tmp_path: Path) -> None:
    """The stored cache settles what it will write when the load ends, so the documents (a
    quarter of a gigabyte at 100,000 sockets) are not held through the listing and the plan."""
    mark = f"let-go-{os.getpid()}-{id(tmp_path)}"  # this test's documents, not another's
    folder = write(tmp_path / "m", [socket_doc(f"web{i}", description=f"{mark} {i}")
                                    for i in range(3)])
    for run in ("cold", "warm"):
        cache = StoredParseCache(tmp_path / "state" / CACHE_FILE)
        loaded = load([folder], cache=cache)
        assert loaded.ok and len(loaded.desired.sockets) == 3
        gc.collect()
        held = [o for o in gc.get_objects() if isinstance(o, dict)
                and isinstance(o.get("spec"), dict) and str(o["spec"].get("description", "")).startswith(mark)]
        assert held == [], run
        cache.file.parent.mkdir(exist_ok=True)
        cache.save()
        assert cache.file.exists()
