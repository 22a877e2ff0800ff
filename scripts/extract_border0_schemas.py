"""Extract what the emulator's request checks need from border0's reference OpenAPI document.

    python scripts/extract_border0_schemas.py [REFERENCE] [OUTPUT]

defaults: tests/reference/border0-openapi.json -> reconciler/border0/emulator/reference_requests.json

The extract holds, for the socket and policy paths only: every (method, path) the reference
knows, their query parameters, the request body schemas with every schema they reference, and
the field names of the answers (a request field that is only in an answer is "read-only").
tests/test_emulator_contract.py re-runs this and asserts the shipped file is what it produces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "tests" / "reference" / "border0-openapi.json"
OUTPUT = REPO / "reconciler" / "border0" / "emulator" / "reference_requests.json"
#: The paths whose operations the reconciler and the emulator use (and their sub-paths).
PATH_PREFIXES = ("/socket", "/sockets", "/policies", "/policy")
#: Answer schemas whose fields a client may read but not write.
ANSWERS = ("serializer.Socket", "serializer.Policy")
_PREFIX = "#/components/schemas/"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _relink(node: Any) -> Any:
    """`#/components/schemas/X` -> `#/schemas/X` (the extract's own layout)."""
    if isinstance(node, dict):
        return {k: ("#/schemas/" + v[len(_PREFIX):] if k == "$ref" else _relink(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_relink(v) for v in node]
    return node


def extract(doc: dict[str, Any]) -> dict[str, Any]:
    components = doc["components"]["schemas"]
    operations: dict[str, Any] = {}
    wanted: list[str] = []
    for path, item in sorted(doc["paths"].items()):
        if not path.startswith(PATH_PREFIXES) or path.split("/")[1] not in {
            p.strip("/") for p in PATH_PREFIXES
        }:
            continue
        for method, op in sorted(item.items()):
            if not isinstance(op, dict):
                continue
            query = sorted(p["name"] for p in op.get("parameters", []) if p.get("in") == "query")
            entry: dict[str, Any] = {"query": query}
            content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            if content:
                entry["body"] = content["schema"]
                wanted += _refs(content["schema"])
            operations[f"{method.upper()} {path}"] = entry
    schemas: dict[str, Any] = {}
    while wanted:
        name = wanted.pop()[len(_PREFIX):]
        if name not in schemas:
            schemas[name] = components[name]
            wanted += _refs(components[name])
    return _relink({
        "source": "tests/reference/border0-openapi.json (extract; regenerate with "
                  "scripts/extract_border0_schemas.py)",
        "operations": operations,
        "schemas": dict(sorted(schemas.items())),
        "answer_fields": {name: sorted(components[name]["properties"]) for name in ANSWERS},
    })


def render(doc: dict[str, Any]) -> str:
    return json.dumps(extract(doc), indent=1, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    reference = Path(argv[0]) if argv else REFERENCE
    output = Path(argv[1]) if len(argv) > 1 else OUTPUT
    output.write_text(render(json.loads(reference.read_text())))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
