"""Issue 22, the reconciler's side: it reads border0 as border0 answers and writes only what the
manifests declare. Real parts: the emulator over HTTP (in-process, or a child process for the
CLI), `reconcile` or the CLI as a user runs it; request bodies recorded from the real client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from documents import SECRET, opts, policy_doc, postgres_upstream, socket_doc, write
from helpers import cli, edit_by_hand

from reconciler.border0.inventory import fetch_actual
from reconciler.plan.types import Action
from reconciler.reconcile import ReconcileOptions, reconcile
from reconciler.secrets import FINGERPRINT_TAG_PREFIX

V2 = {"version": "v2",
      "permissions": {"http": {}, "ssh": {"allowed_usernames": ["root", "admin"]}},
      "condition": {"who": {"email": ["b@example.com", "a@example.com"]},
                    "where": {"allowed_ip": ["10.0.0.0/8", "192.168.0.0/16"]}}}


def v2_policy(name: str, data: dict[str, Any] | None = None) -> dict:
    doc = policy_doc(name, "v2 policy")
    doc["spec"]["policyData"] = data or V2
    return doc


def writes(twin: Any) -> list[tuple[str, str]]:
    """The writing requests the emulator served (its request log, conftest's `requests()`,
    recording from the emulator's start: each test calls this once before the CLI runs)."""
    return twin.writes()


def plan_of(folder: Path, client: Any, **kw: Any):
    result = reconcile([folder], client, opts(dry_run=True, **kw))
    assert result.plan is not None, result.error
    return result.plan


def recorder(client: Any) -> list[tuple[str, str, Any]]:
    """Every request the client sends: (method, path, JSON body)."""
    seen: list[tuple[str, str, Any]] = []

    def hook(request: Any) -> None:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))

    client._http.event_hooks["request"].append(hook)
    return seen


def test_a_noisy_policy_answer_plans_nothing_and_a_real_change_plans_one_update(
    emulator, tmp_path: Path
) -> None:
    """As the provider after ME-4888: nulls, "" and [] at any depth (permissions too),
    reordered arrays are no difference; `http: {}` (an empty permission grants) is kept."""
    client = emulator.client()
    folder = write(tmp_path / "m", [v2_policy("ops")])
    assert reconcile([folder], client, opts()).ok
    live = client.find_policy("ops")
    noisy = {
        "permissions": {"http": {}, "database": None,
                        "ssh": {"allowed_usernames": ["admin", "root"],
                                "max_session_duration_seconds": None}},
        "condition": {"who": {"email": ["a@example.com", "b@example.com"], "group": [],
                              "service_account": None},
                      "where": {"allowed_ip": ["192.168.0.0/16", "10.0.0.0/8"], "country": []},
                      "when": {"after": "", "before": None}},
    }
    client.update_policy(live["id"], {"name": "ops", "version": "v2",
                                      "description": live["description"],
                                      "policy_data": noisy})
    assert plan_of(folder, client).changes == []

    # an empty permission is not an absent one: dropping http: {} takes http access away
    client.update_policy(live["id"], {"name": "ops", "version": "v2",
                                      "description": live["description"],
                                      "policy_data": {**noisy, "permissions": {
                                          "ssh": noisy["permissions"]["ssh"]}}})
    plan = plan_of(folder, client)
    assert [(c.action, c.name) for c in plan.changes] == [(Action.UPDATE, "ops")]

    # a real change in the manifest: one update, nothing else
    assert reconcile([folder], client, opts()).ok
    changed = json.loads(json.dumps(V2))
    changed["condition"]["who"]["email"].append("c@example.com")
    write(folder, [v2_policy("ops", changed)])
    plan = plan_of(folder, client)
    assert [(c.action, c.name) for c in plan.changes] == [(Action.UPDATE, "ops")]
    assert [d.path for d in plan.changes[0].diffs] == ["policy_data.condition.who.email"]


