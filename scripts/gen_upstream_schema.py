"""The JSON Schemas of border0's upstream configuration, both written by this one script.

    python scripts/gen_upstream_schema.py sdk BORDER0_GO_CHECKOUT [OUTPUT]
    python scripts/gen_upstream_schema.py manifest

`sdk` derives schemas/upstream-configuration.schema.json (border0's snake_case API form, which
the emulator checks bodies with) from border0-go's own types. `manifest` writes the typed
upstream (`$defs.typedUpstream`, the manifest's camelCase form) into schemas/socket.schema.json.

## sdk

BORDER0_GO_CHECKOUT: a checkout (or bare git directory) of borderzero/border0-go; the script
reads `types/service/*.go` and `types/common/aws.go` (not tests) and writes OUTPUT (default
schemas/upstream-configuration.schema.json). Nothing of border0's code is copied: the schema is
derived from it.

What is derived, and from where:
- every struct becomes a `$defs` entry: its JSON field names (`json:"..."` tags, embedded
  structs flattened as encoding/json does), Go types mapped to JSON types (uint16: a port);
  fields outside the struct are refused (additionalProperties false, as the twin is strict);
- each `Validate()` method gives the rules border0's own validation applies:
  - `switch x.Field { case A, B: ... }`: Field is enumerated (the cases; a case `""` allows it
    unset); in each case `x.Block == nil` makes Block required and `nilcheck.AnyNotNil(...)`
    forbids the others; a nested switch makes a combined condition;
  - `switch { case x.Block != nil: ... }`: exactly one of those blocks;
  - `Configuration.Validate`'s map from service type to block: the same, for service_type;
  - `if x.Field == "" { return ... }` / `x.Port == 0` at the top of a Validate: required and
    non-empty; `x.Embedded.Validate()`: the embedded struct's requirements too;
  - `validateUsernameWithProvider(x.UsernameProvider, x.Username, set.New(A, B))` (common.go):
    the provider is `defined`, unset or one of A, B; `defined` or unset needs a username, the
    others refuse one.
- secret fields (passwords, private keys, AWS secret keys...) are marked `"writeOnly": true`
  from a list below, checked against the parsed names.
Rules a JSON Schema cannot hold (PEM parsing, AWS regions, header characters, CIDRs) are not
in it; docs/border0-operations.md says so.

## manifest

The structure is border0-go `types/service` (configuration.go, {http,ssh,database,tls,vnc,rdp,
vpn,kubernetes,subnet_router,exit_node,snowflake,elasticsearch,aws_s3,aws_access}_service_
configuration.go, common.go, types/common/aws.go), written here with the SDK's snake_case JSON
names and turned into the manifest's camelCase by `reconciler.upstream.camel`, the same function
the reconciler converts with. Enums are the SDK's constants; `required` holds what each
`Validate()` refuses when missing (e.g. hostname and port of every standard type).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reconciler.upstream import camel

# --- sdk: schemas/upstream-configuration.schema.json from border0-go --------------------

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "schemas" / "upstream-configuration.schema.json"
#: JSON names of the fields that hold a credential (SDK types/service, types/common).
SECRETS = ("password", "private_key", "aws_secret_access_key", "aws_session_token",
           "gcp_credentials_json", "token", "client_key_data", "key")

_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
_FIELD = re.compile(r"^\s+(\w+)\s+([^\s`]+)\s+`json:\"([^\"]*)\"`")
_EMBED = re.compile(r"^\s+([A-Z]\w*)\s*(//.*)?$")
_CONST = re.compile(r"^\s*(\w+)\s*=\s*\"([^\"]*)\"", re.MULTILINE)
_FUNC = re.compile(r"^func \((\w+) \*?(\w+)\) Validate\(\) error \{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
_ONE_LINE_FUNC = re.compile(r"^func \((\w+) \*?(\w+)\) Validate\(\) error \{ return nil \}", re.MULTILINE)


class Go:
    """The parsed SDK: structs (name -> fields), constants (name -> value), Validate bodies."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.structs: dict[str, list[tuple[str, str, str, bool] | tuple[str]]] = {}
        self.consts: dict[str, str] = {}
        self.validates: dict[str, tuple[str, str, str]] = {}
        for name, text in sources.items():
            for m in _STRUCT.finditer(text):
                fields: list[Any] = []
                for line in m.group(2).splitlines():
                    if f := _FIELD.match(line):
                        tag = f.group(3).split(",")
                        fields.append((f.group(1), f.group(2), tag[0], "omitempty" in tag[1:]))
                    elif e := _EMBED.match(line):
                        fields.append((e.group(1),))
                self.structs[m.group(1)] = fields
            self.consts.update(dict(_CONST.findall(text)))
            for m in _FUNC.finditer(text):
                self.validates[m.group(2)] = (m.group(1), m.group(3), name)

    def fields(self, struct: str) -> list[tuple[str, str, str, bool]]:
        """(Go name, Go type, JSON name, omitempty), embedded structs flattened."""
        out = []
        for field in self.structs[struct]:
            if len(field) == 1:
                out += self.fields(field[0])
            elif field[2] != "-":
                out.append(field)  # type: ignore[arg-type]
        return out

    def json_name(self, struct: str, go_name: str) -> str:
        for name, _, json_name, _ in self.fields(struct):
            if name == go_name:
                return json_name
        raise SystemExit(f"{struct} has no field {go_name}: the SDK changed, check the rules")

    def value(self, token: str) -> str:
        token = token.strip()
        if token.startswith('"'):
            return token.strip('"')
        if token not in self.consts:
            raise SystemExit(f"unknown constant {token}")
        return self.consts[token]


def _schema_of(go: Go, gotype: str) -> dict[str, Any]:
    gotype = gotype.lstrip("*")
    if gotype.startswith("[]"):
        return {"type": "array", "items": _schema_of(go, gotype[2:])}
    if gotype.startswith("map[string]"):
        return {"type": "object", "additionalProperties": _schema_of(go, gotype[11:])}
    if gotype == "string":
        return {"type": "string"}
    if gotype == "bool":
        return {"type": "boolean"}
    if gotype == "uint16":
        return {"type": "integer", "minimum": 0, "maximum": 65535}
    if gotype in ("int", "int32", "int64", "uint", "uint32", "uint64"):
        return {"type": "integer"}
    if gotype == "struct{}":
        return {"type": "object"}
    name = gotype.split(".")[-1]
    if name in go.structs:
        return {"$ref": f"#/$defs/{name}"}
    raise SystemExit(f"no JSON type for Go type {gotype}")


def _top_level(body: str, recv: str) -> tuple[list[str], list[str]]:
    """Fields required non-empty by the top of a Validate body, and embedded structs whose
    Validate it calls."""
    required = re.findall(rf"^\tif {recv}\.(\w+) == (?:\"\"|0) \{{\n\t\treturn", body, re.MULTILINE)
    embedded = re.findall(rf"^\tif err := {recv}\.(\w+)\.Validate\(\); err != nil", body, re.MULTILINE)
    return required, embedded


def _cases(body: str, recv: str, depth: int) -> tuple[str | None, list[tuple[list[str], str]]]:
    """The switch at `depth` tabs: (field or None for `switch {`, [(case tokens, case body)])."""
    tabs = "\t" * depth
    m = re.search(rf"^{tabs}switch(?: {recv}\.(\w+))? \{{\n(.*?)^{tabs}\}}", body, re.MULTILINE | re.DOTALL)
    if m is None:
        return None, []
    parts = re.split(rf"^{tabs}(case .*?:|default:)\n", m.group(2), flags=re.MULTILINE)
    cases = []
    for head, text in zip(parts[1::2], parts[2::2], strict=True):
        if head.startswith("case "):
            cases.append(([t for t in head[5:-1].split(",")], text))
    return m.group(1) or "", cases


def _case_rules(go: Go, struct: str, recv: str, text: str, depth: int,
                condition: dict[str, Any]) -> list[dict[str, Any]]:
    """if/then rules for one case body (recursing into a nested switch)."""
    field, nested = _cases(text, recv, depth + 1)
    rules: list[dict[str, Any]] = []
    if field:
        name = go.json_name(struct, field)
        values = [go.value(t) for tokens, _ in nested for t in tokens]
        rules.append({"if": condition, "then": _enum_rule(name, values)} if condition
                     else _enum_rule(name, values))
        for tokens, sub in nested:
            when = _when(condition, name, [go.value(t) for t in tokens])
            rules += _case_rules(go, struct, recv, sub, depth + 1, when)
        text = re.sub(rf"^{chr(9) * (depth + 1)}switch.*?^{chr(9) * (depth + 1)}\}}", "", text,
                      flags=re.MULTILINE | re.DOTALL)
    required = [go.json_name(struct, f) for f in re.findall(rf"{recv}\.(\w+) == nil", text)]
    forbidden = [go.json_name(struct, f) for args in
                 re.findall(r"nilcheck\.AnyNotNil\(([^)]*)\)", text)
                 for f in re.findall(rf"{recv}\.(\w+)", args)]
    then: dict[str, Any] = {}
    if required:
        then["required"] = required
    if forbidden:
        then["not"] = {"anyOf": [{"required": [f]} for f in forbidden]}
    if then and condition:
        rules.append({"if": condition, "then": then})
    return rules


