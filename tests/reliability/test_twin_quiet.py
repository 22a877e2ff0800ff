"""The reconciler stays quiet against the strict twin (issue 11, section 2).

Everything here runs the real CLI (in this process; the daemon as a child, with its connectors)
against the emulator on a thread over real HTTP, with the twin's defaults: secrets are never read
back, a PUT resets what it is not sent, request bodies are checked against border0's reference
schemas. Writes are counted in the emulator's request log (conftest's `requests()`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import REPO, cli, copy_examples, edit_by_hand, wait_for
from prometheus_client.parser import text_string_to_metric_families
from test_reliability import Daemon

from reconciler.secrets import FINGERPRINT_TAG_PREFIX

EXAMPLES = REPO / "examples"
DEMO_ENV = EXAMPLES / "demo.env"


def demo_values() -> list[str]:
    lines = DEMO_ENV.read_text().splitlines()
    return [ln.split("=", 1)[1].strip().strip('"') for ln in lines if "=" in ln and ln[0] != "#"]


class Twin:
    """The emulator plus what a test needs: its writes, raw requests, the CLI."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc
        self.api = ["--api", proc.url]
        self.env = {"BORDER0_TOKEN": proc.token}
        self.http = httpx.Client(base_url=proc.url + "/",
                                 headers={"Authorization": f"Bearer {proc.token}"}, timeout=10)
        proc.requests()  # recorded from the start
        self._examples: Path | None = None

    def examples(self) -> Path:
        """A copy of the checkout's examples, made on first use (in the tests' scratch
        working directory)."""
        if self._examples is None:
            scratch = Path(tempfile.mkdtemp(prefix="examples-", dir=os.getcwd()))
            self._examples = copy_examples(scratch / "examples")
        return self._examples

    def writes(self) -> list[tuple[str, str]]:
        return self.proc.writes()

    def run(self, *args: str, env_file: Path = DEMO_ENV) -> tuple[int, str, str]:
        """The CLI against the twin, run where the tests run (conftest.py), not in the
        checkout: `examples/` is a copy of the checkout's (its connectors' token files are
        written beside their manifests)."""
        args = tuple(str(self.examples()) if arg == "examples/" else arg for arg in args)
        code, out, err = cli([*args, *self.api, "--env-file", str(env_file)], env=self.env)
        assert "Traceback" not in err, err
        return code, out, err

    def socket(self, name: str) -> dict[str, Any]:
        response = self.http.get(f"socket/{name}", params={"activeOnly": "true"})
        response.raise_for_status()
        return response.json()

    def connector(self, name: str) -> str:
        """A connector made by hand (border0-go client/connector.go CreateConnector): its id."""
        response = self.http.post("connector", json={"name": name, "connector_id": ""})
        response.raise_for_status()
        return str(response.json()["connector_id"])

    def connector_ids(self, socket: str) -> list[str]:
        """The socket's links, read as border0's provider reads them (GET .../connectors)."""
        response = self.http.get(f"socket/{socket}/connectors")
        response.raise_for_status()
        return [c["connector_id"] for c in response.json()["list"]]


@pytest.fixture
def twin(emulator: Any) -> Any:
    t = Twin(emulator)
    yield t
    t.http.close()


def plan_json(twin: Twin, folder: Path, env_file: Path, out: Path) -> tuple[int, dict]:
    code, _, err = twin.run("plan", str(folder), "--detailed-exitcode", "--format", "json",
                            "--out", str(out), env_file=env_file)
    assert code in (0, 2), err
    return code, json.loads(out.read_text())