def test_over_long_fields_stop_at_validate_with_file_line_and_apply_writes_nothing(
    emulator, tmp_path: Path
) -> None:
    folder = write(tmp_path / "m", [socket_doc(
        "web", description="d" * 201,
        protected={"username": "u" * 21, "password": {"env": "PW"}})])
    code, out, err = cli(["validate", str(folder)], cwd=tmp_path)
    assert code == 1, out + err
    manifest = folder / "socket-web.yaml"
    lines = manifest.read_text().splitlines()
    desc = next(i for i, ln in enumerate(lines, 1) if ln.lstrip().startswith("description:"))
    user = next(i for i, ln in enumerate(lines, 1) if ln.lstrip().startswith("username:"))
    assert f"{manifest}:{desc}:" in out and "spec.description: longer than 200" in out
    assert f"{manifest}:{user}:" in out and "spec.protected.username: longer than 20" in out

    # a resolved secret is held to border0's limit too (protected_password: 100)
    write(folder, [socket_doc("web", description="fine",
                              protected={"username": "u", "password": {"env": "PW"}})])
    twin = emulator
    assert writes(twin) == []
    api = ["--api", twin.url, "--auto-approve"]
    code, out, err = cli(["apply", str(folder), *api], env={"PW": "p" * 101,
                                                           "BORDER0_TOKEN": twin.token},
                         cwd=tmp_path)
    assert code == 1
    assert "spec.protected.password: the value from env:PW is 101 characters; border0 " \
        "accepts at most 100" in err
    assert "p" * 101 not in out + err
    # the same manifests with the over-long description: no request that writes either
    write(folder, [socket_doc("web", description="d" * 201), socket_doc("ok", "ssh")])
    code, out, err = cli(["apply", str(folder), *api], env={"BORDER0_TOKEN": twin.token},
                         cwd=tmp_path)
    assert code == 1 and "longer than 200" in err
    assert writes(twin) == [] and fetch_actual(twin.client()).sockets == {}


def test_a_portal_tag_survives_and_removing_a_selected_label_names_the_policy(
    emulator, tmp_path: Path
) -> None:
    client = emulator.client()
    client.create_policy({"name": "gold-access", "version": "v2", "description": "by tag",
                          "policy_data": {"permissions": {"http": {}}, "condition": {}},
                          "tag_rules": [{"tier": "gold"}]})
    docs = [socket_doc("web", description="one", labels={"team": "web", "tier": "gold"})]
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok
    web = client.get_socket("web")
    edit_by_hand(client, web, tags={**web["tags"], "border0_client_category": "Apps"})

    docs[0]["spec"]["description"] = "two"
    write(folder, docs)
    plan = plan_of(folder, client)
    assert [(c.action, [d.path for d in c.diffs]) for c in plan.changes] == [
        (Action.UPDATE, ["description"])]  # the portal's tag is no difference
    assert reconcile([folder], client, opts()).ok
    tags = client.get_socket("web")["tags"]
    assert tags["border0_client_category"] == "Apps" and tags["tier"] == "gold"

    del docs[0]["metadata"]["labels"]["tier"]
    write(folder, docs)
    plan = plan_of(folder, client)
    [change] = plan.changes
    assert [(d.path, d.before, d.after) for d in change.diffs] == [("labels.tier", "gold", None)]
    assert "stops matching tag_rules of policy gold-access" in change.reason
    assert any("gold-access" in w.message for w in plan.warnings)
    assert reconcile([folder], client, opts()).ok
    tags = client.get_socket("web")["tags"]
    assert "tier" not in tags and tags["border0_client_category"] == "Apps"

    # authoritative labels: the portal's tag is a difference, and goes
    plan = plan_of(folder, client, labels_authoritative=True)
    [change] = plan.changes
    assert [(d.path, d.before, d.after) for d in change.diffs] == [
        ("labels.border0_client_category", "Apps", None)]
    assert reconcile([folder], client, opts(labels_authoritative=True)).ok
    assert "border0_client_category" not in client.get_socket("web")["tags"]