def _enum_rule(name: str, values: list[str]) -> dict[str, Any]:
    rule: dict[str, Any] = {"properties": {name: {"enum": values}}}
    if "" not in values:
        rule["required"] = [name]
    return rule


def _when(condition: dict[str, Any], name: str, values: list[str]) -> dict[str, Any]:
    props = {**condition.get("properties", {}), name: {"enum": values}}
    required = [*condition.get("required", []), *([name] if "" not in values else [])]
    out: dict[str, Any] = {"properties": props}
    if required:
        out["required"] = required
    return out


def _username_rules(go: Go, struct: str, recv: str, body: str) -> list[dict[str, Any]]:
    """common.go validateUsernameWithProvider(provider, username, allowedEmptyUserProviders):
    `defined` or "" needs a username; a provider of the set needs none (and takes none); any
    other provider is refused."""
    m = re.search(rf"validateUsernameWithProvider\(\s*{recv}\.(\w+),\s*{recv}\.(\w+),"
                  r"\s*set\.New(?:\[string\])?\(([^)]*)\)", body)
    if m is None:
        return []
    provider, username = go.json_name(struct, m.group(1)), go.json_name(struct, m.group(2))
    defined = go.value("UsernameProviderDefined")
    others = [go.value(t) for t in m.group(3).split(",") if t.strip()]
    return [
        {"properties": {provider: {"enum": [defined, "", *others]}}},
        {"if": {"properties": {provider: {"enum": [defined, ""]}}},
         "then": {"required": [username], "properties": {username: {"minLength": 1}}},
         "else": {"properties": {username: {"maxLength": 0}}}},
    ]


def _rules(go: Go, struct: str) -> list[dict[str, Any]]:
    if struct not in go.validates:
        return []
    recv, body, _ = go.validates[struct]
    required, embedded = _top_level(body, recv)
    rules: list[dict[str, Any]] = _username_rules(go, struct, recv, body)
    names = [go.json_name(struct, f) for f in required]
    for inner in (e for e in embedded if e in go.validates and (e,) in go.structs[struct]):
        inner_recv, inner_body, _ = go.validates[inner]
        names += [go.json_name(inner, f) for f in _top_level(inner_body, inner_recv)[0]]
    if names:
        rules.append({"required": names})
    mapping = re.search(r"all := map\[string\]validatable\{\n(.*?)^\t\}", body, re.MULTILINE | re.DOTALL)
    if mapping:  # Configuration.Validate: service type -> its block, the others forbidden
        pairs = [(go.value(k), go.json_name(struct, f)) for k, f in
                 re.findall(rf"^\t\t(\w+):\s+{recv}\.(\w+),", mapping.group(1), re.MULTILINE)]
        rules.append(_enum_rule("service_type", [k for k, _ in pairs]))
        for value, block in pairs:
            rules.append({"if": _when({}, "service_type", [value]), "then": {
                "required": [block],
                "not": {"anyOf": [{"required": [b]} for _, b in pairs if b != block]}}})
        return rules
    field, cases = _cases(body, recv, 1)
    if field == "":  # switch { case x.Block != nil: ... }: exactly one block
        blocks = [go.json_name(struct, f) for tokens, _ in cases
                  for f in re.findall(rf"{recv}\.(\w+) != nil", tokens[0])]
        rules.append({"oneOf": [{"required": [b]} for b in blocks]})
    elif field:
        name = go.json_name(struct, field)
        rules.append(_enum_rule(name, [go.value(t) for tokens, _ in cases for t in tokens]))
        for tokens, text in cases:
            rules += _case_rules(go, struct, recv, text, 1,
                                 _when({}, name, [go.value(t) for t in tokens]))
    return rules


def _struct_schema(go: Go, struct: str) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for _, gotype, json_name, omitempty in go.fields(struct):
        prop = _schema_of(go, gotype)
        if json_name in SECRETS and prop.get("type") == "string":
            prop["writeOnly"] = True
        if omitempty:
            prop["x-omitempty"] = True
        properties[json_name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False}
    rules = _rules(go, struct)
    for rule in rules:  # a required field must not be its zero value either
        for name in rule.get("required", []) if "if" not in rule else []:
            kind = properties[name].get("type")
            if kind == "string":
                properties[name]["minLength"] = 1
            elif kind == "integer":
                properties[name]["minimum"] = max(1, properties[name].get("minimum", 1))
    if rules:
        schema["allOf"] = rules
    return schema


