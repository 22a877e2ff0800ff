"""The JSON plan's `resource_changes`, checked against Terraform's documented JSON output format
(https://developer.hashicorp.com/terraform/internals/json-format, "Plan Representation" and
"Change Representation"), so policy tools written for `terraform show -json` plans read ours."""

from __future__ import annotations

import json
import re

import jsonschema
from documents import ours

from reconciler.border0.api_json import socket_create_body, socket_update_body
from reconciler.connector_model import DETAILS_TAG
from reconciler.model import (
    LABELS_TAG,
    Actual,
    Desired,
    LivePolicy,
    LiveSocket,
    Ownership,
    PolicySpec,
    Secret,
    SocketSpec,
)
from reconciler.plan.planner import make_plan
from reconciler.secrets import FINGERPRINT_TAG_PREFIX, fingerprint, fingerprint_tag

SECRET = "tf-shape-secret-value"
OURS = ours()

# Transcribed from the documented format: one element of "resource_changes" and its
# <change-representation>. Terraform allows more keys (module_address, deposed, ...); these are
# the ones a reader of a root-module plan relies on.
_TRUE_LEAVES = {"oneOf": [{"const": True}, {"type": "object",
                                             "additionalProperties": {"$ref": "#/$defs/leaves"}}]}
TERRAFORM_RESOURCE_CHANGE = {
    "$defs": {"leaves": _TRUE_LEAVES},
    "type": "object",
    "required": ["address", "mode", "type", "name", "change"],
    "properties": {
        "address": {"type": "string"},
        "mode": {"enum": ["managed", "data"]},
        "type": {"type": "string"},
        "name": {"type": "string"},
        "index": {"type": ["string", "integer"]},
        "provider_name": {"type": "string"},
        "action_reason": {"type": "string"},
        "change": {
            "type": "object",
            "required": ["actions", "before", "after"],
            "properties": {
                "actions": {"enum": [["no-op"], ["create"], ["read"], ["update"],
                                     ["delete", "create"], ["create", "delete"], ["delete"]]},
                "before": {"type": ["object", "null"]},
                "after": {"type": ["object", "null"]},
                # "all unknown leaf values replaced with true, and all known leaf values omitted"
                "after_unknown": {"type": "object",
                                  "additionalProperties": {"$ref": "#/$defs/leaves"}},
                # "all sensitive leaf values replaced with true, non-sensitive omitted"
                "before_sensitive": {"oneOf": [
                    {"const": False},
                    {"type": "object", "additionalProperties": {"$ref": "#/$defs/leaves"}}]},
                "after_sensitive": {"oneOf": [
                    {"const": False},
                    {"type": "object", "additionalProperties": {"$ref": "#/$defs/leaves"}}]},
            },
        },
    },
}
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
ADDRESS = re.compile(rf'^(?P<type>{_NAME})\.(?P<name>{_NAME})(\[(?P<index>"[^"]*"|\d+)\])?$')


def sample_plan():
    desired = Desired(
        sockets={
            "web": SocketSpec("web", "http", description="new", policies=("ops",)),
            "db": SocketSpec("db", "database", secrets_by_field={"upstream_password": Secret(SECRET, "env:DB_PW")}),
            "box": SocketSpec("box", "tls"),
            "new": SocketSpec("new", "ssh", policies=("ops",)),
        },
        policies={"ops": PolicySpec("ops", policy_data={"version": "v1", "action": ["ssh"]}),
                  "edited": PolicySpec("edited", description="now")},
    )
    old = Ownership(managed=True, instance="default")
    actual = Actual(
        sockets={
            "web": LiveSocket("i1", "web", "http", "old", "http", tags=OURS,
                              policy_ids=("p-gone",), policy_names=("gone-policy",)),
            "db": LiveSocket("i2", "db", "database", upstream_type="mysql", tags={
                **OURS,
                fingerprint_tag("upstream_password"): fingerprint(Secret("old-" + SECRET))}),
            "box": LiveSocket("i3", "box", "ssh", upstream_type="ssh", tags=OURS),
            "gone": LiveSocket("i4", "gone", "http", upstream_type="http", tags=OURS),
        },
        policies={"edited": LivePolicy("p-ed", "edited", "then", ownership=old),
                  "gone-policy": LivePolicy("p-gone", "gone-policy", ownership=old)},
    )
    return make_plan(desired, actual, allow_mass_delete=True)


