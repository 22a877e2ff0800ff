"""Manifests for what a border0 organization already holds (`import`), as YAML documents.

Each field is written through the model's one mapping: the comparable form of the live object
(`model.live_socket_fields`, `live_policy_fields`) placed at its manifest path
(`manifests.specs.SOCKET_MANIFEST_PATHS`, `POLICY_MANIFEST_PATHS`); empty values and defaults
are left out unless the schema requires them. border0 does not give secrets back, so each secret becomes
an `{env: NAME}` reference whose NAME the caller lists for the user to fill in.

Ownership follows the planner's rule: our own objects are written as they are, unmanaged ones
get the adopt annotation, objects of another instance are skipped and reported. Tokens are never
imported (border0 gives back neither a value nor a destination): the tokens of our own connector
that a manifest declaring none would revoke (its marker names them) are listed as left out.

No manifest is written that `validate` would refuse: the documents are checked together as
`validate` checks a folder (`loader.check_texts`), and an object whose manifest fails (a socket
border0 holds in a form no manifest describes, such as an rdp socket without a typed upstream)
is skipped and listed with the problems, as are names and types no manifest can hold. Those are
`ImportPlan.undescribed`: the import exits 1 when there are any.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler import model
from reconciler import upstream as typed
from reconciler.connector_model import (
    ConnectorKindSpec,
    LiveConnector,
    connector_fields,
    live_connector_fields,
)
from reconciler.diagnostics import Severity
from reconciler.manifests.loader import API_VERSION, check_texts
from reconciler.manifests.specs import (
    ADOPT_ANNOTATION,
    CONNECTOR_MANIFEST_PATHS,
    POLICY_MANIFEST_PATHS,
    SOCKET_MANIFEST_PATHS,
)
from reconciler.model import Actual, LivePolicy, LiveSocket, PolicySpec, SocketSpec
from reconciler.plan.connectors import undeclared_revocations
from reconciler.secrets import SECRET_FIELDS, SECRET_MANIFEST_PATHS, secret_fields_in

__all__ = ["HEADER", "ImportPlan", "plan_import", "to_yaml"]

HEADER = "# Imported from border0 by `border0-reconciler import`; review, then commit.\n"
#: Names safe as file names and accepted by the manifest schemas.
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,126}[a-z0-9])?$")
#: Fields the socket schema requires even at their default, by type (and `type` always).
#: Required secrets are written even when border0 hides whether they are set, as is the
#: password of a protected socket.
#: (A database's login: its username and password, not the optional client key.)
_REQUIRED = {"database": ("upstream_type", *(
    f for f in secret_fields_in("upstream") if SECRET_MANIFEST_PATHS[f][-1] != "key"))}


@dataclass
class ImportPlan:
    """What an import writes (relative path -> document), what it skips and why."""

    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    adopted: list[str] = field(default_factory=list)  # relative paths annotated adopt
    skipped: list[str] = field(default_factory=list)  # one line each, e.g. "socket x: ..."
    #: The lines of `skipped` for objects that are left out because no manifest can describe
    #: them as border0 holds them (not for ownership): the import is incomplete.
    undescribed: list[str] = field(default_factory=list)
    #: Of those, the objects this instance manages ("socket x"): applying the manifests
    #: without them would delete them.
    undescribed_own: list[str] = field(default_factory=list)
    env_names: list[str] = field(default_factory=list)
    #: Objects this instance manages that --select leaves out: `apply` of these manifests alone
    #: would prune them.
    unselected_own: list[str] = field(default_factory=list)
    #: The secret names of each document (relative path), to take back if it is dropped.
    env_by_document: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, line: str, *, undescribed: bool = False, own: str | None = None) -> None:
        """List a skipped object; `undescribed` when no manifest can describe it, `own`
        ("socket x") when this instance manages it."""
        self.skipped.append(line)
        if undescribed:
            self.undescribed.append(line)
            if own is not None:
                self.undescribed_own.append(own)


def plan_import(actual: Actual, instance: str, select: Sequence[str] = ()) -> ImportPlan:
    """The manifests for every selected object of `actual` this instance may manage."""
    result = ImportPlan()
    result.unselected_own = [
        f"{kind} {live.name}"
        for kind, objects in (("policy", actual.policies), ("socket", actual.sockets),
                              ("connector", actual.connectors))
        for live in sorted(objects.values(), key=lambda o: o.name)
        if live.ownership.owned_by(instance) and not _selected(live.name, select)
    ]
    for live_c in sorted(actual.connectors.values(), key=lambda c: c.name):
        if not _selected(live_c.name, select):
            continue
        if _skipped(result, "connector", live_c.name, live_c.ownership, instance):
            continue
        _add(result, f"connectors/{live_c.name}.yaml", _connector_document(live_c),
             not live_c.ownership.owned_by(instance))
        for token in dict.fromkeys(t.name for t, _ in undeclared_revocations(
                live_c, instance, ())):
            result.skip(f"token {token} of connector {live_c.name}: border0 never gives a "
                        "token's value or destination back, so no manifest can declare it; "
                        f"declare it in spec.tokens of connectors/{live_c.name}.yaml with its "
                        "destination, or applying revokes it", undescribed=True,
                        own=f"token {live_c.name}/{token}")
    policies = [p for p in actual.policies.values() if _selected(p.name, select)]
    for live in sorted(policies, key=lambda p: p.name):
        if _skipped(result, "policy", live.name, live.ownership, instance):
            continue
        _add(result, f"policies/{live.name}.yaml",
             _policy_document(live), not live.ownership.owned_by(instance))
    _drop_invalid(result)  # before the sockets: what they may name as declared here
    imported = {(d["kind"], d["metadata"]["name"]) for d in result.documents.values()}
    for live in sorted(actual.sockets.values(), key=lambda s: s.name):
        if not _selected(live.name, select):
            continue
        if _skipped(result, "socket", live.name, live.ownership, instance, live):
            continue
        rel = f"sockets/{live.name}.yaml"
        env_names = result.env_by_document[rel] = []
        own = live.ownership.owned_by(instance)
        _add(result, rel, _socket_document(live, imported, env_names, own), not own)
        result.env_names += env_names
    _drop_invalid(result)
    return result


def to_yaml(document: Mapping[str, Any]) -> str:
    """One manifest file's text: the header, then the document."""
    return HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