def sources_of(checkout: Path) -> tuple[dict[str, str], str]:
    """The SDK's Go files (types/service and types/common/aws.go), and the commit."""
    git = ["git", "-C", str(checkout)]
    if not (checkout / "types").is_dir():  # a bare repository: read HEAD's tree
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        names = subprocess.run([*git, "ls-tree", "--name-only", "HEAD", "types/service/"],
                               capture_output=True, text=True, check=True).stdout.split()
        names = [n for n in names if n.endswith(".go") and not n.endswith("_test.go")]
        names.append("types/common/aws.go")
        return {n: subprocess.run([*git, "show", f"HEAD:{n}"], capture_output=True, text=True,
                                  check=True).stdout for n in names}, commit
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    files = sorted((checkout / "types" / "service").glob("*.go"))
    files = [f for f in files if not f.name.endswith("_test.go")]
    files.append(checkout / "types" / "common" / "aws.go")
    return {str(f.relative_to(checkout)): f.read_text() for f in files}, commit


def generate(sources: dict[str, str], commit: str) -> dict[str, Any]:
    go = Go(sources)
    for text in sources.values():
        for m in _ONE_LINE_FUNC.finditer(text):
            go.validates.setdefault(m.group(2), (m.group(1), "", ""))
    found = {name for struct in go.structs for _, _, name, _ in go.fields(struct)}
    missing = [s for s in SECRETS if s not in found]
    if missing:
        raise SystemExit(f"secret fields not in the SDK any more: {missing}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://border0-reconciler/schemas/upstream-configuration.schema.json",
        "title": "border0 upstream configuration (socket upstream_configuration)",
        "description": "Generated by scripts/gen_upstream_schema.py sdk from "
                       f"borderzero/border0-go {commit} types/service (structs and their "
                       "Validate methods). Do not edit by hand.",
        "$ref": "#/$defs/Configuration",
        "$defs": {name: _struct_schema(go, name) for name in sorted(go.structs)},
    }


