"""`spec.ignoreFields`: fields left out of the comparison, as Argo CD's `ignoreDifferences`
(`jsonPointers`), with its `RespectIgnoreDifferences=true` sync option always on.

Each pointer (RFC 6901, into the manifest document) names a field that something else manages
(an autoscaler of descriptions, a team editing labels in the portal). Before planning, the
desired object takes border0's current value of every ignored field, so the planner sees no
difference there, and an update made for another reason writes that value back instead of the
manifest's. An object that does not exist yet is created with the manifest's values. An ignored
secret is left out of the desired object: not compared, not written (as a secret the manifest
leaves out). The pointers the schemas accept are the ones handled here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from reconciler.model import Actual, Desired, LivePolicy, LiveSocket, PolicySpec, SocketSpec

__all__ = ["respect_ignored"]


def _parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def _socket(spec: SocketSpec, live: LiveSocket) -> SocketSpec:
    changes: dict[str, Any] = {}
    labels, secrets = dict(spec.labels), dict(spec.secrets_by_field)
    for pointer in spec.ignore_fields:
        match _parts(pointer):
            case ["spec", "description"]:
                changes["description"] = live.description
            case ["spec", "recording"]:
                changes["recording"] = live.recording_enabled
            case ["spec", "upstream", "type"]:
                changes["upstream_type"] = live.upstream_type_or_default
            case ["spec", "upstream", "httpHostname"]:
                changes["upstream_http_hostname"] = live.upstream_http_hostname or None
            case ["spec", "upstream" | "protected" as section, secret]:
                secrets.pop(f"{section}_{secret}", None)
            case ["metadata", "labels"]:
                labels = dict(live.labels)
            case ["metadata", "labels", key]:
                if key in live.labels:
                    labels[key] = live.labels[key]
                else:
                    labels.pop(key, None)
    return replace(spec, labels=labels, secrets_by_field=secrets, **changes)


def _set(data: Any, path: list[str], live: Any) -> Any:
    """`data` with the value at `path` taken from `live` (removed where `live` has none)."""
    if not path:
        return copy.deepcopy(live)
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    key, rest = path[0], path[1:]
    have = live.get(key) if isinstance(live, Mapping) else None
    if have is None and not rest:
        out.pop(key, None)
    elif key in out or have is not None:
        out[key] = _set(out.get(key, {}), rest, have)
    return out


def _policy(spec: PolicySpec, live: LivePolicy) -> PolicySpec:
    changes: dict[str, Any] = {}
    data = spec.policy_data
    for pointer in spec.ignore_fields:
        match _parts(pointer):
            case ["spec", "description"]:
                changes["description"] = live.description
            case ["spec", "policyData", *path]:
                data = _set(data, path, live.policy_data)
    return replace(spec, policy_data=data, **changes)


def respect_ignored(desired: Desired, actual: Actual) -> Desired:
    """`desired` with border0's values in the ignored fields of objects that exist."""
    if not any(s.ignore_fields for s in desired.sockets.values()) and not any(
            p.ignore_fields for p in desired.policies.values()):
        return desired  # the common case, twice a plan: no dict of 10,000 built to compare
    sockets = {
        name: _socket(spec, actual.sockets[name])
        if spec.ignore_fields and name in actual.sockets else spec
        for name, spec in desired.sockets.items()
    }
    policies = {
        name: _policy(spec, actual.policies[name])
        if spec.ignore_fields and name in actual.policies else spec
        for name, spec in desired.policies.items()
    }
    if all(sockets[n] is s for n, s in desired.sockets.items()) and all(
            policies[n] is p for n, p in desired.policies.items()):
        return desired
    return replace(desired, sockets=sockets, policies=policies)