class _Dumper(yaml.SafeDumper):
    """Short lists of scalars and one-key mappings such as {env: NAME} on one line; quoted
    strings in double quotes, as the README writes them ("true", "::/0")."""

    def choose_scalar_style(self) -> Any:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> Any:
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> Any:
    flow = list(data) in (["env"], ["file"])
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)


# --- documents --------------------------------------------------------------------------------


def _socket_document(
    live: LiveSocket, imported: set[tuple[str, str]], env_names: list[str], own: bool,
) -> dict[str, Any]:
    """The Socket; policies and connectors it names that are not `imported` ((kind, name))
    go to externalPolicies and externalConnectors, which `validate` does not look for. Of a
    socket this instance `own`s, the labels are those it wrote: a tag set elsewhere (the
    portal's `border0_client_category`) stays elsewhere's, as the plan leaves it."""
    doc = _skeleton("Socket", live.name)
    fields = model.live_socket_fields(live)
    if own:
        written = model.written_label_keys(live.tags)
        fields["labels"] = {k: v for k, v in fields["labels"].items() if k in written}
    defaults = model.socket_fields(SocketSpec(name=live.name, type=live.type))
    is_typed = bool(fields["upstream_configuration"])
    # A login border0 says the socket has not (no username) is not asked for: filled in, it
    # would set one. A database manifest needs one, so `validate` refuses it: left out.
    required = {"type", *(() if is_typed else (
        f for f in _REQUIRED.get(live.type, ())
        if live.upstream_login is not False or f not in SECRET_FIELDS))}
    if live.protected:
        required.update(secret_fields_in("protected"))
    legacy = {"upstream_type", "upstream_http_hostname", *secret_fields_in("upstream")}
    for key, path in SOCKET_MANIFEST_PATHS.items():
        value = fields.get(key)  # confirm_delete: only where set
        if path is None or key not in fields or (is_typed and key in legacy):
            continue
        if key == "upstream_configuration":
            if is_typed:
                _put(doc, path, _typed_upstream(live, env_names))
            continue
        if key == "connectors" and value:
            external = [c for c in value if ("Connector", c) not in imported]
            if len(external) < len(value):
                _put(doc, path, [c for c in value if ("Connector", c) in imported])
            if external:
                doc["spec"]["externalConnectors"] = external
            continue
        if key in SECRET_FIELDS:
            if value is None and key not in required:
                continue
            name = _env_name(live.name, key)
            env_names.append(name)
            value = {"env": name}
        elif key not in required and _left_out(value, defaults.get(key)):
            continue
        _put(doc, path, value)
    attached = list(dict.fromkeys(live.policy_names))
    declared = [p for p in attached if ("Policy", p) in imported]
    external = [p for p in attached if ("Policy", p) not in imported]
    if declared:
        doc["spec"]["policies"] = declared
    if external:
        doc["spec"]["externalPolicies"] = external
    return doc


