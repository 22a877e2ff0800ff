"""The planner as pure data: Desired + Actual -> Plan (no API, no files)."""

from __future__ import annotations

import pytest
from documents import ours

from reconciler import model
from reconciler.model import (
    Actual,
    Desired,
    LivePolicy,
    LiveSocket,
    Ownership,
    PolicySpec,
    Secret,
    SocketSpec,
)
from reconciler.plan.planner import check_instance, make_plan
from reconciler.plan.types import Action
from reconciler.secrets import fingerprint, fingerprint_tag


def live_socket(name: str, *, socket_type: str = "http", description: str = "", tags=None,
                policies: dict[str, str] | None = None, **kw) -> LiveSocket:
    policies = policies or {}
    return LiveSocket(
        socket_id=f"id-{name}",
        name=name,
        socket_type=socket_type,
        description=description,
        upstream_type=kw.pop("upstream_type", model.DEFAULT_UPSTREAM_TYPE.get(socket_type, "")),
        tags=ours() if tags is None else tags,
        policy_ids=tuple(policies.values()),
        policy_names=tuple(policies),
        **kw,
    )


def live_policy(name: str, *, description: str = "", instance: str | None = "default",
                prune: bool = True, org_wide: bool = False, data=None) -> LivePolicy:
    return LivePolicy(
        policy_id=f"pid-{name}",
        name=name,
        description=description,
        org_wide=org_wide,
        policy_data=data or {},
        ownership=Ownership(managed=instance is not None, instance=instance, prune=prune),
    )


def desired(*specs) -> Desired:
    return Desired(
        sockets={s.name: s for s in specs if isinstance(s, SocketSpec)},
        policies={p.name: p for p in specs if isinstance(p, PolicySpec)},
    )


def actual(*objs) -> Actual:
    return Actual(
        sockets={s.name: s for s in objs if isinstance(s, LiveSocket)},
        policies={p.name: p for p in objs if isinstance(p, LivePolicy)},
    )


def actions(plan) -> list[tuple[str, str, str]]:
    return [(c.action.value, c.kind, c.name) for c in plan.changes]


def test_create_everything_from_nothing_in_apply_order() -> None:
    plan = make_plan(
        desired(
            SocketSpec("web", "http", policies=("ops",)),
            PolicySpec("ops", description="ops team"),
        ),
        actual(),
    )
    assert actions(plan) == [
        ("create", "policy", "ops"),
        ("create", "socket", "web"),
        ("attach", "attachment", "web/ops"),
    ]
    assert plan.summary() == {
        "create": 2, "update": 0, "replace": 0, "delete": 0, "attach": 1, "detach": 0
    }
    attach = plan.changes[-1]
    assert attach.policy_id is None and attach.object_id is None  # resolved at apply time
    assert plan.ok and plan.has_changes


def test_unchanged_objects_plan_nothing() -> None:
    plan = make_plan(
        desired(SocketSpec("web", "http", description="d", labels={"team": "a"}, policies=("ops",)),
                PolicySpec("ops", description="x")),
        actual(
            live_socket("web", description="d", tags={**ours(), "team": "a"},
                        policies={"ops": "pid-ops"}),
            live_policy("ops", description="x"),
        ),
    )
    assert plan.changes == [] and plan.conflicts == [] and not plan.has_changes


def test_description_and_label_change_is_one_update_with_field_paths() -> None:
    plan = make_plan(
        desired(SocketSpec("web", "http", description="new", labels={"team": "b"})),
        actual(live_socket("web", description="old", tags={**ours(), "team": "a"})),
    )
    assert actions(plan) == [("update", "socket", "web")]
    diffs = {d.path: (d.before, d.after) for d in plan.changes[0].diffs}
    assert diffs == {"description": ("old", "new"), "labels.team": ("a", "b")}


def fingerprinted(**secrets: str) -> dict[str, str]:
    """Our tags plus the fingerprints the reconciler records when it writes these secrets."""
    return {**ours(), **{fingerprint_tag(k): fingerprint(Secret(v)) for k, v in secrets.items()}}


