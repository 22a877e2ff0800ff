"""The sockets a plan found in sync, each under a key of everything its comparison read, so
that the next plan skips comparing a socket of which nothing changed (issue 26: "no
per-socket work for unchanged objects beyond one comparison of a precomputed key"). It is the
controller's `observedGeneration`: a Kubernetes controller does not reconcile an object whose
generation it has seen; here border0 gives no generation, so the key is made of what was read.

A socket's key (`socket_key`) covers:
- its document (`SocketSpec.document`: its file's content digest and its index there) and
  the command's options that change a spec (`--labels authoritative`, `--allow-replace`);
- its secrets as resolved now, by an HMAC under the fingerprint key (never the values);
- border0's answer it was read from, every field of it but the contents of the policies it
  lists (`LiveSocket.answer_digest`; they are the policies' own), with the
  policies attached as joined from both sides, and whether the inventory names its id while
  its tags do not say it is managed (`planner._take_over`).
A socket whose links or typed upstream were read beside its answer (no `details` tag match,
a full refresh: `inventory.fetch_details` leaves it no answer digest) has no key: it is
compared every time.

What every socket's verdict shares (`context_key`: the instance, the policies as planned and
as listed, the connectors declared and listed) is one more key: when it differs, nothing is
skipped. A socket is recorded only when its comparison found nothing to do and nothing to say
(no change, conflict or warning); the same keys give the same verdict, so a skip changes
nothing in a plan but its cost.

The command line keeps the record in the state folder (`in-sync.cache`, a sealed file:
`sealed.py`; its first line names the reconciler's code, so an edited checkout starts over),
the daemon in memory. `BORDER0_RECONCILER_CACHE=off` turns the file off.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

import reconciler
from reconciler.model import Actual, Desired, LiveSocket, SocketSpec
from reconciler.sealed import code_stamp, read_sealed, write_sealed
from reconciler.secrets import Secret, keyed_digest

__all__ = ["IN_SYNC_FILE", "InSync", "context_key", "read_in_sync", "socket_key",
           "write_in_sync"]

#: The record's file, in the state folder (beside `manifests.cache`).
IN_SYNC_FILE = "in-sync.cache"
_PURPOSE = "sockets in sync"  # the record file's seal
_SECRETS_PURPOSE = "secrets of a socket in sync"  # a key's part: never the file's seal


@dataclass(frozen=True)
class InSync:
    """The sockets found in sync (name -> key) under one `context`. `InSync()`: none yet (a
    plan given it records what it finds)."""

    context: str = ""
    keys: Mapping[str, str] = field(default_factory=dict)

    def unchanged(self, context: str, keys: Mapping[str, str]) -> frozenset[str]:
        """The sockets whose key now is the one recorded, under the same context."""
        if not self.context or context != self.context:
            return frozenset()
        return frozenset(name for name, key in keys.items() if self.keys.get(name) == key)


def context_key(instance: str, desired: Desired, actual: Actual,
                policy_ids: Mapping[str, str | None] | None,
                suspended_policies: Collection[str], gone: Collection[str]) -> str:
    """What each socket's verdict reads beside its own key: the instance, the policies as this
    plan leaves them (live id, None when created or replaced; suspended; deleted; None: not
    managed), the org-wide ones, and the connectors declared and listed."""
    shared = {
        "instance": instance,
        "policy_ids": None if policy_ids is None else sorted(
            (name, pid or "") for name, pid in policy_ids.items()),
        "suspended": sorted(suspended_policies),
        "gone": sorted(gone),
        "listed_policies": sorted((p.name, p.policy_id, p.org_wide)
                                  for p in actual.policies.values()),
        "connectors": sorted(desired.connectors),
        "listed_connectors": sorted(actual.connectors),
    }
    return hashlib.sha256(orjson.dumps(shared)).hexdigest()[:32]


def socket_key(spec: SocketSpec, live: LiveSocket, inventory: Collection[str]) -> str | None:
    """The socket's key (module docstring), or None when it has none (compared every time)."""
    if live.answer_digest is None or spec.document is None:  # None: read beside its answer
        return None
    parts = [
        spec.document, f"{spec.labels_authoritative:d}{spec.allow_replace:d}",
        _secrets_key(spec), live.answer_digest, ",".join(live.policy_ids),
        ",".join(live.policy_names), f"{_repaired(live, inventory):d}",
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def _repaired(live: LiveSocket, inventory: Collection[str]) -> bool:
    """Whether the inventory makes it ours though its tags do not (`planner._take_over`): the
    inventory matters to no other socket (the first plan that records the inventory changes
    no key)."""
    return not live.ownership.managed and live.socket_id in inventory


def _secrets_key(spec: SocketSpec) -> str:
    """An HMAC of the socket's secrets as resolved (origin and value), under the fingerprint
    key: a secret changed in the environment or a file changes the key, and the key tells
    nothing of the value."""
    if not spec.secrets_by_field and not spec.upstream_split[1]:
        return ""  # most sockets: nothing to build
    secrets = spec.secrets()
    values = [[s.origin, s.value] if isinstance(s, Secret) else ["", str(s)] for s in secrets]
    return keyed_digest(_SECRETS_PURPOSE, orjson.dumps(values)).hex()


@functools.cache
def _head() -> str:
    """The record file's first line: this reconciler's version and code (a checkout edited
    since the record was made, or another install, starts over)."""
    return f"border0-reconciler in-sync 1 {reconciler.__version__} {code_stamp()}"


def read_in_sync(file: Path) -> InSync:
    """The record in `file`; `InSync()` when there is none this reconciler wrote."""
    body = read_sealed(file, _head(), _PURPOSE)
    try:
        data = orjson.loads(body) if body is not None else None
    except ValueError:  # orjson.JSONDecodeError
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("context"), str)
            and isinstance(data.get("keys"), dict)):
        return InSync()
    return InSync(data["context"], data["keys"])


def write_in_sync(file: Path, record: InSync) -> None:
    """Write `record` to `file` (sealed)."""
    write_sealed(file, _head(), _PURPOSE,
                 orjson.dumps({"context": record.context, "keys": record.keys}))
