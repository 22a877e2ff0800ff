"""Bounded input (issue 12, item 10): a huge manifest is refused quickly, in little memory, with
one error naming the file and the limit.

Before: a 50 MB manifest of `key: value` lines grew to 7.2 GB before being killed at 120 s, and
4.4 million labels on one socket validated "ok" after 28 s. Each load here runs in a child
process that reports its own peak memory (VmHWM) and the load's duration; the
duration bound is only a generous guard (the figures are in benchmarks/README.md).
"""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import pytest
from helpers import PYTHON, REPO, cli

from reconciler.manifests.loader import load

HEADER = "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: web\n"
PROBE = """
import json, re, sys, time
from pathlib import Path
from reconciler.manifests.loader import load
started = time.monotonic()
result = load([sys.argv[1]])
# VmHWM is this program's own peak: getrusage's ru_maxrss carries over exec from the forking
# parent (a pytest process of 250 MB would count as this probe's memory).
hwm_kb = int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({
    "seconds": time.monotonic() - started,
    "peak_mb": hwm_kb / 1024,
    "errors": [str(d) for d in result.diagnostics if d.severity.value == "error"][:5],
}))
"""


def probe(path: Path, memory_cap_mb: int | None = None) -> dict:
    """Load `path` in a child process: its errors, the load's seconds, the peak memory (MB).
    `memory_cap_mb` caps the child's address space, so a load that would not stay bounded
    fails (MemoryError) instead of taking the machine's memory."""

    def cap() -> None:
        if memory_cap_mb is not None:
            limit = memory_cap_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run([PYTHON, "-c", PROBE, str(path)], capture_output=True, text=True,
                          timeout=120, cwd=str(REPO), check=False, preexec_fn=cap)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def write_lines(path: Path, head: str, line: str, count: int) -> None:
    """`head` then `line` formatted with 0..count-1, written in large chunks."""
    with path.open("w") as handle:
        handle.write(head)
        for start in range(0, count, 100_000):
            handle.write("".join(line.format(i) for i in range(start, min(count, start + 100_000))))


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_a_50_mb_manifest_is_refused_at_once_naming_the_file_and_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    write_lines(big, "", "key{}: value\n", 3_000_000)
    assert big.stat().st_size > 50_000_000
    seen = probe(big)
    assert seen["errors"] == [
        (f"{big}: error: file is {big.stat().st_size:,} bytes, over the limit of 1,048,576 "
         "bytes per manifest file (split it into several files)")
    ]
    assert seen["peak_mb"] < 200, seen
    print(f"\n50 MB file: {seen}")  # the seconds a figure, not an assertion (issue 25)
    code, out, err = cli(["validate", str(tmp_path)], timeout=60)
    assert code == 1 and "Traceback" not in out + err
    assert "over the limit of 1,048,576 bytes per manifest file" in out


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_millions_of_labels_are_refused_quickly_and_so_is_the_65th(tmp_path: Path) -> None:
    (tmp_path / "huge").mkdir()
    huge = tmp_path / "huge" / "labels.yaml"
    write_lines(huge, HEADER + "  labels:\n", "    k{}: v\n", 4_400_000)
    with huge.open("a") as handle:
        handle.write("spec:\n  type: http\n")
    seen = probe(huge.parent)
    assert len(seen["errors"]) == 1 and "over the limit of 1,048,576 bytes" in seen["errors"][0]
    assert seen["errors"][0].startswith(f"{huge}: error:")
    assert seen["peak_mb"] < 200, seen
    print(f"\n4,400,000 labels: {seen}")

    # within the file and document limits, the schema's limit on labels
    dense = tmp_path / "dense"
    dense.mkdir()
    write_lines(dense / "labels.yaml", HEADER + "  labels:\n", "    k{}: v\n", 4_000)
    with (dense / "labels.yaml").open("a") as handle:
        handle.write("spec:\n  type: http\n")
    assert (dense / "labels.yaml").stat().st_size < 64 * 1024
    seen = probe(dense)
    assert seen["errors"] == [
        f"{dense / 'labels.yaml'}:6:5: error: metadata.labels: 4,000 entries, over the limit of 64"
    ]
    assert seen["peak_mb"] < 200, seen
    print(f"\n4,000 labels: {seen}")


