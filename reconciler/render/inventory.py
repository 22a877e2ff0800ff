"""What border0 holds, as `border0 socket ls` shows it (`ls`, `show NAME`, `policies`), plus who
manages each object and, when the caller knows it, the socket's STATE against the manifests.

Rows are plain data built from `Actual` (the JSON form prints them as they are); the tables are
drawn by `render.table`, fitted to 120 columns unless `wide`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.model import Actual, LivePolicy, LiveSocket, Ownership
from reconciler.plan.access import policy_grants
from reconciler.render.table import WIDTH, markdown_table, render_table

__all__ = [
    "NOT_DECLARED", "ls_table", "managed", "policies_table", "policy_rows", "show_row",
    "show_text", "socket_rows",
]

NOT_DECLARED = "not in manifests"
LS_COLUMNS = ("NAME", "SOCKET ID", "DNS NAME", "PORT(S)", "TYPE", "DESCRIPTION", "MANAGED")
LS_SHRINK = (("DESCRIPTION", 11), ("SOCKET ID", 9), ("DNS NAME", 16), ("NAME", 12))
POLICY_COLUMNS = ("NAME", "POLICY ID", "ACTIONS", "WHO", "SOCKETS", "MANAGED", "DESCRIPTION")
POLICY_SHRINK = (("POLICY ID", 9), ("DESCRIPTION", 11), ("SOCKETS", 16), ("WHO", 16))
SNAP = ("SOCKET ID", "POLICY ID")


def managed(own: Ownership, instance: str) -> str:
    """`this`, `other` or `unmanaged`: who may change the object."""
    if own.owned_by(instance):
        return "this"
    return "other" if own.managed else "unmanaged"


# --- rows -------------------------------------------------------------------------------------


def socket_rows(
    actual: Actual, instance: str, states: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per live socket, by name; `state` only when manifests were compared."""
    rows = []
    for name in sorted(actual.sockets):
        row = _socket_row(actual.sockets[name], instance)
        if states is not None:
            row["state"] = states.get(name, NOT_DECLARED)
        rows.append(row)
    return rows


def _socket_row(live: LiveSocket, instance: str) -> dict[str, Any]:
    own = live.ownership
    return {
        "name": live.name,
        "socket_id": live.socket_id,
        "dns_name": live.dnsname,
        "ports": list(live.tcp_ports),
        "type": live.type,
        "description": live.description,
        "managed": managed(own, instance),
        "owner": own.instance if own.managed else None,
        "labels": live.labels,
        "policies": list(dict.fromkeys(live.policy_names)),
    }


def show_row(live: LiveSocket, policies: Sequence[LivePolicy], instance: str) -> dict[str, Any]:
    """One socket with every policy that applies to it (as the access review counts them):
    attached, org-wide, or selecting the socket's tags by its `tag_rules`."""
    row = _socket_row(live, instance)
    applying = [(p, via) for p in policies if (via := _via(p, live))]
    row["upstream_type"] = live.upstream_type
    row["policies"] = [
        {**_policy_summary(p), "via": via} for p, via in sorted(applying, key=lambda a: a[0].name)
    ]
    return row


def _via(policy: LivePolicy, live: LiveSocket) -> str | None:
    """How `policy` applies to the socket `live`, or None when it does not."""
    if policy.policy_id in live.policy_ids:
        return "attached"
    if policy.org_wide:
        return "org-wide"
    return "tag_rules" if policy.selects(live.tags) else None


def policy_rows(actual: Actual, instance: str) -> list[dict[str, Any]]:
    """One row per policy with the names of the sockets it is attached to."""
    names = {s.socket_id: s.name for s in actual.sockets.values()}
    rows = []
    for name in sorted(actual.policies):
        policy = actual.policies[name]
        own = policy.ownership
        rows.append({
            **_policy_summary(policy),
            "sockets": sorted(names.get(i, i) for i in policy.socket_ids),
            "managed": managed(own, instance),
            "owner": own.instance if own.managed else None,
        })
    return rows


def _policy_summary(policy: LivePolicy) -> dict[str, Any]:
    actions, principals, _ = policy_grants(policy.policy_data)
    return {
        "name": policy.name,
        "policy_id": policy.policy_id,
        "org_wide": policy.org_wide,
        "actions": sorted(actions),
        "who": [f"{kind}:{name}" for kind, name in principals],
        "description": policy.description,
    }


# --- text -------------------------------------------------------------------------------------


def ls_table(rows: Sequence[Mapping[str, Any]], *, with_state: bool, wide: bool,
             markdown: bool = False) -> str:
    columns = LS_COLUMNS + (("STATE",) if with_state else ())
    cells = [
        [r["name"], r["socket_id"], r["dns_name"] or "-", _ports(r["ports"]), r["type"],
         r["description"], _managed_cell(r)] + ([r["state"]] if with_state else [])
        for r in rows
    ]
    return render_table(columns, cells, width=None if wide else WIDTH, shrink=LS_SHRINK,
                        snap=SNAP, markdown=markdown)


def show_text(row: Mapping[str, Any], *, wide: bool, markdown: bool = False) -> str:
    fields = [
        ("SOCKET ID", row["socket_id"]), ("DNS NAME", row["dns_name"] or "-"),
        ("PORT(S)", _ports(row["ports"])), ("TYPE", row["type"]),
        ("UPSTREAM", row["upstream_type"] or "-"), ("DESCRIPTION", row["description"] or "-"),
        ("LABELS", ", ".join(f"{k}={v}" for k, v in sorted(row["labels"].items())) or "-"),
        ("MANAGED", _managed_cell(row)),
    ]
    if "connectors" in row:  # `show` reads them (GET /socket/{id}/connectors)
        fields.insert(4, ("CONNECTORS", ", ".join(row["connectors"]) or "-"))
    if markdown:
        lines = [f"**socket {row['name']}**", "", markdown_table(("FIELD", "VALUE"), fields)]
    else:
        lines = [f"socket {row['name']}"] + [f"  {key:<12} {value}" for key, value in fields]
    if not row["policies"]:
        return "\n".join(lines + ["", "no policy applies: nobody can use this socket"]) + "\n"
    cells = [[p["name"], p["via"], ", ".join(p["actions"]), ", ".join(p["who"]), p["description"]]
             for p in row["policies"]]
    table = render_table(("POLICY", "VIA", "ACTIONS", "WHO", "DESCRIPTION"), cells,
                         width=None if wide else WIDTH, shrink=(("DESCRIPTION", 11), ("WHO", 16)),
                         markdown=markdown)
    return "\n".join(lines) + "\n\n" + table


def policies_table(rows: Sequence[Mapping[str, Any]], *, wide: bool,
                   markdown: bool = False) -> str:
    cells = [
        [r["name"], r["policy_id"], ", ".join(r["actions"]), ", ".join(r["who"]),
         "(all: org-wide)" if r["org_wide"] else ", ".join(r["sockets"]) or "-",
         _managed_cell(r), r["description"]]
        for r in rows
    ]
    return render_table(POLICY_COLUMNS, cells, width=None if wide else WIDTH,
                        shrink=POLICY_SHRINK, snap=SNAP, markdown=markdown)


def _managed_cell(row: Mapping[str, Any]) -> str:
    return f"other ({row['owner']})" if row["managed"] == "other" else row["managed"]


def _ports(ports: Sequence[int]) -> str:
    return ", ".join(str(p) for p in ports) or "-"
