"""The README is a front door and docs/ holds the rest (issue 25): the README stays short and
opens with the two set-up commands, every relative link in it and in docs/ resolves (file and
#anchor, by GitHub's anchor rules), and the generated references are what their scripts write
now, so a schema or an option changed without regenerating fails here."""

from __future__ import annotations

import importlib.util
import itertools
import re
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote

import pytest
from helpers import REPO
from markdown_it import MarkdownIt

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
#: The other pages of the repository, whose links are checked too.
OTHER_PAGES = [REPO / "CHANGELOG.md", *sorted(REPO.glob("benchmarks/*.md")),
               *sorted(REPO.glob("charts/*/README.md")), *sorted(REPO.glob("examples/**/*.md"))]
#: The README's contract: these two commands, first, as they are.
SET_UP = [
    ("pip install '.[local]' && border0-reconciler apply examples/ --api local "
    "--env-file examples/demo.env --auto-approve"),
    "pip install '.[test]' && python -m pytest -q",
]
GENERATED = {
    "docs/manifests.md": "scripts/gen_manifest_docs.py",
    "docs/cli.md": "scripts/gen_cli_docs.py",
}

_md = MarkdownIt("commonmark").enable("table")


def anchors(text: str) -> set[str]:
    """The #anchors GitHub gives a page's headings: the heading's text, lowercased, without
    punctuation but `-` and `_`, spaces as `-`, and `-1`, `-2` ... for repeats."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    tokens = _md.parse(text)
    for opening, inline in itertools.pairwise(tokens):
        if opening.type != "heading_open":
            continue
        words = "".join(c.content for c in inline.children or () if c.type in ("text", "code_inline"))
        slug = re.sub(r"[^\w\- ]", "", words.strip().lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return found


def links(text: str) -> list[str]:
    """Every link and image target of a page, outside code (markdown-it's reading of it)."""
    targets: list[str] = []
    for block in _md.parse(text):
        for token in block.children or ():
            if token.type == "link_open":
                targets.append(str(token.attrs["href"]))
            elif token.type == "image":
                targets.append(str(token.attrs["src"]))
    return targets


@cache
def _anchors_of(path: Path) -> frozenset[str]:
    return frozenset(anchors(path.read_text()))


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    """The relative links of `page` that name a missing file (or one outside `root`) or a
    missing #anchor."""
    broken = []
    for target in links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        if not target:
            broken.append("() (an empty link)")
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / unquote(path)).resolve() if path else page
        if not file.exists() or root not in (file, *file.parents):
            broken.append(f"{target} (no file {file})")
        elif anchor and file.suffix == ".md" and unquote(anchor) not in _anchors_of(file):
            broken.append(f"{target} (no heading #{anchor} in {file.relative_to(root)})")
    return broken


def test_anchors_follow_githubs_rules() -> None:
    text = "# Endpoints (`--listen`, default 127.0.0.1:9479)\n\n## `run` and `status`\n\n## Run\n\n## run\n"
    assert anchors(text) == {"endpoints---listen-default-1270019479", "run-and-status", "run", "run-1"}


def test_the_link_check_catches_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "concepts.md").write_text("# Concepts\n\n## Drift\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](concepts.md#drift) [no file](nowhere.md) [no anchor](concepts.md#nowhere)"
                    " [out](../x.md) [empty]() `[code](x.md)`\n\n```\n[block](y.md)\n```\n")
    assert [b.split(" ")[0] for b in broken_links(page, root=tmp_path)] == [
        "nowhere.md", "concepts.md#nowhere", "../x.md", "()"]


def test_the_readme_is_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 200
    commands = [line for line in lines if line.startswith("pip install")]
    assert commands[:2] == SET_UP
    # nothing but the title and a short introduction before them
    assert lines.index(SET_UP[0]) < 25


@pytest.mark.parametrize("page", PAGES + OTHER_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_docs_index_names_every_page() -> None:
    index = (REPO / "docs" / "README.md").read_text()
    named = {Path(target.partition("#")[0]).name for target in links(index)}
    pages = {p.name for p in PAGES if p.parent.name == "docs" and p.name != "README.md"}
    assert pages - named == set()


def _script(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_manifest_reference_is_current() -> None:
    """CI's check that a schema did not change without `python scripts/gen_manifest_docs.py`."""
    script = GENERATED["docs/manifests.md"]
    assert (REPO / "docs/manifests.md").read_text() == _script(script).render(), f"run: python {script}"


@pytest.mark.slow  # the generator runs in a process of its own (click caches a command's help)
def test_the_command_reference_is_current() -> None:
    """CI's check that an option did not change without `python scripts/gen_cli_docs.py`. In a
    process of its own: click caches a command's help option the first time it is asked for, so
    a test that ran `run` alone (no group, so no `-h`) would change this process's --help."""
    run = subprocess.run([sys.executable, str(REPO / GENERATED["docs/cli.md"]), "--check"],
                         check=False, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr
