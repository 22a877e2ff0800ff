"""What the test stand-ins for the Kubernetes API server share (kube_secrets_endpoint.py,
lease_endpoint.py): a real HTTP server on 127.0.0.1, a kubeconfig pointing at it, JSON answers
and `Status` errors as the API server writes them.

No Kubernetes API server can run on these machines, so the tests that need one run these
instead; lightkube talks to them through the kubeconfig, as to a cluster.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class FakeKubernetesAPI:
    """Serves `handle(request, method)` of a subclass for its `methods` (any other answers
    501, as http.server does); call `__init__` once the subclass's state is set."""

    methods: tuple[str, ...] = ("GET", "POST", "PUT", "DELETE")
    #: the resource's path, with the groups `ns` and `name` (absent in a collection's path)
    path: re.Pattern[str]

    def __init__(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        for method in self.methods:
            setattr(Handler, f"do_{method}",
                    lambda req, method=method: endpoint.handle(req, method))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError

    def request(self, req: BaseHTTPRequestHandler, method: str
                ) -> tuple[str, str | None, dict[str, Any]] | None:
        """(namespace, name, JSON body of a POST or PUT) of a request for `path`; None once a
        404 `Status` is sent for any other path."""
        match = self.path.match(req.path)
        if not match:
            self.send(req, 404, status(404, "NotFound", req.path))
            return None
        body: dict[str, Any] = {}
        if method in ("POST", "PUT"):
            body = json.loads(req.rfile.read(int(req.headers.get("Content-Length") or 0)) or b"{}")
        return match.group("ns"), match.group("name"), body

    def kubeconfig(self, path: Path, namespace: str = "border0") -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": {}}],
            "contexts": [{"name": "test", "context": {
                "cluster": "test", "user": "test", "namespace": namespace}}],
        }))
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def send(req: BaseHTTPRequestHandler, code: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        req.send_response(code)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(raw)))
        req.end_headers()
        req.wfile.write(raw)


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A `Status` object, as the API server answers an error."""
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure" if code >= 400 else
            "Success", "code": code, "reason": reason, "message": message}
