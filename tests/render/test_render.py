"""Renderers read the plan's JSON form only; JSON is checked against schemas/plan.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from reconciler.model import Actual, Desired, LiveSocket, PolicySpec, SocketSpec
from reconciler.plan.planner import make_plan
from reconciler.render import render
from reconciler.render.markdown import MAX_CHARS
from reconciler.secrets import Secret, fingerprint, fingerprint_tag

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text()
)
SECRET = "pa55-very-secret-value"
TAGS = {"managed-by": "border0-reconciler", "border0-reconciler/instance": "default"}


def sample_plan():
    desired = Desired(
        sockets={
            "web": SocketSpec("web", "http", description="new", labels={"team": "b"},
                              policies=("ops",)),
            "db": SocketSpec("db", "database", secrets_by_field={"upstream_password": Secret(SECRET, "env:DB_PW")}),
            "box": SocketSpec("box", "tls"),
            "legacy": SocketSpec("legacy", "http"),
        },
        policies={"ops": PolicySpec("ops", description="ops | team")},
    )
    actual = Actual(
        sockets={
            "web": LiveSocket("i1", "web", "http", "old", "http", tags={**TAGS, "team": "a"}),
            "db": LiveSocket("i2", "db", "database", upstream_type="mysql", tags={
                **TAGS, fingerprint_tag("upstream_password"): fingerprint(Secret("older-" + SECRET))}),
            "box": LiveSocket("i3", "box", "ssh", upstream_type="ssh", tags=TAGS),
            "gone": LiveSocket("i4", "gone", "http", upstream_type="http", tags=TAGS),
            "legacy": LiveSocket("i5", "legacy", "http", upstream_type="http", tags={}),
        }
    )
    return make_plan(desired, actual, allow_mass_delete=True)


def test_json_matches_schema_and_hides_secrets() -> None:
    data = sample_plan().to_json()
    jsonschema.validate(data, SCHEMA)
    out = render(data, "json")
    assert json.loads(out) == data
    assert SECRET not in out
    assert data["applicable"] is False  # the unmanaged "legacy" socket is a conflict


def test_schema_rejects_a_wrong_shape() -> None:
    data = sample_plan().to_json()
    data["changes"][0]["action"] = "explode"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)
    leaked = sample_plan().to_json()
    leaked["changes"].append({"kind": "socket", "name": "x", "action": "update", "reason": "",
                              "source": None, "diffs": [{"path": "upstream_password",
                                                         "before": None, "after": SECRET,
                                                         "sensitive": True}]})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(leaked, SCHEMA)


def test_text_is_terraform_like() -> None:
    text = render(sample_plan().to_json(), "text")
    assert SECRET not in text
    assert "  + policy ops  (not in border0)" in text
    assert "  ~ socket web  (changed)" in text
    assert '      description: "old" → "new"' in text
    assert "      upstream_password: (sensitive) → (sensitive)" in text
    assert ("  -/+ socket box  (type changed: ssh → tls; a replace: new id and TCP port; sessions "
            "and recordings stay with the old id; connections drop)") in text
    assert "  - socket gone" in text
    assert "  + attach policy ops to socket web" in text
    assert "Plan: 1 to create, 2 to update, 1 to replace, 1 to delete, 1 to attach, 0 to detach." \
        in text
    assert text.index("Conflicts") < text.index("will perform")
    assert "\x1b[" not in text
    assert "\x1b[" in render(sample_plan().to_json(), "text", color=True)


def test_text_no_changes() -> None:
    text = render(make_plan(Desired(), Actual()).to_json(), "text")
    assert text.strip() == "No changes. border0 matches the manifests."


def test_markdown_shape() -> None:
    md = render(sample_plan().to_json(), "markdown")
    assert SECRET not in md
    assert md.startswith("## border0-reconciler plan")
    assert md.index("Conflicts") < md.index("| create | update |")
    assert "| 1 | 2 | 1 | 1 | 1 | 0 |" in md
    assert md.count("<details>") == md.count("</details>") == 6
    assert "ops &#124; team" in md  # table cells cannot be broken by a pipe
    assert "Truncated" not in md


def test_markdown_is_truncated_under_github_limit_with_a_note() -> None:
    desired = Desired(
        sockets={f"s{i:05d}": SocketSpec(f"s{i:05d}", "http", description="x" * 50)
                 for i in range(3000)}
    )
    md = render(make_plan(desired, Actual()).to_json(), "markdown")
    assert len(md) <= MAX_CHARS
    assert "**Truncated:**" in md and "of 3000 changes not shown" in md
    assert md.count("<details>") == md.count("</details>") > 10


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(sample_plan().to_json(), "xml")


def test_markdown_truncates_long_conflict_lists_too() -> None:
    from reconciler.diagnostics import Diagnostic, Severity
    from reconciler.plan.types import Plan

    plan = Plan(conflicts=[Diagnostic(Severity.ERROR, f"socket s{i}: " + "x" * 80,
                                      file="m.yaml", line=i, column=1)
                           for i in range(2000)])
    md = render(plan.to_json(), "markdown")
    assert len(md) <= MAX_CHARS
    assert "| create | update |" in md  # the summary table is always kept
    assert "of 2000 conflicts not shown" in md
