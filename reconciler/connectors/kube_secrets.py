"""Connector tokens in Kubernetes Secrets (destination `kubernetesSecret`).

The writer (apply) creates or updates the Secret through the Kubernetes API (lightkube, the
optional extra `k8s`, as for leader election), keeping any other keys it holds; the chart's
connector agents mount it (`BORDER0_RECONCILER_SECRET_MOUNTS/<name>/<key>`) or, outside the
chart, read it through the API. The plan asks whether the Secret still holds the key: a lost
destination means a new token (plan/connectors.py `rotation_due`). With the value, the writer
records which token it is (the annotation `border0-reconciler/token-ids`, token_records.py),
in the same request. Errors name the Secret and the API's reason, never the value.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

from reconciler.connectors.token_records import Record, annotated, annotation_records

__all__ = [
    "MANAGED_BY",
    "SECRET_MOUNTS_ENV",
    "KubeSecretError",
    "kube_client",
    "mounted_secret",
    "read_secret",
    "read_secret_record",
    "write_secret",
]

log = logging.getLogger(__name__)

#: Where an agent pod mounts the token Secrets: `<this>/<secret name>/<key>` (the chart sets it).
SECRET_MOUNTS_ENV = "BORDER0_RECONCILER_SECRET_MOUNTS"
#: The label on a Secret the reconciler created.
MANAGED_BY = {"app.kubernetes.io/managed-by": "border0-reconciler"}


class KubeSecretError(Exception):
    """The Kubernetes API could not be reached or refused (the message names the Secret only)."""


def kube_client() -> Any:
    """A lightkube Client: in-cluster, or the kubeconfig of KUBECONFIG / ~/.kube/config."""
    try:
        from lightkube import Client, KubeConfig
    except ImportError:
        raise KubeSecretError(
            "a kubernetesSecret destination needs the Kubernetes client: "
            "pip install 'border0-reconciler[k8s]'") from None
    try:
        config = KubeConfig.from_env()
    except Exception as exc:  # noqa: BLE001 - lightkube's ConfigError, OSError, YAML errors
        raise KubeSecretError(f"no Kubernetes configuration found ({exc})") from None
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    return Client(config, trust_env=False)


def _failure(action: str, name: str, exc: Exception) -> KubeSecretError:
    status = getattr(exc, "status", None)
    reason = getattr(status, "message", None) or type(exc).__name__
    code = getattr(status, "code", None)
    return KubeSecretError(
        f"cannot {action} the Kubernetes Secret {name}: {f'{code} ' if code else ''}{reason}")


def _get(client: Any, name: str, namespace: str | None) -> Any:
    """The Secret, or None when it does not exist."""
    from lightkube import ApiError
    from lightkube.resources.core_v1 import Secret

    try:
        return client.get(Secret, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise _failure("read", name, exc) from None
    except Exception as exc:  # noqa: BLE001 - httpx transport errors
        raise _failure("read", name, exc) from None


def read_secret(name: str, key: str, namespace: str | None = None,
                client: Any = None) -> str | None:
    """The value under `key`, or None when the Secret or the key is gone (or empty)."""
    return read_secret_record(name, key, namespace, client)[0]


def read_secret_record(name: str, key: str, namespace: str | None = None,
                       client: Any = None) -> tuple[str | None, list[Record]]:
    """The value under `key` (None when the Secret or the key is gone, or empty), and the
    record of which token it is (token_records.py; [] when there is none)."""
    client = client or kube_client()
    secret = _get(client, name, namespace)
    raw = ((secret.data or {}).get(key) if secret is not None else None) or ""
    value = base64.b64decode(raw).decode("utf-8", "replace").strip() if raw else ""
    annotations = secret.metadata.annotations if secret is not None and secret.metadata else None
    return value or None, annotation_records(annotations, key)


def write_secret(name: str, key: str, value: str, namespace: str | None = None,
                 client: Any = None, record: Record | None = None) -> None:
    """Create the Secret, or set `key` in the existing one (other keys are kept); with
    `record`, which token the value is, in the same request (token_records.py)."""
    from lightkube import ApiError
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Secret

    client = client or kube_client()
    encoded = base64.b64encode(value.encode()).decode()
    for _ in range(3):  # a 409 Conflict: someone wrote in between; read again
        secret = _get(client, name, namespace)
        try:
            if secret is None:
                annotations = annotated(None, key, record) if record else None
                client.create(Secret(metadata=ObjectMeta(name=name, labels=dict(MANAGED_BY),
                                                         annotations=annotations),
                                     type="Opaque", data={key: encoded}), namespace=namespace)
            else:
                secret.data = {**(secret.data or {}), key: encoded}
                if record:
                    secret.metadata.annotations = annotated(
                        secret.metadata.annotations, key, record)
                client.replace(secret, namespace=namespace)
            return
        except ApiError as exc:
            if exc.status.code != 409:
                raise _failure("write", name, exc) from None
        except Exception as exc:  # noqa: BLE001 - httpx transport errors
            raise _failure("write", name, exc) from None
    raise KubeSecretError(f"cannot write the Kubernetes Secret {name}: it kept changing")


def mounted_secret(name: str, key: str) -> str | None:
    """The value of a Secret mounted in this pod (the chart's agents), or None."""
    root = os.environ.get(SECRET_MOUNTS_ENV)
    if not root:
        return None
    try:
        value = (Path(root) / name / key).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return value or None
