"""The pull-request examples: GitHub workflows, GitLab CI, and the pre-commit hook.

The workflow files are checked against the CI providers' own schemas (vendored by
check-jsonschema), every action they use against a list verified by hand, and their plan and
apply steps are run for real: bash runs the step's script with the real CLI against the embedded
emulator (BORDER0_API=local), and the GitLab note script talks to a small local GitLab API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pre_commit.clientlib import load_manifest

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "examples" / "ci" / "github-actions"
PLAN_WORKFLOW = GITHUB / "border0-plan.yml"
APPLY_WORKFLOW = GITHUB / "border0-apply.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab-ci.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent

# Actions the examples may use: published on the GitHub Marketplace at these major-version tags,
# checked against each action's own action.yml (the inputs listed are the ones it declares
# that the examples use). Add an action here only after checking it the same way.
KNOWN_ACTIONS: dict[str, dict[str, set[str]]] = {
    "actions/checkout": {"v4": {"fetch-depth", "ref", "path"}},
    "actions/setup-python": {"v5": {"python-version", "cache"}},
    "actions/upload-artifact": {"v4": {"name", "path", "retention-days", "if-no-files-found"}},
    "actions/github-script": {"v7": {"script", "github-token"}},
    "marocchino/sticky-pull-request-comment": {"v2": {"header", "path", "message", "recreate"}},
}

SOCKET = """\
apiVersion: border0-reconciler/v1
kind: Socket
metadata:
  name: grafana
spec:
  type: http
  policies: [engineers]
  connector:
    host: grafana.monitoring.svc
    port: 3000
"""
POLICY = """\
apiVersion: border0-reconciler/v1
kind: Policy
metadata:
  name: engineers
spec:
  policyData:
    version: v1
    action: [http]
    condition:
      who:
        domain: [example.com]
"""


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def workflows() -> list[Path]:
    return sorted(GITHUB.glob("*.yml"))


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def step_named(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [s for s in steps(workflow) if s.get("name") == name]
    return found


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    return workflow.get("on", workflow.get(True))


@pytest.fixture()
def config_repo(tmp_path: Path) -> Path:
    """A config repository with two valid manifests under border0/."""
    (tmp_path / "border0").mkdir()
    (tmp_path / "border0" / "grafana.yaml").write_text(SOCKET)
    (tmp_path / "border0" / "engineers.yaml").write_text(POLICY)
    return tmp_path


def run_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a CI step's script as GitHub and GitLab do: bash -eo pipefail, CLI on PATH."""
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BORDER0_")},
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        **env,
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120, check=False,
    )


# --- structure -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*workflows(), GITLAB], ids=lambda p: p.name)
def test_parses_as_yaml(path: Path) -> None:
    assert isinstance(load(path), dict)


