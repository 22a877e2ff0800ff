"""The reusable CI step, run as the README shows it: the GitHub workflow snippet's steps (our
action.yml) and the GitLab snippet's component jobs, with the real CLI against the emulator and
local stand-ins for the GitHub and GitLab APIs (tests/forges.py).

A pull request is planned and commented once, a second push updates that one comment, the merge
applies exactly the plan reviewed at the request's head; a plan made stale by a change in
border0 or in the manifests is refused with nothing applied, and so is a merge nobody planned.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from actions_runner import evaluate, interpolate, run_action, run_gitlab_job
from forges import FakeForge, serve_forge
from helpers import REPO
from snippets import snippet

from reconciler.forge import CUT_NOTE, MAX_COMMENT, Forge, fit_comment
from reconciler.forge import main as forge_main

SOCKET = """\
apiVersion: border0-reconciler/v1
kind: Socket
metadata:
  name: grafana
spec:
  type: http
  description: Dashboards
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
HEAD1, HEAD2, MERGE = "a1" * 20, "b2" * 20, "c3" * 20
#: The repository secret / CI/CD variable BORDER0_RECONCILER_FINGERPRINT_KEY docs/ci.md asks for.
FINGERPRINT_KEY = "ci-fingerprint-key-0b7c41e9d2a8"


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """The config repository's working copy (what actions/checkout leaves)."""
    work = tmp_path / "work" / "config"
    (work / "border0").mkdir(parents=True)
    (work / "border0" / "grafana.yaml").write_text(SOCKET)
    (work / "border0" / "engineers.yaml").write_text(POLICY)
    return work


def workflow() -> dict[str, Any]:
    return yaml.safe_load(snippet("ci-github"))


def github_event(forge: FakeForge, emulator: Any, repo: Path, event: str, sha: str,
                 secrets: dict[str, str] | None = None,
                 **pull: Any) -> list[tuple[str, subprocess.CompletedProcess[str] | None]]:
    """One run of the README's workflow for `event`, its steps as GitHub runs them; `secrets`:
    the repository's, by default the two docs/ci.md asks for."""
    flow = workflow()
    on = flow.get("on", flow.get(True))
    assert event in on
    (job,) = flow["jobs"].values()
    (ours,) = [s for s in job["steps"] if "border0-reconciler@" in s.get("uses", "")]
    assert ours["uses"] == "<owner>/border0-reconciler@v0.2.0"
    context = {
        "github": {"event_name": event, "sha": sha, "token": forge.token,
                   "action_path": str(REPO),
                   "event": {"pull_request": pull} if pull else {}},
        "secrets": {"BORDER0_TOKEN": emulator.token,
                    "BORDER0_RECONCILER_FINGERPRINT_KEY": FINGERPRINT_KEY}
        if secrets is None else secrets,
    }
    env = {"GITHUB_ACTIONS": "true", "GITHUB_API_URL": forge.url.split("/repos/")[0],
           "GITHUB_REPOSITORY": "acme/config", "GITHUB_SHA": sha,
           "GITHUB_ACTION_PATH": str(REPO), "RUNNER_TEMP": str(repo.parent),
           "GITHUB_STEP_SUMMARY": str(repo.parent / "summary.md"),
           "BORDER0_API": emulator.url}
    action = yaml.safe_load((REPO / "action.yml").read_text())
    return run_action(action, ours["with"], context, repo, env, forge.upload)


def step_result(ran: list[tuple[str, Any]]) -> subprocess.CompletedProcess[str]:
    (result,) = [r for name, r in ran if name.startswith("border0-reconciler ")]
    return result


def sockets(emulator: Any) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in emulator.client().list_sockets()}


