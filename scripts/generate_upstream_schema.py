"""Generate the JSON Schema of border0's upstream configuration from the Go SDK's own types.

    python scripts/generate_upstream_schema.py BORDER0_GO_CHECKOUT [OUTPUT]

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
    non-empty; `x.Embedded.Validate()`: the embedded struct's requirements too.
- secret fields (passwords, private keys, AWS secret keys...) are marked `"writeOnly": true`
  from a list below, checked against the parsed names.
Rules a JSON Schema cannot hold (PEM parsing, AWS regions, header characters, CIDRs) are not
in it; docs/border0-operations.md says so.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _rules(go: Go, struct: str) -> list[dict[str, Any]]:
    if struct not in go.validates:
        return []
    recv, body, _ = go.validates[struct]
    required, embedded = _top_level(body, recv)
    rules: list[dict[str, Any]] = []
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
        "description": "Generated by scripts/generate_upstream_schema.py from "
                       f"borderzero/border0-go {commit} types/service (structs and their "
                       "Validate methods). Do not edit by hand.",
        "$ref": "#/$defs/Configuration",
        "$defs": {name: _struct_schema(go, name) for name in sorted(go.structs)},
    }


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    sources, commit = sources_of(Path(argv[0]))
    out = Path(argv[1]) if len(argv) > 1 else OUTPUT
    out.write_text(json.dumps(generate(sources, commit), indent=1) + "\n")
    print(f"wrote {out} from border0-go {commit[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
