"""Connectors, their tokens and a socket's sub-resources, as border0's SDK and provider use them
(border0-go client/connector.go, client/socket.go; terraform-provider-border0
border0/resource_connector*.go, border0/resource_socket.go), over real HTTP."""

from __future__ import annotations

import time

import httpx
from helpers import wait_for

from reconciler.border0.api_json import token_from_api

SSH_UPSTREAM = {"service_type": "ssh", "ssh_service_configuration": {
    "ssh_service_type": "standard",
    "standard_ssh_service_configuration": {
        "hostname": "10.0.0.5", "port": 22, "ssh_authentication_type": "username_and_password",
        "username_and_password_auth_configuration": {"username": "ops", "password": "pw-1"}}}}


def http(emulator, token: str | None = None) -> httpx.Client:
    token = emulator.token if token is None else token
    return httpx.Client(base_url=emulator.url + "/", headers={"Authorization": f"Bearer {token}"})


def connector(h: httpx.Client, name: str) -> str:
    made = h.post("connector", json={"name": name, "connector_id": ""})  # the SDK's body
    assert made.status_code == 200, made.text
    return str(made.json()["connector_id"])


def test_connectors_are_created_updated_listed_and_deleted_as_the_sdk_does(emulator):
    with http(emulator) as h:
        made = h.post("connector", json={"name": "edge", "connector_id": "",
                                         "description": "rack 4",
                                         "built_in_ssh_service_enabled": True}).json()
        cid = made["connector_id"]
        assert made["name"] == "edge" and made["description"] == "rack 4"
        assert h.post("connector", json={"name": "edge"}).status_code == 400  # unique names
        assert h.post("connector", json={"name": "Not Valid"}).status_code == 400
        listed = h.get("connectors").json()  # SDK Connectors: {"list": [...]}
        assert [c["connector_id"] for c in listed["list"]] == [cid]
        # PUT /connector names it in the body; omitempty fields not sent are reset.
        updated = h.put("connector", json={"connector_id": cid, "name": "edge-2"}).json()
        assert updated["name"] == "edge-2" and updated["description"] == ""
        assert updated["built_in_ssh_service_enabled"] is False
        assert h.get(f"connector/{cid}").json() == updated
        assert h.put("connector", json={"connector_id": "nope", "name": "x"}).status_code == 404
        assert h.delete(f"connector/{cid}").status_code == 204
        assert h.get(f"connector/{cid}").status_code == 404
        assert h.delete(f"connector/{cid}").status_code == 404  # the SDK takes it as done


def test_a_token_value_is_answered_once(emulator):
    with http(emulator) as h:
        cid = connector(h, "edge")
        # The SDK sends every ConnectorToken field; a zero time is 0 (client/flexible_time.go).
        made = h.post("connector/token", json={
            "connector_id": cid, "name": "agent-1", "expires_at": 0, "id": "", "token": "",
            "created_by": "", "created_at": 0}).json()
        assert made["token"].count(".") == 2 and "expires_at" not in made
        listed = h.get(f"connector/{cid}/tokens").json()
        assert listed["connector"]["connector_id"] == cid
        assert [t["id"] for t in listed["list"]] == [made["id"]]
        assert "token" not in listed["list"][0]
        one = h.get(f"connector/{cid}/token/{made['id']}").json()
        assert one["name"] == "agent-1" and "token" not in one
        assert made["token"] not in h.get(f"connector/{cid}/tokens").text
        assert h.post("connector/token", json={"connector_id": "nope", "name": "t"}
                      ).status_code == 404
        assert h.post("connector/token", json={"connector_id": cid, "name": "t",
                                               "expires_at": 978307200}  # 2001-01-01: past
                      ).status_code == 400
        # an expiry in text: border0's clients send Unix seconds (the CLI's int64, the SDK's
        # FlexibleTime), so the twin refuses text as border0 may
        assert h.post("connector/token", json={"connector_id": cid, "name": "t",
                                               "expires_at": "2099-01-01T00:00:00Z"}
                      ).status_code == 400
        assert h.delete(f"connector/{cid}/token/{made['id']}").status_code == 204
        assert h.get(f"connector/{cid}/token/{made['id']}").status_code == 404
        assert h.delete(f"connector/{cid}/token/{made['id']}").status_code == 404


