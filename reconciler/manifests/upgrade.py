"""The typed form of a legacy Socket document, for `migrate` (docs/migration.md).

A legacy socket describes its upstream with top-level fields (`spec.upstream.type`,
`httpHostname`, `username`, `password`) and, in the legacy mode, where `border0 socket connect`
forwards to (`spec.connector.host`/`port`, `httpserver`, `sshserver`). The typed form is
border0's `upstream_configuration` in camelCase (reconciler/upstream.py): the same upstream,
with hostname and port in it. `upgrade_socket` rewrites one document in place (a ruamel
round-trip map keeps its comments and key order) or says why it cannot: what border0's typed
form needs and the legacy document does not say (an ssh or database login passed through from
the client, the EC2/SSM target of `aws-ssm`/`aws-ec2connect`, a username read from env/file,
which the typed form takes as text) is never guessed.

`spec.connector` stays (the socket keeps its legacy `socket connect` process) unless a connector
is named: then it is replaced by `spec.connectors: [NAME]`.

`legacy_form` is the way back, used by the loader: a socket still in the legacy mode whose typed
upstream says exactly what `upgrade_socket` makes of legacy fields is told to border0 in those
legacy fields, as before the rewrite (its `socket connect` serves it from spec.connector; border0
gets an upstream_configuration once the socket names connectors). So a migrated folder plans no
change against the organization the legacy folder applied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import DEFAULT_UPSTREAM_TYPE
from reconciler.upstream import is_reference, is_typed

__all__ = ["Upgrade", "is_legacy", "legacy_form", "legacy_paths", "upgrade_socket"]

#: The legacy upstream type of a database socket when none is written (border0-cli
#: cmd/socket.go: --upstream_type defaults to mysql; model.DEFAULT_UPSTREAM_TYPE).
_DEFAULT_PROTOCOL = "mysql"


@dataclass(frozen=True)
class Upgrade:
    """What `upgrade_socket` did to one document: `changed`, or `reason` it was left alone."""

    name: str
    changed: bool = False
    reason: str = ""


def is_legacy(doc: Mapping[str, Any]) -> bool:
    """A Socket document with legacy upstream fields, or in the legacy mode (`spec.connector`)
    without a typed upstream yet."""
    spec = doc.get("spec")
    if doc.get("kind") != "Socket" or not isinstance(spec, (dict, Mapping)):
        return False
    upstream = spec.get("upstream")
    if isinstance(upstream, (dict, Mapping)) and is_typed(upstream):
        return False
    return bool(upstream) or spec.get("connector") is not None


def upgrade_socket(doc: MutableMapping[str, Any], connector: str | None = None) -> Upgrade:
    """Rewrite one legacy Socket document to the typed form, in place; with `connector`, its
    `spec.connector` becomes `spec.connectors: [connector]`. Nothing changes when it cannot."""
    meta = doc.get("metadata")
    name = str(meta.get("name") or "?") if isinstance(meta, (dict, Mapping)) else "?"
    spec = doc.get("spec")
    if doc.get("kind") != "Socket" or not isinstance(spec, MutableMapping):
        return Upgrade(name)
    if not all(isinstance(spec.get(key) or {}, Mapping) for key in ("upstream", "connector")):
        return Upgrade(name, reason="spec.upstream or spec.connector is not a map: run validate")
    changed = False
    if is_legacy(doc):
        typed, reason = _typed(spec)
        if typed is None:
            return Upgrade(name, reason=reason)
        dropped = _dropped_credentials(spec.get("upstream") or {}, typed)
        if dropped:
            return Upgrade(name, reason=(
                f"{' and '.join(f'spec.upstream.{k}' for k in dropped)} would be lost: the "
                "typed form migrate writes has no place for it; write the typed block by hand "
                "(docs/connectors.md)"))
        if connector is None:
            lost = _not_kept(spec, typed)
            if lost:
                server = "fileserverHttpServiceConfiguration" in str(typed)
                return Upgrade(name, reason=(
                    f"{'; '.join(_lost_why(k, server) for k in lost)}: border0 would be told "
                    "it changed; migrate it with --connector NAME (the typed upstream then "
                    "replaces the legacy fields), or by hand"))
        _put(spec, "upstream", typed, after="description")
        changed = True
    if connector is not None and spec.get("connector") is not None:
        if spec.get("type") == "http" and _legacy_type(doc) == "https":
            # border0 holds it as https (http + upstream_type https); served by a connector
            # its upstream_type is `type`'s default: http would be written over https
            spec["type"] = "https"
        _put(spec, "connectors", [connector], after="connector")
        del spec["connector"]
        changed = True
    return Upgrade(name, changed=changed)


def _legacy_type(doc: Mapping[str, Any]) -> Any:
    """The legacy upstream type border0 is told for a legacy-mode socket (None: sent typed)."""
    legacy = legacy_form(json.loads(json.dumps(doc)))
    return None if legacy is None else (legacy["spec"].get("upstream") or {}).get("type")


def _lost_why(key: str, server: bool) -> str:
    """Why the legacy field `key` does not come back from its typed image (`_not_kept`)."""
    if server:
        return f"spec.upstream.{key} has no place in the typed file server"
    if key == "httpHostname":
        return ("spec.upstream.httpHostname is spec.connector.host, which the typed hostHeader "
                "cannot tell from no httpHostname")
    if key == "password":
        return ("spec.upstream.password is a from: string, sent to border0 as the password "
                "itself, which the typed form reads as a reference its connector resolves")
    return f"spec.upstream.{key} cannot be said in the typed form"


def _not_kept(spec: Mapping[str, Any], typed: dict[str, Any]) -> list[str]:
    """The legacy upstream fields the loader's way back (`legacy_form`) does not give back
    from `typed` as `spec` has them: written, the socket would plan a change it did not ask
    for (issue: a migrated folder plans no change)."""
    plain = json.loads(json.dumps({**spec, "upstream": typed}))
    back = legacy_form({"kind": "Socket", "spec": plain})
    before = _comparable(spec.get("type"), spec.get("upstream"))
    if back is None:  # it would be sent typed: a from: password is why (_legacy_upstream)
        return [k for k, v in before.items() if is_reference(v)] or sorted(before)
    after = _comparable(spec.get("type"), back["spec"].get("upstream"))
    return [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


def _comparable(kind: Any, upstream: Any) -> dict[str, Any]:
    """A legacy upstream as border0 is told it: no empty field, no default type."""
    out = {k: v for k, v in json.loads(json.dumps(upstream or {})).items()
           if v not in (None, "")}
    if out.get("type") == DEFAULT_UPSTREAM_TYPE.get(str(kind)):
        del out["type"]
    return out


def legacy_form(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The legacy document a legacy-mode Socket with a typed upstream was migrated from, when
    its typed upstream is exactly `upgrade_socket`'s image of it; else None."""
    spec = data.get("spec")
    if (data.get("kind") != "Socket" or not isinstance(spec, (dict, Mapping))
            or not isinstance(spec.get("connector"), Mapping) or not is_typed(spec.get("upstream"))
            or spec.get("connectors") is not None or spec.get("externalConnectors") is not None):
        return None
    typed = json.loads(json.dumps(spec["upstream"]))
    legacy = _legacy_upstream(typed)
    if legacy is None:
        return None
    back = {**dict(spec), "upstream": legacy}
    if not legacy:
        del back["upstream"]
    if _typed(back)[0] != typed:  # not the image of a legacy socket: it stays typed
        return None
    return {**dict(data), "spec": back}


