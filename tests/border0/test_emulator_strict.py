"""The emulator as a strict twin of border0: what it refuses, hides and normalises.

Raw HTTP against the in-process emulator (a real server on a random loopback port). Each test
names the border0 source the behaviour follows (see reconciler/border0/emulator/*.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import REPO

from reconciler.border0.emulator import allowlist
from reconciler.clock import ManualClock


def http(emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.url + "/",
                        headers={"Authorization": f"Bearer {emulator.token}"})


def refused(response: httpx.Response, *words: str) -> str:
    """The 400 answer's message, in border0's error shape, after checking it names `words`."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"status_code", "error_message"} and body["status_code"] == 400
    for word in words:
        assert word in body["error_message"], body
    return body["error_message"]


SDK_SOCKET = {  # what border0-go's CreateSocket sends (client/socket.go, Socket struct)
    "name": "web", "socket_id": "", "socket_type": "http", "upstream_type": "http",
    "recording_enabled": False, "description": "d", "tags": {"team": "a"},
}


def test_unknown_and_read_only_fields_are_refused_by_name(emulator):
    with http(emulator) as h:
        refused(h.post("socket", json={**SDK_SOCKET, "labels": {"a": "b"}}), "unknown", "labels")
        refused(h.post("socket", json={**SDK_SOCKET, "socket_tcp_ports": [20001]}),
                "read-only", "socket_tcp_ports")
        refused(h.post("socket", json={**SDK_SOCKET, "description": "x" * 201}),
                "description", "200")
        refused(h.post("socket", json={**SDK_SOCKET, "tags": {"a": 1}}), "tags.a")
        refused(h.post("socket", json={**SDK_SOCKET, "upstream_configuration": {
            "http_service_configuration": {"nonsense": 1}}}), "nonsense")
        assert h.get("sockets").json()["list"] == []  # nothing half-made
        made = h.post("socket", json=SDK_SOCKET)
        assert made.status_code == 200, made.text
        # updateSocketRequest has no protected_* fields: a PUT cannot carry them.
        refused(h.put("socket/web", json={"name": "web", "protected_socket": True}),
                "protected_socket")
        refused(h.put("socket/web", json={"name": "web", "created_at": "x"}), "created_at")
        refused(h.get("sockets", params={"pagesize": 5}), "pagesize")


def test_what_border0s_own_tools_send_is_taken(emulator):
    """The SDK's read-modify-write (examples/01-update-socket) sends back socket_id, dnsname and
    policies; its Policy struct sends id, org_id, created_at, socket_ids, deleted, tag_rules."""
    with http(emulator) as h:
        sock = h.post("socket", json=SDK_SOCKET).json()
        policy = {"id": "", "name": "devs", "version": "v1", "description": "", "org_id": "",
                  "org_wide": False, "policy_data": {"version": "v1", "action": ["http"],
                  "condition": {"who": {"email": ["a@example.com"]}, "where": {}, "when": {}}},
                  "created_at": "0001-01-01T00:00:00Z", "socket_ids": None, "deleted": False,
                  "tag_rules": [{"env": "prod"}]}
        made = h.post("policies", json=policy)
        assert made.status_code == 200, made.text
        h.put(f"socket/{sock['socket_id']}/policy",
              json={"actions": [{"action": "add", "id": made.json()["id"]}]}).raise_for_status()
        fetched = h.get("socket/web", params={"activeOnly": "true"}).json()
        echo = {k: fetched[k] for k in ("name", "socket_id", "socket_type", "upstream_type",
                                        "recording_enabled", "tags", "dnsname", "policies")}
        updated = h.put("socket/web", json={**echo, "description": "updated description"})
        assert updated.status_code == 200, updated.text
        assert updated.json()["description"] == "updated description"
        assert [p["id"] for p in updated.json()["policies"]] == [made.json()["id"]]


def test_every_allow_list_entry_names_its_source():
    entries = [*allowlist.ALLOWED_FIELDS, *allowlist.ALLOWED_QUERY]
    assert entries and all(e.source.startswith("borderzero/") and ".go" in e.source
                           for e in entries)
    assert all(src.startswith("borderzero/") for _, src in allowlist.EXTRA_OPERATIONS.values())


