"""The access review as pure data: Desired + Actual (+ the plan's changes) -> who gains or loses
access to which socket, and which policy is responsible."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
from documents import ours
from helpers import REPO

from reconciler import model
from reconciler.model import (
    Actual,
    Desired,
    LivePolicy,
    LiveSocket,
    Ownership,
    PolicySpec,
    SocketSpec,
)
from reconciler.plan.access import policy_grants
from reconciler.plan.planner import make_plan
from reconciler.render import render

SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
OURS = ours()
ANYWHERE = {"allowed_ip": ["0.0.0.0/0", "::/0"]}


def v1(actions, who, where=None, when=None) -> dict:
    cond = {"who": who}
    if where:
        cond["where"] = where
    if when:
        cond["when"] = when
    return {"version": "v1", "action": list(actions), "condition": cond}


def v2(permissions, who, where=None) -> dict:
    cond = {"who": who, **({"where": where} if where else {})}
    return {"version": "v2", "permissions": permissions, "condition": cond}


def live_socket(name, socket_type="ssh", policies=(), tags=OURS, upstream_type=None) -> LiveSocket:
    return LiveSocket(
        socket_id=f"id-{name}", name=name, socket_type=socket_type,
        upstream_type=upstream_type or model.DEFAULT_UPSTREAM_TYPE.get(socket_type, ""),
        tags=dict(tags), policy_ids=tuple(f"pid-{p}" for p in policies),
        policy_names=tuple(policies),
    )


def live_policy(name, data, org_wide=False, instance="default") -> LivePolicy:
    return LivePolicy(policy_id=f"pid-{name}", name=name, policy_data=data, org_wide=org_wide,
                      ownership=Ownership(managed=instance is not None, instance=instance))


def world(*objs):
    """(Desired, Actual) from a mix of specs and live objects."""
    return (
        Desired(sockets={o.name: o for o in objs if isinstance(o, SocketSpec)},
                policies={o.name: o for o in objs if isinstance(o, PolicySpec)}),
        Actual(sockets={o.name: o for o in objs if isinstance(o, LiveSocket)},
               policies={o.name: o for o in objs if isinstance(o, LivePolicy)}),
    )


def review(*objs) -> list[tuple]:
    desired, actual = world(*objs)
    plan = make_plan(desired, actual, allow_mass_delete=True)
    jsonschema.validate(plan.to_json(), SCHEMA)
    return [(c.change, c.principal, c.action, c.socket, c.policies) for c in plan.access_changes]


ONCALL = v1(["ssh", "http"], {"email": ["bob@example.com"]}, ANYWHERE)
ONCALL_ALICE = v1(["ssh", "http"], {"email": ["alice@example.com", "bob@example.com"]}, ANYWHERE)


def test_a_principal_added_to_an_attached_policy_gains_access() -> None:
    assert review(
        SocketSpec("bastion", "ssh", policies=("on-call",)),
        PolicySpec("on-call", policy_data=ONCALL_ALICE),
        live_socket("bastion", policies=("on-call",)),
        live_policy("on-call", ONCALL),
    ) == [("gain", "alice@example.com", "ssh", "bastion", (("on-call", "changed"),))]


def test_attaching_and_detaching_and_deleting_policies() -> None:
    db_by_ip = v1(["database"], {"domain": ["example.com"]}, {"allowed_ip": ["10.0.0.0/8"]})
    changes = review(
        SocketSpec("orders-db", "database", policies=("dba",)),
        SocketSpec("bastion", "ssh", external_policies=("ops",)),
        PolicySpec("dba", policy_data=v1(["database"], {"group": ["g-dba"]})),
        PolicySpec("db-by-ip", policy_data=db_by_ip),
        live_socket("orders-db", "database", policies=("db-by-ip", "legacy")),
        live_socket("bastion", policies=("legacy",)),
        live_policy("db-by-ip", db_by_ip),
        live_policy("legacy", v1(["ssh", "database"], {"service_account": ["ci"]})),
        live_policy("ops", v1(["ssh"], {"group": ["g-ops"]}), instance=None),
    )
    assert changes == [
        ("gain", "g-ops", "ssh", "bastion", (("ops", "attached"),)),
        ("loss", "ci", "ssh", "bastion", (("legacy", "deleted"),)),
        ("gain", "g-dba", "database", "orders-db", (("dba", "created"),)),
        ("loss", "example.com", "database", "orders-db", (("db-by-ip", "detached"),)),
        ("loss", "ci", "database", "orders-db", (("legacy", "deleted"),)),
    ]


def test_org_wide_policies_count_for_every_socket_unmanaged_ones_too() -> None:
    everyone = v1(["http", "ssh"], {"domain": ["example.com"]})
    # a new org-wide policy: gains on every socket of a matching type, ours or not
    changes = review(
        SocketSpec("web", "https"),
        PolicySpec("everyone", org_wide=True, policy_data=everyone),
        live_socket("web", "http", upstream_type="https"),
        live_socket("legacy-box", "ssh", tags={}),
        live_socket("mqtt", "tls", tags={}),
    )
    assert changes == [
        ("gain", "example.com", "ssh", "legacy-box", (("everyone", "org-wide"),)),
        ("gain", "example.com", "http", "web", (("everyone", "org-wide"),)),
    ]
    # an existing org-wide grant is not a change for a new socket's attachments, and a new
    # socket lists everyone who gains access, the org-wide grant included
    changes = review(
        SocketSpec("box", "ssh", policies=("on-call",)),
        PolicySpec("on-call", policy_data=ONCALL),
        live_policy("on-call", ONCALL),
        live_policy("everyone", everyone, org_wide=True, instance=None),
    )
    assert changes == [
        ("gain", "example.com", "ssh", "box", (("everyone", "org-wide"),)),
        ("gain", "bob@example.com", "ssh", "box", (("on-call", ""),)),
    ]


def test_deleted_socket_and_type_change() -> None:
    changes = review(
        SocketSpec("box", "tls", policies=("on-call",)),
        PolicySpec("on-call", policy_data=v1(["ssh", "tls"], {"email": ["bob@example.com"]})),
        live_socket("box", "ssh", policies=("on-call",)),
        live_socket("gone", "ssh", policies=("on-call",)),
        live_policy("on-call", v1(["ssh", "tls"], {"email": ["bob@example.com"]})),
    )
    assert changes == [
        ("gain", "bob@example.com", "tls", "box", (("on-call", "socket type changed"),)),
        ("loss", "bob@example.com", "ssh", "box", (("on-call", "socket type changed"),)),
        ("loss", "bob@example.com", "ssh", "gone", (("on-call", "socket deleted"),)),
    ]


def test_conditions_widened_narrowed_changed_or_equivalent() -> None:
    def conditions(before: dict, after: dict) -> list[str]:
        desired, actual = world(
            SocketSpec("web", "http", policies=("p",)),
            PolicySpec("p", policy_data=after),
            live_socket("web", "http", policies=("p",)),
            live_policy("p", before),
        )
        plan = make_plan(desired, actual)
        return [c.change for c in plan.access_changes]

    who = {"email": ["a@example.com"]}
    office = {"allowed_ip": ["10.1.0.0/16"]}
    lan = {"allowed_ip": ["10.0.0.0/8", "192.168.0.0/16"]}
    hours = {"time_of_day_after": "08:00 UTC", "time_of_day_before": "18:00 UTC"}
    late = {"time_of_day_after": "07:00 UTC", "time_of_day_before": "19:00 UTC"}
    assert conditions(v1(["http"], who, office), v1(["http"], who, lan)) == ["widened"]
    assert conditions(v1(["http"], who, lan), v1(["http"], who, office)) == ["narrowed"]
    assert conditions(v1(["http"], who, lan), v1(["http"], who)) == ["widened"]
    assert conditions(v1(["http"], who, when=hours), v1(["http"], who, when=late)) == ["widened"]
    assert conditions(v1(["http"], who, when=late), v1(["http"], who, when=hours)) == ["narrowed"]
    assert conditions(v1(["http"], who, {"country": ["NL"]}),
                      v1(["http"], who, {"country": ["BE"]})) == ["changed"]
    assert conditions(v1(["http"], who, {"country_not": ["BE", "FR"]}),
                      v1(["http"], who, {"country_not": ["BE"]})) == ["widened"]
    # the same networks in another order, or a description-only edit: no access change
    assert conditions(v1(["http"], who, lan),
                      v1(["http"], who, {"allowed_ip": ["192.168.0.0/16", "10.0.0.0/8"]})) == []


def test_v2_permissions_and_v1_actions_are_both_read() -> None:
    # border0's form: a kind present as an object is allowed; ours: {allowed: true|false}
    actions, principals, cond = policy_grants(v2(
        {"ssh": {"shell": {}}, "http": {}, "database": None, "tls": {"allowed": False},
         "vnc": {"allowed": True}},
        {"email": ["a@example.com"], "group": ["g1"], "service_account": ["ci"]}, ANYWHERE,
    ))
    assert actions == {"ssh": {"shell": {}}, "http": {}, "vnc": {}}  # an empty object grants
    assert principals == [("email", "a@example.com"), ("group", "g1"), ("service_account", "ci")]
    assert cond == {"where": ANYWHERE, "when": {}}
    # version only on the API object (no policy_data.version): read by shape
    actions, _, _ = policy_grants({"permissions": {"database": {}}, "condition": {}})
    assert actions == {"database": {}}
    actions, _, _ = policy_grants(v1(["ssh", "tls"], {}))
    assert actions == {"ssh": {}, "tls": {}}
    # a v1 policy rewritten as v2 with the same grants changes nobody's access; dropping ssh does
    old = v1(["ssh", "http"], {"email": ["a@example.com"]})
    same = v2({"ssh": {}, "http": {}}, {"email": ["a@example.com"]})
    less = v2({"ssh": {"allowed": False}, "http": {}}, {"email": ["a@example.com"]})
    for new, expected in ((same, []), (less, [("loss", "a@example.com", "ssh", "box",
                                                   (("p", "changed"),))])):
        assert review(SocketSpec("box", "ssh", policies=("p",)), PolicySpec("p", policy_data=new),
                      live_socket("box", policies=("p",)), live_policy("p", old)) == expected


def test_v2_settings_that_are_empty_objects_grant_and_are_compared() -> None:
    """border0 reads a v2 permission's settings as pointers: `sftp: {}` grants sftp. Adding
    one widens access (--deny-access-gain refuses it), dropping one narrows it, and the cause
    names them; settings that limit (allowed_usernames) or a kind without settings (like v1's
    action) cannot be ordered against them: changed."""
    who = {"email": ["dev@example.com"]}

    def edit(before: dict, after: dict) -> list[tuple]:
        desired, actual = world(
            SocketSpec("box", "ssh", policies=("devs",)), PolicySpec("devs", policy_data=after),
            live_socket("box", policies=("devs",)), live_policy("devs", before))
        plan = make_plan(desired, actual)
        jsonschema.validate(plan.to_json(), SCHEMA)
        widens = [c.name for c in plan.changes if c.widens_access]
        return [(c.change, c.policies[0][1], widens) for c in plan.access_changes]

    shell = v2({"ssh": {"shell": {}}}, who)
    more = v2({"ssh": {"shell": {}, "sftp": {}, "tcp_forwarding": {}}}, who)
    assert edit(shell, more) == [("widened", "changed: adds sftp, tcp_forwarding", ["devs"])]
    assert edit(more, shell) == [("narrowed", "changed: drops sftp, tcp_forwarding", [])]
    # border0's spelling and ours (allowed: true, nulls and empty lists dropped) are the same
    ours_more = v2({"ssh": {"allowed": True, "shell": {}, "sftp": {}, "tcp_forwarding": {},
                            "exec": None, "allowed_usernames": []}}, who)
    assert edit(more, ours_more) == []
    # a permission's own settings, a limit, or swapping one permission for another: changed
    exec_ls = v2({"ssh": {"shell": {}, "exec": {"commands": ["ls"]}}}, who)
    exec_any = v2({"ssh": {"shell": {}, "exec": {}}}, who)
    assert edit(exec_ls, exec_any) == [("changed", "changed: changes exec", ["devs"])]
    limited = v2({"ssh": {"shell": {}, "allowed_usernames": ["ops"]}}, who)
    assert edit(limited, shell) == [("changed", "changed: drops allowed_usernames", ["devs"])]
    sftp = v2({"ssh": {"sftp": {}}}, who)
    assert edit(shell, sftp) == [("changed", "changed: adds sftp; drops shell", ["devs"])]
    # a kind without settings is read like v1's action: no change between them, and none
    # known against one that names settings
    bare = v2({"ssh": {}}, who)
    assert edit(v1(["ssh"], who), bare) == []
    assert edit(bare, shell) == [("changed", "changed: adds shell", ["devs"])]
    assert edit(v1(["ssh"], who), shell) == [("changed", "changed: adds shell", ["devs"])]
    assert edit(shell, v1(["ssh"], who)) == [("changed", "changed: drops shell", ["devs"])]
    # v1 is read as it was: actions carry no settings
    assert edit(v1(["ssh"], who), v1(["ssh", "http"], who)) == []
    assert policy_grants(v1(["ssh"], who))[0] == {"ssh": {}}


def test_replaced_policy_is_detached_from_sockets_not_in_the_manifests() -> None:
    """org_wide false -> true replaces the policy: an unmanaged socket it was attached to loses
    nothing (the policy is org-wide now), and the grant stays on ours."""
    data = v1(["ssh"], {"email": ["a@example.com"]})
    assert review(
        SocketSpec("box", "ssh", policies=("p",)),
        PolicySpec("p", policy_data=data, org_wide=True),
        live_socket("box", policies=("p",)),
        live_socket("theirs", policies=("p",), tags={}),
        live_policy("p", data),
    ) == []
    # org_wide true -> false: every socket that does not name it loses it
    assert review(
        SocketSpec("box", "ssh", policies=("p",)),
        PolicySpec("p", policy_data=data, org_wide=False),
        live_socket("box"),
        live_socket("theirs", tags={}),
        live_policy("p", data, org_wide=True),
    ) == [("loss", "a@example.com", "ssh", "theirs", (("p", "no longer org-wide"),))]


def test_renderings_put_the_access_review_first() -> None:
    desired, actual = world(
        SocketSpec("bastion", "ssh", policies=("on-call",)),
        PolicySpec("on-call", policy_data=ONCALL_ALICE),
        live_socket("bastion", policies=("on-call", "db-by-ip")),
        live_policy("on-call", ONCALL),
        live_policy("db-by-ip", v1(["ssh"], {"domain": ["example.com"]}), instance=None),
    )
    data = make_plan(desired, actual).to_json()
    text = render(data, "text")
    assert text.splitlines()[:3] == [
        "Access changes (2): who gains or loses access",
        "  + alice@example.com gains ssh on bastion (policy on-call changed)",
        "  - domain example.com loses ssh on bastion (policy db-by-ip detached)",
    ]
    md = render(data, "markdown")
    first = md.split("\n\n")[1:3]
    assert first[0] == "### :key: Access changes (2, 1 widening)"
    assert first[1].splitlines()[2] == (
        "| :heavy_plus_sign: gains | **bastion** | alice@example.com | ssh | on-call changed "
        "| from 0.0.0.0/0, ::/0 |")
    assert data["access_changes"][1] == {
        "socket": "bastion", "change": "loss", "principal_type": "domain",
        "principal": "example.com", "action": "ssh",
        "policies": [{"name": "db-by-ip", "cause": "detached"}],
        "before": [{"policy": "db-by-ip", "where": {}, "when": {}}], "after": None,
    }
    # a plan without access changes says so; a plan without changes says nothing about it
    desired, actual = world(SocketSpec("b", "ssh", description="x"), live_socket("b"))
    assert "Access changes: none" in render(make_plan(desired, actual).to_json(), "text")
    assert "Access" not in render(make_plan(Desired(), Actual()).to_json(), "text")


def test_tag_rules_select_sockets_by_the_tags_they_have_before_and_after_the_plan() -> None:
    """A policy's tag_rules select sockets by their tags: as listed before, as the plan writes
    them after (labels and ownership tags; a replace takes the tags set elsewhere along to
    the new socket, as an update keeps them)."""
    grants = v1(["ssh", "tls"], {"email": ["a@example.com"]})
    gold = dataclasses.replace(live_policy("gold", grants, instance=None),
                               tag_rules=({"tier": "gold"},))
    mine = dataclasses.replace(live_policy("mine", grants, instance=None),
                               tag_rules=({model.MANAGED_BY_TAG: model.MANAGED_BY_VALUE},))
    assert review(
        SocketSpec("new", "ssh", labels={"tier": "gold"}),
        SocketSpec("retyped", "tls"),  # its tier tag was set in the portal
        live_socket("retyped", tags={**OURS, "tier": "gold"}),
        live_socket("gone", tags={**OURS, "tier": "gold"}),
        SocketSpec("adopted", "ssh", adopt=True),
        live_socket("adopted", tags={}),
        gold, mine,
    ) == [
        ("gain", "a@example.com", "ssh", "adopted", (("mine", "selected by tag_rules"),)),
        ("loss", "a@example.com", "ssh", "gone", (("gold", "socket deleted"),
                                                  ("mine", "socket deleted"))),
        ("gain", "a@example.com", "ssh", "new", (("gold", "selected by tag_rules"),
                                                 ("mine", "selected by tag_rules"))),
        ("gain", "a@example.com", "tls", "retyped", (("gold", "socket type changed"),
                                                     ("mine", "socket type changed"))),
        ("loss", "a@example.com", "ssh", "retyped", (("gold", "socket type changed"),
                                                     ("mine", "socket type changed"))),
    ]
