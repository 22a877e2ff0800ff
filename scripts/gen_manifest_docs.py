"""Write docs/manifests.md, the field reference of every manifest kind, from schemas/.

    python scripts/gen_manifest_docs.py          # write it
    python scripts/gen_manifest_docs.py --check  # exit 1 if it is not what the schemas give

The schemas are the one home of the manifest format (their descriptions are what an editor
shows); this page is made from them so it cannot say something else. tests/test_docs.py fails
when a schema changed and this script was not run.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docgen import write_or_check  # a sibling module: on the path above

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
OUT = ROOT / "docs" / "manifests.md"
#: The kinds, in the order manifest.schema.json dispatches on them.
MANIFEST = SCHEMAS / "manifest.schema.json"

Schema = dict[str, Any]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(value: Any) -> str:
    """A value as YAML shows it; a string that YAML would read as something else is quoted."""
    text = value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, str) and (value in ("true", "false", "null", "") or value.isdigit()):
        text = json.dumps(value)
    return f"`{text}`".replace("|", "\\|")


def _branches(node: Schema) -> list[Schema]:
    """The subschemas a value may also have to match: then/else, oneOf, anyOf, allOf's."""
    found = [node[k] for k in ("then", "else") if k in node] + node.get("oneOf", []) + node.get("anyOf", [])
    for rule in node.get("allOf", []):
        found += _branches(rule) + ([rule] if "$ref" in rule else [])
    return found


def _anchor(name: str) -> str:
    return re.sub(r"[^\w\- ]", "", name.lower()).replace(" ", "-")


class Kind:
    """One schema's rows: a field per row, and its shared definitions ($defs) once each."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.defs: Schema = schema.get("$defs", {})
        self.used: list[str] = []  # the $defs referred to, in order of first use

    def ref(self, node: Schema) -> str | None:
        target = node.get("$ref", "")
        if not target.startswith("#/$defs/"):
            return None
        name = target.removeprefix("#/$defs/")
        if name not in self.used:
            self.used.append(name)
        return name

    def type_of(self, node: Schema) -> str:
        """What a value looks like, in words: the type, the allowed values, the bounds."""
        name = self.ref(node)
        if name:
            return f"[{name}](#{_anchor(self.title + ' ' + name)})"
        branches = [b for b in _branches(node) if "$ref" in b]
        if branches and "properties" not in node and "type" not in node or branches and node.get("if"):
            return " or ".join(self.type_of(b) for b in branches)
        also = f"; see {' or '.join(self.type_of(b) for b in branches)}" if branches else ""
        if "const" in node:
            return _code(node["const"])
        if "enum" in node:
            return " \\| ".join(dict.fromkeys(_code(v) for v in node["enum"]))
        kind = node.get("type", "")
        kinds = kind if isinstance(kind, list) else [kind] if kind else []
        words = [k for k in kinds if k != "null"]
        text = " or ".join(words) or "any"
        if "array" in words and isinstance(node.get("items"), dict):
            text = text.replace("array", f"list of {self.type_of(node['items'])}")
        if "object" in words and isinstance(node.get("additionalProperties"), dict):
            text = text.replace("object", f"map of {self.type_of(node['additionalProperties'])}")
        bounds = [f"{word} {node[key]}" for key, word in (
            ("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥"), ("maxLength", "length ≤"),
            ("minItems", "items ≥"), ("maxItems", "items ≤"), ("maxProperties", "entries ≤"),
        ) if key in node and not (key == "minLength" and node[key] == 1)]
        if "pattern" in node:
            bounds.append(f"pattern {_code(node['pattern'])}")
        if "format" in node:
            bounds.append(node["format"])
        return text + (f" ({', '.join(bounds)})" if bounds else "") + also

    def rows(self, node: Schema, path: str, required: bool) -> list[str]:
        """This field's row, then its fields' rows (a $ref is a row linking to its definition)."""
        description = node.get("description", "")
        if "default" in node:
            description += f" Default: {_code(node['default'])}."
        out = [f"| `{path}` | {self.type_of(node)} | {'yes' if required else ''} | {_cell(description)} |"]
        if "$ref" not in node:
            out += self.fields(node, path)
        return out

    def fields(self, node: Schema, prefix: str) -> list[str]:
        out: list[str] = []
        required = set(node.get("required", []))
        items = node.get("items")
        if isinstance(items, dict) and "properties" in items:
            return self.fields(items, f"{prefix}[]")
        for name, child in node.get("properties", {}).items():
            out += self.rows(child, f"{prefix}.{name}" if prefix else name, name in required)
        return out

    def render(self) -> list[str]:
        self.title = self.schema["title"].removeprefix("border0-reconciler ")
        lines = [f"## {self.title}", "", _cell(self.schema.get("description", "")), "",
                 "| field | type | required | meaning |", "|---|---|---|---|",
                 *self.fields(self.schema, "")]
        done: set[str] = set()
        while len(done) < len(self.used):  # definitions may refer to more definitions
            name = next(n for n in self.used if n not in done)
            done.add(name)
            node = self.defs[name]
            lines += ["", f"### {self.title} {name}", ""]
            if node.get("description"):
                lines += [_cell(node["description"]), ""]
            table = self.fields(node, "")
            if table:
                lines += ["| field | type | required | meaning |", "|---|---|---|---|", *table]
            else:
                lines.append(f"A value of type {self.type_of({k: v for k, v in node.items() if k != 'description'})}.")
        return lines


def kinds() -> list[Path]:
    manifest = json.loads(MANIFEST.read_text())
    return [SCHEMAS / rule["then"]["$ref"] for rule in manifest["allOf"]]


def render() -> str:
    lines = [
        "# Manifest fields",
        "",
        "<!-- Generated by scripts/gen_manifest_docs.py from schemas/; do not edit by hand. -->",
        "",
        ("Every field of every manifest kind, from the JSON Schemas in [`schemas/`](../schemas/)"
        " (the same text an editor with yaml-language-server shows). How manifests are read,"
        " secrets, annotations, labels and the checks beyond the schema:"
        " [writing-manifests.md](writing-manifests.md). A path `a.b[]` is a field of each item of"
        " the list `a.b`."),
        "",
        *(f"- [{json.loads(p.read_text())['title'].removeprefix('border0-reconciler ')}]"
          f"(#{_anchor(json.loads(p.read_text())['title'].removeprefix('border0-reconciler '))})"
          f" ([`schemas/{p.name}`](../schemas/{p.name}))" for p in kinds()),
    ]
    for path in kinds():
        lines += ["", *Kind(json.loads(path.read_text())).render()]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(OUT, render(), argv, "gen_manifest_docs.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