@pytest.mark.parametrize("mode, shown", [("omit", None), ("mask", "********"),
                                         ("clear", "hunter2")])
def test_secrets_on_read(emulator_factory, mode, shown):
    emu = emulator_factory(secrets_on_read=mode)
    body = {"name": "db", "socket_type": "database", "upstream_type": "postgres",
            "upstream_username": "app", "upstream_password": "hunter2",
            "protected_socket": True, "protected_username": "p", "protected_password": "hunter2"}
    with http(emu) as h:
        answers = [h.post("socket", json=body).json(), h.get("socket/db").json(),
                   h.get("sockets").json()["list"][0], h.get("socket").json()[0]]
        for answer in answers:
            assert answer.get("upstream_password") == shown
            assert answer.get("protected_password") == shown
            assert ("upstream_password" in answer) is (mode != "omit")
            assert answer["upstream_username"] == "app"
        if mode == "omit":
            assert "hunter2" not in h.get("sockets").text


V2 = {"permissions": {"ssh": {"shell": {}, "allowed_usernames": ["root"]}, "http": {}},
      "condition": {"who": {"email": ["a@example.com"], "group": [], "service_account": []},
                    "where": {"allowed_ip": ["0.0.0.0/0"]}, "when": {}}}


def test_policies_v1_and_v2_as_the_provider_sends_them(emulator):
    """TF border0/resource_policy.go: top-level version "v1"/"v2"; v2 data is the SDK's
    PolicyDataV2 (permissions, no version key); PUT never changes org_wide."""
    with http(emulator) as h:
        v2 = h.post("policies", json={"name": "two", "version": "v2", "policy_data": V2,
                                      "org_wide": True, "tag_rules": []})
        assert v2.status_code == 200, v2.text
        got = h.get(f"policy/{v2.json()['id']}").json()
        assert got["version"] == "v2" and got["policy_data"] == V2 and got["org_wide"] is True
        refused(h.post("policies", json={"name": "bad", "version": "v2",
                                         "policy_data": {**V2, "version": "v2"}}),
                "policy_data.version")
        refused(h.post("policies", json={"name": "bad", "version": "v2", "policy_data": {
            **V2, "condition": {"who": {"domain": ["example.com"]}}}}), "domain")
        refused(h.post("policies", json={"name": "bad", "version": 1, "policy_data": V2}),
                "version")
        # v2 data under a v1 (or missing) version: v1 has no `permissions`.
        refused(h.post("policies", json={"name": "bad", "policy_data": V2}), "permissions")
        v1 = h.post("policies", json={"name": "one", "policy_data": {
            "version": "v1", "action": ["ssh"], "condition": {"who": {"domain": ["x.org"]}}}})
        assert v1.json()["version"] == "v1"
        put = h.put(f"policy/{v2.json()['id']}", json={
            "name": "two", "version": "v2", "org_wide": False, "description": "",
            "policy_data": {**V2, "permissions": {"tls": {}}}})
        assert put.status_code == 200, put.text
        assert put.json()["org_wide"] is True and put.json()["policy_data"]["permissions"] == {
            "tls": {}}
        # A PUT without a version is checked against the policy's own version.
        refused(h.put(f"policy/{v2.json()['id']}", json={"policy_data": {"action": ["ssh"]}}),
                "action")


def test_upstream_type_defaults_as_the_provider_expects(emulator):
    """TF internal/schemautil/socket.go (ToSocket): the socket type, mysql for databases."""
    with http(emulator) as h:
        for kind, expected in (("tls", "tls"), ("ssh", "ssh"), ("http", "http"),
                               ("database", "mysql"), ("https", "https")):
            made = h.post("socket", json={"name": f"s-{kind}", "socket_type": kind}).json()
            assert made["upstream_type"] == expected, made