def test_secrets_compared_by_fingerprint_never_shown() -> None:
    spec = SocketSpec("db", "database", secrets_by_field={"upstream_password": Secret("hunter2-new", "env:DB_PW")})
    live = live_socket("db", socket_type="database",
                       tags=fingerprinted(upstream_password="hunter2-old"))
    plan = make_plan(desired(spec), actual(live))
    (change,) = plan.changes
    assert change.action is Action.UPDATE and change.reason == "changed"
    (diff,) = change.diffs
    assert (diff.path, diff.before, diff.after, diff.sensitive) == (
        "upstream_password", "(sensitive)", "(sensitive)", True)
    assert "hunter2" not in repr(plan.to_json()) and "hunter2" not in repr(plan)
    same = make_plan(
        desired(SocketSpec("db", "database", secrets_by_field={"upstream_password": Secret("s3cret", "env:X")})),
        actual(live_socket("db", socket_type="database",
                           tags=fingerprinted(upstream_password="s3cret"))),
    )
    assert same.changes == []


def test_secret_without_fingerprint_is_written_once_and_the_plan_says_why() -> None:
    plan = make_plan(
        desired(SocketSpec("db", "database", secrets_by_field={"upstream_password": Secret("pw-1", "env:X")})),
        actual(live_socket("db", socket_type="database")),
    )
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert "no fingerprint of upstream_password" in change.reason
    assert [(d.path, d.before, d.after) for d in change.diffs] == [
        ("upstream_password", None, "(sensitive)")]


def test_a_malformed_fingerprint_counts_as_a_changed_secret() -> None:
    tags = {**ours(), fingerprint_tag("upstream_password"): "scrypt$99$8$1$AAAA$BBBB"}
    plan = make_plan(
        desired(SocketSpec("db", "database", secrets_by_field={"upstream_password": Secret("pw-1", "env:X")})),
        actual(live_socket("db", socket_type="database", tags=tags)),
    )
    assert actions(plan) == [("update", "socket", "db")]


def test_secret_left_out_of_the_manifest_is_not_compared() -> None:
    plan = make_plan(
        desired(SocketSpec("db", "database")),
        actual(live_socket("db", socket_type="database",
                           tags=fingerprinted(upstream_password="x-old"))),
    )
    assert plan.changes == []


def test_protection_cannot_change_in_place_so_it_is_a_replace_with_the_reason() -> None:
    live = live_socket("app", protected=True, protected_username="viewer",
                       tags=fingerprinted(protected_password="old-pass"))
    for spec, why in (
        (SocketSpec("app", "http", protected_username="viewer",
                    secrets_by_field={"protected_password": Secret("new-pass")}),
         "protected_password changed"),
        (SocketSpec("app", "http", protected_username="admin",
                    secrets_by_field={"protected_password": Secret("old-pass")}),
         "protected_username changed"),
        (SocketSpec("app", "http"), "protected, protected_username changed"),
    ):
        (change,) = make_plan(desired(spec), actual(live)).changes
        assert change.action is Action.REPLACE, spec
        assert change.reason.startswith(why) and "cannot change protection in place" in (
            change.reason)
    same = SocketSpec("app", "http", protected_username="viewer",
                      secrets_by_field={"protected_password": Secret("old-pass")})
    assert make_plan(desired(same), actual(live)).changes == []


@pytest.mark.parametrize(
    ("spec", "socket_type", "upstream_type"),
    [
        (SocketSpec("s", "http"), "http", "http"),
        (SocketSpec("s", "http", upstream_type="http"), "http", "http"),
        (SocketSpec("s", "http", upstream_type="https"), "http", "https"),
        (SocketSpec("s", "https"), "http", "https"),
        (SocketSpec("s", "https", upstream_type="https"), "http", "https"),
        (SocketSpec("s", "tls"), "tls", "tls"),
        (SocketSpec("s", "tls"), "tls", ""),  # a socket made before border0 filled "tls"
        (SocketSpec("s", "ssh"), "ssh", "ssh"),
        (SocketSpec("s", "ssh", upstream_type="aws-ssm"), "ssh", "aws-ssm"),
        (SocketSpec("s", "ssh", upstream_type="aws-ec2connect"), "ssh", "aws-ec2connect"),
        (SocketSpec("s", "database"), "database", "mysql"),
        (SocketSpec("s", "database", upstream_type="postgres"), "database", "postgres"),
        (SocketSpec("s", "database", upstream_type="mssql"), "database", "mssql"),
    ],
)
def test_every_spelling_of_a_type_matches_what_border0_stores(
    spec: SocketSpec, socket_type: str, upstream_type: str
) -> None:
    live = live_socket("s", socket_type=socket_type, upstream_type=upstream_type)
    assert make_plan(desired(spec), actual(live)).changes == []


