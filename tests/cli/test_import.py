"""`import` as a user runs it: an organization made through the emulator's raw API over HTTP
(every socket type, v1 and v2 policies, attachments, an org-wide policy, objects of another
instance), imported with the real CLI, then validated, planned, applied and planned again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers import cli

from reconciler import model
from reconciler.manifests.specs import POLICY_MANIFEST_PATHS, SOCKET_MANIFEST_PATHS
from reconciler.model import Actual, LivePolicy, LiveSocket
from reconciler.ownership import policy_marker
from reconciler.render.manifests import plan_import

DB_PASSWORD = "pw-orders-7c1e"
V2_PERMISSIONS: dict[str, Any] = {"tls": {}, "http": {}}  # a kind present is granted (SDK)
OTHER = {"managed-by": "border0-reconciler", "border0-reconciler/instance": "ci"}


def v2_policy_body(name: str) -> dict[str, Any]:
    """A v2 policy as border0 takes it (border0-go client/policy.go): `version` at the top
    level, no version key in `policy_data` (PolicyDataV2)."""
    return {"name": name, "version": "v2", "policy_data": {
        "permissions": V2_PERMISSIONS,
        "condition": {"who": {"group": ["0b5e4c1a-1111-4d2e-9f00-000000000001"]}},
    }}


def make_org(url: str, token: str) -> dict[str, str]:
    """The organization, made with plain HTTP requests; returns socket name -> id."""
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = api.post(path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    ids = {}
    for body in (
        {"name": "web", "socket_type": "http", "description": "the web", "tags": {"team": "web"},
         "upstream_http_hostname": "web.internal"},
        {"name": "intranet", "socket_type": "https", "description": "intranet over https"},
        {"name": "bastion", "socket_type": "ssh", "upstream_type": "aws-ssm"},
        {"name": "mqtt", "socket_type": "tls", "description": "broker"},
        {"name": "orders-db", "socket_type": "database", "upstream_type": "postgres",
         "upstream_username": "orders", "upstream_password": DB_PASSWORD},
        {"name": "grafana", "socket_type": "http", "protected_socket": True,
         "protected_username": "viewer", "protected_password": "pw-grafana-9d2f"},
        {"name": "kept", "socket_type": "tls", "tags": {
            "managed-by": "border0-reconciler", "border0-reconciler/instance": "default",
            "border0-reconciler/prune": "false"}},
        {"name": "legacy", "socket_type": "tls", "tags": OTHER},
    ):
        ids[body["name"]] = post("/socket", body)["socket_id"]
    policies = {}
    for body in (
        {"name": "engineers", "policy_data": {"version": "v1", "action": ["http", "ssh"],
                                              "condition": {"who": {"domain": ["example.com"]}}}},
        {"name": "on-call", "description": "office hours", "policy_data": {
            "version": "v1", "action": ["database"],
            "condition": {"who": {"email": ["alice@example.com"]},
                          "where": {"allowed_ip": ["10.0.0.0/8"]},
                          "when": {"time_of_day_after": "07:00 UTC",
                                   "time_of_day_before": "19:00 UTC"}}}},
        v2_policy_body("devs-v2"),
        {"name": "org-default", "org_wide": True, "policy_data": {
            "version": "v1", "action": ["http"], "condition": {"who": {"domain": ["ex.org"]}}}},
        {"name": "ci-only", "description": policy_marker("ci"), "policy_data": {
            "version": "v1", "action": ["http"], "condition": {"who": {"email": ["ci@ex.org"]}}}},
    ):
        policies[body["name"]] = post("/policies", body)["id"]
    for socket, names in {"web": ["engineers", "ci-only"], "bastion": ["engineers"],
                          "orders-db": ["on-call"], "mqtt": ["devs-v2"],
                          "intranet": ["devs-v2"]}.items():
        actions = [{"action": "add", "id": policies[n]} for n in names]
        response = api.put(f"/socket/{ids[socket]}/policy", json={"actions": actions})
        assert response.status_code == 200, response.text
    api.close()
    return ids


@pytest.fixture
def org(emulator, tmp_path: Path) -> dict[str, Any]:
    emu = emulator
    make_org(emu.url, emu.token)
    return {"api": ["--api", emu.url], "env": {"BORDER0_ADMIN_TOKEN": emu.token},
            "dir": tmp_path, "out": tmp_path / "imported"}


def run(org: dict[str, Any], *args: str) -> tuple[int, str, str]:
    code, out, err = cli([*args, *org["api"]], env=org["env"], cwd=org["dir"])
    assert "Traceback" not in err, err
    return code, out, err


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_import_round_trip_plans_only_adoptions_then_nothing(org: dict[str, Any]) -> None:
    out = org["out"]
    code, stdout, err = run(org, "import", str(out))
    assert code == 0, err
    assert "skipped socket legacy: managed by instance 'ci', not 'default'" in stdout
    assert "skipped policy ci-only: managed by instance 'ci', not 'default'" in stdout
    assert "Imported 7 sockets and 4 policies" in stdout and "(10 to adopt, 2 skipped)" in stdout
    assert not (out / "sockets/legacy.yaml").exists()
    assert DB_PASSWORD not in stdout + err

    web = load(out / "sockets/web.yaml")
    assert web["metadata"] == {"name": "web", "labels": {"team": "web"},
                               "annotations": {"border0-reconciler/adopt": "true"}}
    assert web["spec"]["policies"] == ["engineers"]
    assert web["spec"]["externalPolicies"] == ["ci-only"]
    assert web["spec"]["upstream"] == {"httpHostname": "web.internal"}  # type http: default
    assert load(out / "sockets/intranet.yaml")["spec"]["type"] == "https"
    assert load(out / "sockets/bastion.yaml")["spec"]["upstream"] == {"type": "aws-ssm"}
    assert "upstream" not in load(out / "sockets/mqtt.yaml")["spec"]
    kept = load(out / "sockets/kept.yaml")  # ours already: no adopt, prune mark kept
    assert kept["metadata"]["annotations"] == {"border0-reconciler/prune": "false"}
    db = load(out / "sockets/orders-db.yaml")["spec"]["upstream"]
    assert db == {"type": "postgres", "username": {"env": "ORDERS_DB_UPSTREAM_USERNAME"},
                  "password": {"env": "ORDERS_DB_UPSTREAM_PASSWORD"}}
    assert load(out / "policies/org-default.yaml")["spec"]["orgWide"] is True
    v2 = load(out / "policies/devs-v2.yaml")["spec"]["policyData"]
    assert v2["permissions"] == V2_PERMISSIONS

    example = (out / ".env.example").read_text()
    names = [line.split("=")[0] for line in example.splitlines() if "=" in line]
    assert names == ["GRAFANA_PROTECTED_PASSWORD", "ORDERS_DB_UPSTREAM_USERNAME",
                     "ORDERS_DB_UPSTREAM_PASSWORD"]
    values = {"GRAFANA_PROTECTED_PASSWORD": "pw-grafana-9d2f",
              "ORDERS_DB_UPSTREAM_USERNAME": "orders", "ORDERS_DB_UPSTREAM_PASSWORD": DB_PASSWORD}
    env_file = org["dir"] / "filled.env"
    env_file.write_text("".join(f"{n}={values[n]}\n" for n in names))

    code, stdout, err = cli(["validate", str(out), "--strict", "--env-file", str(env_file)])
    # the imported legacy upstreams warn (docs/connectors.md): one line each
    assert code == 0 and "\nok: 7 sockets, 4 policies in 11 files" in stdout, stdout + err

    # adopting the protected socket records its password's fingerprint: a loud replace
    code, stdout, err = run(org, "plan", str(out), "--env-file", str(env_file))
    assert code == 1 and "socket grafana needs a replace" in err, stdout + err
    code, stdout, err = run(org, "plan", str(out), "--env-file", str(env_file), "--format", "json",
                            "--allow-replace")
    assert code == 0, err
    plan = json.loads(stdout)
    assert plan["applicable"] and len(plan["changes"]) == 10  # the 10 unmanaged objects
    for change in plan["changes"]:  # adoptions, and not one field change
        assert change["reason"].startswith("adopt"), change
        plain = [d["path"] for d in change["diffs"] if not d["sensitive"]]
        assert plain in (["managed_by"], []), change
        # A secret border0 does not show can only be written, never compared: "(none) → …".
        assert all(d["before"] is None for d in change["diffs"] if d["sensitive"]), change

    code, stdout, err = run(org, "ls", "--manifests", str(out), "--env-file", str(env_file),
                            "--format", "json")
    states = {r["name"]: r["state"] for r in json.loads(stdout)}
    assert states == {"bastion": "to adopt", "grafana": "to adopt", "intranet": "to adopt",
                      "kept": "in-sync", "legacy": "not in manifests", "mqtt": "to adopt",
                      "orders-db": "to adopt", "web": "to adopt"}, err

    code, stdout, err = run(org, "apply", str(out), "--env-file", str(env_file), "--auto-approve",
                            "--allow-replace")
    assert code == 0, err
    code, stdout, err = run(org, "ls", "--manifests", str(out), "--format", "json")
    assert {r["state"] for r in json.loads(stdout) if r["name"] != "legacy"} == {"in-sync"}
    code, stdout, err = run(org, "plan", str(out), "--env-file", str(env_file),
                            "--detailed-exitcode")
    assert code == 0 and "No changes." in stdout, stdout + err


def test_import_never_overwrites_without_force_and_select_narrows(org: dict[str, Any]) -> None:
    out = org["out"]
    code, stdout, err = run(org, "import", str(out), "--select", "web", "--select", "eng*")
    assert code == 0, err
    assert "note: --select leaves out 1 object(s) instance default manages (socket kept)" \
        in stdout  # ours: applying these manifests alone would prune it
    assert sorted(p.name for p in out.rglob("*.yaml")) == ["engineers.yaml", "web.yaml"]
    assert not (out / ".env.example").exists()  # web has no secret
    (out / "sockets/web.yaml").write_text("# my edits\n")

    code, _, err = run(org, "import", str(out))
    assert code == 1 and err.startswith("error: not overwriting existing ")
    assert "nothing was written" in err and "--force" in err
    assert (out / "sockets/web.yaml").read_text() == "# my edits\n"
    assert not (out / "sockets/bastion.yaml").exists()

    (out / ".env.example").write_text("ORDERS_DB_UPSTREAM_PASSWORD=kept-as-is\n")
    code, _, err = run(org, "import", str(out), "--force")
    assert code == 0, err
    assert load(out / "sockets/web.yaml")["metadata"]["name"] == "web"
    lines = (out / ".env.example").read_text().splitlines()
    assert lines[0] == "ORDERS_DB_UPSTREAM_PASSWORD=kept-as-is"  # merged, never rewritten
    assert lines.count("ORDERS_DB_UPSTREAM_PASSWORD=kept-as-is") == 1
    assert "GRAFANA_PROTECTED_PASSWORD=" in lines


def test_import_with_another_instance_and_bad_input(org: dict[str, Any]) -> None:
    code, stdout, err = run(org, "import", str(org["out"]), "--instance", "ci")
    assert code == 0, err
    legacy = load(org["out"] / "sockets/legacy.yaml")
    assert "annotations" not in legacy["metadata"]  # ci's own: nothing to adopt
    assert "skipped socket kept: managed by instance 'default', not 'ci'" in stdout
    code, _, err = run(org, "import", str(org["out"]), "--instance", "bad id")
    assert code == 1 and err.startswith("error: invalid instance")
    # border0 refusing the token: an API error at once (a port nobody listens on is retried
    # for seconds, which is test_client's subject, not this one's)
    code, _, err = cli(["import", str(org["out"]), *org["api"]],
                       env={"BORDER0_ADMIN_TOKEN": "not-the-token"}, cwd=org["dir"])
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err


def test_every_comparable_field_has_a_manifest_path() -> None:
    """A field added to the model's comparable form must say where a manifest holds it."""
    # confirm_delete is compared only where set (objects without it compare as before)
    spec_fields = model.socket_fields(model.SocketSpec(name="x", type="http",
                                                       confirm_delete=True))
    assert set(spec_fields) == set(SOCKET_MANIFEST_PATHS)
    assert set(model.policy_fields(model.PolicySpec(name="x", confirm_delete=True))) == set(
        POLICY_MANIFEST_PATHS)