def _typed_upstream(live: LiveSocket, env_names: list[str]) -> dict[str, Any]:
    """The typed upstream in the manifest's camelCase; each secret border0 answered becomes an
    {env: NAME} to fill in (references, `from:...`, stay as written)."""
    config = typed.to_manifest(live.upstream_configuration or {})
    _, secrets = typed.strip_secrets(live.upstream_configuration or {})
    for dotted in sorted(secrets):
        *parents, leaf = [typed.camel(part) for part in dotted.split(".")]
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        name = _env_name(live.name, "_".join(dotted.split(".")[-2:]))
        env_names.append(name)
        node[leaf] = {"env": name}
    return config


def _connector_document(live: LiveConnector) -> dict[str, Any]:
    """A Connector: its description and built-in SSH flag; tokens are never imported."""
    doc = _skeleton("Connector", live.name)
    fields = live_connector_fields(live)
    defaults = connector_fields(ConnectorKindSpec(name=live.name))
    for key, path in CONNECTOR_MANIFEST_PATHS.items():
        if not _left_out(fields[key], defaults[key]):
            _put(doc, path, fields[key])
    return doc


def _policy_document(live: LivePolicy) -> dict[str, Any]:
    doc = _skeleton("Policy", live.name)
    fields = model.live_policy_fields(live)
    defaults = model.policy_fields(PolicySpec(name=live.name))
    for key, path in POLICY_MANIFEST_PATHS.items():
        if path is not None and key in fields and not _left_out(fields[key], defaults.get(key)):
            _put(doc, path, fields[key])
    return doc


def _left_out(value: Any, default: Any) -> bool:
    """Empty values, and values a manifest without them gets anyway, are not written; nor is
    `false` for a field a manifest leaves unmanaged by default (`recording`)."""
    return value in (None, "", {}, [], ()) or value == default or (
        default is None and value is False)


def _skeleton(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": {}}


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    target = doc
    for part in parents:
        target = target.setdefault(part, {})
    if isinstance(value, bool) and parents[-1:] == ["annotations"]:
        value = "true" if value else "false"
    target[last] = _plain(value)


def _plain(value: Any) -> Any:
    """Mappings and tuples as the dicts and lists YAML writes."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _drop_invalid(result: ImportPlan) -> None:
    """Take out each document `validate` would refuse, skipped and listed with its problems;
    the rest is checked again (a document left may have named one taken out)."""
    while result.documents:
        texts = {rel: to_yaml(doc) for rel, doc in result.documents.items()}
        errors: dict[str, list[str]] = {}
        problems = sorted(check_texts(texts), key=lambda d: (d.line or 0, d.column or 0))
        for problem in problems:
            if problem.severity is Severity.ERROR and problem.file in result.documents:
                errors.setdefault(problem.file, []).append(problem.message)
        if not errors:
            return
        for rel, messages in errors.items():
            doc = result.documents.pop(rel)
            kind, name = doc["kind"].lower(), doc["metadata"]["name"]
            result.skip(f"{kind} {name}: no manifest describes it as border0 holds it "
                        f"(validate would say: {'; '.join(messages)})", undescribed=True,
                        own=None if rel in result.adopted else f"{kind} {name}")
            if rel in result.adopted:
                result.adopted.remove(rel)
            for env_name in result.env_by_document.pop(rel, ()):
                result.env_names.remove(env_name)


def _add(result: ImportPlan, rel: str, doc: dict[str, Any], adopt: bool) -> None:
    if adopt:
        doc["metadata"].setdefault("annotations", {})[ADOPT_ANNOTATION] = "true"
        result.adopted.append(rel)
    meta = doc["metadata"]
    meta.update({k: meta.pop(k) for k in ("labels", "annotations") if k in meta})  # stable order
    result.documents[rel] = doc


def _env_name(socket: str, key: str) -> str:
    """`orders-db` and a secret field -> ORDERS_DB_<FIELD> (unique: names have no _)."""
    return f"{socket}_{key}".upper().replace("-", "_")


def _selected(name: str, select: Sequence[str]) -> bool:
    return not select or any(fnmatch.fnmatchcase(name, glob) for glob in select)


def _skipped(result: ImportPlan, kind: str, name: str, own: model.Ownership, instance: str,
             socket: LiveSocket | None = None) -> bool:
    """Whether the object is skipped (and listed): a name or socket type no manifest can hold,
    or another instance's object."""
    if own.managed and not own.owned_by(instance):
        result.skip(f"{kind} {name}: managed by instance {own.instance!r}, not {instance!r}")
        return True
    if not _NAME_RE.match(name):
        reason = f"{kind} {name!r}: the name is not valid in a manifest"
    elif socket is not None and socket.type not in model.SOCKET_TYPES:
        reason = f"{kind} {name}: type {socket.socket_type!r} has no manifest form yet"
    else:
        return False
    result.skip(reason, undescribed=True, own=f"{kind} {name}" if own.owned_by(instance) else None)
    return True
