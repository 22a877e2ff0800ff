"""Both YAML parsers: libyaml's (where PyYAML has it) and the pure-Python fallback read the same
manifests into the same objects and report the same problems at the same file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reconciler.manifests import yamlpos
from reconciler.manifests.loader import load

HEADER = "apiVersion: border0-reconciler/v1\n"
GOOD = (
    f"{HEADER}kind: Socket\nmetadata:\n  name: web\n  labels:\n    since: 2025-01-31\n"
    "    window: 18:00\nspec:\n  type: http\n  description: the web app\n  policies: [p]\n"
    f"---\n{HEADER}kind: Policy\nmetadata:\n  name: p\nspec:\n  policyData:\n"
    "    version: v1\n    action: [http]\n    condition:\n      who: {domain: [example.com]}\n"
)
BAD = (
    f"{HEADER}kind: Socket\nmetadata:\n  name: db\nspec:\n  type: database\n"
    "  description: one\n  description: two\n  upstream:\n    type: postgres\n"
    f"---\n{HEADER}kind: Socket\nmetadata:\n  name: Bad_Name\nspec:\n  type: http\n"
    "---\nkey: [unclosed\n"
)
PARSERS = {"libyaml": yamlpos.Loader, "pure-python": yamlpos.PureLoader}


@pytest.fixture(params=sorted(PARSERS))
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every load in the test goes through one parser (the default one is libyaml's where
    PyYAML was built with it)."""
    monkeypatch.setattr(yamlpos, "Loader", PARSERS[request.param])
    return request.param


def test_the_default_parser_is_libyaml_where_installed() -> None:
    expected = "CSafeLoader" if hasattr(yaml, "CSafeLoader") else "SafeLoader"
    assert yamlpos.PARSER == expected
    assert issubclass(yamlpos.Loader, getattr(yaml, expected))
    assert issubclass(yamlpos.PureLoader, yaml.SafeLoader)


def test_both_parsers_read_the_same_objects_with_yaml_1_2_scalars(
    parser: str, tmp_path: Path
) -> None:
    (tmp_path / "all.yaml").write_text(GOOD)
    result = load([tmp_path])
    assert result.ok, result.diagnostics
    web = result.desired.sockets["web"]
    assert web.description == "the web app"
    assert web.labels == {"since": "2025-01-31", "window": "18:00"}  # strings, not a date/int
    assert web.policies == ("p",)
    assert web.source is not None and (web.source.line, web.source.column) == (1, 1)
    assert result.desired.policies["p"].source.line == 13


def test_both_parsers_report_the_same_problems_at_the_same_places(
    parser: str, tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    result = load([tmp_path])
    found = {(d.code, d.line, d.column) for d in result.diagnostics}
    assert ("duplicate-key", 8, 3) in found  # the second description
    assert ("yaml-syntax", 20, 1) in found  # the flow sequence is never closed: end of file
    assert ("schema", 9, 3) in found  # a database upstream without its username and password
    names = [d for d in result.diagnostics if d.code == "schema" and "Bad_Name" in d.message]
    assert [(d.line, d.column) for d in names] == [(15, 9)]
    assert not result.ok and not result.desired.sockets


@pytest.mark.parametrize(("value", "problem"), [
    ("1" + "0" * 5000, "an integer of 5,001 digits, over the limit of 4,300 digits"),
    ("!!int -1_" + "0" * 5000, "an integer of 5,001 digits, over the limit of 4,300 digits"),
    ("!!int abc", "not a valid !!int value"),
    ("!!float abc", "not a valid !!float value"),
    ("!!bool maybe", "not a valid !!bool value"),
    ("!!timestamp soon", "not a valid !!timestamp value"),
])
def test_a_scalar_its_constructor_refuses_is_an_error_at_the_scalar(
    parser: str, tmp_path: Path, value: str, problem: str
) -> None:
    """PyYAML's scalar constructors raise ValueError, KeyError or AttributeError (Python reads
    at most 4,300 decimal digits): found by probing with hostile YAML, they escaped the loader
    as an internal error. The value is never echoed: it may be a secret."""
    (tmp_path / "m.yaml").write_text(
        f"{HEADER}kind: Socket\nmetadata:\n  name: web\nspec:\n  type: http\n"
        f"  description: {value}\n"
    )
    result = load([tmp_path])
    assert [(d.code, d.line, d.column, d.message) for d in result.diagnostics] == [
        ("yaml-syntax", 7, 16, f"YAML syntax error: {problem}")
    ]


@pytest.mark.parametrize("leaf", ["1", "!!str 1"])  # built by _build, or by PyYAML's constructor
@pytest.mark.parametrize("levels", [400, 5000])
def test_a_document_nested_too_deeply_is_one_error_not_a_recursion_error(
    parser: str, tmp_path: Path, leaf: str, levels: int
) -> None:
    """A mapping 400 levels deep under spec.upstream parsed, then exhausted Python's stack in
    the schema check (an internal error); 5,000 levels exhausted the pure-Python composer's.
    Found by probing with hostile YAML."""
    (tmp_path / "m.yaml").write_text(
        f"{HEADER}kind: Socket\nmetadata:\n  name: web\nspec:\n  type: http\n"
        "  upstream: " + "{a: " * levels + leaf + "}" * levels + "\n"
    )
    result = load([tmp_path])
    [problem] = result.diagnostics
    assert problem.code == "yaml-syntax" and not result.desired.sockets
    if levels == 400:  # at the 101st level: spec.upstream's 98th mapping
        assert problem.message == "YAML syntax error: document nested more than 100 levels deep"
        assert (problem.line, problem.column) == (7, 13 + 4 * 98)
    else:  # libyaml stops at 1,000 flow levels itself; Python's composer recursed until now
        assert "nesting depth" in problem.message or "nested too deeply" in problem.message