@pytest.mark.slow
def test_pull_request_comment_then_the_merge_applies_the_reviewed_plan(emulator: Any,
                                                                        repo: Path) -> None:
    with serve_forge("github") as forge:
        forge.comments += [{"id": n, "body": f"a reviewer's comment {n}"} for n in range(120)]
        ran = github_event(forge, emulator, repo, "pull_request", HEAD1,
                           number=3, head={"sha": HEAD1})
        result = step_result(ran)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Changes planned." in result.stdout
        (comment,) = forge.ours()
        assert f"at {HEAD1[:7]}" in comment["body"] and "2 to create" in comment["body"]
        assert "Merging applies exactly this plan" in comment["body"]
        assert set(forge.artifacts) == {f"border0-plan-{HEAD1}"}
        assert sockets(emulator) == {}  # a plan writes nothing

        # A second push changes the description: the same comment is edited, none added.
        (repo / "border0" / "grafana.yaml").write_text(SOCKET.replace("Dashboards", "Grafana"))
        result = step_result(github_event(forge, emulator, repo, "pull_request", HEAD2,
                                          number=3, head={"sha": HEAD2}))
        assert result.returncode == 0, result.stderr
        (comment,) = forge.ours()
        assert f"at {HEAD2[:7]}" in comment["body"]
        assert len(forge.comments) == 121
        assert {f"border0-plan-{HEAD1}", f"border0-plan-{HEAD2}"} == set(forge.artifacts)

        # The merge: the plan reviewed at the head (HEAD2) is the one applied.
        forge.merged[MERGE] = (3, HEAD2)
        ran = github_event(forge, emulator, repo, "push", MERGE)
        result = step_result(ran)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"the plan reviewed at {HEAD2[:12]} (merged as {MERGE[:12]})" in result.stdout
        assert sockets(emulator)["grafana"]["description"] == "Grafana"
        assert "2 to create" in (repo.parent / "summary.md").read_text()
        assert f"GET /repos/acme/config/actions/artifacts?name=border0-plan-{HEAD2}" \
            f"&per_page=100&page=1" in forge.requests
        assert all("Authorization" not in r for r in forge.requests)  # the blob got no token

        # The daily schedule: border0 matches, so the drift check passes.
        result = step_result(github_event(forge, emulator, repo, "schedule", MERGE))
        assert result.returncode == 0, result.stderr
        assert "No drift" in result.stdout


@pytest.mark.slow
def test_the_merge_refuses_a_stale_plan_and_applies_nothing(emulator: Any, repo: Path) -> None:
    with serve_forge("github") as forge:
        result = step_result(github_event(forge, emulator, repo, "pull_request", HEAD1,
                                          number=3, head={"sha": HEAD1}))
        assert result.returncode == 0, result.stderr
        # Between review and merge, someone creates a socket in border0 by hand.
        emulator.client().create_socket({"name": "by-hand", "socket_type": "ssh"})
        forge.merged[MERGE] = (3, HEAD1)
        ran = github_event(forge, emulator, repo, "push", MERGE)
        result = step_result(ran)
        assert result.returncode == 1
        assert "the saved plan is stale: border0 changed since it was made" in result.stderr
        assert set(sockets(emulator)) == {"by-hand"}  # grafana was not created
        assert [name for name, _ in ran][-1].startswith("border0-reconciler")  # no upload


@pytest.mark.slow
def test_the_merge_refuses_manifests_that_differ_from_the_reviewed_head(emulator: Any,
                                                                        repo: Path) -> None:
    with serve_forge("github") as forge:
        step_result(github_event(forge, emulator, repo, "pull_request", HEAD1,
                                 number=3, head={"sha": HEAD1}))
        # main moved on: the merged tree is not the reviewed head's.
        (repo / "border0" / "grafana.yaml").write_text(SOCKET.replace("3000", "3001"))
        forge.merged[MERGE] = (3, HEAD1)
        result = step_result(github_event(forge, emulator, repo, "push", MERGE))
        assert result.returncode == 1
        assert "the manifests changed since the plan was saved" in result.stderr
        assert sockets(emulator) == {}


@pytest.mark.slow
def test_a_merge_nobody_planned_is_refused(emulator: Any, repo: Path) -> None:
    with serve_forge("github") as forge:
        result = step_result(github_event(forge, emulator, repo, "push", MERGE))
        assert result.returncode == 1
        assert "was not merged from a pull/merge request" in result.stderr
        assert "refusing to apply: no reviewed plan" in result.stderr
        forge.merged[MERGE] = (3, HEAD1)  # merged, but its head was never planned
        result = step_result(github_event(forge, emulator, repo, "push", MERGE))
        assert result.returncode == 1
        assert f"no artifact border0-plan-{HEAD1}" in result.stderr
        assert sockets(emulator) == {}


@pytest.mark.slow
def test_a_failed_plan_says_why_in_the_comment_and_keeps_no_artifact(emulator: Any,
                                                                     repo: Path) -> None:
    (repo / "border0" / "engineers.yaml").unlink()  # grafana names a missing policy
    with serve_forge("github") as forge:
        ran = github_event(forge, emulator, repo, "pull_request", HEAD1,
                           number=3, head={"sha": HEAD1})
        assert step_result(ran).returncode == 1
        (comment,) = forge.ours()
        assert "**The plan failed** (exit code 1)" in comment["body"]
        assert "engineers" in comment["body"]
        assert forge.artifacts == {}


