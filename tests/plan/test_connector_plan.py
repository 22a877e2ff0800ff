"""Connectors and tokens in the plan: create, adopt, prune, refuse a delete that would leave
sockets unserved, rotate, revoke; a token's value never in a plan; policies switched off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.connector_model import ConnectorKindSpec, LiveConnector, LiveToken, TokenSpec
from reconciler.model import (
    Actual,
    Desired,
    LivePolicy,
    LiveSocket,
    Ownership,
    PolicySpec,
    SocketSpec,
)
from reconciler.ownership import parse_policy_marker, policy_marker
from reconciler.plan.planner import make_plan
from reconciler.plan.types import Action, Kind
from reconciler.render.text import render

OURS = Ownership(managed=True, instance="default", tokens=())
MANAGING = Ownership(managed=True, instance="default", tokens=("edge-1",))
NOW = datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def token(name: str = "edge-1", **kw) -> TokenSpec:
    return TokenSpec(name, expires_in=kw.pop("expires_in", 90 * 86400), file="/x/edge.token",
                     **kw)


def live(name: str = "edge", tokens=(), ownership=OURS, **kw) -> LiveConnector:
    return LiveConnector(f"id-{name}", name, ownership=ownership, tokens=tuple(tokens), **kw)


def changes(plan) -> list[tuple[str, str, str]]:
    return [(c.kind.value, c.name, c.action.value) for c in plan.changes]


def test_a_new_connector_and_its_token_are_created_and_the_value_never_shown():
    desired = Desired(connectors={"edge": ConnectorKindSpec("edge", "edge hosts",
                                                            tokens=(token(),))})
    plan = make_plan(desired, Actual())
    assert changes(plan) == [("connector", "edge", "create"), ("token", "edge/edge-1", "create")]
    text = render(plan.to_json())
    assert "+ connector edge" in text and "description: \"edge hosts\"" in text
    assert "+ token edge-1: create (sensitive)  (connector edge; not in border0)" in text


def test_tokens_rotate_before_expiry_or_when_their_destination_is_lost():
    fresh = LiveToken("t1", "edge-1", iso(NOW + timedelta(days=80)), iso(NOW - timedelta(days=10)))
    old = LiveToken("t0", "edge-1", iso(NOW + timedelta(days=5)), iso(NOW - timedelta(days=85)))
    spec = ConnectorKindSpec("edge", tokens=(token(),))
    actual = Actual(connectors={"edge": live(tokens=[fresh], ownership=MANAGING)})
    assert changes(make_plan(Desired(connectors={"edge": spec}), actual)) == []

    expiring = Actual(connectors={"edge": live(tokens=[old], ownership=MANAGING)})
    [rotate] = make_plan(Desired(connectors={"edge": spec}), expiring).changes
    assert (rotate.action, rotate.token_id) == (Action.REPLACE, "t0")
    assert "rotated before it does" in rotate.reason

    lost = ConnectorKindSpec("edge", tokens=(token(destination_present=False),))
    [replace] = make_plan(Desired(connectors={"edge": lost}), actual).changes[:1]
    assert (replace.kind, replace.action, replace.token_id) == (Kind.TOKEN, Action.REPLACE, "t1")
    assert "destination /x/edge.token is missing" in replace.reason


def test_only_tokens_the_marker_names_are_revoked_and_the_marker_follows_spec_tokens():
    """The connector's marker names the tokens this reconciler manages: one no longer declared
    is revoked; one made by hand (or by anyone else) never is, on a connector we own too."""
    ours = LiveToken("t1", "edge-1", iso(NOW + timedelta(days=80)), iso(NOW - timedelta(days=10)))
    retired = LiveToken("t2", "edge-old", "", iso(NOW))
    by_hand = LiveToken("t9", "by-hand", "", iso(NOW))
    marked = Ownership(managed=True, instance="default", tokens=("edge-1", "edge-old"))
    spec = ConnectorKindSpec("edge", tokens=(token(),))
    plan = make_plan(Desired(connectors={"edge": spec}),
                     Actual(connectors={"edge": live(tokens=[ours, retired, by_hand],
                                                     ownership=marked)}))
    assert changes(plan) == [("connector", "edge", "update"), ("token", "edge/edge-old", "delete")]
    [update] = [c for c in plan.changes if c.kind is Kind.CONNECTOR]
    assert [(d.path, d.before, d.after) for d in update.diffs] == [
        ("managed_tokens", ["edge-1", "edge-old"], ["edge-1"])]
    assert plan.changes[1].token_id == "t2"

    # a marker stating none (`tokens=`): the declared ones are recorded, nothing is revoked
    plan = make_plan(Desired(connectors={"edge": spec}),
                     Actual(connectors={"edge": live(tokens=[ours, by_hand])}))
    assert changes(plan) == [("connector", "edge", "update")]


def test_a_v02_marker_has_v02s_rule_applied_once_and_the_plan_says_so():
    """A marker without `tokens=` was written by v0.2, which revoked every undeclared token of a
    connector it owned: that rule applies to it once, and the update states the token set."""
    ours = LiveToken("t1", "edge-1", iso(NOW + timedelta(days=80)), iso(NOW - timedelta(days=10)))
    dropped = LiveToken("t2", "edge-old", "", iso(NOW))
    v02 = Ownership(managed=True, instance="default")  # tokens None: the marker does not say
    spec = ConnectorKindSpec("edge", tokens=(token(),))
    plan = make_plan(Desired(connectors={"edge": spec}),
                     Actual(connectors={"edge": live(tokens=[ours, dropped], ownership=v02)}))
    assert changes(plan) == [("connector", "edge", "update"), ("token", "edge/edge-old", "delete")]
    assert [(d.path, d.before, d.after) for d in plan.changes[0].diffs] == [
        ("managed_tokens", None, ["edge-1"])]
    assert "written by v0.2" in plan.changes[1].reason
    assert "v0.2's rule applies this once" in render(plan.to_json())


def test_the_marker_always_states_its_tokens_so_a_v02_one_is_told_apart():
    assert policy_marker("default", tokens=()) == (
        "[managed-by=border0-reconciler instance=default tokens=]")
    assert parse_policy_marker("x " + policy_marker("default", tokens=()))[1].tokens == ()
    assert parse_policy_marker("x " + policy_marker("default", tokens=["b", "a"]))[1].tokens == (
        "a", "b")
    assert parse_policy_marker("x [managed-by=border0-reconciler instance=default]")[1].tokens \
        is None
    assert "tokens=" not in policy_marker("default")  # a policy's marker: no token set


def test_deleting_a_connector_that_sockets_still_name_is_refused_with_their_names():
    socket = LiveSocket("s1", "shell", "ssh", tags={"managed-by": "border0-reconciler"},
                        connector_names=("edge",))
    desired = Desired(sockets={"api": SocketSpec("api", "http", connectors=("edge",))},
                      connectors={})
    actual = Actual(connectors={"edge": live()}, sockets={"shell": socket})
    plan = make_plan(desired, actual)
    assert not plan.ok
    [refusal] = [d for d in plan.conflicts if d.code == "connector-in-use"]
    assert "sockets still name it: api, shell" in refusal.message
    assert not [c for c in plan.changes if c.kind is Kind.CONNECTOR]


def test_connectors_follow_ownership_adopt_prune_and_the_mass_delete_guard():
    theirs = live("shared", ownership=Ownership())
    desired = Desired(connectors={"shared": ConnectorKindSpec("shared")})
    [conflict] = make_plan(desired, Actual(connectors={"shared": theirs})).conflicts
    assert conflict.code == "not-managed"
    adopted = Desired(connectors={"shared": ConnectorKindSpec("shared", adopt=True)})
    assert changes(make_plan(adopted, Actual(connectors={"shared": theirs}))) == [
        ("connector", "shared", "update")]

    kept = live("old", ownership=Ownership(managed=True, instance="default", prune=False))
    gone = live("gone")
    plan = make_plan(Desired(connectors={"x": ConnectorKindSpec("x")}),
                     Actual(connectors={"old": kept, "gone": gone}))
    assert ("connector", "gone", "delete") in changes(plan)
    assert any("connector old is no longer in the manifests; kept" in w.message
               for w in plan.warnings)
    empty = make_plan(Desired(), Actual(connectors={"gone": gone}))
    assert [d.code for d in empty.conflicts] == ["mass-delete"]


def test_an_unknown_connector_is_a_plan_conflict_and_an_existing_one_is_found_by_name():
    desired = Desired(sockets={"web": SocketSpec("web", "http", connectors=("portal-made",))})
    assert [d.code for d in make_plan(desired, Actual()).conflicts] == ["unknown-connector"]
    elsewhere = Actual(connectors={"portal-made": live("portal-made", ownership=Ownership())})
    assert make_plan(desired, elsewhere).ok


def test_with_policies_off_no_policy_change_is_planned_and_the_plan_says_so():
    desired = Desired(
        sockets={"web": SocketSpec("web", "http", policies=("ops",))},
        policies={"ops": PolicySpec("ops", policy_data={"version": "v1", "action": ["http"]})},
    )
    actual = Actual(policies={"old": LivePolicy("p1", "old", ownership=OURS)})
    plan = make_plan(desired, actual, manage_policies=False)
    assert changes(plan) == [("socket", "web", "create")]
    assert any(w.code == "policies-not-managed" and "policies are not managed" in w.message
               for w in plan.warnings)


def test_revoking_undeclared_tokens_is_not_a_mass_delete():
    retired = [LiveToken(f"t{i}", f"retired-{i}", "", iso(NOW)) for i in range(3)]
    marked = Ownership(managed=True, instance="default",
                       tokens=("edge-1", *(t.name for t in retired)))
    plan = make_plan(Desired(connectors={"edge": ConnectorKindSpec("edge", tokens=(token(),))}),
                     Actual(connectors={"edge": live(tokens=retired, ownership=marked)}))
    assert plan.ok, plan.conflicts
    assert sorted(c.action.value for c in plan.changes) == [
        "create", "delete", "delete", "delete", "update"]


def test_of_several_tokens_of_a_name_the_one_the_destination_holds_is_kept():
    """An apply that died between making a token and writing it leaves two of one name: the
    one whose value the destination holds (its record) is in use, whatever its age."""
    held = LiveToken("t0", "edge-1", iso(NOW + timedelta(days=80)), iso(NOW - timedelta(days=2)))
    newer = LiveToken("t1", "edge-1", iso(NOW + timedelta(days=89)), iso(NOW - timedelta(days=1)))
    actual = Actual(connectors={"edge": live(tokens=[held, newer], ownership=MANAGING)})

    def plan_for(**kw):
        spec = ConnectorKindSpec("edge", tokens=(token(**kw),))
        return make_plan(Desired(connectors={"edge": spec}), actual)

    [lost] = plan_for(held_token_id="t0").changes
    assert (lost.action, lost.token_id) == (Action.DELETE, "t1")
    assert "its value never reached the destination" in lost.reason

    revoked = plan_for(held_token_id="t9").changes  # holds one border0 no longer lists
    assert [(c.action, c.token_id) for c in revoked] == [(Action.REPLACE, "t1"),
                                                         (Action.DELETE, "t0")]
    assert "holds a token border0 no longer lists" in revoked[0].reason

    [unknown] = plan_for().changes  # no record (written before records were kept)
    assert (unknown.action, unknown.token_id) == (Action.CREATE, None)  # nothing revoked
    assert "no record of which one /x/edge.token holds" in unknown.reason


def test_a_fixed_expires_at_is_never_rotated_for_its_expiry_and_the_plan_warns():
    created = NOW - timedelta(days=60)

    def plan_for(expires: datetime, **kw):
        at = LiveToken("t0", "edge-1", iso(expires), iso(created))
        spec = ConnectorKindSpec("edge", tokens=(token(expires_in=None, expires_at=iso(expires),
                                                       **kw),))
        actual = Actual(connectors={"edge": live(tokens=[at], ownership=MANAGING)})
        return make_plan(Desired(connectors={"edge": spec}), actual)

    far = plan_for(NOW + timedelta(days=60))
    assert far.changes == [] and far.warnings == []
    near = plan_for(NOW + timedelta(days=5))
    assert near.changes == [] and [w.code for w in near.warnings] == ["token-expiry-near"]
    past = plan_for(NOW - timedelta(days=1))
    assert past.changes == [] and [w.code for w in past.warnings] == ["token-expired"]
    lost = plan_for(NOW - timedelta(days=1), destination_present=False)
    assert lost.changes == [] and "not replaced (destination" in lost.warnings[0].message


def test_expires_at_counts_to_the_second_as_border0_keeps_it():
    at = LiveToken("t0", "edge-1", "2030-06-30T00:00:00Z", iso(NOW))
    spec = ConnectorKindSpec("edge", tokens=(token(expires_in=None,
                                                   expires_at="2030-06-30T00:00:00.500Z"),))
    actual = Actual(connectors={"edge": live(tokens=[at], ownership=MANAGING)})
    assert make_plan(Desired(connectors={"edge": spec}), actual).changes == []
