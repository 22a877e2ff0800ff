"""The last plan that found nothing to do, kept with a digest of everything it read, so that the
same plan on the same inputs is shown again without being made (issue 26: a no-op plan close
to its floor: the list requests, and the CPU to read the files and compare).

A plan is a function of what it reads: the manifests, the secrets they name, the command's
options, the reconciler's code, the inventory, and border0's listing. When a plan found nothing
to do (no change, conflict, deferral or block), the command line keeps (`PlanMemo`):

- `inputs`: a digest of the manifests' files (each path and the SHA-256 of its bytes), the
  options that shape a plan (and the schemas' digest: the command line's `options`), the
  reconciler's version and code (`sealed.code_stamp`), the inventory file, and an HMAC under
  the fingerprint key of the environment's value of every secret the manifests name
  (`{env: NAME}`: the names are kept, never a value);
- `listing`: `listing_key` of border0's listing: each socket's answer digest
  (`LiveSocket.answer_digest`, every field it was answered with) and the policies it lists,
  and every listed policy and connector as read;
- what the plan printed: its diagnostics and its JSON form (`Plan.to_json`).

The next `plan` compares `inputs` first (files hashed, not parsed); only when they are the same
does it list border0, and only when that listing's key is the same too is the plan shown from
the memo. Anything else and it plans as always, from the listing it took. A plan is kept only
when nothing beyond the listing went into it: no socket's links or typed upstream were read
(a full refresh, or a details tag that did not match), no connector declares tokens (their
destinations are read), and no secret comes from a file. The memo file is sealed like the
parse cache (`sealed.py`: a corrupt, old or foreign file is no memo), so a memo that says
"no changes" is one this reconciler wrote with this key.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

import reconciler
from reconciler.model import Actual, Desired
from reconciler.sealed import code_stamp, read_sealed, write_sealed
from reconciler.secrets import Secret, keyed_digest

__all__ = ["PLAN_MEMO_FILE", "PlanMemo", "env_secret_names", "inputs_key", "listing_key",
           "read_memo", "write_memo"]

#: The memo's file, in the state folder (beside `manifests.cache` and `in-sync.cache`).
PLAN_MEMO_FILE = "plan.memo"
_PURPOSE = "the last plan with nothing to do"  # the file's seal
_SECRETS_PURPOSE = "secrets a kept plan read"  # the inputs' HMAC of secret values


@dataclass(frozen=True)
class PlanMemo:
    """A plan that found nothing to do, and the digests of what it read (module docstring)."""

    inputs: str
    listing: str
    secret_names: tuple[str, ...]  # the environment variables its secrets came from
    diagnostics: tuple[str, ...]  # as the command printed them
    plan: Mapping[str, Any]  # `Plan.to_json()`


def inputs_key(files: Sequence[tuple[str, bytes]], options: Mapping[str, Any],
               inventory: bytes | None, env: Mapping[str, str],
               secret_names: Sequence[str]) -> str:
    """The digest of a plan's inputs but border0: `files` (path, SHA-256 of its content) in
    the order read, `options` (JSON values), the inventory file's digest, and the values `env`
    gives `secret_names` (by an HMAC: the digest tells nothing of them)."""
    h = hashlib.sha256()
    h.update(orjson.dumps([reconciler.__version__, code_stamp(), options,
                           sorted(secret_names)], option=orjson.OPT_SORT_KEYS))
    for path, digest in files:
        h.update(path.encode("utf-8", "surrogateescape") + b"\0" + digest)
    h.update(b"\0inventory\0" + (inventory or b""))
    values = [[name, env.get(name)] for name in sorted(secret_names)]
    h.update(keyed_digest(_SECRETS_PURPOSE, orjson.dumps(values)))
    return h.hexdigest()


def listing_key(actual: Actual) -> str | None:
    """The digest of what a plan read of border0's listing; None when a socket was read beside
    its answer (its links or typed upstream: `inventory.fetch_details`), which a listing does
    not show again."""
    h = hashlib.sha256()
    for name in sorted(actual.sockets):
        live = actual.sockets[name]
        if live.answer_digest is None:
            return None
        h.update("\x1f".join((name, live.answer_digest, ",".join(live.policy_ids),
                              ",".join(live.policy_names))).encode("utf-8") + b"\x1e")
    for group in (actual.policies, actual.connectors):
        h.update(orjson.dumps([dataclasses.asdict(group[name]) for name in sorted(group)],
                              option=orjson.OPT_SORT_KEYS, default=str))
    return h.hexdigest()


def env_secret_names(desired: Desired) -> tuple[str, ...] | None:
    """The environment variables the declared sockets' secrets came from; None when one came
    from a file (not kept: `inputs_key` reads no file but the manifests)."""
    names = set()
    for spec in desired.sockets.values():
        for secret in spec.secrets():
            origin = secret.origin if isinstance(secret, Secret) else ""
            if origin.startswith("env:"):
                names.add(origin[4:])
            elif origin.startswith("file:"):
                return None
    return tuple(sorted(names))


def _head() -> str:
    return f"border0-reconciler plan memo 1 {reconciler.__version__} {code_stamp()}"


def read_memo(file: Path) -> PlanMemo | None:
    """The memo in `file`; None when there is none this reconciler wrote with this key."""
    body = read_sealed(file, _head(), _PURPOSE)
    if body is None:
        return None
    try:
        data = orjson.loads(body)
        return PlanMemo(str(data["inputs"]), str(data["listing"]),
                        tuple(map(str, data["secret_names"])),
                        tuple(map(str, data["diagnostics"])), dict(data["plan"]))
    except (ValueError, TypeError, KeyError):
        return None


def write_memo(file: Path, memo: PlanMemo) -> None:
    """Write `memo` to `file` (sealed); a failure costs only the next plan's work."""
    write_sealed(file, _head(), _PURPOSE, orjson.dumps(dataclasses.asdict(memo)))
