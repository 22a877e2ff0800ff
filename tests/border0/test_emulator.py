"""The emulator as border0 clients see it: raw HTTP details, the process, persistence."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
from helpers import REPO, cli

from reconciler.border0.emulator import EmbeddedEmulator
from reconciler.border0.emulator.store import Store


def http(emulator, token: str | None = None) -> httpx.Client:
    token = emulator.token if token is None else token
    return httpx.Client(base_url=emulator.url + "/", headers={"Authorization": f"Bearer {token}"})


def test_error_bodies_everywhere(emulator):
    with http(emulator) as h:
        for response, status in (
            (h.get("no/such/route"), 404),
            (h.get("socket/missing"), 404),
            (h.post("socket", content=b"{not json", headers={"content-type": "application/json"}),
             400),
            (h.post("socket", json={"name": 5}), 400),
            (h.get("sockets", params={"page": "x"}), 400),
            (h.get("policies/find"), 400),
            (h.put("socket/missing/policy", json={"actions": [{"action": "zap", "id": "1"}]}),
             400),
        ):
            assert response.status_code == status, response.text
            body = response.json()
            assert body["status_code"] == status and body["error_message"]
    with http(emulator, "wrong") as h:
        response = h.get("socket")
        assert response.status_code == 401
        assert response.json() == {"status_code": 401,
                                   "error_message": "unauthorized: missing or invalid token"}


def test_delete_is_204_without_body_and_slashes_are_tolerated(emulator):
    with http(emulator) as h:
        assert h.post("socket/", json={"name": "a", "socket_type": "ssh"}).status_code == 200
        assert h.get("socket/a/").json()["name"] == "a"
        assert [s["name"] for s in h.get("sockets/").json()["list"]] == ["a"]
        assert [s["name"] for s in h.get("socket").json()] == ["a"]  # legacy bare array
        response = h.delete("socket/a/")
        assert response.status_code == 204 and response.content == b""
        assert h.delete("socket/a").status_code == 404


def test_pagination_fields_and_filters(emulator):
    with http(emulator) as h:
        for i in range(5):
            kind = "ssh" if i % 2 else "http"
            h.post("socket", json={"name": f"n{i}", "socket_type": kind,
                                   "description": "Findme" if i == 3 else ""})
        page = h.get("sockets", params={"page": 3, "page_size": 2}).json()
        assert page["pagination"] == {"current_page": 3, "next_page": -1, "total_records": 5,
                                      "total_pages": 3, "records_per_page": 2,
                                      "actual_page_size": 1}
        first = h.get("sockets", params={"page_size": 2}).json()["pagination"]
        assert first["next_page"] == 2
        by_type = h.get("sockets", params={"socket_type": "ssh"}).json()["list"]
        assert [s["name"] for s in by_type] == ["n1", "n3"]
        assert [s["name"] for s in h.get("sockets", params={"name": "n4"}).json()["list"]] == [
            "n4"]
        assert [s["name"] for s in h.get("sockets", params={"search": "findme"}).json()["list"]
                ] == ["n3"]


def test_pages_count_from_the_current_state_after_a_write(emulator_factory, tmp_path):
    """Pages are numbered as border0 numbers them (page p = rows (p-1)*size ...), whatever the
    twin keeps to make a walk linear: a delete before page 2, or another process's write to
    the same database file, moves the rows on the next read."""
    db = str(tmp_path / "twin.db")
    emulator = emulator_factory(db_path=db)

    def names(page: int) -> list[str]:
        answer = h.get("sockets", params={"page": page, "page_size": 2}).json()
        return [s["name"] for s in answer["list"]]

    with http(emulator) as h:
        for i in range(6):
            h.post("socket", json={"name": f"w{i}", "socket_type": "ssh"})
        assert [names(1), names(2), names(3)] == [["w0", "w1"], ["w2", "w3"], ["w4", "w5"]]
        assert h.delete("socket/w1").status_code == 204
        assert [names(1), names(2), names(3)] == [["w0", "w2"], ["w3", "w4"], ["w5"]]
        other = Store(db)  # a second `--api local` on the same file
        try:
            other.delete_socket("w0")
        finally:
            other.close()
        assert [names(2), names(3)] == [["w4", "w5"], []]
        assert names(1) == ["w2", "w3"]


def test_policy_side_attach_and_rename(emulator):
    with http(emulator) as h:
        sock = h.post("socket", json={"name": "s", "socket_type": "tls"}).json()
        pol = h.post("policies", json={"name": "p", "org_wide": True,
                                       "policy_data": {"version": "v1"}}).json()
        r = h.put(f"policy/{pol['id']}/socket", json={"actions": [{"action": "add", "id": "s"}]})
        assert r.json()["socket_ids"] == [sock["socket_id"]]
        assert [p["id"] for p in h.get("socket/s").json()["policies"]] == [pol["id"]]
        renamed = h.put(f"policy/{pol['id']}", json={"name": "p2", "org_wide": False,
                                                     "policy_data": {"version": "v1"}}).json()
        assert renamed["name"] == "p2" and renamed["org_wide"] is True  # PUT keeps org_wide
        assert h.get("policies", params={"socket_id": sock["socket_id"]}).json()[0]["id"] == pol[
            "id"]
        h.put(f"policy/{pol['id']}/socket", json={"actions": [{"action": "remove", "id": "s"}]})
        assert h.get("socket/s").json()["policies"] == []
        renamed_socket = h.put("socket/s", json={"name": "s2"}).json()
        assert renamed_socket["dnsname"] == "s2-local.border0.io"
        assert h.put("socket/s2", json={"socket_type": "ssh"}).status_code == 400


def test_embedded_state_survives_restart(tmp_path):
    db = str(tmp_path / "state.db")
    with EmbeddedEmulator() as emu:
        url = emu.start(db, "t", org="acme")
        with httpx.Client(headers={"Authorization": "Bearer t"}) as h:
            made = h.post(url + "/socket", json={"name": "keep", "socket_type": "ssh"}).json()
            assert made["dnsname"] == "keep-acme.border0.io"
    with EmbeddedEmulator() as emu:
        url = emu.start(db, "t", org="acme")
        with httpx.Client(headers={"Authorization": "Bearer t"}) as h:
            again = h.get(url + "/socket/keep").json()
            assert again == made
            other = h.post(url + "/socket", json={"name": "next", "socket_type": "ssh"}).json()
            assert other["socket_tcp_ports"] != made["socket_tcp_ports"]


def test_embedded_starts_and_answers():
    """How fast it starts is a figure for benchmarks/, not an assertion here."""
    with EmbeddedEmulator() as emu:
        url = emu.start(None, "t")
        assert httpx.get(url + "/serverinfo", headers={"Authorization": "Bearer t"}).is_success


@pytest.mark.slow
def test_process_restarts_on_same_port_and_db(emulator_process):
    proc = emulator_process()
    client = proc.client()
    client.create_socket({"name": "durable", "socket_type": "database"})
    url = proc.url
    assert proc.stop() == 0  # SIGTERM: graceful, exit 0
    proc.start()
    assert proc.url == url
    assert client.get_socket("durable")["upstream_type"] == "mysql"


@pytest.mark.slow
def test_process_sigint_exits_zero(emulator_process):
    proc = emulator_process()
    proc.proc.send_signal(signal.SIGINT)
    assert proc.proc.wait(20) == 0


def test_cli_refuses_to_start_without_token():
    code, _out, err = cli(["emulator", "--listen", "127.0.0.1:0"],
                         env={"BORDER0_EMULATOR_TOKEN": ""})
    assert code == 1
    assert err.strip() == "error: the emulator needs a token: --token or BORDER0_EMULATOR_TOKEN"


@pytest.mark.parametrize("args, message", [
    (["--listen", "nowhere"], "expected HOST:PORT"),
    (["--listen", "127.0.0.1:0", "--db", "/nonexistent/dir/x.db"], "cannot use database"),
])
def test_cli_bad_flags_are_one_line(args, message):
    code, _out, err = cli(["emulator", "--token", "t", *args])
    assert code == 1 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_body_is_json_whatever_the_content_type(emulator):
    with http(emulator) as h:
        response = h.post("socket", content=b'{"name":"form","socket_type":"ssh"}',
                          headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200 and response.json()["name"] == "form"


def _readme_examples() -> list[tuple[str, str]]:
    """(command, expected answer) pairs from the curl block of docs/emulator.md."""
    text = (REPO / "docs" / "emulator.md").read_text()
    blocks = [b.split("```")[0] for b in text.split("```sh\n")[1:]]
    block = next(b for b in blocks if "curl" in b)
    pairs: list[tuple[str, str]] = []
    command, expected = "", ""
    for line in block.splitlines():
        if line.startswith("# "):
            expected += line[2:].strip() if expected else line[2:]
        elif line.startswith("API="):
            continue
        elif command.endswith("\\"):
            command = command[:-1] + line.strip()
        else:
            if command:
                pairs.append((command, expected))
                command, expected = "", ""
            command = line
    pairs.append((command, expected))
    return pairs


@pytest.mark.slow
def test_readme_curl_examples_work(emulator_process):
    import json
    import re
    import shutil
    import subprocess

    if shutil.which("curl") is None:
        pytest.fail("curl is needed to check the examples of docs/emulator.md")
    proc = emulator_process(token="s3cret")
    examples = _readme_examples()
    assert len(examples) >= 8
    placeholder = re.compile(r"[0-9a-f]{8}-…")
    ids: dict[str, str] = {}
    for command, expected in examples:
        for short, real in ids.items():
            command = command.replace(short, real)
        assert "…" not in command, command
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              env={"API": proc.url, "PATH": os.environ["PATH"]}, timeout=30,
                              check=False)
        answer = done.stdout.strip()
        pattern = re.escape(placeholder.sub("\0", expected)).replace("\0", "[0-9a-f-]+")
        pattern = pattern.replace(re.escape("…"), ".*")
        assert re.fullmatch(pattern, answer, re.DOTALL), f"{command}\n{answer}\n!~ {expected}"
        for short in placeholder.findall(expected):
            if short not in ids and answer.startswith("{"):
                ids[short] = json.loads(answer).get("id") or json.loads(answer)["socket_id"]


def test_two_stores_on_one_file_allocate_distinct_ports(tmp_path):
    from reconciler.border0.emulator import Store

    db = str(tmp_path / "shared.db")
    first, second = Store(db), Store(db)  # two `--api local` processes on the same state
    a = first.create_socket({"name": "a", "socket_type": "tls"})
    b = second.create_socket({"name": "b", "socket_type": "tls"})
    assert a["socket_tcp_ports"] != b["socket_tcp_ports"]
    assert [s["name"] for s in first.list_sockets().items] == ["a", "b"]
    first.close()
    second.close()