def test_resource_changes_follow_terraforms_documented_shape() -> None:
    data = sample_plan().to_json()
    changes = data["resource_changes"]
    assert len(changes) == len(data["changes"])  # one per plan change, in apply order
    for rc, change in zip(changes, data["changes"]):
        jsonschema.validate(rc, TERRAFORM_RESOURCE_CHANGE)
        match = ADDRESS.match(rc["address"])
        assert match, rc["address"]
        assert (match["type"], match["name"]) == (rc["type"], rc["name"])
        if "index" in rc:
            assert json.loads(match["index"]) == rc["index"]
        actions = rc["change"]["actions"]
        # "For ["create"] and ["delete"] actions, either before or after is unset"
        assert (rc["change"]["before"] is None) == (actions == ["create"])
        assert (rc["change"]["after"] is None) == (actions == ["delete"])
        assert rc["mode"] == "managed"
        assert rc["provider_name"] == "registry.terraform.io/borderzero/border0"
        expected_kind = {"socket": "border0_socket", "policy": "border0_policy",
                         "attachment": "border0_policy_attachment"}[change["kind"]]
        assert rc["type"] == expected_kind

    by_address = {rc["address"]: rc for rc in changes}
    assert set(by_address) == {
        "border0_policy.ops", "border0_policy.edited", "border0_policy.gone-policy",
        "border0_socket.new", "border0_socket.web", "border0_socket.db", "border0_socket.box",
        "border0_socket.gone", 'border0_policy_attachment.web["ops"]',
        'border0_policy_attachment.new["ops"]', 'border0_policy_attachment.web["gone-policy"]',
    }
    assert by_address["border0_socket.box"]["change"]["actions"] == ["delete", "create"]
    assert by_address["border0_socket.box"]["action_reason"] == "replace_because_cannot_update"
    assert by_address["border0_socket.gone"]["change"]["actions"] == ["delete"]
    web = by_address["border0_socket.web"]["change"]
    assert web["actions"] == ["update"]
    assert (web["before"]["description"], web["after"]["description"]) == ("old", "new")
    assert web["after"]["id"] == "i1" and web["after_unknown"] == {}
    assert by_address["border0_socket.new"]["change"]["after_unknown"] == {"id": True}
    policy = by_address["border0_policy.ops"]["change"]["after"]
    assert json.loads(policy["policy_data"]) == {"version": "v1", "action": ["ssh"]}
    assert policy["version"] == "v1" and policy["org_wide"] is False
    attach = by_address['border0_policy_attachment.new["ops"]']["change"]
    assert attach["after_unknown"] == {"id": True, "policy_id": True, "socket_id": True}
    detach = by_address['border0_policy_attachment.web["gone-policy"]']["change"]
    assert detach["before"] == {"policy_id": "p-gone", "socket_id": "i1"}


def test_secrets_are_marked_sensitive_and_never_included() -> None:
    data = sample_plan().to_json()
    assert SECRET not in json.dumps(data)
    db = next(rc for rc in data["resource_changes"] if rc["address"] == "border0_socket.db")
    change = db["change"]
    assert "upstream_password" not in change["before"]
    assert "upstream_password" not in change["after"]
    assert change["before_sensitive"] == {"upstream_password": True}
    assert change["after_sensitive"] == {"upstream_password": True}


# --- after: what apply writes over a live socket -------------------------------------------

ELSEWHERE = {"border0_client_category": "prod"}  # a tag set in the portal, not in the manifest
PG = {"serviceType": "database", "databaseServiceConfiguration": {
    "databaseServiceType": "standard", "standardDatabaseServiceConfiguration": {
        "hostname": "10.0.0.7", "port": 5432, "protocol": "postgres",
        "authenticationType": "username_and_password",
        "usernameAndPasswordAuthConfiguration": {"username": "app"}}}}


