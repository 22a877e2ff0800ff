"""The plan's changes in Terraform's `resource_changes` shape (`terraform show -json`), so policy
tools written for Terraform plans of border0 (OPA/conftest, Sentinel-like scripts, jq) read ours.

Types are border0's Terraform provider's: `border0_socket`, `border0_policy`,
`border0_policy_attachment` (borderzero/terraform-provider-border0, border0/provider.go). An
attachment is keyed like a `for_each` instance: `border0_policy_attachment.<socket>["<policy>"]`.
Values use the API's field names (the provider's where it has the same attribute: `name`,
`socket_type`, `description`, `upstream_type`, `tags`, `policy_data` as a JSON string,
`version`, `org_wide`, `policy_id`, `socket_id`). Secret values are never included: a secret
attribute is left out of `before`/`after` and marked `true` in `before_sensitive` /
`after_sensitive` (Terraform puts the value there; we cannot). Unchanged objects are not listed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler import model
from reconciler.connector_model import LEGACY_UPSTREAM_FIELDS
from reconciler.model import Actual, Desired, LivePolicy, LiveSocket, PolicySpec, SocketSpec
from reconciler.secrets import FINGERPRINT_TAG_PREFIX, SECRET_FIELDS

__all__ = ["PROVIDER", "resource_changes"]

PROVIDER = "registry.terraform.io/borderzero/border0"
_ACTIONS = {
    "create": ["create"],
    "update": ["update"],
    "replace": ["delete", "create"],
    "delete": ["delete"],
    "attach": ["create"],
    "detach": ["delete"],
}


def _socket_after(spec: SocketSpec, instance: str,
                  live: LiveSocket | None) -> tuple[dict[str, Any], dict[str, bool]]:
    """What apply writes. Over a live socket (update, replace) that is not the manifest alone:
    the tags set elsewhere and the details digest (`model.written_tags`; fingerprints left out,
    as in `before`), and beside a typed upstream the legacy upstream fields as read
    (`model.kept_legacy_upstream`). A create shows the manifest's settings."""
    body = {**model.socket_settings(spec, instance), "protected_socket": spec.protected}
    if live is not None:
        body["tags"] = model.written_tags(spec, instance, live.tags)
        # LiveSocket's attributes carry the API's names
        body.update(model.kept_legacy_upstream(
            spec, {k: getattr(live, k) for k in LEGACY_UPSTREAM_FIELDS}))
    if spec.protected:
        body["protected_username"] = spec.protected_username or ""
    hidden = {k: True for k in SECRET_FIELDS if spec.secret(k) is not None}
    return body, hidden


def _socket_before(live: LiveSocket) -> tuple[dict[str, Any], dict[str, bool]]:
    body = {
        "id": live.socket_id,
        "name": live.name,
        "socket_type": live.socket_type,
        "description": live.description,
        "upstream_type": live.upstream_type,
        "upstream_http_hostname": live.upstream_http_hostname,
        # the secrets' fingerprint tags are left out, as the secrets are
        "tags": {k: v for k, v in live.tags.items() if not k.startswith(FINGERPRINT_TAG_PREFIX)},
        "protected_socket": live.protected,
    }
    if live.protected:
        body["protected_username"] = live.protected_username
    hidden = {k: True for k in SECRET_FIELDS if live.fingerprint(k) is not None}
    return body, hidden


def _policy_version(data: Mapping[str, Any]) -> str:
    return str(data.get("version") or ("v2" if "permissions" in data else "v1"))


def _policy_values(name: str, description: str, data: Mapping[str, Any],
                   org_wide: bool) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "version": _policy_version(data),
        "policy_data": json.dumps(data, sort_keys=True, separators=(",", ":")),
        "org_wide": org_wide,
    }


def _policy_after(spec: PolicySpec) -> dict[str, Any]:
    return _policy_values(spec.name, spec.description, spec.policy_data, spec.org_wide)


def _policy_before(live: LivePolicy) -> dict[str, Any]:
    return {"id": live.policy_id,
            **_policy_values(live.name, live.description, live.policy_data, live.org_wide)}