def test_deleted_socket_is_answered_by_id_unless_active_only(emulator):
    """TF border0/resource_socket.go (fetchSocket): by id border0 answers a soft-deleted
    socket, by name 404; the SDK asks with ?activeOnly=true (client/socket.go)."""
    with http(emulator) as h:
        sid = h.post("socket", json={"name": "gone", "socket_type": "ssh"}).json()["socket_id"]
        assert h.delete(f"socket/{sid}").status_code == 204
        ghost = h.get(f"socket/{sid}")
        assert ghost.status_code == 200 and ghost.json()["name"] == "gone"
        assert h.get(f"socket/{sid}", params={"activeOnly": "true"}).status_code == 404
        assert h.get("socket/gone").status_code == 404
        assert h.get("sockets").json()["list"] == [] and h.get("socket").json() == []
        assert h.delete(f"socket/{sid}").status_code == 404
        assert h.put(f"socket/{sid}", json={"description": "x"}).status_code == 404
        again = h.post("socket", json={"name": "gone", "socket_type": "ssh"}).json()
        assert again["socket_id"] != sid


UPSTREAM = {"service_type": "http", "http_service_configuration": {
    "http_service_type": "standard",
    "standard_http_service_configuration": {
        "hostname": "h", "port": 80, "scheme": "http", "host_header": "h"}}}
UNMANAGED = {"recording_enabled": True,
             "cloud_authentication_email_allowed_addressses": ["a@example.com"],
             "cloud_authentication_email_allowed_domains": ["example.com"]}


def links(h, socket: str) -> tuple[list[str], list[dict]]:
    """A socket's connector ids and upstream configurations, read as border0's provider reads
    them: from the two sub-resources (terraform-provider-border0 border0/resource_socket.go)."""
    connectors = h.get(f"socket/{socket}/connectors").json()["list"]
    configs = h.get(f"socket/{socket}/upstream_configurations").json()["list"]
    return [c["connector_id"] for c in connectors], [c["config"] for c in configs]


def test_unmanaged_fields_are_stored_and_a_put_replaces_them(emulator):
    """Stored and answered; a PUT that leaves them out resets them (rules.UPDATABLE: the worst
    case the sources allow), and keeps what only a create can set (protected_*)."""
    with http(emulator) as h:
        connector = h.post("connector", json={"name": "c-1", "connector_id": ""}).json()
        bound = {"connector_ids": [connector["connector_id"]], "upstream_configuration": UPSTREAM,
                 "display_name": "Web App"}
        made = h.post("socket", json={"name": "app", "socket_type": "http",
                                      "upstream_type": "https", "protected_socket": True,
                                      "cloud_authentication_enabled": True, **UNMANAGED,
                                      **bound})
        assert made.status_code == 200, made.text
        got = h.get("socket/app").json()
        assert {k: got[k] for k in UNMANAGED} == UNMANAGED
        assert got["connectors"] == [{"connector_id": connector["connector_id"], "name": "c-1"}]
        assert links(h, "app") == ([connector["connector_id"]], [UPSTREAM])
        kept = h.put("socket/app", json={"name": "app", "upstream_type": "https", **UNMANAGED,
                                         **bound, "description": "new"}).json()
        assert {k: kept[k] for k in UNMANAGED} == UNMANAGED and kept["description"] == "new"
        assert links(h, "app") == ([connector["connector_id"]], [UPSTREAM])
        reset = h.put("socket/app", json={"name": "app", "description": "newer"}).json()
        assert reset["connectors"] == [] and reset["recording_enabled"] is False
        assert links(h, "app") == ([], [])
        assert reset["upstream_type"] == "http"  # not sent: the type's default again
        assert reset["protected_socket"] is True and reset["cloud_authentication_enabled"]