def _written_plan():
    """An update and a replace of typed database sockets whose upstream_type was set to
    postgres elsewhere (the type's default is mysql), each with a tag set elsewhere and the
    details digest the reconciler wrote last."""
    desired = Desired(sockets={
        "pg": SocketSpec("pg", "database", description="new", labels={"team": "data"},
                         upstream_config=PG),
        "pg2": SocketSpec("pg2", "database", labels={"team": "data"}, protected_username="admin",
                          upstream_config=PG),
    })
    live = {}
    for name, sid in (("pg", "i5"), ("pg2", "i6")):
        spec = desired.sockets[name]
        tags = {**OURS, **ELSEWHERE, "team": "data", LABELS_TAG: "team",
                DETAILS_TAG: spec.details_digest,
                fingerprint_tag("upstream_password"): fingerprint(Secret("gone"))}
        live[name] = LiveSocket(sid, name, "database", "old", upstream_type="postgres",
                                tags=tags).with_details(None, spec.upstream_split[0])
    plan = make_plan(desired, Actual(sockets=live), allow_mass_delete=True)
    return desired, live, {rc["address"]: rc["change"] for rc in plan.to_json()["resource_changes"]}


def _as_answered(live: LiveSocket) -> dict:
    return {"socket_id": live.socket_id, "name": live.name, "socket_type": live.socket_type,
            "description": live.description, "upstream_type": live.upstream_type,
            "upstream_http_hostname": live.upstream_http_hostname, "tags": dict(live.tags)}


def test_after_of_an_update_or_replace_keeps_what_apply_keeps() -> None:
    """`after` was the manifest alone: a tag set elsewhere looked removed and upstream_type
    looked reset to mysql, though apply keeps both (`model.written_tags`,
    `model.kept_legacy_upstream`); the details digest apply writes was missing from it."""
    desired, _, changes = _written_plan()
    update = changes["border0_socket.pg"]
    replace = changes["border0_socket.pg2"]
    assert update["actions"] == ["update"] and replace["actions"] == ["delete", "create"]
    for change, name in ((update, "pg"), (replace, "pg2")):
        after, before = change["after"], change["before"]
        assert after["tags"]["border0_client_category"] == "prod"
        assert after["upstream_type"] == "postgres"
        assert after["tags"][DETAILS_TAG] == desired.sockets[name].details_digest
        # like with like: no fingerprint on either side, an unchanged tag is the same on both
        assert not any(k.startswith(FINGERPRINT_TAG_PREFIX) for k in [*before["tags"],
                                                                      *after["tags"]])
        assert before["tags"] == after["tags"]
    # a create has no live socket to keep from: the manifest's settings, the type's default
    plan = make_plan(Desired(sockets={"pg": SocketSpec("pg", "database", upstream_config=PG)}),
                     Actual(), allow_mass_delete=True)
    created = plan.to_json()["resource_changes"][0]["change"]["after"]
    assert (created["upstream_type"], created["tags"]) == ("mysql", OURS)


def test_after_of_an_update_or_replace_is_what_apply_sends() -> None:
    """Each field of `after` is the request body's (the fingerprints, left out of the plan,
    aside): the rules live once, in reconciler.model, for both."""
    desired, live, changes = _written_plan()
    bodies = {
        "pg": socket_update_body(desired.sockets["pg"], "default", _as_answered(live["pg"])),
        "pg2": socket_create_body(desired.sockets["pg2"], "default",
                                  replaced=_as_answered(live["pg2"])),
    }
    for name, body in bodies.items():
        after = changes[f"border0_socket.{name}"]["after"]
        sent = {k: v for k, v in body.items() if k in after}
        sent["tags"] = {k: v for k, v in body["tags"].items()
                        if not k.startswith(FINGERPRINT_TAG_PREFIX)}
        assert {k: after[k] for k in sent} == sent
        assert set(after) - set(sent) <= {"id", "protected_socket", "protected_username"}