@pytest.mark.slow
def test_a_huge_plan_is_cut_to_fit_one_comment(emulator: Any, repo: Path) -> None:
    """GitHub refuses comments over 65,536 characters: the comment (with its header and footer)
    is cut to fit; the artifact keeps the saved plan whole."""
    for n in range(400):
        text = SOCKET.replace("name: grafana", f"name: app-{n:03d}-with-a-rather-long-name")
        (repo / "border0" / f"app-{n:03d}.yaml").write_text(text)
    with serve_forge("github") as forge:
        result = step_result(github_event(forge, emulator, repo, "pull_request", HEAD1,
                                          number=3, head={"sha": HEAD1}))
        assert result.returncode == 0, result.stderr
        (comment,) = forge.ours()
        assert len((repo / "border0-plan" / "plan.md").read_bytes()) > 60000  # the step's cut
        assert len(comment["body"].encode()) < 65536
        assert comment["body"].endswith("... cut: the full plan is in the border0-plan "
                                        "artifact.\n")
        saved = forge.artifacts[f"border0-plan-{HEAD1}"]["plan.json"]
        assert saved.count(b"app-399-with-a-rather-long-name") >= 1


@pytest.mark.slow
def test_a_huge_plan_with_non_ascii_text_is_cut_between_two_characters(emulator: Any,
                                                                        repo: Path) -> None:
    """The cut lands inside a character here (checked: the first socket's description is
    padded so that a character of the last run of them before byte 60,000 lands on it, whatever
    the plan's layout): it used to be cut there, bytes wise, and the comment's upload died on
    the half character, taking the artifact with it."""
    team = repo / "border0" / "équipe-東京"
    team.mkdir()
    pad = 0
    for _ in range(2):
        for n in range(400):
            text = SOCKET.replace("name: grafana", f"name: app-{n:03d}-with-a-rather-long-name") \
                .replace("Dashboards", "ダッシュボード東京チーム" * 8 + ("!" * pad if n == 0 else ""))
            (team / f"app-{n:03d}-東京.yaml").write_text(text)
        with serve_forge("github") as forge:
            result = step_result(github_event(forge, emulator, repo, "pull_request", HEAD1,
                                              number=3, head={"sha": HEAD1}))
            assert result.returncode == 0, result.stderr
            whole = (repo / "border0-plan" / "comment.md").read_bytes()
            if whole[MAX_COMMENT] & 0xC0 != 0x80:  # byte 60,000 is not inside a character
                inside = max(i for i in range(MAX_COMMENT) if whole[i] & 0xC0 == 0x80)
                pad += MAX_COMMENT - inside  # moves that byte to 60,000
                continue
            (comment,) = forge.ours()
            assert len(comment["body"].encode()) < 65536
            assert comment["body"].endswith(CUT_NOTE)
            kept = comment["body"].removesuffix(CUT_NOTE).encode()
            assert whole.startswith(kept) and MAX_COMMENT - 4 < len(kept) <= MAX_COMMENT
            assert set(forge.artifacts) == {f"border0-plan-{HEAD1}"}
            break
    else:
        raise AssertionError("the padding did not put byte 60,000 inside a character")


def test_fit_comment_cuts_between_characters() -> None:
    assert fit_comment("é" * 10, 20) == "é" * 10
    assert fit_comment("é" * 10, 19) == "é" * 9 + CUT_NOTE
    assert fit_comment("a東京", 5) == "a東" + CUT_NOTE
    assert fit_comment("a東京", 6) == "a東" + CUT_NOTE


def test_the_comment_command_fails_in_one_line(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """An answer or a file not as expected is one line saying what, never a traceback; a file
    that is not UTF-8 is posted with U+FFFD for its stray bytes."""
    posted: list[str] = []

    def upsert(self: Any, request: str, body: str) -> str:
        posted.append(body)
        return "created"

    env = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/config",
           "BORDER0_CI_REQUEST": "3"}
    monkeypatch.setattr(Forge, "upsert_comment", upsert)
    comment = tmp_path / "comment.md"
    comment.write_bytes(b"plan \xe6\x9d\xb1\xe4\xba")  # a character cut in two
    assert forge_main(["comment", str(comment)], env) == 0
    assert posted == ["plan 東\ufffd"]

    def broken(self: Any, request: str, body: str) -> str:
        raise ValueError("Expecting value: line 1 column 1 (char 0)\nmore")

    monkeypatch.setattr(Forge, "upsert_comment", broken)
    capsys.readouterr()
    assert forge_main(["comment", str(comment)], env) == 1
    err = capsys.readouterr().err
    assert err == "error: comment: ValueError: Expecting value: line 1 column 1 (char 0)\n"


