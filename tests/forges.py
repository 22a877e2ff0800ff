"""Local stand-ins for the parts of the GitHub and GitLab REST APIs the CI step and the daemon's
commit statuses use, on 127.0.0.1, recording what they were sent.

GitHub (docs.github.com/rest): issue comments (list/create/update), commits/{sha}/pulls,
actions/artifacts?name= with archive downloads that redirect to a blob URL (as GitHub's do, to
another host), statuses. GitLab (docs.gitlab.com/api): merge request notes,
repository/commits/{sha}/merge_requests, merge request pipelines, pipeline jobs, a job's
artifact file, statuses. Each answers 401 without the token it was given. Lists are paged as the
forges page them: `page`, `per_page` (default 30 on GitHub, 20 on GitLab), newest first where
the forge says so (GitLab's pipelines and jobs).
"""

from __future__ import annotations

import io
import json
import re
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeForge", "serve_forge"]


@dataclass
class FakeForge:
    kind: str  # "github" or "gitlab"
    token: str
    url: str = ""  # the API root: .../repos/acme/config or .../api/v4/projects/7
    comments: list[dict[str, Any]] = field(default_factory=list)  # on request 3 / !3
    merged: dict[str, tuple[int, str]] = field(default_factory=dict)  # commit -> (pr, head)
    artifacts: dict[str, dict[str, bytes]] = field(default_factory=dict)  # name -> files
    statuses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    #: GitLab: the other successful jobs of each pipeline, all created after its border0-plan
    #: job (a later stage's), so listed before it.
    later_jobs: int = 0

    def upload(self, name: str, folder: Path) -> None:
        """What actions/upload-artifact or GitLab's `artifacts:` keep of a job."""
        self.artifacts[name] = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}

    def ours(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if "<!-- border0-reconciler-plan -->" in c["body"]]


class _Handler(BaseHTTPRequestHandler):
    forge: FakeForge
    prefix: str

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.path.startswith("/blob/"):  # a signed URL: no token, and none must be sent
            return "Authorization" not in self.headers
        if self.forge.kind == "github":
            return self.headers.get("Authorization") == f"Bearer {self.forge.token}"
        return self.headers.get("PRIVATE-TOKEN") == self.forge.token

    def _handle(self, method: str) -> None:
        forge = self.forge
        forge.requests.append(f"{method} {self.path}")
        if not self._authorized():
            self._reply(401, {"message": "Bad credentials"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        parts = urlsplit(self.path)
        path, query = parts.path.removeprefix(self.prefix), parse_qs(parts.query)
        comments = "/issues/3/comments" if forge.kind == "github" else "/merge_requests/3/notes"
        if method == "GET" and path == comments:
            self._reply(200, self._page(forge.comments, query))
        elif method == "POST" and path == comments:
            comment = {"id": 5000 + len(forge.comments), "body": body["body"]}
            forge.comments.append(comment)
            self._reply(201, comment)
        elif method in ("PATCH", "PUT") and (m := re.fullmatch(
                r"/issues/comments/(\d+)|/merge_requests/3/notes/(\d+)", path)):
            (comment,) = [c for c in forge.comments if c["id"] == int(m[1] or m[2])]
            comment["body"] = body["body"]
            self._reply(200, comment)
        elif method == "POST" and (m := re.fullmatch(r"/statuses/(\w+)", path)):
            forge.statuses.append((m[1], body))
            self._reply(201, body)
        elif forge.kind == "github":
            self._github(method, path, query)
        else:
            self._gitlab(method, path, query)

    def _page(self, items: list[Any], query: dict[str, list[str]]) -> list[Any]:
        """One page of `items`, as `page` and `per_page` (the forge's default) ask."""
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["30" if self.forge.kind == "github" else "20"])[0])
        return items[(page - 1) * per_page: page * per_page]

    def _github(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        forge = self.forge
        if m := re.fullmatch(r"/commits/(\w+)/pulls", path):
            pr = forge.merged.get(m[1])
            self._reply(200, [] if pr is None else [
                {"number": pr[0], "merged_at": "2026-12-04T12:00:00Z", "head": {"sha": pr[1]}}])
        elif path == "/actions/artifacts":
            name = query["name"][0]
            found = [{"id": n, "name": name, "expired": False, "created_at": "2026-12-04",
                      "archive_download_url": f"{forge.url}/actions/artifacts/{n}/zip"}
                     for n, key in enumerate(forge.artifacts) if key == name]
            self._reply(200, {"total_count": len(found), "artifacts": self._page(found, query)})
        elif m := re.fullmatch(r"/actions/artifacts/(\d+)/zip", path):
            self.send_response(302)  # GitHub redirects to a signed blob URL elsewhere
            self.send_header("Location", f"http://localhost:{self.server.server_address[1]}"
                                         f"/blob/{m[1]}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif (m := re.fullmatch(r"/blob/(\d+)", self.path)) and method == "GET":
            files = list(forge.artifacts.values())[int(m[1])]
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as zf:
                for name, data in files.items():
                    zf.writestr(name, data)
            self._reply(200, buffer.getvalue(), "application/zip")
        else:
            self._reply(404, {"message": "Not Found"})

    def _gitlab(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        forge = self.forge
        if m := re.fullmatch(r"/repository/commits/(\w+)/merge_requests", path):
            mr = forge.merged.get(m[1])
            self._reply(200, [] if mr is None else [
                {"iid": mr[0], "state": "merged", "sha": mr[1]}])
        elif m := re.fullmatch(r"/merge_requests/(\d+)/pipelines", path):
            heads = [head for iid, head in forge.merged.values() if iid == int(m[1])]
            names = [n for n in forge.artifacts if n.removeprefix("border0-plan-") in heads]
            pipelines = [{"id": 900 + list(forge.artifacts).index(n),
                          "sha": n.removeprefix("border0-plan-")} for n in names]
            self._reply(200, self._page(pipelines[::-1], query))  # newest first
        elif m := re.fullmatch(r"/pipelines/(\d+)/jobs", path):
            # The plan job's id is its pipeline's (the artifact's index, + 900); the later jobs
            # have higher ids. GitLab lists them newest (highest id) first, `scope[]` filtered.
            jobs = [{"id": int(m[1]) * 1000 + n, "name": f"e2e-{n}", "status": "success"}
                    for n in range(forge.later_jobs, 0, -1)]
            jobs.append({"id": int(m[1]), "name": "border0-plan", "status": "success"})
            scope = query.get("scope[]")
            self._reply(200, self._page([j for j in jobs if not scope or j["status"] in scope],
                                        query))
        elif m := re.fullmatch(r"/jobs/(\d+)/artifacts/border0-plan/(.+)", path):
            files = list(forge.artifacts.values())[int(m[1]) - 900]
            self._reply(200, files[m[2]], "application/octet-stream")
        else:
            self._reply(404, {"message": "404 Not Found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


@contextmanager
def serve_forge(kind: str, token: str = "forge-token-8d2e") -> Iterator[FakeForge]:
    """A fake GitHub (`/repos/acme/config`) or GitLab (`/api/v4/projects/7`) on a free port."""
    prefix = "/repos/acme/config" if kind == "github" else "/api/v4/projects/7"
    forge = FakeForge(kind, token)
    handler = type("Handler", (_Handler,), {"forge": forge, "prefix": prefix})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    forge.url = f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()
