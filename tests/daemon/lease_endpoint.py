"""A small stand-in for the Kubernetes API server's Lease endpoint, for the HA tests.

No Kubernetes API server can run on these machines, so the tests run this instead: a real HTTP
server on 127.0.0.1 implementing GET, POST (create) and PUT (replace) of
coordination.k8s.io/v1 Leases with the API server's optimistic concurrency: every write bumps
metadata.resourceVersion, a PUT carrying a stale one is 409 Conflict, a POST of an existing
name is 409 AlreadyExists, errors are `Status` objects. It records every accepted write
(when, by whom) and can refuse one holder's writes (`partition`) to play a network split.
"""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from kube_api import FakeKubernetesAPI, status


class LeaseEndpoint(FakeKubernetesAPI):
    path = re.compile(
        r"^/apis/coordination\.k8s\.io/v1/namespaces/(?P<ns>[^/]+)/leases(?:/(?P<name>[^/?]+))?"
    )
    methods = ("GET", "POST", "PUT")

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 0
        self.writes: list[tuple[float, str | None]] = []  # (wall time, holder) of every write
        self.partitioned: set[str] = set()
        self.conflicts = 0
        self.lock = threading.Lock()
        super().__init__()

    def holder(self, name: str = "border0-reconciler", ns: str = "border0") -> str | None:
        lease = self.leases.get((ns, name))
        return lease["spec"].get("holderIdentity") if lease else None

    # --- the API ---------------------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        parsed = self.request(req, method)
        if parsed is None:
            return None
        ns, name, body = parsed
        if method in ("POST", "PUT"):
            who = (body.get("spec") or {}).get("holderIdentity")
            if who in self.partitioned:
                return self.send(req, 503, status(503, "ServiceUnavailable", "partitioned"))
        with self.lock:
            if method == "GET":
                lease = self.leases.get((ns, name or ""))
                if lease is None:
                    return self.send(req, 404, status(404, "NotFound", f"{name} not found"))
                return self.send(req, 200, lease)
            if method == "POST":
                name = body["metadata"]["name"]
                if (ns, name) in self.leases:
                    return self.send(req, 409, status(409, "AlreadyExists", f"{name} exists"))
                return self.send(req, 201, self._store(ns, name, body))
            current = self.leases.get((ns, name or ""))
            if current is None:
                return self.send(req, 404, status(404, "NotFound", f"{name} not found"))
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                self.conflicts += 1
                return self.send(req, 409, status(409, "Conflict", "the object has been "
                                                    "modified; please apply your changes to the "
                                                    "latest version and try again"))
            return self.send(req, 200, self._store(ns, name or "", body))

    def _store(self, ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body = {**body, "apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}
        body["metadata"] = {**body["metadata"], "name": name, "namespace": ns,
                            "resourceVersion": str(self.version)}
        self.leases[(ns, name)] = body
        self.writes.append((time.time(), body["spec"].get("holderIdentity")))
        return body