@pytest.mark.slow
def test_every_job_shares_the_fingerprint_key_so_a_secret_never_drifts(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each job on a fresh checkout, as on hosted runners: the key comes from the secret, so
    the password's fingerprint written on merge verifies in the next day's drift check and
    in the next pull request's plan."""
    monkeypatch.setenv("GRAFANA_PW", "s3cret-grafana-pw")
    protected = SOCKET.replace("  policies:", "  protected:\n    username: viewer\n"
                                              "    password: {env: GRAFANA_PW}\n  policies:")

    def checkout(job: str) -> Path:
        work = tmp_path / job / "config"
        (work / "border0").mkdir(parents=True)
        (work / "border0" / "grafana.yaml").write_text(protected)
        (work / "border0" / "engineers.yaml").write_text(POLICY)
        return work

    with serve_forge("github") as forge:
        result = step_result(github_event(forge, emulator, checkout("plan"), "pull_request",
                                          HEAD1, number=3, head={"sha": HEAD1}))
        assert result.returncode == 0, result.stderr
        forge.merged[MERGE] = (3, HEAD1)
        result = step_result(github_event(forge, emulator, checkout("apply"), "push", MERGE))
        assert result.returncode == 0, result.stderr
        assert "grafana" in sockets(emulator)
        result = step_result(github_event(forge, emulator, checkout("drift"), "schedule", MERGE))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "No drift" in result.stdout
        result = step_result(github_event(forge, emulator, checkout("next"), "pull_request",
                                          HEAD2, number=3, head={"sha": HEAD2}))
        assert result.returncode == 0, result.stderr
        assert "No changes." in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_no_fingerprint_key_is_refused_in_one_line(emulator: Any, repo: Path,
                                                   kind: str) -> None:
    """The secret not set up: every mode refuses before anything runs, rather than keying
    the secrets with a key thrown away with the job."""
    with serve_forge(kind) as forge:
        for event, sha in [("pull_request", HEAD1), ("push", MERGE), ("schedule", MERGE)]:
            if kind == "github":
                result = step_result(github_event(
                    forge, emulator, repo, event, sha, {"BORDER0_TOKEN": emulator.token},
                    **({"number": 3, "head": {"sha": HEAD1}} if event == "pull_request" else {})))
            else:
                job = {"pull_request": "border0-plan", "push": "border0-apply",
                       "schedule": "border0-drift"}[event]
                env = gitlab_env(forge, emulator, sha, CI_MERGE_REQUEST_IID="3")
                del env["BORDER0_RECONCILER_FINGERPRINT_KEY"]
                result = run_gitlab_job(gitlab_jobs()[job], repo, env)
            assert result.returncode == 1
            assert result.stderr.startswith("error: BORDER0_RECONCILER_FINGERPRINT_KEY is not "
                                            "set: every CI job needs the same fingerprint key")
            assert result.stderr.count("\n") == 1 and result.stdout == ""
        assert forge.comments == [] and forge.artifacts == {} and forge.requests == []
    assert sockets(emulator) == {}
    assert not (repo / ".border0-reconciler").exists()


@pytest.mark.slow
def test_the_drift_check_fails_when_border0_drifted(emulator: Any, repo: Path) -> None:
    with serve_forge("github") as forge:
        result = step_result(github_event(forge, emulator, repo, "schedule", MERGE))
        assert result.returncode == 1
        assert "drift: border0 differs from the manifests" in result.stderr
        assert "2 to create" in result.stdout
        assert forge.comments == [] and sockets(emulator) == {}


def test_the_action_mode_expression() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    expression = action["runs"]["steps"][1]["env"]["MODE"].strip()[3:-2]
    for event, want in [("pull_request", "plan"), ("push", "apply"), ("schedule", "drift"),
                        ("workflow_dispatch", "apply")]:
        context = {"inputs": {"mode": "auto"}, "github": {"event_name": event}}
        assert evaluate(expression, context) == want
    assert evaluate(expression, {"inputs": {"mode": "plan"}, "github": {"event_name": "push"}}) \
        == "plan"


# --- GitLab --------------------------------------------------------------------------------


def gitlab_jobs() -> dict[str, Any]:
    """The README's include: the component with its inputs over the spec's defaults."""
    (include,) = yaml.safe_load(snippet("ci-gitlab"))["include"]
    assert include["component"].endswith("/border0-reconciler/border0-reconciler@v0.2.0")
    spec_text, jobs_text = (REPO / "templates" / "border0-reconciler.yml").read_text().split(
        "\n---\n")
    spec = yaml.safe_load(spec_text)["spec"]["inputs"]
    inputs = {name: str(value.get("default", "")) for name, value in spec.items()}
    inputs.update(include.get("inputs", {}))
    jobs = yaml.safe_load(interpolate(jobs_text, inputs))
    base = jobs.pop(".border0-reconciler")
    assert base["before_script"] == ['python -m pip install --quiet "border0-reconciler==0.2.*"']
    return {name: {**base, **job} for name, job in jobs.items()}


def gitlab_env(forge: FakeForge, emulator: Any, sha: str, **more: str) -> dict[str, str]:
    return {"GITLAB_CI": "true", "CI_API_V4_URL": forge.url.split("/projects/")[0],
            "CI_PROJECT_ID": "7", "CI_COMMIT_SHA": sha, "GITLAB_TOKEN": forge.token,
            "BORDER0_API": emulator.url, "BORDER0_TOKEN": emulator.token,
            "BORDER0_RECONCILER_FINGERPRINT_KEY": FINGERPRINT_KEY, **more}


@pytest.mark.slow
def test_gitlab_merge_request_note_then_the_merge_applies_the_reviewed_plan(
    emulator: Any, repo: Path
) -> None:
    jobs = gitlab_jobs()
    assert jobs["border0-plan"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert jobs["border0-apply"]["resource_group"] == "border0-apply"
    with serve_forge("gitlab") as forge:
        forge.comments += [{"id": n, "body": f"a reviewer's note {n}"} for n in range(101)]
        for head in (HEAD1, HEAD2):
            result = run_gitlab_job(jobs["border0-plan"], repo,
                                    gitlab_env(forge, emulator, head, CI_MERGE_REQUEST_IID="3"))
            assert result.returncode == 0, result.stdout + result.stderr
            forge.upload(f"border0-plan-{head}",  # what `artifacts: paths:` keeps
                         repo / jobs["border0-plan"]["artifacts"]["paths"][0])
        (note,) = forge.ours()
        assert f"at {HEAD2[:7]}" in note["body"] and "2 to create" in note["body"]
        assert len(forge.comments) == 102

        forge.merged[MERGE] = (3, HEAD2)
        result = run_gitlab_job(jobs["border0-apply"], repo, gitlab_env(forge, emulator, MERGE))
        assert result.returncode == 0, result.stdout + result.stderr
        assert set(sockets(emulator)) == {"grafana"}

        # The manifests change without a merge request: nothing reviewed, nothing applied.
        (repo / "border0" / "grafana.yaml").write_text(SOCKET.replace("Dashboards", "Other"))
        result = run_gitlab_job(jobs["border0-apply"], repo,
                                gitlab_env(forge, emulator, "d4" * 20))
        assert result.returncode == 1 and "no reviewed plan" in result.stderr
        assert sockets(emulator)["grafana"]["description"] == "Dashboards"

        result = run_gitlab_job(jobs["border0-drift"], repo, gitlab_env(forge, emulator, MERGE))
        assert result.returncode == 1 and "drift" in result.stderr


@pytest.mark.slow
def test_gitlab_finds_the_plan_job_on_a_later_page(emulator: Any, repo: Path) -> None:
    """GitLab lists a pipeline's jobs a page at a time (20 unless asked), newest first: with
    150 jobs after border0-plan, it is on the second page of 100."""
    jobs = gitlab_jobs()
    with serve_forge("gitlab") as forge:
        forge.later_jobs = 150
        result = run_gitlab_job(jobs["border0-plan"], repo,
                                gitlab_env(forge, emulator, HEAD1, CI_MERGE_REQUEST_IID="3"))
        assert result.returncode == 0, result.stdout + result.stderr
        forge.upload(f"border0-plan-{HEAD1}", repo / "border0-plan")
        forge.merged[MERGE] = (3, HEAD1)
        result = run_gitlab_job(jobs["border0-apply"], repo, gitlab_env(forge, emulator, MERGE))
        assert result.returncode == 0, result.stdout + result.stderr
        assert set(sockets(emulator)) == {"grafana"}
        prefix = "GET /api/v4/projects/7"
        assert f"{prefix}/merge_requests/3/pipelines?per_page=100&page=1" in forge.requests
        assert f"{prefix}/pipelines/900/jobs?scope[]=success&per_page=100&page=2" \
            in forge.requests