def test_a_replace_keeps_the_portal_tags_an_update_keeps(emulator, tmp_path: Path) -> None:
    """A replace (here allowed) writes a new socket: it takes the tags set elsewhere along, as
    an update keeps them, so a policy selecting them by tag_rules still applies. It wrote only
    the manifest's labels, and the plan said nothing of the access lost. Authoritative labels
    leave them behind, as an update would."""
    client = emulator.client()
    client.create_policy({"name": "gold-access", "version": "v2", "description": "by tag",
                          "policy_data": {"permissions": {"http": {}}, "condition": {}},
                          "tag_rules": [{"tier": "gold"}]})
    allow = {"border0-reconciler/allow-replace": "true"}
    docs = [socket_doc("web", labels={"team": "web"}, annotations=allow)]
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok
    web = client.get_socket("web")
    edit_by_hand(client, web, tags={**web["tags"], "tier": "gold", "owner": "portal"})

    docs[0]["spec"]["type"] = "tls"
    write(folder, docs)
    [change] = plan_of(folder, client).changes
    assert change.action == Action.REPLACE
    assert not [d for d in change.diffs if d.path.startswith("labels")]
    assert reconcile([folder], client, opts()).ok
    tags = client.get_socket("web")["tags"]
    assert client.get_socket("web")["socket_id"] != web["socket_id"]
    assert (tags["tier"], tags["owner"], tags["team"]) == ("gold", "portal", "web")

    docs[0]["spec"]["type"] = "http"
    write(folder, docs)
    assert reconcile([folder], client, opts(labels_authoritative=True)).ok
    tags = client.get_socket("web")["tags"]
    assert "tier" not in tags and "owner" not in tags and tags["team"] == "web"


SSH_CONFIG = {  # as border0-go's structs encode it (examples/07-create-connector-and-socket)
    "service_type": "ssh",
    "ssh_service_configuration": {
        "ssh_service_type": "standard",
        "standard_ssh_service_configuration": {
            "hostname": "10.0.0.5", "port": 22,
            "ssh_authentication_type": "username_and_password",
            "username_and_password_auth_configuration": {
                "username_provider": "defined", "username": "deploy",
                "password": "hand-set-Pa55word-in-config"},
        },
    },
}


HTTP_CONFIG = {  # border0-go types/service/http_service_configuration.go
    "service_type": "http",
    "http_service_configuration": {
        "http_service_type": "standard",
        "standard_http_service_configuration": {
            "hostname": "10.0.0.6", "port": 8080, "scheme": "http", "host_header": "app.internal",
            "headers": [{"key": "X-Team", "value": "web"}],
        },
    },
}


def links(client: Any, socket_id: str) -> tuple[list[str], list[dict]]:
    """The socket's connector ids and upstream configurations, read as border0's provider
    reads them: through the two sub-resources."""
    ids = sorted(c["connector_id"] for c in client.list_connectors(socket_id))
    return ids, [c["config"] for c in client.list_upstream_configurations(socket_id)]


def test_links_and_configuration_survive_description_policies_labels_and_protection(
    emulator_factory, tmp_path: Path
) -> None:
    client = emulator_factory().client()
    connector = client._json("POST", "/connector", body={"name": "edge-1"})
    made = client.create_socket({"name": "web", "socket_type": "http",
                                 "connector_ids": [connector["connector_id"]],
                                 "upstream_configuration": HTTP_CONFIG})
    want = ([connector["connector_id"]], [HTTP_CONFIG])
    assert links(client, made["socket_id"]) == want

    adopt = {"border0-reconciler/adopt": "true"}
    docs = [policy_doc("ops"), socket_doc("web", description="one", annotations=adopt)]
    folder = write(tmp_path / "m", docs)
    steps = [
        lambda d: d[1]["spec"].update(description="two"),
        lambda d: d[1]["spec"].update(policies=["ops"]),
        lambda d: d[1]["metadata"].update(labels={"team": "web"}),
        lambda d: d[1]["spec"].update(policies=[]),
    ]
    assert reconcile([folder], client, opts()).ok
    for step in steps:
        step(docs)
        write(folder, docs)
        result = reconcile([folder], client, opts())
        assert result.ok and result.plan.changes, result.error
        web = client.get_socket("web")
        assert web["socket_id"] == made["socket_id"]
        assert links(client, web["socket_id"]) == want

    # protection: a replace, allowed by its annotation; the new socket keeps both
    docs[1]["metadata"]["annotations"] = {**adopt, "border0-reconciler/allow-replace": "true"}
    docs[1]["spec"]["protected"] = {"username": "admin", "password": {"env": "DB_PASSWORD"}}
    write(folder, docs)
    result = reconcile([folder], client, opts())
    assert result.ok and [c.action for c in result.plan.changes] == [Action.REPLACE]
    web = client.get_socket("web")
    assert web["socket_id"] != made["socket_id"] and web["protected_socket"] is True
    assert links(client, web["socket_id"]) == want
    assert plan_of(folder, client).changes == []