def test_recording_is_managed_only_when_the_manifest_sets_it() -> None:
    live = live_socket("web", recording_enabled=True)
    assert make_plan(desired(SocketSpec("web", "http")), actual(live)).changes == []
    assert make_plan(desired(SocketSpec("web", "http", recording=True)), actual(live)).changes == []
    (change,) = make_plan(desired(SocketSpec("web", "http", recording=False)), actual(live)).changes
    assert [(d.path, d.before, d.after) for d in change.diffs] == [("recording", True, False)]


def test_v2_policy_compares_with_its_version_at_the_top_level() -> None:
    from reconciler.border0.api_json import policy_from_api

    data = {"version": "v2", "permissions": {"ssh": {"allowed": True}},
            "condition": {"who": {"email": ["a@example.com"]}}}
    answer = {"id": "pid-p", "name": "p", "version": "v2",
              "description": "[managed-by=border0-reconciler instance=default]",
              "policy_data": {k: v for k, v in data.items() if k != "version"}}
    plan = make_plan(desired(PolicySpec("p", policy_data=data)), actual(policy_from_api(answer)))
    assert plan.changes == []
    v1 = make_plan(desired(PolicySpec("p", policy_data={**data, "version": "v1"})),
                   actual(policy_from_api(answer)))
    assert [d.path for d in v1.changes[0].diffs] == ["policy_data.version"]


def test_type_change_is_a_replace_and_reattaches() -> None:
    plan = make_plan(
        desired(SocketSpec("box", "tls", policies=("ops",)), PolicySpec("ops")),
        actual(live_socket("box", socket_type="ssh", policies={"ops": "pid-ops"}),
               live_policy("ops")),
    )
    assert actions(plan) == [("replace", "socket", "box"), ("attach", "attachment", "box/ops")]
    assert plan.changes[0].reason == (
        "type changed: ssh → tls; a replace: new id and TCP port; sessions and recordings stay "
        "with the old id; connections drop")
    assert plan.changes[1].policy_id == "pid-ops" and plan.changes[1].object_id is None


def test_http_to_https_is_an_update_not_a_replace() -> None:
    plan = make_plan(desired(SocketSpec("web", "https")), actual(live_socket("web")))
    assert actions(plan) == [("update", "socket", "web")]


def test_removed_manifest_is_pruned_unless_prune_false() -> None:
    plan = make_plan(
        desired(SocketSpec("keep", "http"), SocketSpec("k2", "http"), SocketSpec("k3", "http")),
        actual(
            live_socket("keep"), live_socket("k2"), live_socket("k3"),
            live_socket("gone"),
            live_socket("sticky", tags=ours(prune=False)),
            live_policy("oldpol"),
            live_policy("stickypol", prune=False),
        ),
    )
    assert actions(plan) == [("delete", "socket", "gone"), ("delete", "policy", "oldpol")]
    texts = [w.message for w in plan.warnings]
    assert any("sticky" in t and "kept: prune disabled" in t for t in texts)
    assert any("stickypol" in t and "kept: prune disabled" in t for t in texts)


def test_unmanaged_and_other_instance_objects_are_never_touched() -> None:
    plan = make_plan(
        desired(SocketSpec("web", "http")),
        actual(
            live_socket("web"),
            live_socket("handmade", tags={}),
            live_socket("theirs", tags=ours("other")),
            live_policy("handpol", instance=None),
            live_policy("otherpol", instance="other"),
        ),
    )
    assert plan.changes == [] and plan.conflicts == []


def test_naming_an_unmanaged_object_is_a_conflict_unless_adopted() -> None:
    live = live_socket("legacy", description="old", tags={"team": "x"})
    conflict = make_plan(desired(SocketSpec("legacy", "http", description="old")), actual(live))
    assert not conflict.ok and conflict.changes == []
    assert conflict.conflicts[0].code == "not-managed"
    assert "adopt" in conflict.conflicts[0].message

    adopted = make_plan(
        desired(SocketSpec("legacy", "http", description="old", labels={"team": "x"},
                           adopt=True)),
        actual(live),
    )
    assert adopted.ok
    (change,) = adopted.changes
    assert (change.action, change.reason) == (Action.UPDATE, "adopt")
    assert change.diffs[0].path == "managed_by"


def test_adopt_never_steals_from_another_instance() -> None:
    plan = make_plan(
        desired(SocketSpec("web", "http", adopt=True), PolicySpec("p", adopt=True)),
        actual(live_socket("web", tags=ours("other")), live_policy("p", instance="other")),
    )
    assert not plan.ok
    assert {d.code for d in plan.conflicts} == {"owned-by-other-instance"}


