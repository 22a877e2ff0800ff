"""`{file: PATH}` secrets are read only from allowed places (issue 12, item 2).

Before: `password: {file: /proc/self/environ}` sent the process environment, border0 token
included, to border0 as a socket's upstream password.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers import cli

from reconciler.manifests.loader import load
from reconciler.manifests.secret_files import DEFAULT_SECRET_ROOTS, MAX_SECRET_BYTES, allowed_roots

MARKER = "Env-Marker-That-Must-Not-Leave-71c3"


def manifest(folder: Path, target: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s.yaml"
    path.write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: web\nspec:\n"
        f"  type: http\n  protected:\n    username: u\n    password: {{file: {target}}}\n"
    )
    return path


def problem(folder: Path, **kw) -> str:
    result = load([folder], env={}, **kw)
    errors = [str(d) for d in result.diagnostics]
    assert len(errors) == 1 and not result.ok, errors
    return errors[0]


def test_proc_self_environ_is_refused_and_nothing_reaches_border0(emulator, tmp_path: Path):
    path = manifest(tmp_path / "m", "/proc/self/environ")
    token_file = tmp_path / "token"
    token_file.write_text(emulator.token)
    code, out, err = cli(["apply", str(tmp_path / "m"), "--api", emulator.url, "--token-file",
                          str(token_file), "--auto-approve"], env={"SOME_SECRET": MARKER})
    assert code == 1, (out, err)
    assert (f"{path}:9:15: error: spec.protected.password: secret file /proc/self/environ is "
            "under /proc: secret files are never read from /proc, /sys or /dev") in err
    assert MARKER not in out + err and emulator.token not in out + err
    assert "Traceback" not in err
    assert emulator.client().list_sockets() == []


def test_kernel_and_device_files_and_what_is_not_a_regular_file_are_refused(tmp_path: Path):
    for target, reason in (
        ("/sys/kernel/hostname", "is under /sys"),
        ("/dev/zero", "is under /dev"),
        ("/proc/1/environ", "is under /proc"),
    ):
        manifest(tmp_path / "m", target)
        assert f"secret file {target} {reason}" in problem(tmp_path / "m")
    os.mkfifo(tmp_path / "m" / "pipe")
    (tmp_path / "m" / "folder").mkdir()
    for name in ("pipe", "folder"):
        manifest(tmp_path / "m", name)
        assert problem(tmp_path / "m").endswith(f"{name}: not a regular file")


def test_symlinks_are_resolved_before_the_check(tmp_path: Path):
    folder = tmp_path / "m"
    folder.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "pw").write_text("hunter2\n")
    (folder / "env-link").symlink_to("/proc/self/environ")
    (folder / "out-link").symlink_to(outside / "pw")
    manifest(folder, "env-link")
    assert "is under /proc: secret files are never read" in problem(folder)
    manifest(folder, "out-link")
    message = problem(folder)
    assert "is outside the allowed secret folders" in message and "--secret-root" in message
    assert "hunter2" not in message
    manifest(folder, "../elsewhere/pw")
    assert "is outside the allowed secret folders" in problem(folder)

    # allowed with its folder as a secret root (the flag, or BORDER0_SECRET_ROOTS)
    result = load([folder], env={}, secret_roots=[str(outside)])
    assert result.ok, result.diagnostics
    assert result.desired.sockets["web"].secret("protected_password").value == "hunter2"
    code, out, _ = cli(["validate", str(folder), "--env-file", os.devnull],
                       env={"BORDER0_SECRET_ROOTS": str(outside)})
    assert code == 0, out
    code, out, _ = cli(["validate", str(folder), "--env-file", os.devnull])
    assert code == 1 and "outside the allowed secret folders" in out


def test_the_defaults_cover_kubernetes_secret_mounts_and_the_manifests(tmp_path: Path):
    (tmp_path / "m").mkdir()
    roots = allowed_roots(None, [tmp_path / "m"])
    for root in ("/var/run/secrets", "/etc/secrets", "/run/secrets"):
        assert root in DEFAULT_SECRET_ROOTS and os.path.realpath(root) in roots
    assert str((tmp_path / "m").resolve()) in roots
    assert allowed_roots(["/srv/s"], [tmp_path / "a.yaml"]) == ("/srv/s", str(tmp_path.resolve()))


def test_a_secret_file_over_the_size_limit_is_refused(tmp_path: Path):
    folder = tmp_path / "m"
    manifest(folder, "big")
    (folder / "big").write_text("x" * (MAX_SECRET_BYTES + 1))
    assert problem(folder).endswith(
        f"secret file {folder / 'big'} is larger than the limit of {MAX_SECRET_BYTES} bytes")
    # within the file limit, yet over border0's 100 characters for a protected password
    (folder / "big").write_text("x" * MAX_SECRET_BYTES)
    assert problem(folder).endswith(
        f"spec.protected.password: the value from file:big is {MAX_SECRET_BYTES} characters; "
        "border0 accepts at most 100")
    (folder / "big").write_text("x" * 100)
    assert load([folder], env={}).ok
