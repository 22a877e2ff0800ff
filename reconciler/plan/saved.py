"""Saved plans (`plan --out FILE`, `apply FILE`, `show FILE`), as Terraform's: apply exactly what
was shown.

A saved plan is the plan's JSON form (what `plan --format json` prints, so tools read it as
one) plus a `saved_plan` object. It holds no secret value and nothing computed from one: a fast
digest of a password beside its salt lets anyone holding the file test guesses offline (a word
list found `Summer2024!` in 0.2 s). `saved_plan` records the manifest paths and the options
that shape the plan (`options`, which `apply FILE` plans with again), where each secret comes
from (`env:NAME`, `file:PATH`), a keyed digest of the desired state with
every secret replaced by its origin, and a digest of the actual state it was computed against
(border0 holds only salted secret fingerprints, never values).

`apply FILE` plans with the saved options (as Terraform applies a plan with the options it was
made with), loads the manifests again (re-resolving secrets from their origins), refuses if the
desired digest changed (manifests edited), lists border0 again and refuses if the actual digest
changed (a stale plan), and then compares the secrets where they matter: the plan made now, with
the secrets as they are now, must equal the saved plan, or it is refused. A secret whose change
makes no difference to the plan (one the saved plan already updates) is applied with its
current value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import model
from reconciler.model import Actual, Desired
from reconciler.plan.types import Action, Change, Kind, Plan
from reconciler.secrets import SECRET_FIELDS, Fingerprint, Secret, walk

__all__ = [
    "KIND",
    "SavedPlan",
    "actual_fingerprint",
    "changed_files",
    "classify",
    "desired_fingerprint",
    "is_saved_plan",
    "is_stale",
    "manifest_paths",
    "plan_difference",
    "plan_matches",
    "read",
    "write",
]

KIND = "border0-reconciler/saved-plan"
#: "3": `options` records every option that shapes the plan. Still read: "2" (the instance and
#: the mass-delete guard only: `SavedPlan.options` is None) and "1" (the plan nested under
#: "plan", for one release). A newer format is refused, naming it.
FORMAT_VERSION = "3"
_OLDER_VERSIONS = ("2",)
_MAX_READ = 64 * 1024 * 1024
_TEXT_PLAN = re.compile(
    r"^(## border0-reconciler plan|Plan: \d+ to create|No changes\. border0 matches the manifests\.)",
    re.MULTILINE,
)
#: How every saved plan begins (`write` puts `saved_plan` and its `kind` first; format "1" put
#: `kind` first): a file that begins so is a saved plan even when the rest is cut off or
#: damaged, and gets that error, not a manifest's YAML error.
_SAVED_HEAD = re.compile(
    r'^\s*\{\s*(?:"saved_plan"\s*:\s*\{\s*)?"kind"\s*:\s*"' + re.escape(KIND) + '"'
)


@dataclass(frozen=True)
class SavedPlan:
    paths: tuple[str, ...]
    instance: str
    max_delete: int | None
    allow_mass_delete: bool
    salt: str
    desired_fingerprint: str
    actual_fingerprint: str
    plan: dict[str, Any]
    #: the working directory `plan` ran in: the plan's `source` paths are relative to it
    base: str | None = None
    #: manifest file (absolute) -> keyed digest of what it declares, to name what changed
    files: Mapping[str, str] | None = None
    #: the options that shaped the plan, by name (JSON values); None: an older plan's, which
    #: recorded only `instance`, `max_delete` and `allow_mass_delete`
    options: Mapping[str, Any] | None = None


def _canonical(value: Any) -> Any:
    """Plain data for the digest (json.dumps sorts the keys); a secret shows only its origin,
    never the value, nor a digest of it."""
    return walk(value, on_secret=lambda secret: {"secret-origin": secret.origin},
                on_leaf=_dataclass)


def _dataclass(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {
            name: _canonical(getattr(value, name))
            for name, f in sorted(value.__dataclass_fields__.items())
            if f.compare
        }
    return value


def desired_fingerprint(desired: Desired, salt: str) -> str:
    """A keyed digest of the desired state; secrets enter only by origin (`env:NAME`, ...):
    nothing in the file lets one test a password guess. Secrets are compared at apply time
    instead (the plan made then must be the plan saved)."""
    blob = json.dumps(_canonical(desired), sort_keys=True, default=str).encode()
    return "hmac-sha256:" + hmac.new(salt.encode(), blob, hashlib.sha256).hexdigest()


def _file_fingerprints(desired: Desired, salt: str) -> dict[str, str]:
    """A keyed digest per manifest file (absolute path) of the objects it declares, secrets by
    origin as in `desired_fingerprint`: what `apply FILE` names when the manifests changed."""
    by_file: dict[str, list[Any]] = {}
    for kind, specs in (("socket", desired.sockets), ("policy", desired.policies)):
        for name, spec in sorted(specs.items()):
            source = getattr(spec, "source", None)
            where = str(Path(source.file).resolve()) if source is not None else ""
            by_file.setdefault(where, []).append([kind, name, _canonical(spec)])
    return {
        where: hmac.new(salt.encode(), json.dumps(objects, sort_keys=True, default=str).encode(),
                        hashlib.sha256).hexdigest()
        for where, objects in by_file.items()
    }


def changed_files(saved: SavedPlan, desired: Desired) -> list[str]:
    """The manifest files whose objects differ from when `saved` was made (absolute paths;
    added and removed files too); empty when the saved plan does not know (an older one)."""
    if not saved.files:
        return []
    now = _file_fingerprints(desired, saved.salt)
    return sorted(f for f in set(now) | set(saved.files) if now.get(f) != saved.files.get(f))


def _secret_origins(desired: Desired) -> list[dict[str, str]]:
    out = []
    for name, spec in sorted(desired.sockets.items()):
        for field_name in SECRET_FIELDS:
            secret = spec.secret(field_name)
            if isinstance(secret, Secret):
                out.append({"object": f"socket/{name}", "field": field_name,
                            "origin": secret.origin})
    return out


def write(
    path: str | os.PathLike[str],
    *,
    plan: Plan,
    desired: Desired,
    actual_fingerprint: str,
    paths: list[str],
    max_delete: int | None,
    allow_mass_delete: bool,
    options: Mapping[str, Any] | None = None,
) -> None:
    """`options`: the options that shaped the plan, JSON values (`apply FILE` takes them back);
    `instance`, `max_delete` and `allow_mass_delete` are also kept where older releases read
    them."""
    salt = secrets.token_hex(16)
    saved = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        # As given: the plan's sources (file:line) are made from them, so apply, loading them
        # again from the same working directory (a CI job's checkout, wherever the runner
        # put it), makes the same plan; resolved, a relative path never matched its plan.
        "paths": [os.path.normpath(p) for p in paths],
        "instance": plan.instance,
        "max_delete": max_delete,
        "allow_mass_delete": allow_mass_delete,
        "options": {"instance": plan.instance, "max_delete": max_delete,
                    "allow_mass_delete": allow_mass_delete, **(options or {})},
        "secrets": _secret_origins(desired),
        "salt": salt,
        "desired_fingerprint": desired_fingerprint(desired, salt),
        "actual_fingerprint": actual_fingerprint,
        "base": os.getcwd(),
        "files": _file_fingerprints(desired, salt),
    }
    data = {"saved_plan": saved, **plan.to_json()}
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _load_json(path: Path) -> Any:
    try:
        if path.stat().st_size > _MAX_READ:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def classify(path: str | os.PathLike[str]) -> str | None:
    """"saved-plan", "rendering" (a plan's text, JSON or Markdown output) or None (neither)."""
    p = Path(path)
    try:
        if not p.is_file():
            return None
        with p.open("rb") as handle:
            head = handle.read(1024 * 1024).decode("utf-8", errors="replace")
    except OSError:
        return None
    if head.lstrip().startswith("{"):
        if _SAVED_HEAD.match(head):
            return "saved-plan"
        data = _load_json(p)
        if not isinstance(data, dict):
            return None
        saved = data.get("saved_plan")
        if data.get("kind") == KIND or (isinstance(saved, dict) and saved.get("kind") == KIND):
            return "saved-plan"
        return "rendering" if "format_version" in data and "changes" in data else None
    return "rendering" if _TEXT_PLAN.search(head) else None


def is_saved_plan(path: str | os.PathLike[str]) -> bool:
    """True for a file that is a saved plan (not a manifest file or directory)."""
    return classify(path) == "saved-plan"


def read(path: str | os.PathLike[str]) -> SavedPlan:
    """Parse a saved plan; ValueError with a one-line reason when it is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read saved plan {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the saved plan is damaged (not UTF-8 text); make it again "
                         "with plan --out") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: the saved plan is damaged or cut short (not valid JSON: "
                         f"{exc}); make it again with plan --out") from None
    if not isinstance(data, dict):
        data = {}
    saved: Any
    plan: Any
    if data.get("kind") == KIND and data.get("format_version") == "1":
        saved, plan = data, data.get("plan")  # the previous release's layout
    else:
        saved = data.get("saved_plan")
        plan = {k: v for k, v in data.items() if k != "saved_plan"}
        if not isinstance(saved, dict) or saved.get("kind") != KIND:
            raise ValueError(f"{path} is not a border0-reconciler saved plan")
        if saved.get("format_version") not in (FORMAT_VERSION, *_OLDER_VERSIONS):
            raise ValueError(_unsupported(path, saved.get("format_version")))
    try:
        return SavedPlan(
            paths=tuple(str(p) for p in saved["paths"]),
            instance=str(saved["instance"]),
            max_delete=saved.get("max_delete"),
            allow_mass_delete=bool(saved.get("allow_mass_delete")),
            salt=str(saved["salt"]),
            desired_fingerprint=str(saved["desired_fingerprint"]),
            actual_fingerprint=str(saved["actual_fingerprint"]),
            plan=_with_titles(dict(plan)),
            base=str(saved["base"]) if saved.get("base") else None,
            files=dict(saved["files"]) if isinstance(saved.get("files"), dict) else None,
            options=(dict(saved["options"]) if saved.get("format_version") == FORMAT_VERSION
                     else None),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: saved plan is incomplete ({exc})") from None


def _unsupported(path: str | os.PathLike[str], version: Any) -> str:
    """Why a saved plan of another format is refused, and what to do: a newer one needs the
    release that wrote it; any other is planned again."""
    newer = isinstance(version, str) and version.isdigit() and int(version) > int(FORMAT_VERSION)
    what = ("made by a newer border0-reconciler: apply it with that release, or plan again "
            "with this one (plan --out)") if newer else "plan again (plan --out)"
    return (f"{path}: saved plan format {version!r} is not supported (this release reads "
            f"{', '.join(repr(v) for v in ('1', *_OLDER_VERSIONS, FORMAT_VERSION))}): {what}")


#: The actual digest's prefix since it covers the connectors; one of an earlier release
#: ("sha256:", sockets and policies only) is compared as it was made (`is_stale`).
_ACTUAL_DIGEST = "sha256+connectors:"


def actual_fingerprint(actual: Actual, *, connectors: bool = True) -> str:
    """A digest of everything the planner looked at but secrets (a saved plan holds it, so no
    secret may enter it): the sockets, the policies and the connectors (their tokens as listed,
    never a value); a saved plan is stale when it changes. Secrets are compared at apply time,
    through the plan (`plan_matches`)."""
    sockets = []
    for name in sorted(actual.sockets):
        live = actual.sockets[name]
        fields = _jsonable_digest(model.live_socket_fields(live))
        sockets.append(
            [name, live.socket_id, live.socket_type, dict(live.tags), fields,
             sorted(live.policy_ids)]
        )
    policies = []
    for name in sorted(actual.policies):
        pol = actual.policies[name]
        own = pol.ownership
        policies.append(
            [name, pol.policy_id, _jsonable_digest(model.live_policy_fields(pol)),
             [own.managed, own.instance, own.prune]]
        )
    if not connectors:
        blob = json.dumps([sockets, policies], sort_keys=True, default=str).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()
    listed = [[name, _canonical(actual.connectors[name])] for name in sorted(actual.connectors)]
    blob = json.dumps([sockets, policies, listed], sort_keys=True, default=str).encode()
    return _ACTUAL_DIGEST + hashlib.sha256(blob).hexdigest()


def is_stale(saved: SavedPlan, actual: Actual) -> bool:
    """Has border0 changed since `saved` was made? A plan saved before the digest covered the
    connectors is compared without them."""
    recorded = saved.actual_fingerprint
    return actual_fingerprint(
        actual, connectors=recorded.startswith(_ACTUAL_DIGEST)) != recorded


def _jsonable_digest(value: Any) -> Any:
    if isinstance(value, Fingerprint):  # already in the tags: a salted scrypt, not the value
        return "fingerprint:" + value.text
    if isinstance(value, Mapping):
        return {str(k): _jsonable_digest(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable_digest(v) for v in value]
    return value


_SOURCE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<column>\d+)$")


def manifest_paths(saved: SavedPlan) -> tuple[tuple[str, ...], str]:
    """The saved manifest paths as this run reads them, and the folder they are relative to:
    as given when they exist here (a CI job's fresh checkout of the same repository, wherever
    the runner put it), else against the folder `plan` ran in (an apply from another folder)."""
    here = os.getcwd()
    if not saved.base or all(Path(p).exists() for p in saved.paths):
        return saved.paths, here
    return tuple(os.path.join(saved.base, p) for p in saved.paths), saved.base


def _rooted_sources(value: Any, root: str) -> Any:
    """The plan's JSON with every `source` (file:line:column) made relative to `root`, the
    folder its manifest paths were read from: the same plan compares equal whether it was made
    here, in another checkout, or from another folder."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "source" and isinstance(item, str) and (m := _SOURCE.match(item)):
                where = os.path.relpath(Path(root, m["file"]).resolve(), Path(root).resolve())
                item = f"{where}:{m['line']}:{m['column']}"
            out[key] = _rooted_sources(item, root)
        return out
    if isinstance(value, list):
        return [_rooted_sources(item, root) for item in value]
    return value


def _with_titles(plan_json: dict[str, Any]) -> dict[str, Any]:
    """A plan saved before changes carried their `title` gets it (`Change.title` words it), so
    `show` and the views read every saved plan the same way."""
    changes = plan_json.get("changes")
    if not isinstance(changes, list):
        return plan_json
    titled = []
    for c in changes:
        if isinstance(c, dict) and "title" not in c:
            c = {**c, "title": Change(Kind(c["kind"]), str(c["name"]), Action(c["action"]),
                                      socket=c.get("socket"), policy=c.get("policy")).title}
        titled.append(c)
    return {**plan_json, "changes": titled}


def _comparable(plan_json: Mapping[str, Any], root: str) -> dict[str, Any]:
    compared: dict[str, Any] = json.loads(
        json.dumps(_rooted_sources(dict(plan_json), root), default=str))
    return compared


def plan_difference(saved: SavedPlan, plan: Plan) -> list[str]:
    """The addresses (kind.name) of the changes that differ between `plan` (made now, with
    today's secrets, in this working directory) and the plan that was saved and reviewed;
    ["(the plan)"] when only something outside the changes differs; empty when they match."""
    now = _comparable(plan.to_json(), manifest_paths(saved)[1])
    then = _comparable(saved.plan, saved.base or os.getcwd())
    if now == then:
        return []

    def by_address(p: Mapping[str, Any]) -> dict[str, Any]:
        return {f"{c.get('kind')}.{c.get('name')}": c for c in p.get("changes") or []}

    a, b = by_address(now), by_address(then)
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return differ or ["(the plan)"]


def plan_matches(saved: SavedPlan, plan: Plan) -> bool:
    """Is `plan` (made now, with today's secrets) the plan that was saved and reviewed?"""
    return not plan_difference(saved, plan)