def test_reads_are_stale_for_the_delay_after_a_write(emulator_factory):
    """On the twin's clock (a ManualClock): stale until exactly the delay has passed."""
    clock = ManualClock()
    emu = emulator_factory(read_after_write_delay_ms=1500, clock=clock)
    with http(emu) as h:
        assert h.get("serverinfo").json() == {"data_consistency": {"rx_after_tx_delay_ms": 1500}}
        made = h.post("socket", json={"name": "s", "socket_type": "ssh", "description": "v1"})
        assert made.status_code == 200  # the write's own answer is current
        assert h.get("socket/s").status_code == 404
        assert h.get(f"socket/{made.json()['socket_id']}").status_code == 404
        assert h.get("sockets").json()["list"] == []
        clock.advance(1.4)
        assert h.get("socket/s").status_code == 404  # still within the delay
        clock.advance(0.1)
        assert h.get("socket/s").status_code == 200
        h.put("socket/s", json={"description": "v2"}).raise_for_status()
        assert h.get("socket/s").json()["description"] == "v1"  # the old object
        clock.advance(1.5)
        assert h.get("socket/s").json()["description"] == "v2"
        h.delete("socket/s").raise_for_status()
        assert h.get("socket/s").status_code == 200  # still there for the replica
        assert [s["name"] for s in h.get("sockets").json()["list"]] == ["s"]
        clock.advance(1.5)
        assert h.get("socket/s").status_code == 404
        pol = h.post("policies", json={"name": "p", "policy_data": {"action": ["ssh"]}})
        assert h.get("policies/find", params={"name": "p"}).status_code == 404
        assert h.get(f"policy/{pol.json()['id']}").status_code == 404
        clock.advance(1.5)
        assert h.get("policies/find", params={"name": "p"}).status_code == 200


def test_a_body_over_one_megabyte_is_refused(emulator):
    with http(emulator) as h:
        big = {"name": "big", "socket_type": "ssh", "description": "x" * (1024 * 1024)}
        response = h.post("socket", json=big)
        assert response.status_code == 413 and response.json()["status_code"] == 413

        def chunks():  # no Content-Length: refused once the stream passes the limit
            for _ in range(64):
                yield b" " * 65536

        response = h.post("socket", content=chunks())
        assert response.status_code == 413
        assert h.get("sockets").json()["list"] == []


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_huge_upload_without_token_gets_401_fast_and_is_never_read(emulator):
    """Issue 12 #7: 100 MB without a token used to be read whole (52 -> 221 MB) before 401.
    The emulator on a thread of this process: the growth of this process's RSS is its own."""
    import socket

    proc = emulator
    host, port = proc.url.split("//")[1].split("/")[0].split(":")
    before = _rss_kb(os.getpid())
    size = 100 * 1024 * 1024
    chunk = b"x" * (1024 * 1024)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"POST /api/v1/socket HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     f"\r\nContent-Length: {size}\r\n\r\n".encode())
        conn.setblocking(False)
        sent, answer = 0, b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            try:
                answer += conn.recv(65536)
            except BlockingIOError:
                pass
            except ConnectionError:
                break
            if sent < size:
                try:
                    sent += conn.send(chunk)
                except (BlockingIOError, ConnectionError):
                    time.sleep(0.005)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert sent < size  # the server stopped reading long before the end
    grown = _rss_kb(os.getpid()) - before
    assert grown < 20 * 1024, f"emulator memory grew {grown} kB"
    print(f"401 after {sent / 1e6:.1f} MB sent, RSS +{grown} kB",
          file=sys.stderr)


def test_the_shipped_extract_is_what_the_script_makes_of_the_reference():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import extract_border0_schemas as script
    finally:
        sys.path.pop(0)
    reference = json.loads((REPO / "tests" / "reference" / "border0-openapi.json").read_text())
    shipped = (REPO / "reconciler" / "border0" / "emulator" / "reference_requests.json")
    assert shipped.read_text() == script.render(reference)


def test_api_local_reads_the_secrets_mode_from_the_environment(tmp_path, monkeypatch):
    from reconciler.border0.errors import ConfigurationError
    from reconciler.border0.session import open_api

    monkeypatch.setenv("BORDER0_EMULATOR_SECRETS_ON_READ", "mask")
    with open_api("local", None, str(tmp_path / "local.db")) as client:
        made = client.create_socket({"name": "db", "socket_type": "database",
                                     "upstream_password": "hunter2"})
        assert made["upstream_password"] == "********"
    monkeypatch.setenv("BORDER0_EMULATOR_SECRETS_ON_READ", "plain")
    with (pytest.raises(ConfigurationError, match="omit, mask or clear"),
          open_api("local", None, str(tmp_path / "local.db"))):
        pass


def test_emulator_command_refuses_an_unknown_secrets_mode():
    from helpers import cli

    code, _out, err = cli(["emulator", "--token", "t", "--secrets-on-read", "plain"])
    assert code != 0 and "plain" in err and "Traceback" not in err
