"""docs/upstream-fields.md: the table from each typed `spec.upstream` field to border0's JSON
name is generated from the schema, is up to date, covers every socket type, and says what the
reconciler's one conversion (`upstream.camel`) does."""

from __future__ import annotations

import re
import runpy

from helpers import REPO

from reconciler.upstream import SERVICE_TYPES, camel

DOC = REPO / "docs" / "upstream-fields.md"
ROW = re.compile(r"^\| `([^`]+)` \| `([a-z0-9_]+)` \|")


def test_the_committed_table_is_what_the_schema_generates():
    script = runpy.run_path(str(REPO / "scripts" / "upstream_fields_doc.py"))
    assert DOC.read_text() == script["render"](), (
        "docs/upstream-fields.md is stale: run python scripts/upstream_fields_doc.py")


def test_each_row_is_the_camel_case_of_its_sdk_name_and_every_type_has_its_block():
    rows = [m.groups() for line in DOC.read_text().splitlines() if (m := ROW.match(line))]
    assert len(rows) > 250
    for manifest, sdk in rows:
        leaf = manifest.rsplit(".", 1)[-1].removesuffix("[]")
        assert camel(sdk) == leaf, (manifest, sdk)
    blocks = {manifest for manifest, _ in rows if "." not in manifest}
    assert {camel(f"{t}_service_configuration") for t in SERVICE_TYPES} <= blocks