def test_names_that_are_not_safe_file_names_are_skipped() -> None:
    actual = Actual(
        sockets={"../etc": LiveSocket("id1", "../etc", "http"),
                 "telnet1": LiveSocket("id2", "telnet1", "telnet")},
        policies={"Bad_Name": LivePolicy("p1", "Bad_Name", policy_data={"version": "v1"})},
    )
    result = plan_import(actual, "default")
    assert result.documents == {}
    assert result.skipped == [
        "policy 'Bad_Name': the name is not valid in a manifest",
        "socket '../etc': the name is not valid in a manifest",
        "socket telnet1: type 'telnet' has no manifest form yet",
    ]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("planted", [".env.example", "sockets"])
def test_import_refuses_a_planted_symlink_and_writes_nothing_outside(org: dict[str, Any],
                                                                    planted: str) -> None:
    """A `.env.example` (or `sockets/`) symlink pointing outside DIR: one clear error, no
    traceback, nothing written outside DIR (nor inside it)."""
    out, outside = org["out"], org["dir"] / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious\n")
    out.mkdir()
    target = outside / "victim" if planted == ".env.example" else outside
    (out / planted).symlink_to(target)
    before = _tree(outside)

    code, stdout, err = run(org, "import", str(out), "--force")
    assert code == 1, (stdout, err)
    assert err.startswith(f"error: refusing to write {out / planted}: it is a symbolic link"), err
    assert "nothing was written" in err
    assert _tree(outside) == before
    assert not list(out.rglob("*.yaml"))


