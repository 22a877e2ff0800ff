"""The emulator against API descriptions.

1. Its answers for the endpoints border0's reference OpenAPI document describes validate against
   that document's response schemas (openapi-core). Where the document disagrees with border0's
   own SDK, the SDK wins; each such patch is listed in SDK_WINS and asserted to still be needed.
2. Its own published OpenAPI document (/api/v1/openapi.json) holds up under property-based
   testing (schemathesis): no server error, answers that match the published schemas.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from reconciler.border0.emulator import Store, create_app

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "border0-openapi.json"
HOST = "https://api.border0.com"

#: (path, method, status): the reference document says "array of serializer.Policy", border0's Go
#: SDK and CLI read (and border0 answers) one Policy object. The emulator follows the SDK.
SDK_WINS = [
    ("/policy/{uuid}", "get", "200"),
    ("/policy/{uuid}", "put", "200"),
    ("/policies", "post", "200"),
    ("/policies/find", "get", "200"),
]


def reference_spec() -> OpenAPI:
    doc = json.loads(REFERENCE.read_text())
    for path, method, status in SDK_WINS:
        content = doc["paths"][path][method]["responses"][status]["content"]["application/json"]
        assert content["schema"]["type"] == "array", f"{method} {path}: patch no longer needed"
        content["schema"] = content["schema"]["items"]
    # DELETE /policy/{uuid} documents a Policy body on 204; a 204 has no body (RFC 9110), as
    # DELETE /socket/{id} documents. The emulator sends none.
    assert doc["paths"]["/policy/{uuid}"]["delete"]["responses"]["204"].pop("content")
    return OpenAPI.from_dict(doc)


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return reference_spec()


class Recorder:
    """Raw HTTP to the emulator; each answer is checked against the reference document."""

    def __init__(self, emulator: Any, spec: OpenAPI) -> None:
        self.http = httpx.Client(base_url=emulator.url + "/",
                                 headers={"Authorization": f"Bearer {emulator.token}"})
        self.spec = spec
        self.checked: list[tuple[str, str, int]] = []

    def __call__(self, method: str, template: str, path: str, *, status: int,
                 json_body: Any = None, params: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> Any:
        response = self.http.request(method, path.lstrip("/"), json=json_body, params=params,
                                     headers=headers)
        assert response.status_code == status, response.text
        validate(self.spec, method, template, path, response)
        self.checked.append((method, template, status))
        return response.json() if response.content else None


def validate(spec: OpenAPI, method: str, template: str, path: str,
             response: httpx.Response) -> None:
    request = MockRequest(HOST, method, f"/api/v1{path}", path_pattern=f"/api/v1{template}")
    mock = MockResponse(
        response.content, status_code=response.status_code,
        content_type=response.headers.get("content-type", "application/json").split(";")[0],
    )
    spec.validate_response(request, mock)


def test_answers_validate_against_the_reference_document(emulator, spec):
    call = Recorder(emulator, spec)
    sock = call("POST", "/socket", "/socket", status=200, json_body={
        "name": "db", "socket_type": "database", "upstream_type": "postgres",
        "upstream_username": "u", "upstream_password": "p", "tags": {"team": "a"},
        "protected_socket": True, "protected_username": "x", "protected_password": "y"})
    call("POST", "/socket", "/socket", status=400, json_body={"name": "db",
                                                               "socket_type": "database"})
    policy = call("POST", "/policies", "/policies", status=200, json_body={
        "name": "devs", "description": "d", "org_wide": False,
        "policy_data": {"version": "v1", "action": ["database"],
                        "condition": {"who": {"email": ["a@example.com"]}}}})
    call.http.put(f"socket/{sock['socket_id']}/policy",
                  json={"actions": [{"action": "add", "id": policy["id"]}]}).raise_for_status()
    sid, pid = sock["socket_id"], policy["id"]
    call("GET", "/socket", "/socket", status=200)
    for key in (sid, "db"):
        got = call("GET", "/socket/{socket_id_or_name}", f"/socket/{key}", status=200)
        assert got["policies"][0]["id"] == pid
    call("GET", "/socket/{socket_id_or_name}", "/socket/nope", status=404)
    call("PUT", "/socket/{socket_id_or_name}", f"/socket/{sid}", status=200,
         json_body={"description": "changed", "tags": {"team": "b"}})
    call("PUT", "/socket/{socket_id_or_name}", "/socket/db", status=400,
         json_body={"name": "Not Valid"})
    call("GET", "/policies", "/policies", status=200)
    call("GET", "/policies/find", "/policies/find", status=200, params={"name": "devs"})
    call("GET", "/policies/find", "/policies/find", status=404, params={"name": "none"})
    call("GET", "/policy/{uuid}", f"/policy/{pid}", status=200)
    call("PUT", "/policy/{uuid}", f"/policy/{pid}", status=200,
         json_body={"name": "devs", "description": "e", "policy_data": {"version": "v1"}})
    call("GET", "/policy/{uuid}", "/policy/missing", status=404)
    call("GET", "/socket", "/socket", status=401, headers={"Authorization": "Bearer wrong"})
    call("DELETE", "/policy/{uuid}", f"/policy/{pid}", status=204)
    call("DELETE", "/socket/{socket_id_or_name}", f"/socket/{sid}", status=204)
    call("DELETE", "/socket/{socket_id_or_name}", f"/socket/{sid}", status=404)
    covered = {(m, t) for m, t, _ in call.checked}
    assert len(covered) == 11  # every operation of the document the emulator serves


def test_the_check_can_fail(emulator, spec):
    """A socket with a wrongly typed field does not validate: the check above has teeth."""
    with httpx.Client(headers={"x-access-token": emulator.token}) as h:
        made = h.post(emulator.url + "/socket", json={"name": "a", "socket_type": "tls"}).json()
    broken = copy.deepcopy(made)
    broken["socket_tcp_ports"] = ["not-a-port"]
    response = httpx.Response(200, json=broken)
    with pytest.raises(Exception, match="(?i)invalid|schema"):
        validate(spec, "GET", "/socket/{socket_id_or_name}", "/socket/a", response)


def test_client_request_bodies_validate_against_the_reference_document(spec):
    """What the reconciler sends (model.socket_to_api / policy_to_api) is what border0 takes."""
    from reconciler.model import PolicySpec, Secret, SocketSpec, policy_to_api, socket_to_api

    sock = socket_to_api(SocketSpec(name="db", type="database", upstream_username=Secret("u"),
                                    upstream_password=Secret("p"), protected_username="x",
                                    protected_password=Secret("y"), labels={"a": "b"}), "ci")
    pol = policy_to_api(PolicySpec(name="p", policy_data={"version": "v1"}), "ci")
    for method, template, path, args, body in (
        ("POST", "/socket", "/socket", {}, sock),
        ("PUT", "/socket/{socket_id_or_name}", "/socket/db", {"socket_id_or_name": "db"}, sock),
        ("PUT", "/policy/{uuid}", "/policy/x", {"uuid": "x"}, pol),
    ):
        request = MockRequest(HOST, method, f"/api/v1{path}", path_pattern=f"/api/v1{template}",
                              view_args=args, data=json.dumps(body).encode(),
                              headers={"Authorization": "Bearer t"})
        spec.validate_request(request)


# --- schemathesis against the emulator's own document --------------------------------------


#: In-process (ASGI, no sockets): fast. One in-memory store for the whole module.
schema = schemathesis.openapi.from_asgi(
    "/api/v1/openapi.json", create_app(Store(None), token="st-token")
)


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_own_openapi_document_holds(case):
    """No 5xx, only documented statuses, answers as documented. (Not checked: that every
    schema-violating request is refused; like border0, the emulator takes the last of repeated
    query parameters and ignores unknown fields.)"""
    case.call_and_validate(
        headers={"Authorization": "Bearer st-token"},
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance,
],
    )
