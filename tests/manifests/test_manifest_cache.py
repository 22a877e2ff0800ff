"""The daemon's parse cache: an unchanged file is not parsed again, and any change to a file
(a rename over it, an in-place write of the same size, a deletion) is seen on the next load.
Real files; their timestamps are set into the past where a test needs a file "not just
written" (the cache never keeps a file changed within the last seconds)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

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


def _typed(name: str, service: str, password: str) -> str:
    """A socket in the typed form (a legacy one is checked again on every load: its warning)."""
    block = {"ssh": ("sshServiceConfiguration", "sshServiceType", "standardSshServiceConfiguration",
                     "sshAuthenticationType"),
             "database": ("databaseServiceConfiguration", "databaseServiceType",
                          "standardDatabaseServiceConfiguration", "authenticationType")}[service]
    extra = "        protocol: postgres\n" if service == "database" else ""
    return (f"apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: {name}\n"
            f"spec:\n  type: {service}\n  upstream:\n    serviceType: {service}\n"
            f"    {block[0]}:\n      {block[1]}: standard\n      {block[2]}:\n"
            f"        hostname: h.internal\n        port: 22\n{extra}"
            f"        {block[3]}: username_and_password\n"
            f"        usernameAndPasswordAuthConfiguration:\n          username: app\n"
            f"          password: {password}\n")


def _secret_tree(tmp_path: Path) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "db.yaml").write_text(_typed("db", "database", "{env: DB_PASSWORD}"))
    (folder / "box.yaml").write_text(_typed("box", "ssh", "{file: pw.txt}"))
    (folder / "web.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: web\n"
        "spec:\n  type: http\n  description: no secret\n")
    (folder / "pw.txt").write_text("from-the-file\n")
    _age(folder)
    return folder


def _password(loaded: Any, name: str) -> str:
    assert loaded.ok, loaded.diagnostics
    [secret] = loaded.desired.sockets[name].secrets()
    return secret.value


def test_an_unchanged_file_has_its_secrets_read_again_from_the_environment(tmp_path):
    """The daemon's environment can differ between loads (a restart with another env file;
    `load`'s `env`): the cache keeps a socket's spec only while its secrets read as before."""
    folder = _secret_tree(tmp_path)
    cache = ParseCache()
    first = load([folder], cache=cache, env={"DB_PASSWORD": "one"})
    assert _password(first, "db") == "one"

    same = load([folder], cache=cache, env={"DB_PASSWORD": "one"})
    assert cache.hits == 3
    assert same.desired.sockets["db"] is first.desired.sockets["db"]  # not built again

    other = load([folder], cache=cache, env={"DB_PASSWORD": "two"})
    assert _password(other, "db") == "two"

    gone = load([folder], cache=cache, env={})
    assert not gone.ok and "DB_PASSWORD is not set" in gone.diagnostics[0].message
    assert _password(load([folder], cache=cache, env={"DB_PASSWORD": "one"}), "db") == "one"


def test_an_unchanged_file_has_its_secret_files_read_again(tmp_path):
    """A secret file rotated (a Kubernetes Secret's mount) is seen on the next load although
    the manifest naming it is unchanged."""
    folder = _secret_tree(tmp_path)
    cache = ParseCache()
    env = {"DB_PASSWORD": "one"}
    assert _password(load([folder], cache=cache, env=env), "box") == "from-the-file"

    (folder / "pw.txt").write_text("rotated\n")
    again = load([folder], cache=cache, env=env)
    assert cache.hits == 3 and _password(again, "box") == "rotated"


def _connector(name: str, **spec: Any) -> dict:
    return {"apiVersion": "border0-reconciler/v1", "kind": "Connector",
            "metadata": {"name": name}, "spec": spec}


def test_an_unchanged_connector_file_is_not_checked_again_and_its_token_files_are_seen(
        tmp_path):
    """A file of Connectors is kept as checked like any other (a plan of an unchanged tree
    validates nothing again), yet whether a token's destination file holds a token is looked
    at on every load: one deleted or written since means a new token or none."""
    folder = write(tmp_path / "m", [
        _connector("edge", description="edge hosts",
                   tokens=[{"name": "edge-1", "destination": {"file": "edge.token"}}]),
        _connector("plain", description="no tokens")])
    _age(folder)
    cache = ParseCache()
    first = load([folder], cache=cache)
    assert first.ok, first.diagnostics
    assert not first.desired.connectors["edge"].tokens[0].destination_present

    (folder / "edge.token").write_text("a-token\n")
    again = load([folder], cache=cache)
    assert cache.hits == 2 and again.ok  # a file each
    assert again.desired.connectors["edge"].tokens[0].destination_present
    assert again.desired.connectors["plain"] is first.desired.connectors["plain"]  # as checked


def test_a_socket_of_an_unchanged_file_is_checked_against_the_connectors_of_this_load(
        tmp_path):
    """Which connectors exist is this load's question: a Connector manifest deleted while the
    socket's file is unchanged makes the socket's `spec.connectors` name an unknown
    connector, as a load without the cache says."""
    folder = write(tmp_path / "m", [_connector("edge", description="edge hosts"),
                                    socket_doc("web", connectors=["edge"])])
    _age(folder)
    cache = ParseCache()
    assert load([folder], cache=cache).ok
    (folder / "connector-edge.yaml").unlink()
    again = load([folder], cache=cache)
    assert cache.hits == 1
    assert [d.code for d in again.diagnostics] == ["missing-connector"]
    assert [d.code for d in load([folder]).diagnostics] == ["missing-connector"]
