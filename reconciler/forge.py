"""GitHub and GitLab, as the CI step and the daemon use them: one comment per pull request, the
reviewed plan's artifact, commit statuses. The only code that speaks to a forge's REST API.

    python -m reconciler.forge comment FILE     create or update THE plan comment (found again
                                                by a hidden marker) on the pull/merge request,
                                                cut to MAX_COMMENT bytes (`fit_comment`)
    python -m reconciler.forge fetch-plan FILE  the plan saved when the merged request's head
                                                was planned; exit 3 when there is none
    python -m reconciler.forge status STATE SHA DESCRIPTION

Which forge, and where: `GITHUB_ACTIONS` (GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_SHA, the
token in BORDER0_CI_FORGE_TOKEN or GITHUB_TOKEN) or `GITLAB_CI` (CI_API_V4_URL, CI_PROJECT_ID,
CI_COMMIT_SHA, the token in BORDER0_CI_FORGE_TOKEN or GITLAB_TOKEN). The request is
BORDER0_CI_REQUEST (GitHub: the pull request number) or CI_MERGE_REQUEST_IID. API calls follow
github.com/docs/rest (issues/comments, commits/{sha}/pulls, actions/artifacts, statuses) and
docs.gitlab.com/api (notes, repository/commits/{sha}/merge_requests, pipelines, job artifacts,
statuses). A token never appears in a message.
"""

from __future__ import annotations

import io
import os
import re
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

__all__ = [
    "MARKER", "MAX_COMMENT", "Forge", "ForgeError", "NoReviewedPlan", "fit_comment",
    "forge_from_env", "forge_from_url", "status_state",
]

#: The hidden line that finds our one comment again among the reviewers'.
MARKER = "<!-- border0-reconciler-plan -->"
#: The artifact's names: the plan saved for one head commit.
ARTIFACT = "border0-plan"
PLAN_FILE = "plan.json"
_PAGE = 100
_MAX_PAGES = 50
#: A comment holds at most 65,536 characters (GitHub; GitLab notes 1,000,000): the plan comment
#: is cut at 60,000 bytes of UTF-8, which are never more characters than that.
MAX_COMMENT = 60000
CUT_NOTE = "\n\n... cut: the full plan is in the border0-plan artifact.\n"


class ForgeError(Exception):
    """The forge refused or could not be reached; the message names the call, never a token."""


class NoReviewedPlan(ForgeError):
    """No plan was saved for the merged request's head: nothing reviewed to apply."""


def fit_comment(body: str, limit: int = MAX_COMMENT) -> str:
    """`body` whole when its UTF-8 is at most `limit` bytes; else cut to `limit` bytes on a
    character boundary (never inside a multi-byte character), with CUT_NOTE after it."""
    data = body.encode("utf-8", "replace")
    if len(data) <= limit:
        return body
    # The bytes of a character cut in two are dropped: only at the end, as `data` is valid.
    return data[:limit].decode("utf-8", "ignore") + CUT_NOTE


def status_state(forge: str, ok: bool | None) -> str:
    """The commit status state a forge takes for success, failure, or None (running)."""
    if ok is None:
        return "pending" if forge == "github" else "running"
    if ok:
        return "success"
    return "failure" if forge == "github" else "failed"