def test_examples_apply_then_plan_is_empty_and_a_secret_change_is_one_update(
    twin: Twin, tmp_path: Path
) -> None:
    outputs = []
    code, out, err = twin.run("apply", "examples/", "--auto-approve")
    outputs.append(out + err)
    assert code == 0, out + err
    assert twin.socket("grafana")["protected_socket"] is True
    assert twin.socket("orders-db")["upstream_type"] == "mysql"
    assert twin.socket("bastion")["recording_enabled"] is True
    contractors = twin.http.get("policies/find", params={"name": "contractors"}).json()
    assert contractors["version"] == "v2" and "version" not in contractors["policy_data"]
    code, out, err = twin.run("plan", "examples/", "--detailed-exitcode")
    outputs.append(out + err)
    assert code == 0, out + err
    assert "No changes" in out

    # A changed secret: one update, shown without values; then quiet; then back: one update.
    changed = tmp_path / "changed.env"
    changed.write_text(DEMO_ENV.read_text().replace(
        "ORDERS_DB_PASSWORD=demo-not-a-real-password", "ORDERS_DB_PASSWORD=rotated-demo-pw-7"))
    for env_file in (changed, DEMO_ENV):
        code, plan = plan_json(twin, twin.examples(), env_file, tmp_path / "plan.json")
        outputs.append((tmp_path / "plan.json").read_text())
        assert code == 2
        assert [(c["action"], c["name"], c["diffs"]) for c in plan["changes"]] == [
            ("update", "orders-db", [{"path": "upstream_password", "before": "(sensitive)",
                                      "after": "(sensitive)", "sensitive": True}])]
        before = len(twin.writes())
        code, out, err = twin.run("apply", "examples/", "--auto-approve", env_file=env_file)
        outputs.append(out + err)
        assert code == 0, err
        assert [m for m, _ in twin.writes()[before:]] == ["PUT"]
        code, out, err = twin.run("plan", "examples/", "--detailed-exitcode", env_file=env_file)
        outputs.append(out + err)
        assert code == 0, out + err

    # Neither the values nor anything but salted keyed fingerprints reach border0 or output.
    tags = twin.socket("orders-db")["tags"]
    fps = {k: v for k, v in tags.items() if k.startswith(FINGERPRINT_TAG_PREFIX)}
    assert set(fps) == {FINGERPRINT_TAG_PREFIX + "upstream_username",
                        FINGERPRINT_TAG_PREFIX + "upstream_password"}
    assert all(v.startswith("hmac-sha256$") for v in fps.values())
    listing = twin.http.get("sockets").text
    for value in [*demo_values(), "rotated-demo-pw-7"]:
        assert value not in listing or value in ("orders_demo", "analytics_demo")  # usernames
        assert all(value not in text for text in outputs)


SPELLINGS = [
    ("http", None), ("http", "http"), ("http", "https"), ("https", None), ("https", "https"),
    ("tls", None), ("ssh", None), ("ssh", "ssh"), ("ssh", "aws-ssm"), ("ssh", "aws-ec2connect"),
    ("database", "mysql"), ("database", "postgres"), ("database", "mssql"),
]


def test_every_spelling_of_a_socket_type_round_trips(twin: Twin, tmp_path: Path) -> None:
    docs = []
    for i, (kind, upstream) in enumerate(SPELLINGS):
        spec: dict[str, Any] = {"type": kind}
        if upstream:
            spec["upstream"] = {"type": upstream}
        if kind == "database":
            spec["upstream"].update(username={"env": "DB_USER"}, password={"env": "DB_PW"})
        docs.append({"apiVersion": "border0-reconciler/v1", "kind": "Socket",
                     "metadata": {"name": f"s{i}-{kind}-{upstream or 'default'}"}, "spec": spec})
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "sockets.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs))
    env_file = tmp_path / "env"
    env_file.write_text("DB_USER=spelling-user\nDB_PW=spelling-pw-1\n")
    code, out, err = twin.run("apply", str(folder), "--auto-approve", env_file=env_file)
    assert code == 0, out + err
    code, out, err = twin.run("plan", str(folder), "--detailed-exitcode", env_file=env_file)
    assert code == 0, out + err