def test_import_never_writes_through_a_hard_link(org: dict[str, Any]) -> None:
    out, outside = org["out"], org["dir"] / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious\n")
    out.mkdir()
    (out / ".env.example").hardlink_to(outside / "victim")
    code, _, err = run(org, "import", str(out))
    assert code == 1 and "other hard link" in err, err
    assert (outside / "victim").read_text() == "precious\n"


def test_import_never_writes_a_manifest_validate_refuses(emulator, tmp_path: Path) -> None:
    """A bare socket of every type (as border0 holds one made without a typed upstream): what
    no manifest can describe is skipped and listed with validate's reasons, exit 1; what is
    written validates, and plans. A connector left out by --select is named as external."""
    api = httpx.Client(base_url=emulator.url,
                       headers={"Authorization": f"Bearer {emulator.token}"})
    for socket_type in model.SOCKET_TYPES:
        body = {"name": f"bare-{socket_type.replace('_', '-')}", "socket_type": socket_type}
        assert api.post("/socket", json=body).status_code == 200
    ours = {"managed-by": "border0-reconciler", "border0-reconciler/instance": "default"}
    assert api.post("/socket", json={"name": "rdp1", "socket_type": "rdp",
                                     "tags": ours}).status_code == 200
    edge = api.post("/connector", json={"name": "edge"}).json()["connector_id"]
    assert api.post("/socket", json={"name": "linked", "socket_type": "tls",
                                     "connector_ids": [edge]}).status_code == 200
    api.close()
    token = {"BORDER0_ADMIN_TOKEN": emulator.token}
    out = tmp_path / "imported"

    code, stdout, err = cli(["import", str(out), "--api", emulator.url], env=token)
    assert code == 1, stdout + err
    # upstream {type: rdp|vnc|vpn}; a database without a login (test below)
    undescribable = {"bare-rdp", "bare-vnc", "bare-vpn", "rdp1", "bare-database"}
    skipped = [line for line in stdout.splitlines() if line.startswith("skipped ")]
    assert {line.split()[2].rstrip(":") for line in skipped} == undescribable, stdout
    assert ("skipped socket rdp1: no manifest describes it as border0 holds it (validate would "
            "say: spec.upstream.serviceType is required") in stdout
    assert f"({len(model.SOCKET_TYPES) - 2} to adopt, 5 skipped)" in stdout
    assert f"note: instance default manages 1 of the objects left out (socket rdp1): " \
           f"applying {out} would delete them" in stdout
    assert err.startswith("error: 5 objects left out: no manifest describes them"), err
    written = {p.stem for p in (out / "sockets").glob("*.yaml")}
    assert written.isdisjoint(undescribable) and len(written) == len(model.SOCKET_TYPES) - 3
    code, stdout, err = cli(["validate", str(out)])
    assert code == 0, stdout + err
    assert not (out / ".env.example").exists()  # no bare socket has a secret to fill in
    code, stdout, err = cli(["plan", str(out), "--api", emulator.url, "-o", "json"], env=token)
    assert code == 0, stdout + err
    changes = {c["name"]: c["action"] for c in json.loads(stdout)["changes"]}
    assert changes["rdp1"] == "delete" and "bare-rdp" not in changes  # as the note says

    code, stdout, err = cli(["import", str(tmp_path / "one"), "--select", "linked",
                             "--api", emulator.url, "-o", "json"], env=token)
    assert code == 0 and json.loads(stdout)["undescribed"] == [], stdout + err
    linked = load(tmp_path / "one" / "sockets" / "linked.yaml")["spec"]
    assert "connectors" not in linked and linked["externalConnectors"] == ["edge"]
    code, stdout, err = cli(["validate", str(tmp_path / "one")])
    assert code == 0, stdout + err


