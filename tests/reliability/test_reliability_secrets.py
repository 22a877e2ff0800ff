"""Secrets never leave: every command and endpoint, run with secret-bearing manifests, and not
one secret value (nor the API token) in any output, file, log or endpoint. And the emulator
refuses every request without a valid token.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
import pytest
from helpers import cli, wait_for
from test_reliability import Daemon

from reconciler.secrets import FINGERPRINT_TAG_PREFIX

ENV_USER = "Sx-env-user-Qw81"
ENV_PASS = "Sx-env-pass-Zr55"
ENV_PASS_2 = "Sx-env-pass2-Kd90"
FILE_PASS = "Sx-file-pass-Mn27"
SECRETS = (ENV_USER, ENV_PASS, ENV_PASS_2, FILE_PASS)

MANIFESTS = {
    "db.yaml": (
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: vault-db\n"
        "spec:\n  type: database\n  description: secrets inside\n  upstream:\n"
        "    type: postgres\n    username: {env: SX_DB_USER}\n    password: {env: SX_DB_PASS}\n"
        "  policies: [staff]\n"
    ),
    "portal.yaml": (
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: portal\nspec:\n"
        "  type: http\n  protected:\n    username: viewer\n"
        "    password: {file: ../secret-files/portal.pw}\n"
        "  connector:\n    host: 127.0.0.1\n    port: 9\n"
    ),
    "staff.yaml": (
        "apiVersion: border0-reconciler/v1\nkind: Policy\nmetadata:\n  name: staff\nspec:\n"
        "  policyData:\n    version: v1\n    action: [http, database]\n    condition:\n"
        "      who:\n        email: [staff@example.com]\n"
    ),
}
#: A connector that prints what it finds in its environment: the token and a password.
LEAKY_CONNECTOR = (
    '{python} -c "import os, time; print(\'leak token\', os.environ.get(\'BORDER0_ADMIN_TOKEN\'),'
    " 'pw', os.environ.get('SX_DB_PASS'), flush=True); time.sleep(3600)\""
)


def _fast_digests(value: str) -> tuple[str, ...]:
    """Fast digests of a value in the spellings a leak would take: any of them in an output
    would let a reader test guesses at full speed."""
    out = []
    for name in ("md5", "sha1", "sha256", "sha512"):
        raw = hashlib.new(name, value.encode()).digest()
        out += [raw.hex(), base64.b64encode(raw).decode().rstrip("="),
                base64.urlsafe_b64encode(raw).decode().rstrip("=")]
    return tuple(out)


DIGESTS = tuple(d for s in SECRETS for d in _fast_digests(s))


def _no_secret(where: str, text: str, extra: tuple[str, ...] = ()) -> None:
    for secret in (*SECRETS, *DIGESTS, *extra):
        assert secret not in text, f"{secret!r} leaked into {where}:\n{text[-2000:]}"


def _fingerprints(client, name: str) -> dict[str, str]:
    tags = client.get_socket(name)["tags"]
    return {k.removeprefix(FINGERPRINT_TAG_PREFIX): v for k, v in tags.items()
            if k.startswith(FINGERPRINT_TAG_PREFIX)}


@pytest.mark.timeout(240)
@pytest.mark.slow
def test_no_command_or_endpoint_shows_a_secret(emulator, tmp_path: Path) -> None:
    token = emulator.token
    folder = tmp_path / "manifests"
    folder.mkdir()
    for name, text in MANIFESTS.items():
        (folder / name).write_text(text)
    (tmp_path / "secret-files").mkdir()
    (tmp_path / "secret-files" / "portal.pw").write_text(FILE_PASS + "\n")
    roots = {"BORDER0_SECRET_ROOTS": str(tmp_path / "secret-files")}  # outside the manifests
    env_file = tmp_path / "sx.env"
    env_file.write_text(f"SX_DB_USER={ENV_USER}\nSX_DB_PASS={ENV_PASS}\n")
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    api = ["--api", emulator.url, "--token-file", str(token_file)]
    m, env = str(folder), ["--env-file", str(env_file)]
    seen: list[tuple[str, str]] = []

    def run(*args: str, expect: int | tuple[int, ...] = 0) -> str:
        code, out, err = cli(list(args), cwd=tmp_path, timeout=120, env=roots)
        seen.append((" ".join(args[:2]) + " stdout", out))
        seen.append((" ".join(args[:2]) + " stderr", err))
        assert code in ((expect,) if isinstance(expect, int) else expect), (args, out, err)
        assert "Traceback" not in out + err, err
        return out + err

    run("validate", m)
    run("validate", m, "--strict")
    for fmt in ("text", "json", "markdown"):
        run("plan", m, *api, *env, "--format", fmt, "--out", str(out_dir / f"plan.{fmt}"))
        run("plan", m, *api, *env, "--format", fmt, "--detailed-exitcode", expect=2)
    run("plan", m, *api, *env, "--save", str(out_dir / "saved-plan.json"))
    run("apply", str(out_dir / "saved-plan.json"), *api, *env)
    stored = emulator.store.get_socket("vault-db")  # border0's own record, not an answer
    assert stored.get("upstream_password") == ENV_PASS  # the secret did reach border0
    assert "upstream_password" not in emulator.client().get_socket("vault-db")  # never read back
    # what is recorded instead: salted keyed fingerprints (HMAC-SHA256) in reserved tags, one per secret
    first = _fingerprints(emulator.client(), "vault-db")
    assert set(first) == {"upstream_username", "upstream_password"}
    assert set(_fingerprints(emulator.client(), "portal")) == {"protected_password"}
    assert all(v.startswith("hmac-sha256$") for v in first.values())

    env_file.write_text(f"SX_DB_USER={ENV_USER}\nSX_DB_PASS={ENV_PASS_2}\n")  # a changed secret
    shown = run("plan", m, *api, *env, "--no-color")
    assert "upstream_password: (sensitive) → (sensitive)" in shown
    run("plan", m, *api, *env, "--format", "json", "--out", str(out_dir / "changed.json"))
    run("plan", m, *api, *env, "--format", "markdown", "--out", str(out_dir / "changed.md"))
    run("apply", m, *api, *env, "--dry-run")
    run("apply", m, *api, *env, "--auto-approve")
    assert emulator.store.get_socket("vault-db").get("upstream_password") == ENV_PASS_2
    second = _fingerprints(emulator.client(), "vault-db")
    assert second["upstream_username"] == first["upstream_username"]  # unchanged: kept
    assert second["upstream_password"] != first["upstream_password"]  # new value, new salt
    listing = json.dumps(emulator.client().list_sockets())  # border0 answers the username
    for secret in (ENV_PASS, ENV_PASS_2, FILE_PASS, *DIGESTS):
        assert secret not in listing, f"{secret!r} is readable in GET /sockets"

    env_file.write_text(f"SX_DB_USER={ENV_USER}\nSX_DB_PASS={ENV_PASS}\n")
    run("run", m, *api, *env, "--once", "--log-level", "debug")
    run("run", m, *api, *env, "--once", "--log-format", "json", "--log-level", "debug")
    run("run", m, *api, *env, "--once", "--dry-run")

    # the daemon: debug text logs, a connector that prints the token and a password
    daemon = Daemon(folder, emulator.url, token, "--env-file", str(env_file), "--log-level",
                    "debug", "--connector-command", LEAKY_CONNECTOR,
                    "--connector-startsecs", "0.2s", "--interval", "1h",
                    env={"SX_DB_PASS": ENV_PASS, **roots})
    try:
        daemon.wait(lambda: any("leak token" in line for line in daemon.lines), timeout=60,
                    message="the connector's output in the daemon log")
        listen = str(daemon.http.base_url).removeprefix("http://").rstrip("/")
        for endpoint in ("/status", "/metrics", "/healthz", "/readyz", "/"):
            response = daemon.http.get(endpoint)
            assert response.status_code == 200, (endpoint, response.text)
            seen.append((endpoint, response.text))
        status = json.loads(seen[-5][1])
        assert {s["name"] for s in status["sockets"]} >= {"vault-db", "portal"}
        page = seen[-1][1]  # the status page lists them too
        assert "<strong>vault-db</strong>" in page and "<strong>portal</strong>" in page
        seen.append(("status table", run("status", "--listen", listen)))
        seen.append(("status json", run("status", "--listen", listen, "--format", "json")))
        (folder / "portal.yaml").write_text(MANIFESTS["portal.yaml"].replace(
            "  type: http\n", "  type: http\n  description: edited\n"))
        wait_for(lambda: emulator.client().get_socket("portal").get("description") == "edited",
                 timeout=30, message="the daemon to apply an edit")
        assert daemon.terminate() == 0
    finally:
        daemon.close()
    leak_lines = [line for line in daemon.lines if "leak token" in line]
    assert leak_lines and all("(sensitive)" in line for line in leak_lines), leak_lines
    seen.append(("daemon log", "".join(daemon.lines)))
    seen.append(("daemon stdout", "".join(daemon.out)))

    written = sorted(p for p in out_dir.iterdir() if p.is_file())
    assert {p.name for p in written} >= {"plan.text", "plan.json", "plan.markdown",
                                         "saved-plan.json", "changed.json", "changed.md"}
    for path in written:
        seen.append((str(path), path.read_text()))
    for where, text in seen:
        _no_secret(where, text, extra=(token,))


def test_the_emulator_refuses_requests_without_a_valid_token(emulator, tmp_path) -> None:
    emu = emulator
    good = emu.client()
    good.create_socket({"name": "kept", "socket_type": "tls"})
    before = good.list_sockets()
    requests = [
        ("GET", "/sockets", None), ("GET", "/socket", None), ("GET", "/socket/kept", None),
        ("POST", "/socket", {"name": "intruder", "socket_type": "tls"}),
        ("PUT", "/socket/kept", {"description": "changed"}), ("DELETE", "/socket/kept", None),
        ("GET", "/policies", None), ("GET", "/policies/find?name=x", None),
        ("POST", "/policies", {"name": "intruder", "policy_data": {"version": "v1"}}),
        ("PUT", "/socket/kept/policy", {"actions": []}),
    ]
    bad_headers = [
        {}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {emu.token}x"}, {"Authorization": f"Basic {emu.token}"},
        {"x-access-token": "wrong-token"}, {"x-access-token": ""},
        {"Authorization": f"Bearer {emu.token[:-1]}"},
    ]
    with httpx.Client(base_url=emu.url, timeout=10) as http:
        for headers in bad_headers:
            for method, path, body in requests:
                response = http.request(method, emu.url + path, json=body, headers=headers)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert emu.token not in response.text
        assert http.get(emu.url + "/sockets",
                        headers={"x-access-token": emu.token}).status_code == 200
        assert http.get(emu.url + "/serverinfo").status_code == 200  # public, as border0's
    assert good.list_sockets() == before  # nothing changed

    (tmp_path / "staff.yaml").write_text(MANIFESTS["staff.yaml"])
    code, out, err = cli(["plan", "--api", emu.url, str(tmp_path)],
                         env={"BORDER0_ADMIN_TOKEN": "not-the-token"})
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert "not-the-token" not in out + err and emu.token not in out + err
