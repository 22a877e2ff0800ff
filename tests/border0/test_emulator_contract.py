"""The contract check has teeth: a test session whose client sends a field, query parameter or
operation border0's API does not know fails, and says which and who sent it; from the test
process and from a child process alike. (The check itself runs over the whole suite:
tests/contract_recorder.py.)"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import PYTHON, REPO

from reconciler.border0.emulator import contract

TESTS = REPO / "tests"  # where contract_recorder.py lives (this file may move a level down)

SESSION = '''
import subprocess, sys
import pytest
from reconciler.border0.client import Border0Client
from reconciler.border0.emulator import EmbeddedEmulator
from reconciler.border0.errors import BadRequest


@pytest.fixture
def url():
    with EmbeddedEmulator() as emu:
        yield emu.start(None, "t")


def test_sends(url):
    with Border0Client(url, "t") as client:
        client.create_socket({"name": "ok", "socket_type": "ssh"})
        client.get_socket("ok")
        {extra}


def test_child_process_sends(url):
    code = ("from reconciler.border0.client import Border0Client as C; "
            "c = C(%r, 't');" % url) + {child!r}
    subprocess.run([sys.executable, "-c", code], check=False)
'''


def run_session(tmp_path: Path, extra: str = "pass", child: str = "c.list_sockets()"):
    test = tmp_path / "test_session.py"
    test.write_text(textwrap.dedent(SESSION).replace("{extra}", extra)
                    .replace("{child!r}", repr(child)))
    env = {k: v for k, v in os.environ.items() if k != "BORDER0_CONTRACT_LOG"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS)])
    done = subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "contract_recorder",
         "--rootdir", str(tmp_path), str(test)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_the_contract_fails_a_session_whose_client_sends_an_unknown_field(tmp_path):
    code, out = run_session(
        tmp_path,
        extra='with pytest.raises(BadRequest):\n'
              '            client.create_socket({"name": "x", "socket_type": "ssh", '
              '"labels": {"a": "b"}})',
        child="c.update_socket('ok', {'description': 'd', 'bogus_field': 1})")
    assert "2 passed" in out, out  # every test passed ...
    assert code == 1, out  # ... and the session failed on the contract
    assert "POST /socket: unknown field 'labels'" in out, out
    assert "sent by test_session.py::test_sends" in out, out
    assert "PUT /socket/{socket_id_or_name}: unknown field 'bogus_field'" in out, out
    assert "sent by test_session.py::test_child_process_sends" in out, out


@pytest.mark.slow
def test_the_contract_passes_a_session_of_known_requests(tmp_path):
    code, out = run_session(tmp_path)
    assert code == 0, out
    assert "client requests (4 operations) checked against border0's reference" in out, out
    assert "all known" in out


def test_unknown_operations_and_query_parameters_are_named():
    assert contract.check("PATCH", "/socket/x") == [
        "PATCH /socket/x: an operation border0's API does not have"]
    assert contract.check("GET", "/sockets", ["page", "limit"]) == [
        "unknown query parameter 'limit' for GET /sockets"]
    assert contract.check("GET", "/socket/x", ["activeOnly"]) == []


#: Every operation border0's SDK uses for connectors and a socket's sub-resources, with the body
#: the SDK sends (border0-go client/connector.go, client/socket.go): all known to the contract.
SDK_REQUESTS = [
    ("GET", "/socket/s/connectors", None),
    ("GET", "/socket/s/upstream_configurations", None),
    ("POST", "/socket/s/signkey", {"ssh_public_key": "ssh-ed25519 AAAA"}),
    ("GET", "/connectors", None),
    ("POST", "/connector", {"name": "edge", "connector_id": ""}),
    ("PUT", "/connector", {"name": "edge", "connector_id": "c", "description": "d",
                           "built_in_ssh_service_enabled": True}),
    ("GET", "/connector/c", None),
    ("DELETE", "/connector/c", None),
    ("POST", "/connector/token", {"connector_id": "c", "name": "t", "expires_at": 0,
                                  "id": "", "token": "", "created_by": "", "created_at": 0}),
    ("GET", "/connector/c/tokens", None),
    ("GET", "/connector/c/token/t", None),
    ("DELETE", "/connector/c/token/t", None),
]


def test_the_contract_knows_the_connector_endpoints_and_sub_resources():
    for method, path, body in SDK_REQUESTS:
        assert contract.operation_of(method, path) is not None, (method, path)
        assert contract.check(method, path, (), body) == [], (method, path)
    assert contract.check("POST", "/connector", (), {"name": "e", "labels": {}}) == [
        "unknown field 'labels': POST /connector does not take it"]
    assert contract.check("POST", "/connector/token", (), {"name": "t"}) == [
        "missing required field 'connector_id'"]
    assert contract.check("GET", "/policies", ["org_wide", "socket_id"]) == []
    assert contract.check("POST", "/socket", (), {"name": "s", "socket_type": "ssh",
                                                  "policy_names": ["p"]}) == []
