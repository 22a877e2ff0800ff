"""The wheel alone validates: the schemas ship inside it, no source tree needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from helpers import REPO

SCRIPT = (
    "import reconciler, reconciler.manifests.loader as m; "
    "print(reconciler.__file__); print(m.schema_path('manifest')); "
    "from reconciler.cli import main; main()"
)

#: The status page rendered from the installed package: its templates load from the wheel.
PAGE_SCRIPT = (
    "import reconciler.daemon.dashboard as d; print(d.__file__); "
    "print(d.render_page({'instance': 'x', 'sockets': [{'name': 'web', 'state': 'in-sync'}]})[0])"
)


@pytest.mark.slow
def test_the_installed_wheel_validates_outside_the_source_tree(tmp_path):
    dist, site, work = tmp_path / "dist", tmp_path / "site", tmp_path / "work"
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    [wheel] = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for schema in ("manifest", "socket", "policy"):
        assert f"reconciler/schemas/{schema}.schema.json" in names
    for asset in ("dashboard.html", "dashboard.js", "dashboard.css"):  # the status page
        assert f"reconciler/daemon/templates/{asset}" in names
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    work.mkdir()
    for part in ("sockets", "policies"):
        shutil.copytree(REPO / "examples" / part, work / "examples" / part)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("BORDER0_RECONCILER_DEBUG", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", SCRIPT, *args],
            check=False,
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    page = subprocess.run(
        [sys.executable, "-c", PAGE_SCRIPT], check=False, cwd=work, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert page.returncode == 0, page.stderr
    assert page.stdout.startswith(str(site)) and "<td><strong>web</strong>" in page.stdout

    proc = run("validate", "examples")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines[0].startswith(str(site)) and lines[1].startswith(str(site))
    files = len(list((work / "examples").glob("*/*.yaml")))
    assert lines[-1] == f"ok: 8 sockets, 4 policies in {files} files (8 warnings)"
    # (8 warnings: the legacy examples, docs/migration.md)

    (work / "examples" / "sockets" / "web.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: web\n"
        "spec:\n  type: htp\n"
    )
    proc = run("validate", "examples")
    assert proc.returncode == 1
    assert (
        "examples/sockets/web.yaml:6:9: error: spec.type: 'htp' is not one of http, https, ssh, "
        "tls, database, vnc, rdp, vpn, kubernetes, subnet_router, exit_node, snowflake, "
        "elasticsearch, aws_s3, aws_access (did you mean 'http'?)" in proc.stdout
    )

    # The emulator's request contract ships in the wheel too (its extract of the reference).
    assert "reconciler/border0/emulator/reference_requests.json" in names
    code = ("from reconciler.border0.emulator.contract import check; "
            "print(check('POST', '/socket', [], {'name': 'a', 'socket_type': 'ssh', 'x': 1}))")
    checked = subprocess.run(
        [sys.executable, "-c", code],
        check=False, cwd=work, env=env, capture_output=True, text=True, timeout=60,
    )
    assert "unknown field 'x'" in checked.stdout, checked.stdout + checked.stderr