def test_undeclared_credentials_survive_and_the_plan_and_the_request_agree(
    emulator_factory, tmp_path: Path
) -> None:
    """An adopted ssh socket with a hand-set upstream username and password (legacy fields, and
    in its upstream configuration, where border0's provider keeps them): an apply that changes
    only the description keeps them, and the PUT says what the plan said."""
    emu = emulator_factory(secrets_on_read="clear")  # border0 answering the password in clear
    client = emu.client()
    client.create_socket({"name": "box", "socket_type": "ssh", "description": "one",
                          "upstream_username": "deploy", "upstream_password": "legacy-Pa55",
                          "upstream_configuration": SSH_CONFIG})
    folder = write(tmp_path / "m", [socket_doc(
        "box", "ssh", description="two", annotations={"border0-reconciler/adopt": "true"})])
    plan = plan_of(folder, client)
    [change] = plan.changes
    assert [d.path for d in change.diffs] == ["managed_by", "description"]
    seen = recorder(client)
    assert reconcile([folder], client, opts()).ok
    [put] = [body for method, _, body in seen if method == "PUT"]
    assert put["description"] == "two"
    assert put["upstream_username"] == "deploy" and put["upstream_password"] == "legacy-Pa55"
    assert put["upstream_configuration"] == SSH_CONFIG
    box = client.get_socket("box")
    assert (box["upstream_username"], box["upstream_password"]) == ("deploy", "legacy-Pa55")
    assert links(client, box["socket_id"])[1] == [SSH_CONFIG]  # its password too


def test_the_upstream_tls_client_certificate_is_stored_written_and_kept(
    emulator_factory, tmp_path: Path
) -> None:
    """`upstream_key`, `upstream_cert` and `upstream_ca` are fields of createSocketRequest,
    updateSocketRequest and serializer.Socket (tests/reference/border0-openapi.json). The twin
    took them and dropped them: a manifest's `upstream.key` planned and applied clean though
    nothing held it, and a certificate set elsewhere could not be shown to survive an update
    (KEPT_ON_UPDATE sends it back)."""
    emu = emulator_factory(secrets_on_read="clear")  # border0 answering the key in clear
    client = emu.client()
    client.create_socket({"name": "edge", "socket_type": "tls", "upstream_cert": "CERT-PEM",
                          "upstream_ca": "CA-PEM", "upstream_key": "hand-set-KEY-pem"})
    folder = write(tmp_path / "m", [
        socket_doc("edge", "tls", description="two",
                   annotations={"border0-reconciler/adopt": "true"}),
        socket_doc("mtls", "tls", upstream={"key": {"env": "DB_PASSWORD"}})])
    assert reconcile([folder], client, opts()).ok
    edge = client.get_socket("edge")
    assert (edge["description"], edge["upstream_cert"], edge["upstream_ca"],
            edge["upstream_key"]) == ("two", "CERT-PEM", "CA-PEM", "hand-set-KEY-pem")
    assert client.get_socket("mtls")["upstream_key"] == SECRET
    assert plan_of(folder, client).changes == []


def test_a_credential_border0_masks_is_shown_as_cleared_and_needs_an_opt_in(
    emulator_factory, tmp_path: Path
) -> None:
    emu = emulator_factory(secrets_on_read="mask")
    client = emu.client()
    client.create_socket({"name": "box", "socket_type": "ssh", "description": "one",
                          "upstream_username": "deploy", "upstream_password": "legacy-Pa55"})
    folder = write(tmp_path / "m", [socket_doc(
        "box", "ssh", description="two", annotations={"border0-reconciler/adopt": "true"})])
    result = reconcile([folder], client, opts())
    assert not result.ok and result.stage == "plan"
    [change] = result.plan.changes
    assert ("upstream_password", "(set)", "(cleared)") in [
        (d.path, d.before, d.after) for d in change.diffs]
    assert "--allow-clear-credentials" in result.error
    assert client.get_socket("box")["description"] == "one"  # nothing written
    assert reconcile([folder], client, opts(allow_clear_credentials=True)).ok
    assert client.get_socket("box")["upstream_password"] == ""  # cleared, as the plan said
    assert client.get_socket("box")["upstream_username"] == "deploy"


