"""Saved plans on disk: what `apply FILE` and `show FILE` take for a plan, what they refuse as a
rendering, and the previous release's layout still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import reconciler.plan.saved as saved_plan
from reconciler.model import Actual, Desired, SocketSpec
from reconciler.plan.planner import make_plan
from reconciler.render import render
from reconciler.secrets import Secret

SECRET = "saved-plan-secret-value"


def write_plan(path: Path) -> dict:
    desired = Desired(sockets={"db": SocketSpec("db", "database",
                                                secrets_by_field={"upstream_password": Secret(SECRET, "env:DB_PW")})})
    plan = make_plan(desired, Actual())
    saved_plan.write(path, plan=plan, desired=desired, actual_fingerprint="sha256:x",
                     paths=["manifests"], max_delete=None, allow_mass_delete=False)
    return plan.to_json()


def test_a_saved_plan_is_the_json_plan_plus_what_apply_checks(tmp_path: Path) -> None:
    path = tmp_path / "review.tfplan"
    shown = write_plan(path)
    text = path.read_text()
    assert SECRET not in text and "env:DB_PW" in text
    data = json.loads(text)
    assert {k: v for k, v in data.items() if k != "saved_plan"} == shown
    assert saved_plan.classify(path) == "saved-plan" and saved_plan.is_saved_plan(path)
    assert saved_plan.read(path).plan == shown


def test_renderings_and_other_files_are_told_apart(tmp_path: Path) -> None:
    shown = write_plan(tmp_path / "review.tfplan")
    for name, fmt in (("plan.json", "json"), ("plan.md", "markdown"), ("plan.txt", "text")):
        (tmp_path / name).write_text(render(shown, fmt))
        assert saved_plan.classify(tmp_path / name) == "rendering", name
    (tmp_path / "socket.yaml").write_text("apiVersion: border0-reconciler/v1\nkind: Socket\n")
    (tmp_path / "flow.yaml").write_text('{"apiVersion": "v1", "kind": "ConfigMap"}\n')
    for name in ("socket.yaml", "flow.yaml", "missing.json"):
        assert saved_plan.classify(tmp_path / name) is None, name
    assert saved_plan.classify(tmp_path) is None  # a folder of manifests
    with pytest.raises(ValueError, match="is not a border0-reconciler saved plan"):
        saved_plan.read(tmp_path / "plan.json")


def test_the_previous_releases_saved_plans_are_still_read(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    shown = write_plan(path)
    new = json.loads(path.read_text())
    old = {**new.pop("saved_plan"), "format_version": "1", "plan": new}
    path.write_text(json.dumps(old))
    assert saved_plan.classify(path) == "saved-plan"
    loaded = saved_plan.read(path)
    assert loaded.plan == shown and loaded.paths == tuple(old["paths"])


def test_format_3_records_the_options_an_older_one_has_none_a_newer_one_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "review.tfplan"
    write_plan(path)
    data = json.loads(path.read_text())
    assert data["saved_plan"]["format_version"] == "3"
    assert saved_plan.read(path).options == {"instance": "default", "max_delete": None,
                                             "allow_mass_delete": False}
    older = {**data["saved_plan"], "format_version": "2"}
    del older["options"]
    path.write_text(json.dumps({**data, "saved_plan": older}))
    assert saved_plan.read(path).options is None  # read: its options are the command line's
    path.write_text(json.dumps({**data, "saved_plan": {**older, "format_version": "4"}}))
    with pytest.raises(ValueError, match="saved plan format '4' is not supported"):
        saved_plan.read(path)


def test_the_actual_digest_covers_the_connectors_and_an_older_one_is_still_compared(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from reconciler.connector_model import LiveConnector

    path = tmp_path / "review.tfplan"
    actual = Actual(connectors={"edge": LiveConnector("c-1", "edge", "rack A")})
    desired = Desired()
    plan = make_plan(desired, actual)
    for fingerprint in (saved_plan.actual_fingerprint(actual),
                        saved_plan.actual_fingerprint(actual, connectors=False)):  # 0.2's
        saved_plan.write(path, plan=plan, desired=desired, actual_fingerprint=fingerprint,
                         paths=["manifests"], max_delete=None, allow_mass_delete=False)
        assert not saved_plan.is_stale(saved_plan.read(path), actual)
    edited = Actual(connectors={"edge": replace(actual.connectors["edge"], description="B")})
    saved_plan.write(path, plan=plan, desired=desired,
                     actual_fingerprint=saved_plan.actual_fingerprint(actual), paths=["m"],
                     max_delete=None, allow_mass_delete=False)
    assert saved_plan.is_stale(saved_plan.read(path), edited)
