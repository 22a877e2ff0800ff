"""The CI examples, the GitHub Action, the GitLab component and the pre-commit hook, checked
against their providers' own schemas (vendored by check-jsonschema), and every action used
against a list verified by hand. tests/packaging/test_ci_step.py runs them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from actions_runner import interpolate
from helpers import cli
from pre_commit.clientlib import load_manifest
from tools import check_jsonschema

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "examples" / "ci" / "github-actions"
WORKFLOW = GITHUB / "border0.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab-ci.yml"
ACTION = ROOT / "action.yml"
COMPONENT = ROOT / "templates" / "border0-reconciler.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"

# Actions the examples and action.yml may use: published on the GitHub Marketplace at these
# major-version tags, checked against each action's own action.yml (the inputs listed are the
# ones it declares that we use). Add an action here only after checking it the same way.
# `<owner>/border0-reconciler` is this repository's action.yml.
KNOWN_ACTIONS: dict[str, dict[str, set[str]]] = {
    "actions/checkout": {"v4": {"fetch-depth", "ref", "path"}},
    "actions/upload-artifact": {"v4": {"name", "path", "retention-days", "if-no-files-found"}},
    "<owner>/border0-reconciler": {"v0.2.0": set(yaml.safe_load(ACTION.read_text())["inputs"])},
}


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in workflow:
        return workflow["runs"]["steps"]
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def check_schema(schema: str, *paths: Path) -> Any:
    return check_jsonschema(["--builtin-schema", schema, *map(str, paths)])


@pytest.fixture()
def config_repo(tmp_path: Path) -> Path:
    """A config repository with the example manifests under border0/."""
    import shutil

    for part in ("sockets", "policies"):
        shutil.copytree(ROOT / "examples" / part, tmp_path / "border0" / part)
    return tmp_path


# --- structure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "schema"),
    [([WORKFLOW], "vendor.github-workflows"), ([ACTION], "vendor.github-actions"),
     ([GITLAB], "vendor.gitlab-ci")],
    ids=["github-workflow", "github-action", "gitlab-ci"],
)
def test_matches_the_providers_schema(paths: list[Path], schema: str) -> None:
    result = check_schema(schema, *paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gitlab_component_matches_gitlab_ci_schema(tmp_path: Path) -> None:
    """A component is a spec document, then the jobs with `$[[ inputs.x ]]` in them."""
    spec_text, jobs_text = COMPONENT.read_text().split("\n---\n")
    spec = yaml.safe_load(spec_text)["spec"]["inputs"]
    jobs = tmp_path / "jobs.yml"
    jobs.write_text(interpolate(jobs_text, {k: str(v.get("default", "")) for k, v in spec.items()}))
    result = check_schema("vendor.gitlab-ci", jobs)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    assert check_schema("vendor.github-workflows", broken).returncode == 1


def test_the_examples_are_the_readme_snippets() -> None:
    from snippets import snippet

    assert WORKFLOW.read_text().split("\n", 1)[1] == snippet("ci-github")
    assert GITLAB.read_text().split("\n", 1)[1] == snippet("ci-gitlab")


@pytest.mark.parametrize("path", [WORKFLOW, ACTION], ids=lambda p: p.name)
def test_uses_only_known_published_actions(path: Path) -> None:
    used = [s for s in steps(load(path)) if "uses" in s]
    assert used
    for step in used:
        match = re.fullmatch(r"([\w.<>-]+/[\w.-]+)@(v\d+(?:\.\d+){0,2})", step["uses"])
        assert match, f"{step['uses']}: not owner/name@vN"
        action, version = match.groups()
        assert action in KNOWN_ACTIONS, f"{action} is not a verified action"
        assert version in KNOWN_ACTIONS[action], f"{action}@{version} is not a verified version"
        unknown = set(step.get("with", {})) - KNOWN_ACTIONS[action][version]
        assert not unknown, f"{action}@{version}: unknown inputs {unknown}"


def test_everything_pins_the_release() -> None:
    from reconciler import __version__

    tag = f"v{__version__}"
    assert f"@{tag}" in WORKFLOW.read_text() and f"@{tag}" in GITLAB.read_text()
    assert f"border0-reconciler=={__version__.rsplit('.', 1)[0]}.*" in COMPONENT.read_text()
    assert f"rev: {tag}" in HOOKS.read_text()


def test_workflow_permissions_are_the_least_needed() -> None:
    workflow = load(WORKFLOW)
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write",
                                       "actions": "read"}
    on = workflow.get("on", workflow.get(True))
    assert set(on) == {"pull_request", "push", "schedule"}
    assert workflow["concurrency"]["cancel-in-progress"] is False


# --- pre-commit ------------------------------------------------------------------------------


def test_pre_commit_hook_matches_pre_commit_schema() -> None:
    (hook,) = load_manifest(str(HOOKS))  # pre-commit's own schema check; raises if invalid
    assert hook["id"] == "border0-reconciler-validate"
    assert hook["language"] == "python"
    assert re.search(hook["files"], "border0/sockets.yaml")
    assert re.search(hook["files"], "border0/sockets.yml")
    assert not re.search(hook["files"], "README.md")
    # Whole folders: references between files are checked together.
    assert hook["pass_filenames"] is False
    # The entry is the console script the package installs.
    assert hook["entry"].split()[0] in load_pyproject_scripts()


def test_pre_commit_schema_check_can_fail(tmp_path: Path) -> None:
    from pre_commit.clientlib import InvalidManifestError

    broken = tmp_path / "hooks.yaml"
    broken.write_text(HOOKS.read_text().replace("pass_filenames: false", "pass_filenames: nope"))
    with pytest.raises(InvalidManifestError):
        load_manifest(str(broken))


def test_pre_commit_hook_command_validates(config_repo: Path) -> None:
    """The hook's command as pre-commit runs it: its console script (a pyproject script,
    test_pre_commit_hook_matches_pre_commit_schema) with the entry's and the hook's arguments,
    through the CLI's entry in this process."""
    (hook,) = load_manifest(str(HOOKS))
    script, *args = [*shlex.split(hook["entry"]), *hook["args"]]
    assert script in load_pyproject_scripts()
    code, out, err = cli(args, cwd=config_repo)
    assert code == 0, out + err
    (config_repo / "border0" / "policies" / "engineers.yaml").unlink()
    code, out, err = cli(args, cwd=config_repo)
    assert code == 1
    assert "engineers" in out + err


def load_pyproject_scripts() -> set[str]:
    import tomllib

    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