def test_an_adopted_socket_gets_its_secret_written_once_and_the_plan_says_why(
    twin: Twin, tmp_path: Path
) -> None:
    client = twin.proc.client()
    client.create_socket({"name": "legacy-db", "socket_type": "database",
                          "upstream_type": "postgres", "upstream_username": "legacy",
                          "upstream_password": "set-in-the-portal-1"})
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "db.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: legacy-db\n"
        "  annotations: {border0-reconciler/adopt: \"true\"}\nspec:\n  type: database\n"
        "  upstream: {type: postgres, username: {env: U}, password: {env: P}}\n")
    env_file = tmp_path / "env"
    env_file.write_text("U=legacy\nP=set-in-the-portal-1\n")
    code, plan = plan_json(twin, folder, env_file, tmp_path / "plan.json")
    assert code == 2
    (change,) = plan["changes"]
    assert change["action"] == "update" and change["reason"].startswith("adopt; no fingerprint")
    assert "upstream_password" in change["reason"] and "written once" in change["reason"]
    before = len(twin.writes())
    assert twin.run("apply", str(folder), "--auto-approve", env_file=env_file)[0] == 0
    assert [m for m, _ in twin.writes()[before:]] == ["PUT"]
    assert twin.run("plan", str(folder), "--detailed-exitcode", env_file=env_file)[0] == 0