def write_sdk_schema(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    sources, commit = sources_of(Path(argv[0]))
    out = Path(argv[1]) if len(argv) > 1 else OUTPUT
    out.write_text(json.dumps(generate(sources, commit), indent=1) + "\n")
    print(f"wrote {out} from border0-go {commit[:12]}")
    return 0


# --- manifest: $defs.typedUpstream of schemas/socket.schema.json -------------------------

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "socket.schema.json"

STR = {"type": "string", "minLength": 1}
OPT_STR = {"type": "string"}
LIST = {"type": "array", "items": {"type": "string"}}
SECRET = {"$ref": "#/$defs/secret"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
BOOL = {"type": "boolean"}


def _described(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Every property says which SDK JSON field it is (editors show it; docs/connectors.md)."""
    if "description" in schema:
        return schema
    return {"description": f"border0's {key} (border0-go types/service).", **schema}


def obj(props: dict[str, Any], required: tuple[str, ...] = (), desc: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {camel(k): _described(k, v) for k, v in props.items()},
    }
    if required:
        out["required"] = [camel(k) for k in required]
    if desc:
        out["description"] = desc
    return out


def variants(
    discriminator: str, blocks: dict[str, tuple[str, dict[str, Any] | None]],
    extra: dict[str, Any] | None = None, required: tuple[str, ...] = (), desc: str = "",
) -> dict[str, Any]:
    """An SDK block with a sub-type field naming exactly one nested block (or none)."""
    props: dict[str, Any] = {discriminator: {"enum": list(blocks)}, **(extra or {})}
    for block_key, block in blocks.values():
        if block is not None:
            props[block_key] = block
    out = obj(props, (discriminator, *required), desc)
    rules = []
    keys = [k for k, b in blocks.values() if b is not None]
    for value, (block_key, block) in blocks.items():
        then: dict[str, Any] = {"properties": {
            camel(k): {"not": {}, "errorMessage": (
                f"not allowed when {camel(discriminator)} is {value}"
                + (f" (use {camel(block_key)})" if block is not None else ""))}
            for k in keys if k != block_key}}
        if block is not None:
            then["required"] = [camel(block_key)]
        rules.append({
            "if": {"properties": {camel(discriminator): {"const": value}},
                   "required": [camel(discriminator)]},
            "then": then,
        })
    out["allOf"] = rules
    return out


def exactly_one(blocks: dict[str, dict], extra: dict[str, Any],
                required: tuple[str, ...]) -> dict[str, Any]:
    """An SDK block whose nested blocks are alternatives without a sub-type field."""
    out = obj({**extra, **blocks}, required)
    out["oneOf"] = [{"required": [camel(k)]} for k in blocks]
    out["errorMessage"] = "exactly one of " + ", ".join(camel(k) for k in blocks)
    return out


def host_port(extra: dict[str, Any], required: tuple[str, ...] = (), desc: str = "") -> dict:
    return obj({"hostname": STR, "port": PORT, **extra}, ("hostname", "port", *required), desc)


AWS_CREDENTIALS = obj({
    "aws_access_key_id": OPT_STR, "aws_secret_access_key": SECRET,
    "aws_session_token": SECRET, "aws_profile": OPT_STR,
}, desc="AWS credentials (types/common/aws.go); left out, the connector's own are used.")
USERNAME_PROVIDER = {"enum": ["defined", "prompt_client", "use_connector_user"]}
USER = {"username_provider": USERNAME_PROVIDER, "username": OPT_STR}


def with_user(schema: dict[str, Any], *others: str) -> dict[str, Any]:
    """A block with USER, as common.go validateUsernameWithProvider checks it: `defined` (the
    default) needs a username; `others`, the providers the block allows besides, supply one
    and take none; any other provider is refused."""
    provider, username = camel("username_provider"), camel("username")
    schema["properties"][provider] = _described("username_provider",
                                                {"enum": ["defined", *others]})
    schema["properties"][username] = {
        "description": "border0's username (border0-go types/service): required when "
                       "usernameProvider is defined (its default)"
                       + (f", not allowed when it is {' or '.join(others)}." if others else "."),
        **STR}
    then: dict[str, Any] = {
        "required": [username],
        "errorMessage": (f"or set usernameProvider {' or '.join(others)}" if others else
                         "usernameProvider defined is the only one this block takes")}
    rule: dict[str, Any] = {"if": {"properties": {provider: {"const": "defined"}}},
                            "then": then}
    if others:
        rule["else"] = {"properties": {username: {
            "not": {}, "errorMessage": f"not allowed when usernameProvider is "
                                       f"{' or '.join(others)}: it supplies the username"}}}
    schema.setdefault("allOf", []).append(rule)
    return schema
TLS_CONFIG = {"ca_certificate": OPT_STR, "certificate": OPT_STR, "key": SECRET}


def http() -> dict:
    header = obj({"key": {"type": "string", "pattern": "^[A-Za-z0-9-]+$", "maxLength": 255},
                  "value": {"type": "string", "maxLength": 4096}}, ("key", "value"))
    return variants("http_service_type", {
        "standard": ("standard_http_service_configuration", host_port(
            {"scheme": {"enum": ["http", "https"]}, "host_header": STR,
             "headers": {"type": "array", "items": header}}, ("host_header",))),
        "connector_file_server": ("fileserver_http_service_configuration",
                                  obj({"top_level_directory": STR}, ("top_level_directory",))),
    })


def ssh() -> dict:
    auth = variants("ssh_authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration",
                                  with_user(obj({**USER, "password": SECRET}, ("password",)))),
        "private_key": ("private_key_auth_configuration",
                        with_user(obj({**USER, "private_key": SECRET}, ("private_key",)))),
        "border0_certificate": ("border0_certificate_auth_configuration",
                                with_user(obj(USER), "prompt_client")),
    }, {"hostname": STR, "port": PORT}, ("hostname", "port"))
    ec2 = obj({"ec2_instance_id": STR, "ec2_instance_region": STR,
               "aws_credentials": AWS_CREDENTIALS}, ("ec2_instance_id", "ec2_instance_region"))
    ecs = obj({"ecs_cluster_region": STR, "ecs_cluster_name": STR, "ecs_service_name": STR,
               "aws_credentials": AWS_CREDENTIALS},
              ("ecs_cluster_region", "ecs_cluster_name", "ecs_service_name"))
    ssm = variants("ssm_target_type", {
        "ec2": ("aws_ssm_ec2_target_configuration", ec2),
        "ecs": ("aws_ssm_ecs_target_configuration", ecs),
    })
    ec2ic = with_user(host_port(
        {**USER, "ec2_instance_id": STR, "ec2_instance_region": STR,
         "ec2_instance_connect_endpoint_id": {"type": "string", "pattern": "^eice-[0-9a-f]{17}$"},
         "aws_credentials": AWS_CREDENTIALS},
        ("ec2_instance_id", "ec2_instance_region")), "prompt_client")
    base_kubectl = {"namespace_allowlist": LIST,
                    "namespace_selectors_allowlist": {"type": "object"}}
    kubectl = variants("kubectl_exec_target_type", {
        "standard": ("standard_kubectl_exec_target_configuration",
                     obj({**base_kubectl, "master_url": OPT_STR, "kubeconfig_path": OPT_STR})),
        "aws_eks": ("aws_eks_kubectl_exec_target_configuration",
                    obj({**base_kubectl, "eks_cluster_name": STR, "eks_cluster_region": STR,
                         "aws_credentials": AWS_CREDENTIALS},
                        ("eks_cluster_name", "eks_cluster_region"))),
    })
    return variants("ssh_service_type", {
        "standard": ("standard_ssh_service_configuration", auth),
        "aws_ssm": ("aws_ssm_ssh_service_configuration", ssm),
        "aws_ec2_instance_connect": ("aws_ec2ic_ssh_service_configuration", ec2ic),
        "kubectl_exec": ("kubectl_exec_ssh_service_configuration", kubectl),
        "docker_exec": ("docker_exec_ssh_service_configuration",
                        obj({"container_name_allowlist": LIST})),
        "connector_built_in_ssh_service": ("built_in_ssh_service_configuration",
                                           with_user(obj(USER), "prompt_client",
                                                     "use_connector_user")),
    })


def database() -> dict:
    user_password = obj({"username": STR, "password": SECRET}, ("username", "password"))
    user_password_ca = obj({"username": STR, "password": SECRET, "ca_certificate": OPT_STR},
                           ("username", "password"))
    tls = obj({"username": OPT_STR, "password": SECRET, **TLS_CONFIG})
    kerberos = obj({"username": OPT_STR, "password": SECRET})
    sql_auth = obj({"username": STR, "password": SECRET}, ("username", "password"))
    iam = obj({"aws_credentials": AWS_CREDENTIALS, "rds_instance_region": STR, "username": STR,
               "ca_certificate": OPT_STR}, ("rds_instance_region", "username"))
    mongo_aws = obj({"aws_credentials": AWS_CREDENTIALS, "cluster_region": STR,
                     "ca_certificate": OPT_STR}, ("cluster_region",))
    protocols = ["mysql", "postgres", "mssql", "cockroachdb", "mongodb", "aerospike"]
    common = {"hostname": STR, "port": PORT, "protocol": {"enum": protocols},
              "database_name": OPT_STR}
    standard = variants("authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration", user_password),
        "tls": ("tls_auth_configuration", tls),
        "kerberos": ("kerberos_configuration", kerberos),
        "sql_authentication": ("sql_authentication_configuration", sql_auth),
        "no_auth": ("", None),
    }, common, ("hostname", "port", "protocol"))
    rds = variants("authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration", user_password_ca),
        "iam": ("iam_auth_configuration", iam),
    }, common, ("hostname", "port", "protocol"))
    cloudsql_conn = obj({"username": STR, "password": SECRET, "instance_id": STR,
                         "gcp_credentials_json": SECRET}, ("username", "instance_id"))
    cloudsql_iam = obj({"username": STR, "instance_id": STR, "gcp_credentials_json": SECRET},
                       ("username", "instance_id"))
    cloudsql = exactly_one({  # no authentication_type: the block present decides
        "username_and_password_auth_configuration": user_password,
        "tls_auth_configuration": tls,
        "cloudsql_connector_configuration": cloudsql_conn,
        "cloudsql_connector_iam_configuration": cloudsql_iam,
    }, {"hostname": OPT_STR, "port": {**PORT, "minimum": 0}, "protocol": {"enum": protocols}},
        ("protocol",))
    azure = exactly_one({
        "azure_active_directory_password_configuration": user_password,
        "azure_active_directory_integrated_configuration": obj({}),
        "kerberos_configuration": kerberos,
        "sql_authentication_configuration": sql_auth,
    }, {"hostname": STR, "port": PORT, "protocol": {"enum": protocols}},
        ("hostname", "port", "protocol"))
    mongo = {**common, "protocol": {"const": "mongodb"}}
    docdb = variants("authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration", user_password_ca),
        "iam": ("iam_auth_configuration", mongo_aws),
    }, mongo, ("hostname", "port", "protocol"))
    atlas = variants("authentication_type", {
        "username_and_password": ("username_and_password_auth_configuration", user_password_ca),
        "iam": ("iam_auth_configuration", mongo_aws),
    }, {k: v for k, v in mongo.items() if k != "port"}, ("hostname", "protocol"))
    return variants("database_service_type", {
        "standard": ("standard_database_service_configuration", standard),
        "aws_rds": ("aws_rds_database_service_configuration", rds),
        "gcp_cloudsql": ("gcp_cloudsql_database_service_configuration", cloudsql),
        "azure_sql": ("azure_sql_database_service_configuration", azure),
        "aws_documentdb": ("aws_documentdb_database_service_configuration", docdb),
        "mongodb_atlas": ("mongodb_atlas_database_service_configuration", atlas),
    })


def tls() -> dict:
    return variants("tls_service_type", {
        "standard": ("standard_tls_service_configuration", host_port({})),
        "vpn": ("vpn_tls_service_configuration",
                obj({"vpn_subnet": STR, "routes": LIST}, ("vpn_subnet",))),
        "http_proxy": ("http_proxy_tls_service_configuration", obj({"host_allowlist": LIST})),
    })


def kubernetes() -> dict:
    standard = obj({k: OPT_STR for k in (
        "kubeconfig_path", "context", "server", "certificate_authority",
        "certificate_authority_data", "client_certificate", "client_certificate_data",
        "client_key", "token_file")} | {"client_key_data": SECRET, "token": SECRET})
    eks = obj({"eks_cluster_name": STR, "eks_cluster_region": STR,
               "aws_credentials": AWS_CREDENTIALS}, ("eks_cluster_name", "eks_cluster_region"))
    return variants("kubernetes_service_type", {
        "standard": ("standard_kubernetes_service_configuration", standard),
        "aws_eks": ("aws_eks_kubernetes_service_configuration", eks),
    }, {"impersonation_enabled": BOOL})


def elasticsearch() -> dict:
    basic = obj({"username": STR, "password": SECRET}, ("username", "password"))
    standard = variants("authentication_type", {
        "basic": ("basic_auth_configuration", basic),
    }, {"hostname": STR, "port": PORT, "protocol": {"enum": ["http", "https"]},
        "host_header": OPT_STR}, ("hostname", "port", "protocol"))
    return variants("elasticsearch_service_type", {
        "standard": ("standard_elasticsearch_service_configuration", standard)})


def blocks() -> dict[str, dict]:
    role = obj({"arn": STR, "name": OPT_STR, "description": OPT_STR}, ("arn",))
    account = obj({"aws_account_alias": OPT_STR, "aws_account_id": STR,
                   "aws_iam_roles": {"type": "array", "items": role}},
                  ("aws_account_id", "aws_iam_roles"))
    return {
        "http": http(),
        "ssh": ssh(),
        "database": database(),
        "tls": tls(),
        "vnc": host_port({"password": SECRET}),
        "rdp": host_port({"username": OPT_STR, "password": SECRET, "domain": OPT_STR}),
        "vpn": obj({"dhcp_pool_subnet": STR, "advertised_routes": LIST}, ("dhcp_pool_subnet",)),
        "kubernetes": kubernetes(),
        "subnet_router": obj({"ipv4_cidr_ranges": LIST, "ipv6_cidr_ranges": LIST,
                              "dns_patterns": LIST}),
        "exit_node": obj({}),
        "snowflake": obj({"account": STR, "username": STR, "password": SECRET},
                         ("account", "username", "password")),
        "elasticsearch": elasticsearch(),
        "aws_s3": obj({"aws_credentials": AWS_CREDENTIALS, "bucket_allowlist": LIST}),
        "aws_access": obj({"aws_credentials": AWS_CREDENTIALS,
                           "aws_accounts": {"type": "array", "items": account}},
                          ("aws_accounts",)),
    }


def typed_upstream() -> dict:
    by_type = {t: (f"{t}_service_configuration", block) for t, block in blocks().items()}
    schema = variants("service_type", by_type, desc=(
        "border0's typed upstream_configuration (border0-go types/service) in camelCase: "
        "serviceType and exactly one <type>ServiceConfiguration block. Secrets (password, "
        "privateKey, awsSecretAccessKey, ...) take {env: NAME}, {file: PATH}, or a reference "
        "the connector resolves on its host: from:env:NAME, from:file:PATH, from:aws:ssm:NAME, "
        "from:aws:secretsmanager:NAME. See docs/connectors.md."))
    schema["properties"]["serviceType"]["description"] = (
        "The service type; must match the socket's spec.type (https sockets: http).")
    return schema


#: Socket types of the typed model only: they have no legacy upstream fields.
NEW_TYPES = ("vnc", "rdp", "vpn", "kubernetes", "subnet_router", "exit_node", "snowflake",
             "elasticsearch", "aws_s3", "aws_access")
LEGACY_TYPES = ("http", "https", "ssh", "tls", "database")
_TYPED = {"required": ["serviceType"]}


def socket_rules(spec: dict[str, Any]) -> None:
    """spec.type gains the SDK's types; the legacy rules apply to a legacy upstream only; a
    typed upstream's serviceType must match the socket type (configuration.go Validate)."""
    spec["properties"]["type"]["enum"] = [*LEGACY_TYPES, *NEW_TYPES]
    spec["properties"]["type"]["description"] = (
        "Socket type: http, https (an http socket whose upstream speaks https), ssh, tls (any "
        "TCP service), database, or one of border0's newer types (" + ", ".join(NEW_TYPES)
        + "), which take a typed upstream (serviceType). (border0 socket create --type)")
    rules = [r for r in spec["allOf"] if not r.get("$comment", "").startswith("typed:")]
    for rule in rules:  # the legacy rules: only when the upstream is not typed
        rule["if"].setdefault("properties", {})["upstream"] = {"not": _TYPED}
    for socket_type in (*LEGACY_TYPES, *NEW_TYPES):
        service = "http" if socket_type == "https" else socket_type
        rules.append({
            "$comment": f"typed: {socket_type}",
            "if": {"properties": {"type": {"const": socket_type}, "upstream": _TYPED},
                   "required": ["type", "upstream"]},
            "then": {"properties": {"upstream": {"properties": {"serviceType": {
                "const": service,
                "errorMessage": f"a {socket_type} socket takes serviceType {service}"}}}}},
        })
    rules.append({
        "$comment": "typed: the newer socket types have no legacy upstream",
        "if": {"properties": {"type": {"enum": list(NEW_TYPES)}}, "required": ["type"]},
        "then": {"properties": {"upstream": {
            **_TYPED, "errorMessage": "this socket type takes a typed upstream (serviceType)"}}},
    })
    spec["allOf"] = rules


def write_manifest_schema() -> int:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    defs, spec = schema["$defs"], schema["properties"]["spec"]
    upstream = spec["properties"]["upstream"]
    if "legacyUpstream" not in defs:  # first run: the legacy form moves to $defs
        defs["legacyUpstream"] = upstream
    defs["typedUpstream"] = typed_upstream()
    spec["properties"]["upstream"] = {
        "description": (
            "What border0 connects to behind the socket. The typed form (serviceType and one "
            "<type>ServiceConfiguration block, border0's upstream_configuration) or the legacy "
            "fields (type, httpHostname, username, password; `migrate` rewrites them)."),
        "type": "object",
        "if": _TYPED,
        "then": {"$ref": "#/$defs/typedUpstream"},
        "else": {"$ref": "#/$defs/legacyUpstream"},
    }
    spec["properties"]["connectors"] = {
        "description": (
            "Names of the connectors (kind: Connector, or existing in border0) that serve this "
            "socket: border0's connector_ids. Several names: each serves it (high availability)."),
        "type": "array", "uniqueItems": True, "maxItems": 20,
        "items": {"$ref": "#/$defs/connectorName"},
    }
    spec["properties"]["externalConnectors"] = {
        "description": (
            "Names of connectors managed outside these manifests (portal, Terraform) that also "
            "serve this socket; they must exist in border0 at plan time and are never changed."),
        "type": "array", "uniqueItems": True, "maxItems": 20,
        "items": {"$ref": "#/$defs/connectorName"},
    }
    spec["properties"]["endToEndEncryption"] = {
        "description": "border0's end_to_end_encryption_enabled; left out, left alone.",
        "type": "boolean"}
    spec["properties"]["connectorAuthentication"] = {
        "description": "border0's connector_authentication_enabled; left out, left alone.",
        "type": "boolean"}
    defs["connectorName"] = {
        "description": "A connector name: letters, digits, '-', '_' and '.'.",
        "type": "string", "pattern": "^[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$",
        "errorMessage": "must be a connector name: letters, digits, '.', '_' and '-'"}
    socket_rules(spec)
    SCHEMA.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["sdk"]:
        return write_sdk_schema(argv[1:])
    if argv == ["manifest"]:
        return write_manifest_schema()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