def test_a_document_over_the_limit_is_refused_with_its_line(tmp_path: Path) -> None:
    """In this process: the subject is the error and its line, not the load's memory."""
    small = HEADER + "spec:\n  type: http\n"
    text = small + "---\n" + HEADER + "  labels:\n" + "".join(
        f"    key-{i}: {'v' * 40}\n" for i in range(12_000)
    ) + "spec:\n  type: http\n"
    (tmp_path / "m.yaml").write_text(text)
    errors = [str(d) for d in load([str(tmp_path)]).diagnostics if d.severity.value == "error"]
    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path / 'm.yaml'}:7:1: error: document is ")
    assert errors[0].endswith("over the limit of 65,536 bytes per YAML document")


def test_list_lengths_and_strings_have_limits_in_the_schema(tmp_path: Path) -> None:
    names = ", ".join(f"p{i}" for i in range(101))
    (tmp_path / "s.yaml").write_text(
        HEADER + f"spec:\n  type: http\n  externalPolicies: [{names}]\n"
        "---\napiVersion: border0-reconciler/v1\nkind: Policy\nmetadata:\n  name: many\n"
        "spec:\n  policyData:\n    version: v1\n    action: [http]\n    condition:\n"
        "      who:\n        email: [" + ", ".join(f"u{i}@example.com" for i in range(1001))
        + "]\n"
    )
    code, out, _ = cli(["validate", str(tmp_path)], timeout=60)
    assert code == 1
    assert "spec.externalPolicies: 101 items, over the limit of 100" in out
    assert "spec.policyData.condition.who.email: 1,001 items, over the limit of 1,000" in out


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_aliases_of_a_long_string_are_refused_not_spelled_out(tmp_path: Path) -> None:
    """Six levels of nine aliases of one 10,000-character string: 600,000 values (under the
    limit on values) but 5 GB of text. Found by probing with hostile YAML: `spec` is a list
    where a mapping goes, and jsonschema words that as the whole value's repr, so the load ran
    out of memory (an "internal error" under a cap, the machine's memory without one)."""

    def nested(level: int) -> str:
        if level == 0:
            return '"' + "x" * 10_000 + '"'
        return f"[&a{level - 1} {nested(level - 1)}" + f", *a{level - 1}" * 8 + "]"

    (tmp_path / "bomb.yaml").write_text(HEADER + f"spec: {nested(6)}\n")
    assert (tmp_path / "bomb.yaml").stat().st_size < 11_000
    seen = probe(tmp_path, memory_cap_mb=1500)
    assert seen["errors"] == [
        (f"{tmp_path / 'bomb.yaml'}:1:1: error: YAML syntax error: document expands to more "
         "than 1,000,000 values or 16,777,216 characters through aliases (an alias bomb?)")
    ]
    assert seen["peak_mb"] < 200, seen


@pytest.mark.timeout(120)
@pytest.mark.slow
def test_an_env_file_that_never_ends_is_refused_at_its_limit(tmp_path: Path) -> None:
    """`--env-file /dev/zero` was read whole: memory grew until it ran out (the child's
    address space is capped here so that shows as a MemoryError, not the machine's memory)."""
    (tmp_path / "m.yaml").write_text(HEADER + "spec:\n  type: http\n")

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1500 * 1024 * 1024, 1500 * 1024 * 1024))

    proc = subprocess.run(
        [PYTHON, "-m", "reconciler", "validate", str(tmp_path), "--env-file", "/dev/zero"],
        capture_output=True, text=True, timeout=60, cwd=str(REPO), check=False, preexec_fn=cap)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1, "", "error: cannot read env file /dev/zero: over the limit of 1,048,576 bytes\n")