def test_a_username_border0_answers_is_compared_as_answered(emulator, tmp_path: Path) -> None:
    """border0 answers `upstream_username` (serializer.Socket in the reference; the twin in
    every --secrets-on-read mode). A username changed in the portal is drift, planned and
    put back; a username the manifest stops declaring is sent back as answered, so the plan
    does not claim to clear it (it did, `(set) → (cleared)`, and blocked the write)."""
    client = emulator.client()
    docs = [socket_doc("box", "ssh", upstream={"username": "deploy",
                                               "password": {"env": "DB_PASSWORD"}})]
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok
    edit_by_hand(client, client.get_socket("box"), upstream_username="intruder")
    result = reconcile([folder], client, opts())
    assert result.ok, result.error
    assert [(c.name, [d.path for d in c.diffs]) for c in result.plan.changes] == [
        ("box", ["upstream_username"])]
    assert "intruder" not in json.dumps(result.plan.to_json())
    assert client.get_socket("box")["upstream_username"] == "deploy"
    assert plan_of(folder, client).changes == []

    del docs[0]["spec"]["upstream"]["username"]
    docs[0]["spec"]["description"] = "two"
    write(folder, docs)
    result = reconcile([folder], client, opts())
    assert result.ok, result.error
    assert [(c.name, [d.path for d in c.diffs]) for c in result.plan.changes] == [
        ("box", ["description"])]
    assert client.get_socket("box")["upstream_username"] == "deploy"


def test_a_replace_needs_an_allowance_and_says_what_it_costs(
    emulator, tmp_path: Path
) -> None:
    twin = emulator
    assert writes(twin) == []
    env = {"BORDER0_TOKEN": twin.token, "DB_PASSWORD": "a-long-enough-password"}
    api = ["--api", twin.url]
    docs = [socket_doc("web", description="one")]
    folder = write(tmp_path / "m", docs)
    assert cli(["apply", str(folder), *api, "--auto-approve"], env=env,
               cwd=tmp_path)[0] == 0
    first = twin.client().get_socket("web")["socket_id"]
    docs[0]["spec"]["protected"] = {"username": "admin", "password": {"env": "DB_PASSWORD"}}
    write(folder, docs)
    before = len(writes(twin))
    code, out, err = cli(["apply", str(folder), *api, "--auto-approve"], env=env, cwd=tmp_path)
    assert code == 1
    note = ("new id and TCP port; sessions and recordings stay with the old id; "
            "connections drop")
    assert "-/+ socket web" in out and note in out
    assert "needs a replace" in err and "--allow-replace" in err
    assert writes(twin)[before:] == []
    code, out, _ = cli(["plan", str(folder), *api, "--format", "markdown"], env=env,
                       cwd=tmp_path)
    assert note in out
    code, out, err = cli(["apply", str(folder), *api, "--auto-approve", "--allow-replace"],
                         env=env, cwd=tmp_path)
    assert code == 0, out + err
    assert twin.client().get_socket("web")["socket_id"] != first


def failing(emulator: Any, suffix: str) -> list[str]:
    """Make the emulator answer 500 to every request to a socket's sub-resource `suffix` (an
    ASGI layer inside its fault layer, as border0 failing one endpoint; the connector listing,
    GET /connectors, still answers); returns the writes seen."""
    inner, writes = emulator.app.app, []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "/socket/" in scope["path"] and (
                scope["path"].endswith(suffix)):
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body",
                        "body": b'{"status_code":500,"error_message":"boom"}'})
            return
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            writes.append(f"{scope['method']} {scope['path']}")
        await inner(scope, receive, send)

    emulator.app.app = app
    return writes