def test_sockets_name_real_connectors_and_the_links_are_read_from_the_sub_resource(emulator):
    with http(emulator) as h:
        a, b = connector(h, "edge-a"), connector(h, "edge-b")
        refused = h.post("socket", json={"name": "web", "socket_type": "ssh",
                                         "connector_ids": [a, "c0ffee"]})
        assert refused.status_code == 400 and "'c0ffee'" in refused.json()["error_message"]
        assert h.get("sockets").json()["list"] == []  # nothing half-made
        made = h.post("socket", json={"name": "web", "socket_type": "ssh",
                                      "connector_ids": [a, b], "upstream_configuration":
                                      SSH_UPSTREAM})
        assert made.status_code == 200, made.text
        assert made.json()["connectors"] == [{"connector_id": a, "name": "edge-a"},
                                             {"connector_id": b, "name": "edge-b"}]
        links = h.get("socket/web/connectors").json()["list"]
        assert [(c["connector_id"], c["connector_name"]) for c in links] == [
            (a, "edge-a"), (b, "edge-b")]
        assert {c["socket_id"] for c in links} == {made.json()["socket_id"]}
        assert h.put("socket/web", json={"connector_ids": ["nope"]}).status_code == 400
        # Deleting a connector unlinks it (inference, documented) and leaves the socket.
        assert h.delete(f"connector/{a}").status_code == 204
        assert [c["connector_id"] for c in h.get("socket/web/connectors").json()["list"]] == [b]
        assert h.get("socket/web").json()["connectors"] == [{"connector_id": b,
                                                             "name": "edge-b"}]
        assert h.get("socket/nope/connectors").status_code == 404


def test_upstream_configurations_answer_the_credentials(emulator):
    """As border0 does: the provider stores passwords and keys from this answer
    (internal/schemautil/socket/ssh/from_upstream_config.go)."""
    with http(emulator) as h:
        h.post("socket", json={"name": "web", "socket_type": "ssh",
                               "upstream_configuration": SSH_UPSTREAM}).raise_for_status()
        (entry,) = h.get("socket/web/upstream_configurations").json()["list"]
        assert entry["config"] == SSH_UPSTREAM and entry["created_at"]
        h.post("socket", json={"name": "bare", "socket_type": "ssh"}).raise_for_status()
        assert h.get("socket/bare/upstream_configurations").json() == {"list": []}


def test_a_connector_token_reads_its_connector_and_nothing_else(emulator):
    """The twin's read for the test stand-in connector (GET /connector/config)."""
    with http(emulator) as h:
        cid, other = connector(h, "edge"), connector(h, "other")
        h.post("socket", json={"name": "web", "socket_type": "ssh", "connector_ids": [cid],
                               "upstream_configuration": SSH_UPSTREAM}).raise_for_status()
        h.post("socket", json={"name": "elsewhere", "socket_type": "ssh",
                               "connector_ids": [other]}).raise_for_status()
        token = h.post("connector/token", json={"connector_id": cid, "name": "t"}).json()
        assert h.get("connector/config").status_code == 401  # the admin token is refused
    with http(emulator, token["token"]) as agent:
        config = agent.get("connector/config").json()
        assert config["connector_config"]["connector_id"] == cid
        (socket,) = config["sockets"]
        assert (socket["name"], socket["type"]) == ("web", "ssh")
        assert socket["config"]["upstream_configuration"] == SSH_UPSTREAM  # credentials in
        for path in ("sockets", "socket/web", "connectors", f"connector/{cid}"):
            assert agent.get(path).status_code == 401, path  # no admin endpoint takes it
    with http(emulator) as h:
        h.delete(f"connector/{cid}/token/{token['id']}").raise_for_status()
    with http(emulator, token["token"]) as agent:
        refused = agent.get("connector/config")
        assert refused.status_code == 401 and "revoked" in refused.json()["error_message"]


def test_an_expired_connector_token_is_refused(emulator):
    with http(emulator) as h:
        cid = connector(h, "edge")
        soon = int(time.time()) + 2
        token = h.post("connector/token", json={"connector_id": cid, "name": "t",
                                                "expires_at": soon}).json()
        assert token["expires_at"].endswith("Z")
    with http(emulator, token["token"]) as agent:
        assert agent.get("connector/config").status_code == 200
        wait_for(lambda: agent.get("connector/config").status_code == 401, timeout=10)
        assert time.time() >= soon


def test_a_tokens_times_are_read_as_text_or_as_unix_seconds():
    """border0 answers a token's times as text (the CLI's `ConnectorToken.ExpiresAt string`);
    its SDK reads Unix seconds too (FlexibleTime): either reads as the same RFC 3339 time."""
    text = token_from_api({"id": "t1", "name": "a", "expires_at": "2027-01-01T00:00:00Z",
                           "created_at": "2026-12-01T00:00:00Z"})
    seconds = token_from_api({"id": "t1", "name": "a", "expires_at": 1798761600,
                              "created_at": 1796083200})
    assert seconds == text
    assert token_from_api({"id": "t2", "name": "b", "expires_at": 0}).expires_at == ""