def test_policy_adopt_and_update() -> None:
    plan = make_plan(
        desired(PolicySpec("hand", description="d", adopt=True),
                PolicySpec("mine", description="new", policy_data={"version": "v1"})),
        actual(live_policy("hand", description="d", instance=None),
               live_policy("mine", description="old", data={"version": "v1"})),
    )
    assert actions(plan) == [("update", "policy", "hand"), ("update", "policy", "mine")]
    assert plan.changes[0].reason == "adopt"
    assert [d.path for d in plan.changes[1].diffs] == ["description"]


def test_attachments_drift_is_repaired_but_org_wide_policies_stay() -> None:
    plan = make_plan(
        desired(SocketSpec("web", "http", policies=("a",), external_policies=("ext",)),
                PolicySpec("a"), PolicySpec("stray")),
        actual(
            live_socket("web", policies={"stray": "pid-stray", "org": "pid-org"}),
            live_policy("a"), live_policy("ext", instance=None), live_policy("stray"),
            live_policy("org", instance=None, org_wide=True),
        ),
    )
    assert actions(plan) == [
        ("attach", "attachment", "web/a"),
        ("attach", "attachment", "web/ext"),
        ("detach", "attachment", "web/stray"),
    ]
    assert plan.changes[2].policy_id == "pid-stray"


def test_missing_external_policy_is_an_error() -> None:
    plan = make_plan(desired(SocketSpec("web", "http", external_policies=("nope",))), actual())
    assert not plan.ok
    assert plan.conflicts[0].code == "unknown-policy" and "nope" in plan.conflicts[0].message


def test_mass_delete_guard() -> None:
    managed = [live_socket(f"s{i}") for i in range(6)]
    # deleting 3 of 6 is allowed by default (half), 4 is not
    ok = make_plan(desired(*(SocketSpec(f"s{i}", "http") for i in range(3))), actual(*managed))
    assert ok.ok and ok.summary()["delete"] == 3
    refused = make_plan(desired(*(SocketSpec(f"s{i}", "http") for i in range(2))),
                        actual(*managed))
    assert not refused.ok and refused.conflicts[0].code == "mass-delete"
    assert make_plan(desired(SocketSpec("s0", "http")), actual(*managed), max_delete=5).ok
    assert make_plan(desired(SocketSpec("s0", "http")), actual(*managed),
                     allow_mass_delete=True).ok


def test_empty_desired_set_always_refused() -> None:
    plan = make_plan(desired(), actual(live_socket("only")))
    assert not plan.ok and "declare nothing" in plan.conflicts[0].message
    assert not make_plan(desired(), actual(live_socket("only")), max_delete=100).ok
    assert make_plan(desired(), actual(live_socket("only")), allow_mass_delete=True).ok
    # nothing of ours to delete: not refused
    assert make_plan(desired(), actual(live_socket("x", tags={}))).ok


def test_instances_are_separate() -> None:
    plan = make_plan(desired(SocketSpec("b", "http")),
                     actual(live_socket("a", tags=ours("ci"))), instance="ci",
                     allow_mass_delete=True)
    assert actions(plan) == [("create", "socket", "b"), ("delete", "socket", "a")]


def test_json_form_is_versioned() -> None:
    data = make_plan(desired(SocketSpec("web", "http", description="x")), actual()).to_json()
    assert data["format_version"] == "1"
    assert data["summary"]["create"] == 1
    change = data["changes"][0]
    assert {"kind", "name", "action", "reason", "diffs"} <= change.keys()
    assert {"path": "description", "before": None, "after": "x", "sensitive": False} in change[
        "diffs"
    ]


def test_org_wide_change_replaces_the_policy_and_reattaches() -> None:
    plan = make_plan(
        desired(SocketSpec("web", "http", policies=("p",)), PolicySpec("p", org_wide=True)),
        actual(live_socket("web", policies={"p": "pid-p"}), live_policy("p")),
    )
    assert actions(plan) == [("replace", "policy", "p"), ("attach", "attachment", "web/p")]
    assert plan.changes[0].reason == (
        "org_wide changed: false → true; a replace: new id; its attachments are made again")
    assert plan.changes[1].policy_id is None  # the new policy's id, known at apply time


def test_instance_must_fit_a_tag_and_the_marker() -> None:
    assert check_instance("team-a.prod_1") is None
    for bad in ("", "my team", "a]b", "x" * 64):
        assert check_instance(bad)
        with pytest.raises(ValueError, match="invalid instance"):
            make_plan(desired(), actual(), instance=bad)
