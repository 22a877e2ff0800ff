"""What the tests build and share: Socket and Policy documents, a folder writer, a small base set
(with one secret) and the options that resolve its secret; and `ours`, the tags border0 holds on
a socket this reconciler manages (written out here, not taken from the code under test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reconciler import model
from reconciler.reconcile import ReconcileOptions

__all__ = [
    "ENV", "SECRET", "base_docs", "opts", "ours", "policy_doc", "postgres_upstream", "socket_doc",
    "write",
]

SECRET = "s3cr3t-Value-that-must-never-show"


def socket_doc(name: str, type_: str = "http", **spec: Any) -> dict:
    meta: dict[str, Any] = {"name": name}
    for key in ("labels", "annotations"):
        if key in spec:
            meta[key] = spec.pop(key)
    return {"apiVersion": "border0-reconciler/v1", "kind": "Socket", "metadata": meta,
            "spec": {"type": type_, **spec}}


def postgres_upstream(hostname: str, port: int = 5432) -> dict:
    """A typed database upstream: postgres, user `app`, password from `{env: DB_PASSWORD}`."""
    return {"serviceType": "database", "databaseServiceConfiguration": {
        "databaseServiceType": "standard", "standardDatabaseServiceConfiguration": {
            "hostname": hostname, "port": port, "protocol": "postgres",
            "authenticationType": "username_and_password",
            "usernameAndPasswordAuthConfiguration": {
                "username": "app", "password": {"env": "DB_PASSWORD"}}}}}


def policy_doc(name: str, description: str = "", **meta: Any) -> dict:
    return {
        "apiVersion": "border0-reconciler/v1",
        "kind": "Policy",
        "metadata": {"name": name, **meta},
        "spec": {
            "description": description,
            "policyData": {"version": "v1", "action": ["http", "ssh"],
                           "condition": {"who": {"email": ["ops@example.com"]}}},
        },
    }


def write(folder: Path, docs: list[dict]) -> Path:
    """One file per document, named after it; files of documents no longer given are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{d['kind'].lower()}-{d['metadata']['name']}.yaml": d for d in docs}
    for old in folder.glob("*.yaml"):
        if old.name not in wanted:
            old.unlink()
    for name, doc in wanted.items():
        (folder / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def base_docs() -> list[dict]:
    return [
        policy_doc("ops", "ops team"),
        socket_doc("web", description="the web site", labels={"team": "web"},
                   policies=["ops"]),
        socket_doc("db", "database", description="the database",
                   upstream={"type": "postgres", "username": "app",
                             "password": {"env": "DB_PASSWORD"}},
                   policies=["ops"]),
        socket_doc("box", "ssh", description="a box"),
    ]


ENV = {"DB_PASSWORD": SECRET}


def opts(**kw: Any) -> ReconcileOptions:
    return ReconcileOptions(env=ENV, **kw)


def ours(instance: str = "default", prune: bool = True) -> dict[str, str]:
    """The ownership tags of a socket managed by `instance` (prune: false adds its tag)."""
    tags = {model.MANAGED_BY_TAG: model.MANAGED_BY_VALUE, model.INSTANCE_TAG: instance}
    if not prune:
        tags[model.PRUNE_TAG] = "false"
    return tags
