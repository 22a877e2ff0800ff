"""Just enough of GitHub Actions and GitLab CI to run our action.yml and GitLab component as
the runners do: `${{ }}` expressions (contexts, `==`, `!=`, `&&`, `||`, `!`, `always()`),
step outputs and paths, `$[[ inputs.x ]]` interpolation, bash -eo pipefail.

Not a CI runner: `actions/checkout` is the test's own working copy, the install step is the
test's virtualenv (tests/packaging/test_release.py installs the real wheel), and
`actions/upload-artifact` or GitLab's `artifacts:` hand the folder to the fake forge.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["evaluate", "interpolate", "run_action", "run_gitlab_job", "substitute"]

BIN = Path(sys.executable).parent
_TOKEN = re.compile(r"\s*(\|\||&&|==|!=|!|\(|\)|'(?:[^']|'')*'|[A-Za-z_][\w.-]*(?:\(\))?)")


def _lookup(path: str, context: Mapping[str, Any]) -> Any:
    value: Any = context
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """A GitHub Actions expression: `a || b` gives the first truthy value, `a && b` b when a is."""
    tokens = _TOKEN.findall(expression)
    assert "".join(tokens) == re.sub(r"\s+", "", expression), f"cannot read {expression!r}"
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def primary() -> Any:
        token = take()
        if token == "(":
            value = either()
            assert take() == ")"
            return value
        if token == "!":
            return not primary()
        if token.startswith("'"):
            return token[1:-1].replace("''", "'")
        if token == "always()":
            return True
        if token in ("true", "false"):
            return token == "true"
        if token == "null":
            return None
        return _lookup(token, context)

    def compare() -> Any:
        left = primary()
        while peek() in ("==", "!="):
            op, right = take(), primary()
            same = str(left if left is not None else "").lower() == \
                str(right if right is not None else "").lower()
            left = same if op == "==" else not same
        return left

    def both() -> Any:
        left = compare()
        while peek() == "&&":
            take()
            right = compare()
            left = right if left else left
        return left

    def either() -> Any:
        left = both()
        while peek() == "||":
            take()
            right = both()
            left = left if left else right
        return left

    value = either()
    assert position == len(tokens), f"cannot read {expression!r}"
    return value


def substitute(text: str, context: Mapping[str, Any]) -> str:
    """Every `${{ expression }}` in `text` replaced by its value (null: empty)."""
    def one(match: re.Match[str]) -> str:
        value = evaluate(match[1], context)
        return "" if value is None else str(value).lower() if isinstance(value, bool) \
            else str(value)
    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def interpolate(text: str, inputs: Mapping[str, str]) -> str:
    """GitLab's `$[[ inputs.name ]]` interpolation of a component's text."""
    return re.sub(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]", lambda m: inputs[m[1]], text)


def _bash(script: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**{k: v for k, v in os.environ.items()
               if not k.startswith(("BORDER0_", "GITHUB_", "CI_", "GITLAB_"))},
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=cwd, env=full, capture_output=True, text=True, timeout=180,
                          check=False)


def run_action(
    action: Mapping[str, Any],
    with_: Mapping[str, str],
    context: dict[str, Any],
    cwd: Path,
    env: Mapping[str, str],
    upload: Callable[[str, Path], None],
) -> list[tuple[str, subprocess.CompletedProcess[str] | None]]:
    """Run a composite action's steps as GitHub does (stopping at the first failure, then only
    `if: always()` steps); returns (step name, result) for each step run."""
    inputs = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    for name, value in with_.items():
        inputs[name] = substitute(str(value), context)
    context = {**context, "inputs": {k: substitute(str(v), context) for k, v in inputs.items()},
               "steps": {}}
    ran: list[tuple[str, subprocess.CompletedProcess[str] | None]] = []
    failed = False
    for index, step in enumerate(action["runs"]["steps"]):
        name = substitute(step.get("name", f"step {index}"), context)
        condition = step.get("if", "success()")
        wants = evaluate(condition.replace("success()", "(!failed)"),
                         {**context, "failed": failed})
        if not wants:
            continue
        if name.startswith("Install"):  # the test's virtualenv has this checkout installed
            ran.append((name, None))
            continue
        if "uses" in step:
            assert step["uses"].startswith("actions/upload-artifact@"), step["uses"]
            given = {k: substitute(str(v), context) for k, v in step["with"].items()}
            upload(given["name"], cwd / given["path"])
            ran.append((name, None))
            continue
        output = cwd.parent / f"github_output_{index}"
        output.write_text("")
        step_env = {k: substitute(str(v), context) for k, v in step.get("env", {}).items()}
        result = _bash(step["run"], cwd, {**env, **step_env, "GITHUB_OUTPUT": str(output)})
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if line)
        if "id" in step:
            context["steps"][step["id"]] = {"outputs": outputs}
        ran.append((name, result))
        failed = failed or result.returncode != 0
    return ran


def run_gitlab_job(
    job: Mapping[str, Any], cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """A job's `script` (its `variables` set; `before_script`, the pip install, is the test's
    virtualenv), as one bash -eo pipefail."""
    variables = {k: str(v) for k, v in job.get("variables", {}).items()}
    return _bash("\n".join(job["script"]), cwd, {**variables, **env})