def test_a_failed_sub_resource_read_writes_nothing_for_that_socket_and_names_it(
    emulator_factory, tmp_path: Path
) -> None:
    for suffix, what in (("/upstream_configurations", "upstream configuration"),
                         ("/connectors", "connector links")):
        emu = emulator_factory()
        client = emu.client(max_retries_5xx=0)
        docs = [socket_doc("web", description="one"), socket_doc("docs", description="one")]
        folder = write(tmp_path / suffix.strip("/"), docs)
        assert reconcile([folder], client, opts()).ok
        for doc in docs:
            doc["spec"]["description"] = "two"
        write(folder, docs)
        writes = failing(emu, suffix)
        result = reconcile([folder], client, opts())
        assert not result.ok and result.stage == "apply"
        messages = sorted(r.message for r in result.applied.failed)
        assert len(messages) == 2 and all(
            f"reading its {what} failed, so it was not written" in m and suffix in m
            for m in messages), messages
        assert writes == []
        assert {client.get_socket(n)["description"] for n in ("web", "docs")} == {"one"}


def test_basic_auth_in_front_of_a_typed_upstream_is_written_with_its_password(
    emulator_factory, tmp_path: Path
) -> None:
    """spec.protected beside a typed upstream: the password is sent on create (it was left
    out, so border0 got a protected socket without one), the next plan is empty, and a new
    value in the environment is a change of the password: a replace, as for any socket
    (border0 cannot change protected credentials in place), here allowed."""
    emu = emulator_factory(secrets_on_read="clear")  # border0 answering the password in clear
    client = emu.client()
    upstream = {"serviceType": "http", "httpServiceConfiguration": {
        "httpServiceType": "standard", "standardHttpServiceConfiguration": {
            "hostname": "grafana.internal", "port": 3000, "scheme": "http",
            "hostHeader": "grafana.internal"}}}
    folder = write(tmp_path / "m", [socket_doc(
        "grafana", upstream=upstream,
        annotations={"border0-reconciler/allow-replace": "true"},
        protected={"username": "viewer", "password": {"env": "BASIC_PW"}})])

    def run(password: str) -> Any:
        result = reconcile([folder], client, ReconcileOptions(env={"BASIC_PW": password}))
        assert result.ok, result.error
        return result

    run("basic-pw-1")
    made = client.get_socket("grafana")
    assert made["protected_socket"] is True and made["protected_username"] == "viewer"
    assert made["protected_password"] == "basic-pw-1"
    again = reconcile([folder], client, ReconcileOptions(env={"BASIC_PW": "basic-pw-1"},
                                                          dry_run=True))
    assert again.plan is not None and again.plan.changes == []

    changed = run("basic-pw-2")
    assert [(c.action, [d.path for d in c.diffs]) for c in changed.plan.changes] == [
        (Action.REPLACE, ["protected_password"])]
    assert client.get_socket("grafana")["protected_password"] == "basic-pw-2"


def test_a_typed_sockets_legacy_upstream_fields_set_elsewhere_survive_an_update(
    emulator, tmp_path: Path
) -> None:
    """With a typed upstream, `upstream_type` and `upstream_http_hostname` are not compared,
    so they are not managed: an update sends them back as read, as the Terraform provider
    does (border0/resource_socket.go update: `UpstreamType: existingSocket.UpstreamType`).
    They were sent as the type's defaults: a description edit planned as one field also
    turned a postgres socket's upstream_type into mysql and cleared the Host header."""
    client = emulator.client()
    web = {"serviceType": "http", "httpServiceConfiguration": {
        "httpServiceType": "standard", "standardHttpServiceConfiguration": {
            "hostname": "10.0.0.6", "port": 8080, "scheme": "http",
            "hostHeader": "app.internal"}}}
    db = postgres_upstream("10.0.0.7")
    docs = [socket_doc("web", upstream=web), socket_doc("db", "database", upstream=db)]
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok
    edit_by_hand(client, client.get_socket("web"), upstream_http_hostname="app.internal")
    edit_by_hand(client, client.get_socket("db"), upstream_type="postgres")
    assert plan_of(folder, client, full_refresh=True).changes == []

    for doc in docs:
        doc["spec"]["description"] = "edited"
    write(folder, docs)
    result = reconcile([folder], client, opts())
    assert result.ok, result.error
    assert sorted((c.name, [d.path for d in c.diffs]) for c in result.plan.changes) == [
        ("db", ["description"]), ("web", ["description"])]
    assert client.get_socket("web")["upstream_http_hostname"] == "app.internal"
    assert client.get_socket("db")["upstream_type"] == "postgres"
    assert plan_of(folder, client, full_refresh=True).changes == []