def _entry(rtype: str, name: str, actions: list[str], before: Any, after: Any,
           before_sensitive: Any, after_sensitive: Any, index: str | None = None) -> dict[str, Any]:
    address = f"{rtype}.{name}" + (f"[{json.dumps(index)}]" if index is not None else "")
    change: dict[str, Any] = {
        "actions": actions,
        "before": before,
        "after": after,
        "after_unknown": {"id": True} if after is not None and "id" not in after else {},
        "before_sensitive": before_sensitive if before is not None else False,
        "after_sensitive": after_sensitive if after is not None else False,
    }
    entry: dict[str, Any] = {"address": address, "mode": "managed", "type": rtype, "name": name}
    if index is not None:
        entry["index"] = index
    entry.update({"provider_name": PROVIDER, "change": change})
    if actions == ["delete", "create"]:
        entry["action_reason"] = "replace_because_cannot_update"
    return entry


def _connector_entry(change: Any, desired: Desired, actual: Actual) -> dict[str, Any]:
    """border0_connector / border0_connector_token (the provider's resources); a token's
    value is unknown until applied and sensitive: never in the plan."""
    action = change.action.value
    if change.kind == "token":
        connector, name = change.name.split("/", 1)
        live_c = actual.connectors.get(connector)
        cid = live_c.connector_id if live_c is not None else None
        value = {"connector_id": cid, "name": name}
        before = {"id": change.token_id, **value} if action in ("delete", "replace") else None
        after = None if action == "delete" else value
        entry = _entry("border0_connector_token", change.name.replace("/", "_"),
                       _ACTIONS[action], before, after, {"token": True}, {"token": True})
        if after is not None:
            entry["change"]["after_unknown"] = {"id": True, "token": True}
        return entry
    live = actual.connectors.get(change.name)
    before = ({"id": live.connector_id, "name": live.name, "description": live.description,
               "built_in_ssh_service_enabled": live.built_in_ssh}
              if live is not None and action != "create" else None)
    after = None
    if action != "delete":
        spec = desired.connectors[change.name]
        after = {"name": spec.name, "description": spec.description,
                 "built_in_ssh_service_enabled": spec.built_in_ssh}
        if live is not None:
            after = {"id": live.connector_id, **after}
    return _entry("border0_connector", change.name, _ACTIONS[action], before, after, {}, {})


def _object_entry(
    change: Any, desired: Desired, actual: Actual, instance: str
) -> dict[str, Any]:
    action = change.action.value
    if change.kind in ("connector", "token"):
        return _connector_entry(change, desired, actual)
    if change.kind == "socket":
        live = actual.sockets.get(change.name)
        before, before_s = _socket_before(live) if live and action != "create" else (None, {})
        after: dict[str, Any] | None = None
        after_s: dict[str, Any] = {}
        if action != "delete":
            after, after_s = _socket_after(desired.sockets[change.name], instance,
                                           live if action != "create" else None)
            if action == "update" and live is not None:
                after = {"id": live.socket_id, **after}
        return _entry("border0_socket", change.name, _ACTIONS[action], before, after,
                      before_s, after_s)
    live_p = actual.policies.get(change.name)
    before_p = _policy_before(live_p) if live_p and action != "create" else None
    after_p = None
    if action != "delete":
        after_p = _policy_after(desired.policies[change.name])
        if action == "update" and live_p is not None:
            after_p = {"id": live_p.policy_id, **after_p}
    return _entry("border0_policy", change.name, _ACTIONS[action], before_p, after_p, {}, {})


def _attachment_entry(change: Any) -> dict[str, Any]:
    value = {"policy_id": change.policy_id, "socket_id": change.object_id}
    known = {k: v for k, v in value.items() if v is not None}
    if change.action.value == "attach":
        before, after = None, known
        unknown = {"id": True, **{k: True for k, v in value.items() if v is None}}
    else:
        before, after, unknown = value, None, {}
    entry = _entry("border0_policy_attachment", change.socket, _ACTIONS[change.action.value],
                   before, after, {}, {}, index=change.policy)
    entry["change"]["after_unknown"] = unknown
    return entry


def resource_changes(changes: Sequence[Any], desired: Desired, actual: Actual,
                     instance: str) -> list[dict[str, Any]]:
    """One Terraform resource change per plan change, in the plan's (apply) order."""
    return [
        _attachment_entry(c) if c.kind == "attachment" else _object_entry(c, desired, actual,
                                                                          instance)
        for c in changes
    ]