def test_a_tag_set_elsewhere_on_a_socket_we_own_stays_elsewheres(emulator, tmp_path: Path) -> None:
    """A socket this instance manages, with a label of its manifest and a tag the portal set
    since (`border0_client_category`): the import writes the label only. It wrote both, and
    the next write of the socket recorded the portal's tag as a label of ours: a later edit of
    it in the portal was planned away."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mq.yaml").write_text(yaml.safe_dump({
        "apiVersion": "border0-reconciler/v1", "kind": "Socket",
        "metadata": {"name": "mq", "labels": {"team": "iot"}}, "spec": {"type": "tls"}}))
    token = {"BORDER0_ADMIN_TOKEN": emulator.token}
    api = ["--api", emulator.url]
    code, _, err = cli(["apply", str(repo), *api, "--auto-approve"], env=token)
    assert code == 0, err
    portal = httpx.Client(base_url=emulator.url,
                          headers={"Authorization": f"Bearer {emulator.token}"})

    def set_category(value: str) -> None:
        socket = portal.get("/socket/mq").json()
        body = {k: socket[k] for k in ("name", "socket_type", "description", "upstream_type",
                                       "recording_enabled")}
        body["tags"] = {**socket["tags"], "border0_client_category": value}
        assert portal.put(f"/socket/{socket['socket_id']}", json=body).status_code == 200

    set_category("queues")
    out = tmp_path / "imported"
    code, stdout, err = cli(["import", str(out), *api], env=token)
    assert code == 0, stdout + err
    imported = load(out / "sockets/mq.yaml")
    assert imported["metadata"]["labels"] == {"team": "iot"}, imported

    path = out / "sockets/mq.yaml"  # an edit, so the socket is written
    path.write_text(path.read_text().replace("type: tls", "type: tls\n  description: broker"))
    code, _, err = cli(["apply", str(out), *api, "--auto-approve"], env=token)
    assert code == 0, err
    set_category("brokers")
    code, stdout, err = cli(["plan", str(out), *api, "--detailed-exitcode"], env=token)
    assert code == 0 and "No changes." in stdout, stdout + err
    assert portal.get("/socket/mq").json()["tags"]["border0_client_category"] == "brokers"
    portal.close()


def test_a_database_socket_without_a_login_is_left_out_not_given_one(emulator,
                                                                    tmp_path: Path) -> None:
    """border0 answers an empty upstream_username for a database socket made without a login
    (the client's own is passed through). A legacy manifest needs one, so the import asked for
    two "secrets" that do not exist: left empty, validate refused them; filled in, the apply
    gave the socket a login. It is left out with validate's reason; one with a login is
    imported with its references to fill in."""
    api = httpx.Client(base_url=emulator.url,
                       headers={"Authorization": f"Bearer {emulator.token}"})
    for body in ({"name": "passthrough", "socket_type": "database", "upstream_type": "postgres"},
                 {"name": "orders", "socket_type": "database", "upstream_type": "postgres",
                  "upstream_username": "app", "upstream_password": DB_PASSWORD}):
        assert api.post("/socket", json=body).status_code == 200
    out = tmp_path / "imported"
    code, stdout, err = cli(["import", str(out), "--api", emulator.url],
                            env={"BORDER0_ADMIN_TOKEN": emulator.token})
    assert code == 1, stdout + err
    assert ("skipped socket passthrough: no manifest describes it as border0 holds it (validate "
            "would say: spec.upstream.username is required") in stdout
    assert not (out / "sockets/passthrough.yaml").exists()
    names = [line.split("=")[0] for line in (out / ".env.example").read_text().splitlines()
             if "=" in line]
    assert names == ["ORDERS_UPSTREAM_USERNAME", "ORDERS_UPSTREAM_PASSWORD"]
    assert api.get("/socket/passthrough").json()["upstream_username"] == ""
    api.close()