def legacy_paths(data: Mapping[str, Any]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """For `legacy_form`'s document: where each legacy credential sits in the typed one (so a
    problem with it is shown where the user wrote it)."""
    upstream = data["spec"]["upstream"]
    service = upstream["serviceType"]
    title = service[:1].upper() + service[1:]
    login = ("spec", "upstream", f"{service}ServiceConfiguration",
             f"standard{title}ServiceConfiguration", "usernameAndPasswordAuthConfiguration")
    return {("spec", "upstream", key): (*login, key) for key in ("username", "password")}


def _legacy_upstream(typed: Mapping[str, Any]) -> dict[str, Any] | None:
    """The legacy upstream fields a typed upstream would come from (checked by the caller)."""
    service = typed.get("serviceType")
    standard = _standard(typed) or {}
    login = standard.get("usernameAndPasswordAuthConfiguration") or {}
    if is_reference(login.get("password")):
        return None  # resolved by a connector on its host: the legacy model cannot say it
    credentials = {k: login[k] for k in ("username", "password") if k in login}
    if service == "http" and standard:
        out = {"type": standard.get("scheme")}
        if standard.get("hostHeader") != standard.get("hostname"):
            out["httpHostname"] = standard.get("hostHeader")
        return out
    if service == "ssh":
        return credentials
    if service == "database":
        if standard.get("protocol") not in ("mysql", "postgres", "mssql"):
            return None
        return {"type": standard["protocol"], **credentials}
    return {}


def _put(spec: MutableMapping[str, Any], key: str, value: Any, after: str) -> None:
    """Set `key`, keeping its place; a new key goes after `after` (ruamel's insert keeps
    order and comments), else last."""
    if key in spec or not hasattr(spec, "insert") or after not in spec:
        spec[key] = value
        return
    spec.insert(list(spec).index(after) + 1, key, value)


def _typed(spec: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(the typed upstream, "") or (None, why not)."""
    upstream = spec.get("upstream") or {}
    connector = spec.get("connector") or {}
    kind = spec.get("type")
    legacy_type = upstream.get("type")
    host, port = connector.get("host"), connector.get("port")
    where = {"hostname": host, "port": port}
    missing = ("spec.connector.host and spec.connector.port are needed: the typed upstream "
               "holds where the connector forwards to")
    if kind in ("http", "https"):
        if connector.get("httpserver"):
            if not connector.get("httpserverDir"):
                return None, ("spec.connector.httpserverDir is needed: the typed file server "
                              "names the directory it serves")
            return _block("http", "connector_file_server", "fileserver",
                          {"topLevelDirectory": connector["httpserverDir"]}), ""
        if host is None or port is None:
            return None, missing
        scheme = "https" if "https" in (kind, legacy_type) else "http"
        return _block("http", "standard", "standard", {
            **where, "scheme": scheme, "hostHeader": upstream.get("httpHostname") or host}), ""
    if kind == "tls":
        if host is None or port is None:
            return None, missing
        return _block("tls", "standard", "standard", where), ""
    if kind == "ssh":
        if connector.get("sshserver"):
            # the legacy built-in server logs in as the connector's own user (inference:
            # border0-cli --sshserver takes no user); the typed block says so
            return {"serviceType": "ssh", "sshServiceConfiguration": {
                "sshServiceType": "connector_built_in_ssh_service",
                "builtInSshServiceConfiguration": {"usernameProvider": "use_connector_user"}}}, ""
        if legacy_type in ("aws-ssm", "aws-ec2connect"):
            return None, (f"upstream type {legacy_type}: write its typed block by hand "
                          "(the instance and region are not in the legacy fields)")
        if host is None or port is None:
            return None, missing
        login, why = _login(upstream)
        if login is None:
            return None, why
        return _block("ssh", "standard", "standard", {
            **where, "sshAuthenticationType": "username_and_password",
            "usernameAndPasswordAuthConfiguration": {"usernameProvider": "defined", **login},
        }), ""
    if kind == "database":
        if host is None or port is None:
            return None, missing
        login, why = _login(upstream)
        if login is None:
            return None, why
        return _block("database", "standard", "standard", {
            **where, "protocol": legacy_type or _DEFAULT_PROTOCOL,
            "authenticationType": "username_and_password",
            "usernameAndPasswordAuthConfiguration": login}), ""
    return None, f"socket type {kind} takes a typed upstream only: write it by hand"


#: The legacy upstream's credentials (secrets.SECRETS' upstream fields, by manifest name).
_CREDENTIALS = ("username", "password", "key")


def _dropped_credentials(upstream: Mapping[str, Any], typed: Mapping[str, Any]) -> list[str]:
    """The legacy credentials the manifest gives that `typed` does not hold: a client key
    beside a login, a login in front of an http or tls upstream. Dropped, a secret the
    manifest declares would silently stop being sent and compared."""
    login = (_standard(typed) or {}).get("usernameAndPasswordAuthConfiguration") or {}
    return [key for key in _CREDENTIALS if upstream.get(key) is not None and key not in login]


def _standard(typed: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The typed upstream's `standard<Service>ServiceConfiguration` block, if it has one."""
    service = str(typed.get("serviceType") or "")
    title = service[:1].upper() + service[1:]
    block = typed.get(f"{service}ServiceConfiguration") or {}
    return block.get(f"standard{title}ServiceConfiguration")


def _login(upstream: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The typed username and password: the username as text (the typed form's), the password
    as written ({env}, {file}, a from: reference)."""
    username, password = upstream.get("username"), upstream.get("password")
    if username is None or password is None:
        return None, ("no spec.upstream.username and password: the client's own login is "
                      "passed through; choose a typed authentication by hand")
    if not isinstance(username, str):
        return None, ("spec.upstream.username is read from env/file; the typed form takes the "
                      "username as text: write it in, then migrate again")
    return {"username": username, "password": password}, ""


def _block(service: str, sub_type: str, prefix: str, fields: dict[str, Any]) -> dict[str, Any]:
    """{serviceType, <service>ServiceConfiguration: {<service>ServiceType, <prefix><Service>
    ServiceConfiguration: fields}} (docs/connectors.md#typed-upstreams)."""
    title = service[:1].upper() + service[1:]
    return {"serviceType": service, f"{service}ServiceConfiguration": {
        f"{service}ServiceType": sub_type, f"{prefix}{title}ServiceConfiguration": fields}}