def test_a_description_ending_in_a_newline_reads_back_as_written(emulator, tmp_path: Path):
    """`description: |` in YAML ends with a newline. The ownership marker is joined to the text
    by one space, and reading it back took the newline away with that space: the policy (and a
    connector, which carries the same marker) planned an update on every run."""
    client = emulator.client()
    docs = [policy_doc("ops", "who may reach ops\n"),
            {"apiVersion": "border0-reconciler/v1", "kind": "Connector",
             "metadata": {"name": "edge"}, "spec": {"description": "the edge hosts\n"}}]
    folder = write(tmp_path / "m", docs)
    assert reconcile([folder], client, opts()).ok
    assert client.find_policy("ops")["description"].startswith("who may reach ops\n [managed-by=")
    assert plan_of(folder, client).changes == []


def test_a_policy_a_declared_socket_still_names_is_not_pruned(emulator, tmp_path: Path):
    """The Policy manifest is removed (handed over to another team) while socket web names it
    as an external policy: it was deleted, detaching it from web, and the next plan failed on
    the unknown policy. It is kept, with a warning that says why."""
    client = emulator.client()
    folder = write(tmp_path / "m", [policy_doc("ops"), socket_doc("web", policies=["ops"])])
    assert reconcile([folder], client, opts()).ok
    write(folder, [socket_doc("web", externalPolicies=["ops"])])
    plan = plan_of(folder, client)
    assert plan.changes == [] and plan.ok
    [kept] = [w for w in plan.warnings if w.code == "prune-named"]
    assert "policy ops is no longer in the manifests, but socket(s) web name it: kept" in (
        kept.message)
    assert reconcile([folder], client, opts()).ok
    assert [p["name"] for p in client.get_socket("web")["policies"]] == ["ops"]

    write(folder, [socket_doc("web")])  # no socket names it any more: pruned
    assert [(c.action, c.name) for c in plan_of(folder, client).changes] == [
        (Action.DETACH, "web/ops"), (Action.DELETE, "ops")]


def test_plan_json_after_is_what_apply_then_writes(emulator, tmp_path: Path) -> None:
    """`plan -o json`'s resource_changes `after` for an update shows what apply writes: a tag
    set in border0 directly is kept, and a typed socket's upstream_type set elsewhere is the
    live one (`after` was the manifest alone: the tag looked removed, upstream_type mysql)."""
    client = emulator.client()
    env = {"BORDER0_TOKEN": emulator.token, "DB_PASSWORD": "a-long-enough-password"}
    api = ["--api", emulator.url]
    docs = [socket_doc("web"), socket_doc("db", "database", upstream=postgres_upstream("10.0.0.7"))]
    folder = write(tmp_path / "m", docs)
    assert cli(["apply", str(folder), *api, "--auto-approve"], env=env, cwd=tmp_path)[0] == 0
    web = client.get_socket("web")
    edit_by_hand(client, web, tags={**web["tags"], "border0_client_category": "prod"})
    edit_by_hand(client, client.get_socket("db"), upstream_type="postgres")

    for doc in docs:
        doc["spec"]["description"] = "edited"
    write(folder, docs)
    code, out, err = cli(["plan", str(folder), *api, "-o", "json"], env=env, cwd=tmp_path)
    assert code == 0, err
    changes = json.loads(out)["resource_changes"]
    assert sorted((rc["name"], rc["change"]["actions"]) for rc in changes) == [
        ("db", ["update"]), ("web", ["update"])]
    after = {rc["name"]: rc["change"]["after"] for rc in changes}
    assert after["web"]["tags"]["border0_client_category"] == "prod"
    assert after["db"]["upstream_type"] == "postgres"

    assert cli(["apply", str(folder), *api, "--auto-approve"], env=env, cwd=tmp_path)[0] == 0
    for name, fields in after.items():
        written = client.get_socket(name)
        tags = {k: v for k, v in written["tags"].items() if not k.startswith(FINGERPRINT_TAG_PREFIX)}
        assert tags == fields["tags"]
        for key in ("socket_type", "description", "upstream_type", "upstream_http_hostname"):
            assert written[key] == fields[key], (name, key)