@pytest.mark.parametrize(
    ("paths", "schema"),
    [(workflows(), "vendor.github-workflows"), ([GITLAB], "vendor.gitlab-ci")],
    ids=["github-workflows", "gitlab-ci"],
)
def test_matches_the_providers_schema(paths: list[Path], schema: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, paths)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(PLAN_WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", str(broken)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1


@pytest.mark.parametrize("path", workflows(), ids=lambda p: p.name)
def test_uses_only_known_published_actions(path: Path) -> None:
    used = [s for s in steps(load(path)) if "uses" in s]
    assert used
    for step in used:
        match = re.fullmatch(r"([\w.-]+/[\w.-]+)@(v\d+(?:\.\d+){0,2})", step["uses"])
        assert match, f"{step['uses']}: not owner/name@vN"
        action, version = match.groups()
        assert action in KNOWN_ACTIONS, f"{action} is not a verified action"
        assert version in KNOWN_ACTIONS[action], f"{action}@{version} is not a verified version"
        unknown = set(step.get("with", {})) - KNOWN_ACTIONS[action][version]
        assert not unknown, f"{action}@{version}: unknown inputs {unknown}"


def test_plan_workflow_shape() -> None:
    workflow = load(PLAN_WORKFLOW)
    on = triggers(workflow)
    assert set(on) == {"pull_request"}
    assert "border0/**" in on["pull_request"]["paths"]
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    run = "\n".join(s.get("run", "") for s in steps(workflow))
    assert 'border0-reconciler validate "$MANIFESTS"' in run
    plan = step_named(workflow, "Plan")["run"]
    assert "--format markdown" in plan and "--detailed-exitcode" in plan
    comment = step_named(workflow, "Comment the plan (one comment, updated on every push)")
    assert comment["uses"].startswith("marocchino/sticky-pull-request-comment@")
    assert comment["with"] == {"header": "border0-plan", "path": "comment.md"}
    assert comment["if"].startswith("always()")


def test_apply_workflow_shape() -> None:
    workflow = load(APPLY_WORKFLOW)
    on = triggers(workflow)
    assert on["push"]["branches"] == ["main"]
    assert workflow["concurrency"] == {"group": "border0-apply", "cancel-in-progress": False}
    assert "--auto-approve" in step_named(workflow, "Apply")["run"]


def test_gitlab_shape() -> None:
    ci = load(GITLAB)
    assert ci["stages"] == ["validate", "plan", "apply"]
    plan_rules = ci["plan"]["rules"]
    assert plan_rules[0]["if"] == '$CI_PIPELINE_SOURCE == "merge_request_event"'
    assert "--detailed-exitcode" in ci["plan"]["script"][0]
    assert ci["plan"]["artifacts"]["when"] == "always"
    assert ci["apply"]["resource_group"] == "border0-apply"
    assert ci["apply"]["rules"] == [
        {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "changes": ["border0/**/*", ".gitlab-ci.yml"]}
    ]
    assert "--auto-approve" in ci["apply"]["script"][0]


# --- the steps, run for real -----------------------------------------------------------------


def github_plan(repo: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    workflow = load(PLAN_WORKFLOW)
    output = repo / "github_output"
    output.touch()
    env = {
        **workflow["env"],
        "BORDER0_API": "local",  # the embedded emulator instead of api.border0.com
        "HEAD_SHA": "0123456789abcdef",
        "GITHUB_OUTPUT": str(output),
    }
    return run_script(step_named(workflow, "Plan")["run"], repo, env), output


def test_github_plan_step_treats_changes_as_success(config_repo: Path) -> None:
    result, output = github_plan(config_repo)
    assert result.returncode == 0, result.stderr
    assert "Changes planned." in result.stdout
    assert output.read_text() == "exitcode=2\n"
    comment = (config_repo / "comment.md").read_text()
    assert "`border0-reconciler plan border0` at 0123456" in comment
    assert "2 to create" in comment and "| create |" in comment
    assert (config_repo / "plan.md").read_text() in comment


def test_github_plan_step_fails_and_comments_on_a_broken_manifest(config_repo: Path) -> None:
    (config_repo / "border0" / "grafana.yaml").write_text(SOCKET.replace("http\n", "htp\n", 1))
    result, output = github_plan(config_repo)
    assert result.returncode == 1
    assert output.read_text() == "exitcode=1\n"
    comment = (config_repo / "comment.md").read_text()
    assert "**The plan failed** (exit code 1)" in comment
    assert "grafana.yaml" in comment  # the error names the file


def test_github_validate_step_comments_invalid_manifests(config_repo: Path) -> None:
    (config_repo / "border0" / "grafana.yaml").write_text(SOCKET.replace("port: 3000", "port: 0"))
    workflow = load(PLAN_WORKFLOW)
    env = {**workflow["env"], "HEAD_SHA": "fedcba9876543210"}
    result = run_script(step_named(workflow, "Validate")["run"], config_repo, env)
    assert result.returncode == 1
    assert "grafana.yaml" in result.stdout  # the log shows the errors too
    comment = (config_repo / "comment.md").read_text()
    assert "`border0-reconciler validate border0` at fedcba9" in comment
    assert "**The manifests are not valid:**" in comment and "grafana.yaml:" in comment


def test_github_plan_comment_is_cut_to_fit(config_repo: Path) -> None:
    """GitHub refuses comments over 65536 characters: a huge plan is cut, the artifact keeps it."""
    for n in range(400):
        text = SOCKET.replace("name: grafana", f"name: app-{n:03d}-with-a-rather-long-name")
        (config_repo / "border0" / f"app-{n:03d}.yaml").write_text(text)
    result, output = github_plan(config_repo)
    assert result.returncode == 0, result.stderr
    assert output.read_text() == "exitcode=2\n"
    plan = (config_repo / "plan.md").read_text()
    comment = (config_repo / "comment.md").read_text()
    assert len(plan.encode()) > 60000  # over the workflow's cut (the renderer's own cap is 65,536)
    assert len(comment.encode()) < 65536
    assert comment.endswith("... cut: the full plan is in the border0-plan artifact.\n")


def test_github_apply_step_then_plan_has_no_changes(config_repo: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    workflow = load(APPLY_WORKFLOW)
    env = {**workflow["env"], "BORDER0_API": "local", "GITHUB_STEP_SUMMARY": str(summary)}
    result = run_script(step_named(workflow, "Apply")["run"], config_repo, env)
    assert result.returncode == 0, result.stderr
    assert "2 to create" in summary.read_text()
    # Same emulator state file (.border0-reconciler/local.db beside the manifests): nothing left.
    result, output = github_plan(config_repo)
    assert result.returncode == 0, result.stderr
    assert output.read_text() == "exitcode=0\n"
    assert "No changes." in result.stdout


class FakeGitLab(BaseHTTPRequestHandler):
    """Merge request notes of one merge request, as the GitLab v4 API serves them."""

    notes: ClassVar[list[dict[str, Any]]] = []
    tokens: ClassVar[list[str]] = []

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        self.tokens.append(self.headers["PRIVATE-TOKEN"])
        assert self.path.startswith("/api/v4/projects/7/merge_requests/3/notes?")
        page = int(re.search(r"page=(\d+)", self.path.split("?")[1].replace("per_page", ""))[1])
        self._reply(200, self.notes[(page - 1) * 100: page * 100])

    def do_POST(self) -> None:
        note = {"id": 1000 + len(self.notes), "body": self._body()["body"]}
        self.notes.append(note)
        self._reply(201, note)

    def do_PUT(self) -> None:
        note_id = int(self.path.rsplit("/", 1)[1])
        (note,) = [n for n in self.notes if n["id"] == note_id]
        note["body"] = self._body()["body"]
        self._reply(200, note)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def gitlab_api() -> Iterator[str]:
    FakeGitLab.notes = [{"id": i, "body": f"a reviewer's note {i}"} for i in range(150)]
    FakeGitLab.tokens = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitLab)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    server.shutdown()
    server.server_close()


def gitlab_plan(repo: Path, api: str) -> subprocess.CompletedProcess[str]:
    ci = load(GITLAB)
    env = {
        **ci["variables"],
        "BORDER0_API": "local",
        "CI_API_V4_URL": api,
        "CI_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_IID": "3",
        "CI_COMMIT_SHORT_SHA": "abc1234",
        "GITLAB_NOTE_TOKEN": "note-token",
    }
    return run_script("\n".join(ci["plan"]["script"]), repo, env)


def test_gitlab_plan_keeps_one_note_updated(config_repo: Path, gitlab_api: str) -> None:
    result = gitlab_plan(config_repo, gitlab_api)
    assert result.returncode == 0, result.stderr
    assert "Changes planned." in result.stdout
    ours = [n for n in FakeGitLab.notes if "<!-- border0-reconciler-plan -->" in n["body"]]
    assert len(ours) == 1 and "2 to create" in ours[0]["body"]
    # A second push with a changed manifest: the same note is edited, none is added.
    (config_repo / "border0" / "engineers.yaml").unlink()
    (config_repo / "border0" / "grafana.yaml").write_text(
        SOCKET.replace("  policies: [engineers]\n", "")
    )
    result = gitlab_plan(config_repo, gitlab_api)
    assert result.returncode == 0, result.stderr
    ours = [n for n in FakeGitLab.notes if "<!-- border0-reconciler-plan -->" in n["body"]]
    assert len(ours) == 1
    assert "1 to create" in ours[0]["body"]
    assert len(FakeGitLab.notes) == 151
    assert set(FakeGitLab.tokens) == {"note-token"}


def test_gitlab_plan_failure_fails_the_job_and_says_why(
    config_repo: Path, gitlab_api: str
) -> None:
    (config_repo / "border0" / "engineers.yaml").unlink()  # grafana names a missing policy
    result = gitlab_plan(config_repo, gitlab_api)
    assert result.returncode == 1
    (ours,) = [n for n in FakeGitLab.notes if "<!-- border0-reconciler-plan -->" in n["body"]]
    assert "**The plan failed** (exit code 1)" in ours["body"]
    assert "engineers" in ours["body"]


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
    (hook,) = load_manifest(str(HOOKS))
    command = " ".join([hook["entry"], *hook["args"]])
    assert run_script(command, config_repo, {}).returncode == 0
    (config_repo / "border0" / "engineers.yaml").unlink()
    failed = run_script(command, config_repo, {})
    assert failed.returncode == 1
    assert "engineers" in failed.stdout + failed.stderr


def load_pyproject_scripts() -> set[str]:
    import tomllib

    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
