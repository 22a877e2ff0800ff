"""The plan's list of suspended objects (`border0-reconciler/suspend: "true"`): connectors,
policies and sockets.

The planner gives suspended objects no change; this lists them for the plan, with whether border0
differs from their manifest (what resuming would change).
"""

from __future__ import annotations

from typing import Any

from reconciler import model
from reconciler.connector_model import ConnectorKindSpec, connector_fields, live_connector_fields
from reconciler.model import Actual, Desired
from reconciler.plan.fields import comparable
from reconciler.plan.types import Kind

__all__ = ["suspended_rows"]


def suspended_rows(desired: Desired, actual: Actual) -> list[dict[str, Any]]:
    """The declared objects annotated suspend, as the plan lists them, with whether border0
    differs from their manifest (what resuming would change; the plan itself changes nothing)."""
    rows = []
    for kind, specs, live in ((Kind.CONNECTOR, desired.connectors, actual.connectors),
                              (Kind.POLICY, desired.policies, actual.policies),
                              (Kind.SOCKET, desired.sockets, actual.sockets)):
        for name, spec in specs.items():
            if spec.suspend:
                rows.append({"kind": kind.value, "name": name, "in_border0": name in live,
                             "differs": _differs(spec, live.get(name), actual),
                             "source": str(spec.source) if spec.source else None})
    return rows


def _differs(spec: Any, live: Any, actual: Actual) -> bool:
    if live is None:
        return True
    if isinstance(spec, ConnectorKindSpec):
        return connector_fields(spec) != live_connector_fields(live)
    if isinstance(spec, model.PolicySpec):
        return model.policy_fields(spec) != model.live_policy_fields(live)
    want, have = comparable(model.socket_fields(spec), model.live_socket_fields(live, spec))
    wanted, attached = set(spec.all_policies), set(live.policy_names)
    org_wide = {n for n, p in actual.policies.items() if p.org_wide}  # never detached
    return (want != have or live.socket_type != model.api_type(spec)[0]
            or bool(wanted - attached) or bool(attached - wanted - org_wide))
