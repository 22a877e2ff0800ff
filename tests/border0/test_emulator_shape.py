"""Socket answers in border0's shape (serializer.Socket in tests/reference/border0-openapi.json),
secrets kept out of them, and what border0's own CLI sends (border0-cli
internal/api/models/socket.go, cmd/socket.go, cmd/policy.go)."""

from __future__ import annotations

import json

import httpx
import pytest

from reconciler.border0.emulator.rules import strip_nested_secrets

REFERENCE = json.loads(
    (__import__("helpers").REPO / "tests" / "reference" / "border0-openapi.json").read_text())
ANSWER_FIELDS = set(REFERENCE["components"]["schemas"]["serializer.Socket"]["properties"])
DB_UPSTREAM = {"service_type": "database", "database_service_configuration": {
    "database_service_type": "aws_rds", "aws_rds_database_service_configuration": {
        "hostname": "db.internal", "port": 5432, "protocol": "postgres",
        "authentication_type": "username_and_password",
        "username_and_password_auth_configuration": {"username": "app",
                                                     "password": "rds-pw-123456"}}}}


def http(emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.url + "/",
                        headers={"Authorization": f"Bearer {emulator.token}"})


def bound_socket(h: httpx.Client) -> str:
    edge = h.post("connector", json={"name": "edge", "connector_id": ""}).json()
    made = h.post("socket", json={
        "name": "db", "socket_type": "database", "display_name": "Orders DB",
        "upstream_password": "legacy-pw-123456", "connector_ids": [edge["connector_id"]],
        "upstream_configuration": DB_UPSTREAM})
    assert made.status_code == 200, made.text
    return str(edge["connector_id"])


def test_socket_answers_are_border0s_shape(emulator):
    with http(emulator) as h:
        connector_id = bound_socket(h)
        answers = [h.get("socket/db").json(), h.get("sockets").json()["list"][0],
                   h.get("socket").json()[0],
                   h.put("socket/db", json={"description": "d"}).json()]
        for answer in answers:
            for absent in ("connector_ids", "upstream_configuration", "display_name"):
                assert absent not in answer
            assert set(answer) - ANSWER_FIELDS <= {"created_at", "updated_at"}
            for field in ("alive", "connector_managed", "end_to_end_encryption_enabled",
                          "connector_authentication_enabled", "connectors"):
                assert field in answer
        assert answers[0]["connectors"] == [{"connector_id": connector_id, "name": "edge"}]


@pytest.mark.parametrize("mode", ["omit", "mask"])
def test_secrets_stay_out_of_socket_answers_but_the_upstream_read_has_them(
        emulator_factory, mode):
    emu = emulator_factory(secrets_on_read=mode)
    with http(emu) as h:
        bound_socket(h)
        for text in (h.get("socket/db").text, h.get("sockets").text, h.get("socket").text):
            assert "rds-pw-123456" not in text and "legacy-pw-123456" not in text
        assert h.get("socket/db").json().get("upstream_password") == (
            "********" if mode == "mask" else None)
        (entry,) = h.get("socket/db/upstream_configurations").json()["list"]
        assert "rds-pw-123456" in json.dumps(entry)


def test_nested_secrets_are_stripped_at_any_depth_and_header_keys_are_not():
    answer = {"upstream_configuration": {"x": {"standard": {
        "password": "p", "private_key": "k", "aws_credentials": {
            "aws_access_key_id": "AKIA", "aws_secret_access_key": "s"},
        "headers": [{"key": "X-Team", "value": "web"}], "tls": {"key": "pem"}}}}}
    inner = strip_nested_secrets(answer)["upstream_configuration"]["x"]["standard"]
    assert inner == {"aws_credentials": {"aws_access_key_id": "AKIA"},
                     "headers": [{"key": "X-Team", "value": "web"}], "tls": {}}
    masked = strip_nested_secrets(answer, mask=True)["upstream_configuration"]["x"]["standard"]
    assert masked["password"] == "********" and masked["tls"] == {"key": "********"}


def test_what_border0s_cli_sends_is_taken(emulator):
    with http(emulator) as h:
        team = h.post("policies", json={"name": "team", "policy_data": {"version": "v1"}}
                      ).json()
        everyone = h.post("policies", json={"name": "everyone", "org_wide": True,
                                            "policy_data": {"version": "v1"}}).json()
        h.post("policies", json={"name": "other", "policy_data": {"version": "v1"}})
        made = h.post("socket", json={"name": "web", "socket_type": "http",
                                      "policy_names": ["team"]})
        assert made.status_code == 200, made.text
        assert [p["name"] for p in made.json()["policies"]] == ["team"]
        assert h.post("socket", json={"name": "web2", "socket_type": "http",
                                      "policy_names": ["nope"]}).status_code == 400
        assert h.get("socket/web2").status_code == 404  # nothing half-made
        sid = made.json()["socket_id"]
        listed = h.get("policies", params={"org_wide": "true", "socket_id": sid}).json()
        assert {p["id"] for p in listed} == {team["id"], everyone["id"]}
        org_wide = h.get("policies", params={"org_wide": "true"}).json()
        assert [p["id"] for p in org_wide] == [everyone["id"]]
        put = h.put("socket/web", json={"name": "web", "cloud_authentication_enabled": True})
        assert put.status_code == 200 and put.json()["cloud_authentication_enabled"] is True
        signed = h.post("socket/web/signkey", json={"ssh_public_key": "ssh-ed25519 AAAA x"})
        assert signed.status_code == 501  # taken, but the twin holds no SSH CA
        assert h.post("socket/web/signkey", json={"public_key": "x"}).status_code == 400