def test_fields_set_by_hand_survive_an_apply(twin: Twin, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    copy_examples(folder, "ci", "kubernetes")
    assert twin.run("apply", str(folder), "--auto-approve")[0] == 0

    # Someone sets connector_ids and recording in the portal (a raw read-modify-write PUT).
    connector = twin.connector("edge-1")
    edit_by_hand(twin.proc.client(), twin.socket("web"), recording_enabled=True,
                 connector_ids=[connector])

    # ... and tag rules on a policy (border0-go client/policy.go Policy.TagRules)
    policy = twin.http.get("policies/find", params={"name": "engineers"}).json()
    rules = [{"team": "platform"}]
    body = {k: policy[k] for k in ("name", "version", "description", "policy_data")}
    assert twin.http.put(f"policy/{policy['id']}", json={**body, "tag_rules": rules}
                         ).status_code == 200

    web = folder / "sockets" / "web.yaml"
    web.write_text(web.read_text().replace("description: Team web app",
                                           "description: Team web app, v2"))
    engineers = folder / "policies" / "engineers.yaml"
    engineers.write_text(engineers.read_text().replace("Engineers by email domain",
                                                       "Engineers, by email domain"))
    code, out, err = twin.run("apply", str(folder), "--auto-approve")
    assert code == 0, out + err
    policy = twin.http.get("policies/find", params={"name": "engineers"}).json()
    assert policy["description"].startswith("Engineers, by email domain")
    assert policy["tag_rules"] == rules
    after = twin.socket("web")
    assert after["description"] == "Team web app, v2"
    assert twin.connector_ids("web") == [connector]
    assert after["recording_enabled"] is True
    assert twin.run("plan", str(folder), "--detailed-exitcode")[0] == 0

    # spec.recording, once written, manages it.
    web.write_text(web.read_text().replace("spec:\n", "spec:\n  recording: false\n"))
    code, out, _ = twin.run("plan", str(folder), "--detailed-exitcode")
    assert code == 2 and "recording: true → false" in out
    assert twin.run("apply", str(folder), "--auto-approve")[0] == 0
    assert twin.socket("web")["recording_enabled"] is False
    assert twin.connector_ids("web") == [connector]


def test_changing_protection_is_a_replace_that_keeps_hand_set_fields(
    twin: Twin, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    copy_examples(folder, "ci", "kubernetes")
    assert twin.run("apply", str(folder), "--auto-approve")[0] == 0
    current = twin.socket("grafana")
    connector = twin.connector("edge-2")
    edit_by_hand(twin.proc.client(), current, connector_ids=[connector])

    grafana = folder / "sockets" / "grafana.yaml"
    grafana.write_text(grafana.read_text().replace("username: viewer", "username: admin"))
    code, out, err = twin.run("plan", str(folder), "--detailed-exitcode")
    assert code == 1 and "socket grafana needs a replace" in err  # not allowed: refused
    code, out, err = twin.run("plan", str(folder), "--detailed-exitcode", "--allow-replace")
    assert code == 2
    assert "-/+ socket grafana  (protected_username changed: border0 cannot change protection" \
        in out and "sessions and recordings stay with the old id" in out
    code, out, err = twin.run("apply", str(folder), "--auto-approve", "--allow-replace")
    assert code == 0, out + err
    after = twin.socket("grafana")
    assert after["socket_id"] != current["socket_id"]
    assert after["protected_username"] == "admin"
    assert twin.connector_ids("grafana") == [connector]
    assert twin.run("plan", str(folder), "--detailed-exitcode")[0] == 0


@pytest.mark.parametrize("mode", ["mask", "clear"])
def test_plans_stay_empty_whatever_border0_answers_for_secrets(
    emulator_factory: Any, mode: str
) -> None:
    """The default (omit) is covered above; a masked or cleared password on read changes
    nothing either: secrets are compared with fingerprints only."""
    twin = Twin(emulator_factory(secrets_on_read=mode))
    try:
        assert twin.run("apply", "examples/", "--auto-approve")[0] == 0
        code, out, err = twin.run("plan", "examples/", "--detailed-exitcode")
        assert code == 0, out + err
    finally:
        twin.http.close()


@pytest.mark.slow
def test_plans_stay_empty_with_stale_reads(emulator_factory: Any, tmp_path: Path) -> None:
    """--read-after-write-delay: reads lag writes; apply waits it out before it ends, so the
    plan right after (a new run of the CLI) does not see the old socket and plan it again."""
    twin = Twin(emulator_factory(read_after_write_delay_ms=2500))
    folder = tmp_path / "m"
    copy_examples(folder, "ci", "kubernetes")
    try:
        code, out, err = twin.run("apply", str(folder), "--auto-approve")
        assert code == 0, out + err
        web = folder / "sockets" / "web.yaml"
        web.write_text(web.read_text().replace("Team web app", "Team web app, v2"))
        code, out, err = twin.run("apply", str(folder), "--auto-approve", "-v")
        assert code == 0 and "updated socket web" in err, out + err
        code, out, err = twin.run("plan", str(folder), "--detailed-exitcode")
        assert code == 0, out + err
    finally:
        twin.http.close()


def _counter(daemon: Daemon, family: str) -> float:
    text = daemon.http.get("/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) if f.name == family
               for s in f.samples if s.name == family + "_total")


@pytest.mark.slow  # in this process, but five interval reconciles of the examples
def test_the_daemon_writes_nothing_after_its_first_reconcile(
    twin: Twin, daemon_run: Any, tmp_path: Path
) -> None:
    # a copy outside git (no `git rev-parse` process); its connectors are processes, left to
    # the connector tests (daemon_run runs with --no-connectors): border0's writes are the subject
    examples = copy_examples(tmp_path / "examples")
    daemon = daemon_run(examples, twin.proc.url, twin.proc.token,
                        "--interval", "1s", "--jitter", "0", "--env-file", str(DEMO_ENV))
    reconciles = "border0_reconciler_reconciles"
    wait_for(lambda: (daemon.status().get("last_reconcile") or {}).get("result")
             == "success", timeout=60, message="the first reconcile")
    first = len(twin.writes())
    assert first > 0
    done = _counter(daemon, reconciles)
    drift = _counter(daemon, "border0_reconciler_drift_corrections")
    wait_for(lambda: _counter(daemon, reconciles) >= done + 4, timeout=40,
             message="four more interval reconciles")
    assert twin.writes()[first:] == []
    assert _counter(daemon, "border0_reconciler_drift_corrections") == drift
    values = demo_values()
    assert not any(v in line for v in values for line in daemon.lines
                   if v not in ("orders_demo", "analytics_demo"))
