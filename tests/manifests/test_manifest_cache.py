"""The daemon's parse cache: an unchanged file is not parsed again, and any change to a file
(a rename over it, an in-place write of the same size, a deletion) is seen on the next load.
Real files; their timestamps are set into the past where a test needs a file "not just
written" (the cache never keeps a file changed within the last seconds)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from documents import policy_doc, socket_doc, write

from reconciler.manifests.cache import RACY_S, ParseCache
from reconciler.manifests.loader import load


def _age(folder: Path, seconds: float = 60) -> None:
    past = time.time() - seconds
    for path in folder.rglob("*.yaml"):
        os.utime(path, (past, past))


def test_unchanged_files_come_from_the_cache_and_changes_are_seen(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", [policy_doc("ops")] + [
        socket_doc(f"s{i}", description=f"socket {i:02d}", policies=["ops"]) for i in range(5)])
    _age(folder)
    cache = ParseCache()
    first = load([folder], cache=cache)
    assert first.ok and cache.misses == 6 and cache.hits == 0
    again = load([folder], cache=cache)
    assert again.desired == first.desired and cache.hits == 6

    # an editor's write and rename: a new inode
    target = folder / "socket-s1.yaml"
    tmp = folder / "s1.tmp"
    tmp.write_text(target.read_text().replace("socket 01", "socket 91"))
    os.replace(tmp, target)
    _age(folder)
    assert load([folder], cache=cache).desired.sockets["s1"].description == "socket 91"

    # an in-place write of the same size, even with the old mtime put back
    target = folder / "socket-s2.yaml"
    before = target.stat()
    target.write_text(target.read_text().replace("socket 02", "socket 92"))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size
    assert load([folder], cache=cache).desired.sockets["s2"].description == "socket 92"

    # a deleted file is gone, and forgotten
    (folder / "socket-s3.yaml").unlink()
    assert "s3" not in load([folder], cache=cache).desired.sockets


def test_a_file_just_written_is_parsed_every_time(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", [socket_doc("web", description="fresh")])
    cache = ParseCache()
    load([folder], cache=cache)
    load([folder], cache=cache)
    assert cache.hits == 0  # changed less than RACY_S ago: a same-tick rewrite could hide
    assert RACY_S >= 1


def _database(name: str, password: dict | str) -> dict:
    return socket_doc(name, "database", upstream={
        "type": "postgres", "username": "app", "password": password})


def test_secrets_are_resolved_again_on_every_load_of_an_unchanged_file(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", [socket_doc("web", description="plain"),
                                    _database("db", {"env": "DB_PASSWORD"})])
    _age(folder)
    cache = ParseCache()
    first = load([folder], env={"DB_PASSWORD": "first-pw-1"}, cache=cache)
    assert first.ok and first.desired.sockets["db"].secret("upstream_password").value == "first-pw-1"

    second = load([folder], env={"DB_PASSWORD": "second-pw-2"}, cache=cache)
    assert cache.hits == 2
    assert second.desired.sockets["db"].secret("upstream_password").value == "second-pw-2"
    assert second.desired.sockets["web"] == first.desired.sockets["web"]

    gone = load([folder], env={}, cache=cache)
    assert not gone.ok and "DB_PASSWORD is not set" in str(gone.diagnostics)


def test_problems_of_an_unchanged_file_are_reported_on_every_load(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", [_database("db", "plain-text-pw"),
                                    socket_doc("web", description="one")])
    (folder / "also-web.yaml").write_text((folder / "socket-web.yaml").read_text())
    _age(folder)
    cache = ParseCache()
    seen = []
    for _ in range(2):
        result = load([folder], cache=cache)
        seen.append(sorted(d.code for d in result.diagnostics))
    # (the legacy upstream fields also warn: legacy-model)
    assert {"duplicate-name", "plaintext-secret"} <= set(seen[0]), seen
    assert seen[1] == seen[0]
    assert cache.hits == 3
