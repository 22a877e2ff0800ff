"""A small stand-in for the Kubernetes API server's core/v1 Secrets, for the token-destination
tests.

No Kubernetes API server can run on these machines, so the tests run this instead: a real HTTP
server on 127.0.0.1 (lightkube talks to it through a kubeconfig, as to a cluster) implementing
GET, POST (create), PUT (replace) and DELETE of /api/v1/namespaces/{ns}/secrets/{name} the way
the API server does: every write bumps metadata.resourceVersion; a PUT with a stale one is 409
Conflict; a POST of an existing name is 409 AlreadyExists; `data` values must be base64 (the
API server decodes them into []byte and answers 400 otherwise); errors are `Status` objects.
`forbidden` names Secrets whose writes answer 403, as RBAC does for a Role without them.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from kube_api import FakeKubernetesAPI, status


class SecretsEndpoint(FakeKubernetesAPI):
    path = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/secrets(?:/(?P<name>[^/?]+))?")

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 0
        self.forbidden: set[str] = set()
        self.writes: list[tuple[str, str, str]] = []  # (method, namespace, name)
        self.lock = threading.Lock()
        super().__init__()

    def value(self, name: str, key: str = "token", ns: str = "border0") -> str | None:
        secret = self.secrets.get((ns, name))
        raw = (secret or {}).get("data", {}).get(key)
        return base64.b64decode(raw).decode() if raw else None

    def put_value(self, name: str, data: dict[str, str], ns: str = "border0") -> None:
        """A Secret written by someone else (kubectl), with these plain values."""
        with self.lock:
            self._store(ns, name, {"metadata": {"name": name}, "data": {
                k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})

    # --- the API ---------------------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        parsed = self.request(req, method)
        if parsed is None:
            return None
        ns, name, body = parsed
        if method in ("POST", "PUT"):
            name = name or body.get("metadata", {}).get("name")
            for value in (body.get("data") or {}).values():
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, TypeError):
                    return self.send(req, 400, status(400, "BadRequest", "illegal base64 data"))
        if method != "GET" and name in self.forbidden:
            return self.send(req, 403, status(
                403, "Forbidden", f'secrets "{name}" is forbidden: User cannot '
                f'{method.lower()} resource "secrets" in the namespace "{ns}"'))
        with self.lock:
            current = self.secrets.get((ns, name or ""))
            if method == "GET":
                if current is None:
                    return self.send(req, 404, status(404, "NotFound",
                                                        f'secrets "{name}" not found'))
                return self.send(req, 200, current)
            if method == "DELETE":
                if current is None:
                    return self.send(req, 404, status(404, "NotFound",
                                                        f'secrets "{name}" not found'))
                del self.secrets[(ns, name or "")]
                self.writes.append((method, ns, name or ""))
                return self.send(req, 200, status(200, "", ""))
            if method == "POST":
                if current is not None:
                    return self.send(req, 409, status(409, "AlreadyExists",
                                                        f'secrets "{name}" already exists'))
                self.writes.append((method, ns, name or ""))
                return self.send(req, 201, self._store(ns, name or "", body))
            if current is None:
                return self.send(req, 404, status(404, "NotFound", f'secrets "{name}" not found'))
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return self.send(req, 409, status(409, "Conflict", "the object has been "
                                                    "modified; please apply your changes to the "
                                                    "latest version and try again"))
            self.writes.append((method, ns, name or ""))
            return self.send(req, 200, self._store(ns, name or "", body))

    def _store(self, ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body = {**body, "apiVersion": "v1", "kind": "Secret", "type": body.get("type", "Opaque")}
        body["metadata"] = {**body.get("metadata", {}), "name": name, "namespace": ns,
                            "resourceVersion": str(self.version)}
        self.secrets[(ns, name)] = body
        return body