@dataclass
class Forge:
    kind: str  # "github" or "gitlab"
    api: str  # https://api.github.com/repos/OWNER/REPO or https://host/api/v4/projects/ID
    token: str
    timeout: float = 30.0

    def headers(self) -> dict[str, str]:
        if self.kind == "github":
            return {"Authorization": f"Bearer {self.token}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28"}
        return {"PRIVATE-TOKEN": self.token}

    def _client(self) -> httpx.Client:
        # httpx drops the Authorization header on a redirect to another host (artifact blobs).
        return httpx.Client(headers=self.headers(), timeout=self.timeout, follow_redirects=True)

    def _call(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = client.request(method, self.api + path, **kwargs)
        except httpx.HTTPError as exc:
            raise ForgeError(f"{method} {path.split('?')[0]}: {type(exc).__name__}") from None
        if not response.is_success:
            raise ForgeError(f"{method} {path.split('?')[0]}: HTTP {response.status_code}")
        return response.json() if "json" in response.headers.get("content-type", "") \
            else response.content

    def _pages(self, client: httpx.Client, path: str, key: str | None = None) -> Iterator[Any]:
        sep = "&" if "?" in path else "?"
        for page in range(1, _MAX_PAGES + 1):
            batch = self._call(client, "GET", f"{path}{sep}per_page={_PAGE}&page={page}")
            items = batch[key] if key else batch
            yield from items
            if len(items) < _PAGE:
                return

    # --- the one plan comment ------------------------------------------------------------------

    def upsert_comment(self, request: str, body: str) -> str:
        """Create the comment on the pull/merge request, or edit the one holding MARKER; a
        body too long for a comment is cut (`fit_comment`). Returns "created" or "updated"."""
        if MARKER not in body:
            body = f"{MARKER}\n{body}"
        body = fit_comment(body)
        base = f"/issues/{request}/comments" if self.kind == "github" \
            else f"/merge_requests/{request}/notes"
        with self._client() as client:
            existing = next((c for c in self._pages(client, base)
                             if MARKER in (c.get("body") or "")), None)
            if existing is None:
                self._call(client, "POST", base, json={"body": body})
                return "created"
            path = f"/issues/comments/{existing['id']}" if self.kind == "github" \
                else f"{base}/{existing['id']}"
            self._call(client, "PATCH" if self.kind == "github" else "PUT", path,
                       json={"body": body})
            return "updated"

    # --- the reviewed plan -----------------------------------------------------------------------

    def fetch_plan(self, sha: str, job: str = "border0-plan") -> tuple[str, bytes]:
        """(the request's head commit, the plan file) saved when the request merged as `sha`
        was planned at its head; NoReviewedPlan when there is none."""
        with self._client() as client:
            head = self._merged_head(client, sha)
            data = (self._github_artifact(client, head) if self.kind == "github"
                    else self._gitlab_artifact(client, head, job))
        return head[1], data

    def _merged_head(self, client: httpx.Client, sha: str) -> tuple[str, str]:
        """(request number/iid, head sha) of the merged request that brought commit `sha`."""
        if self.kind == "github":
            found = [(str(p["number"]), p["head"]["sha"])
                     for p in self._call(client, "GET", f"/commits/{sha}/pulls")
                     if p.get("merged_at")]
        else:
            found = [(str(m["iid"]), m["sha"])
                     for m in self._call(client, "GET",
                                         f"/repository/commits/{sha}/merge_requests")
                     if m.get("state") == "merged"]
        if not found:
            raise NoReviewedPlan(f"commit {sha[:12]} was not merged from a pull/merge request, "
                                 "so no plan was reviewed for it")
        return found[0]

    def _github_artifact(self, client: httpx.Client, head: tuple[str, str]) -> bytes:
        name = f"{ARTIFACT}-{head[1]}"
        artifacts = [a for a in self._pages(client, f"/actions/artifacts?name={name}",
                                            "artifacts") if not a.get("expired")]
        if not artifacts:
            raise NoReviewedPlan(f"no artifact {name}: pull request #{head[0]} was not planned "
                                 f"at its head {head[1][:12]} (or the artifact expired)")
        newest = max(artifacts, key=lambda a: a.get("created_at") or "")
        archive = self._call(client, "GET", newest["archive_download_url"].removeprefix(self.api))
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            return zf.read(PLAN_FILE)

    def _gitlab_artifact(self, client: httpx.Client, head: tuple[str, str], job: str) -> bytes:
        # Both lists are paged (20 a page by default) and newest first; the jobs list has no
        # filter by name, so a pipeline's jobs are read page by page until the plan job.
        iid, sha = head
        for pipeline in self._pages(client, f"/merge_requests/{iid}/pipelines"):
            if pipeline.get("sha") != sha:
                continue
            for found in self._pages(client, f"/pipelines/{pipeline['id']}/jobs?scope[]=success"):
                if found.get("name") == job:
                    return self._call(client, "GET",
                                      f"/jobs/{found['id']}/artifacts/{ARTIFACT}/{PLAN_FILE}")
        raise NoReviewedPlan(f"no successful {job} job of merge request !{iid} at its head "
                             f"{sha[:12]}: it was not planned there")

    # --- commit statuses -------------------------------------------------------------------------

    def status_request(self, sha: str, ok: bool | None, description: str,
                       context: str = "border0-reconciler") -> tuple[str, dict[str, Any]]:
        """(URL, JSON body) that sets the commit status of `sha`: GitHub's POST
        /repos/{owner}/{repo}/statuses/{sha} (context), GitLab's POST
        /projects/{id}/statuses/{sha} (name). Descriptions are cut to GitHub's 140 characters."""
        body = {"state": status_state(self.kind, ok), "description": description[:140],
                "context" if self.kind == "github" else "name": context}
        return f"{self.api}/statuses/{sha}", body

    def set_status(self, sha: str, ok: bool | None, description: str,
                   context: str = "border0-reconciler") -> None:
        """The commit status of `sha`: success, failure, or running (ok None)."""
        url, body = self.status_request(sha, ok, description, context)
        with self._client() as client:
            self._call(client, "POST", url.removeprefix(self.api), json=body)


def forge_from_url(url: str) -> Forge:
    """`github+https://TOKEN@api.github.com/repos/OWNER/REPO` or
    `gitlab+https://TOKEN@gitlab.example.com/api/v4/projects/ID` (the daemon's `--notify`);
    ValueError with one sentence that never holds the token."""
    kind, _, rest = url.partition("+")
    parts = urlsplit(rest)
    token = unquote(parts.password or parts.username or "")
    host = parts.hostname or ""
    path = parts.path.rstrip("/")
    wants = r"/repos/[^/]+/[^/]+" if kind == "github" else r"/api/v4/projects/[^/]+"
    if kind not in ("github", "gitlab") or parts.scheme not in ("http", "https") or not host \
            or not re.search(wants + "$", path):
        example = ("github+https://TOKEN@api.github.com/repos/OWNER/REPO" if kind == "github"
                   else "gitlab+https://TOKEN@gitlab.example.com/api/v4/projects/ID")
        raise ValueError(f"--notify {kind}+{parts.scheme}://{host}...: use {example}")
    if not token:
        raise ValueError(f"--notify {kind}+{parts.scheme}://{host}...: the token goes before "
                         "the host (https://TOKEN@host/...)")
    port = f":{parts.port}" if parts.port else ""
    return Forge(kind, f"{parts.scheme}://{host}{port}{path}", token)


def forge_from_env(env: Mapping[str, str] = os.environ) -> Forge:
    """The forge of the CI job running now."""
    token = env.get("BORDER0_CI_FORGE_TOKEN", "")
    if env.get("GITHUB_ACTIONS") == "true":
        api = f"{env.get('GITHUB_API_URL', 'https://api.github.com')}/repos/" \
              f"{env['GITHUB_REPOSITORY']}"
        return Forge("github", api, token or env.get("GITHUB_TOKEN", ""))
    if env.get("GITLAB_CI") == "true":
        return Forge("gitlab", f"{env['CI_API_V4_URL']}/projects/{env['CI_PROJECT_ID']}",
                     token or env.get("GITLAB_TOKEN", ""))
    raise ForgeError("neither GitHub Actions (GITHUB_ACTIONS) nor GitLab CI (GITLAB_CI)")


def main(argv: list[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        forge = forge_from_env(env)
        if args[:1] == ["comment"] and len(args) == 2:
            request = env.get("BORDER0_CI_REQUEST") or env.get("CI_MERGE_REQUEST_IID", "")
            # Not strict: a stray byte (a tool's output in the failed plan's stderr) shows as
            # U+FFFD rather than losing the whole comment.
            with open(args[1], "rb") as handle:
                text = handle.read().decode("utf-8", "replace")
            done = forge.upsert_comment(request, text)
            print(f"plan comment {done} on {'#' if forge.kind == 'github' else '!'}{request}")
        elif args[:1] == ["fetch-plan"] and len(args) == 2:
            sha = env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA", "")
            head, data = forge.fetch_plan(sha, env.get("BORDER0_CI_PLAN_JOB", "border0-plan"))
            with open(args[1], "wb") as handle:
                handle.write(data)
            print(f"the plan reviewed at {head[:12]} (merged as {sha[:12]})")
        elif args[:1] == ["status"] and len(args) == 4:
            ok = {"success": True, "failure": False, "running": None}[args[1]]
            forge.set_status(args[2], ok, args[3])
        else:
            print("usage: python -m reconciler.forge comment FILE | fetch-plan FILE | "
                  "status success|failure|running SHA DESCRIPTION", file=sys.stderr)
            return 2
    except NoReviewedPlan as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ForgeError, KeyError, OSError) as exc:
        what = f"{exc} is not set" if isinstance(exc, KeyError) else str(exc)
        print(f"error: {what}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a CI step's error is one line, never a traceback
        print(f"error: {' '.join(args[:1])}: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
