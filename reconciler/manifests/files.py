"""Around the manifests: which files to read, reading them within limits, knowing whether they
changed while being read, and env files (KEY=VALUE) for secret references.

Every command with `--env-file` (plan, apply, run, validate, ls) gets its variables from
`environment()`: the file's lines over os.environ.

Env files are read by this module's own small parser, not python-dotenv, because dotenv cannot
do what the format needs: its public API (`dotenv_values`) skips a malformed line with a logged
warning, where we must refuse the file with ``FILE:LINE: expected KEY=VALUE`` (only its
undocumented `dotenv.parser` sees lines, and its line numbers count from the blank lines and
comments before one); it accepts keys that are no variable name (``1X``, ``a.b``, quoted keys)
and a bare ``KEY`` without ``=``; and its escapes differ (``\\$`` stays ``\\$`` in double
quotes, backslashes are decoded in single quotes), which would silently change secret values
read from existing files.

A file is read through one open descriptor (a FIFO or device is refused instead of blocking, a
file over MAX_FILE_BYTES before a byte is read) and stamped with what it was when read (size,
mtime_ns, inode). `changed_since()` compares the stamps and the file list with the disk again
after loading: a writer that was half-way through a file (an editor writing in place, `git pull`,
`cp -r`) is noticed, and the daemon loads again later instead of acting on half a file.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from reconciler.errors import UserError

__all__ = [
    "MAX_ENV_FILE_BYTES",
    "MAX_FILE_BYTES",
    "STDIN",
    "SUFFIXES",
    "EnvFileError",
    "FileTooLarge",
    "Stamp",
    "changed_since",
    "discover",
    "environment",
    "excluded",
    "newest_change",
    "read_env_file",
    "read_manifest_file",
    "stamp",
]

SUFFIXES = (".yaml", ".yml")
#: The largest manifest file read (3,000 sockets in one file would be about 1 MB).
MAX_FILE_BYTES = 1024 * 1024


class Stamp(NamedTuple):
    """What a file was when read; equal stamps mean an unchanged file. The change time is in
    it as in the parse cache's identity (`cache._identity`): a rewrite that keeps the size and
    the modification time (`cp -p`, `rsync -a --inplace`, two writes in one timestamp tick)
    still changes it, so the daemon plans the edit and counts the grace from it."""

    size: int
    mtime_ns: int
    inode: int
    device: int
    ctime_ns: int


def _stamp_of(info: os.stat_result) -> Stamp:
    return Stamp(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev, info.st_ctime_ns)


#: The PATH `-` (kubectl's and Terraform's convention): manifests read from standard input,
#: named `<stdin>` in diagnostics; relative secret files are relative to the working folder.
STDIN = "-"
_STDIN_FILE = Path("<stdin>")
_STDIN_NAME = str(_STDIN_FILE)
_STDIN_STAMP = Stamp(0, 0, 0, 0, 0)  # read once and kept: it cannot change while being read
#: (the stream read, its bytes): read once per stream, so a second call in the same process
#: with another standard input (click's CliRunner, an embedding program) reads the new one.
_stdin_read: list[tuple[object, bytes]] = []


def _read_stdin() -> bytes:
    """Standard input, read once per stream (up to the size limit)."""
    import sys

    if not _stdin_read or _stdin_read[0][0] is not sys.stdin:
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise FileTooLarge(len(data))
        _stdin_read[:] = [(sys.stdin, data)]
    return _stdin_read[0][1]


def stamp(path: str | os.PathLike[str]) -> Stamp | None:
    """The file's stamp now (symlinks followed), None when it is gone."""
    if str(path) == _STDIN_NAME:  # not Path(path) ==: stamped 3 times a file per daemon load
        return _STDIN_STAMP
    try:
        return _stamp_of(os.stat(path))
    except OSError:
        return None


class FileTooLarge(OSError):
    """A manifest file over MAX_FILE_BYTES; it is not read."""

    def __init__(self, size: int) -> None:
        super().__init__(
            errno.EFBIG,
            f"file is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,} bytes per manifest "
            "file (split it into several files)",
        )


def read_manifest_file(path: Path) -> tuple[bytes, Stamp]:
    """The bytes of a regular file and its stamp; OSError for a FIFO, device or too big a file."""
    if path == _STDIN_FILE:
        return _read_stdin(), _STDIN_STAMP
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise FileTooLarge(info.st_size)
        data = handle.read(MAX_FILE_BYTES + 1)  # a file growing while read is capped too
        if len(data) > MAX_FILE_BYTES:
            raise FileTooLarge(len(data))
        return data, _stamp_of(info)


def changed_since(
    paths: Sequence[str | os.PathLike[str]],
    files: Sequence[Path],
    stamps: Mapping[Path, Stamp | None],
) -> list[str]:
    """Files that changed, appeared or went away since they were stamped (empty: a stable
    snapshot). `stamps` holds every file of `files` that was read."""
    changed = [str(f) for f in files if f in stamps and stamp(f) != stamps[f]]
    now = discover(paths, lambda *_: None)
    if now != list(files):
        changed += sorted({str(f) for f in set(now) ^ set(files)}) or ["(the list of files)"]
    return changed


def newest_change(
    paths: Sequence[str | os.PathLike[str]],
    files: Sequence[Path],
    stamps: Mapping[Path, Stamp | None],
) -> float:
    """The newest modification time (seconds since the epoch) of the files and of the folders
    that hold them: a folder's changes when a file in it is created, renamed or removed."""
    newest = max((s.mtime_ns for s in stamps.values() if s is not None), default=0)
    folders = {str(f.parent) for f in files} | {str(p) for p in paths}
    for folder in folders:
        try:
            newest = max(newest, os.stat(folder).st_mtime_ns)
        except OSError:
            continue
    return newest / 1e9


def excluded(relative: str, patterns: Sequence[str]) -> bool:
    """Whether a path under a root (posix, relative to it) matches an `--exclude` pattern, as
    .gitignore reads them: a pattern without `/` matches any one name (`templates`,
    `Chart.yaml`, `*.tpl.yaml`), one with `/` the path from the root (`charts/*`, `ci/**`);
    a folder that matches excludes everything in it."""
    parts = relative.split("/")
    for raw in patterns:
        pattern = raw.strip("/")
        if "/" not in pattern:
            if any(fnmatch.fnmatchcase(part, pattern) for part in parts):
                return True
        elif any(fnmatch.fnmatchcase("/".join(parts[: n + 1]), pattern)
                 for n in range(len(parts))):
            return True
    return False


def discover(
    paths: Sequence[str | os.PathLike[str]],
    problem: Callable[[str, str, bool], None],
    exclude: Sequence[str] = (),
) -> list[Path]:
    """Manifest files under `paths`, in a stable order, hidden entries skipped.

    A directory is read recursively (a symlinked root is followed, symlinked subdirectories
    are not); a file named explicitly is read whatever its suffix. `problem(path, message,
    is_error)` is called for a path that cannot be listed (True) or holds no manifest (False).
    Inside a directory, files and folders matching an `exclude` pattern (`excluded`) are left out.
    """
    files: list[Path] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        """Keep `path` unless an earlier PATH already gave the same file (a folder named
        twice, a file and its folder): each file is read once, silently."""
        if len(paths) == 1:  # one walk never yields a file twice
            files.append(path)
            return
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            files.append(path)

    def walk_error(exc: OSError) -> None:
        problem(str(exc.filename), f"cannot read directory: {exc.strerror}", True)

    for raw in paths:
        if str(raw) == STDIN:
            if _STDIN_FILE not in files:  # `- -`: read once, as any path named twice
                files.append(_STDIN_FILE)
            continue
        root = Path(raw)
        if root.is_dir():  # follows a symlinked root (git-sync swaps one)
            found = False  # manifests in this folder, even ones an earlier PATH gave
            for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error):
                rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
                prefix = "" if rel == "." else rel + "/"
                dirnames[:] = sorted(
                    d for d in dirnames
                    if not d.startswith(".") and not (exclude and excluded(prefix + d, exclude))
                )
                for name in sorted(filenames):
                    if name.startswith(".") or not name.lower().endswith(SUFFIXES):
                        continue
                    if not (exclude and excluded(prefix + name, exclude)):
                        add(Path(dirpath, name))
                        found = True
            if not found:
                problem(str(root), "no manifest files (*.yaml, *.yml) in this directory", False)
        elif root.exists() or root.is_symlink():
            add(root)
        else:
            problem(str(root), "no such file or directory", True)
    return files


class EnvFileError(UserError, ValueError):
    """An env file that cannot be read or parsed; the message never holds a value."""


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


#: The largest env file read. A pipe stays allowed (`--env-file <(sops -d prod.env)`), so the
#: size is capped as it is read: `--env-file /dev/zero` grew until memory ran out.
MAX_ENV_FILE_BYTES = 1024 * 1024


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """KEY=VALUE lines (`export` allowed), `#` comments, values optionally quoted."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_ENV_FILE_BYTES + 1)
        if len(raw) > MAX_ENV_FILE_BYTES:
            raise EnvFileError(f"cannot read env file {path}: over the limit of "
                               f"{MAX_ENV_FILE_BYTES:,} bytes")
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise EnvFileError(f"cannot read env file {path}: {reason}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            raise EnvFileError(f"{path}:{number}: expected KEY=VALUE")
        key, value = match.groups()
        if value[:1] in ("'", '"'):
            value = _unquote(value, f"{path}:{number}: malformed quoted value for {key}")
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
        values[key] = value
    return values


def environment(env_file: str | os.PathLike[str] | None) -> dict[str, str]:
    """os.environ with `env_file`'s variables over it (just os.environ without one)."""
    env = dict(os.environ)
    if env_file:
        env.update(read_env_file(env_file))
    return env


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _unquote(value: str, problem: str) -> str:
    """A quoted env value: single quotes literal, double quotes with backslash escapes."""
    quote, out, i = value[0], [], 1
    while i < len(value):
        char = value[i]
        if char == quote:
            if value[i + 1 :].strip()[:1] not in ("", "#"):
                raise EnvFileError(problem)
            return "".join(out)
        if char == "\\" and quote == '"' and i + 1 < len(value):
            out.append(_ESCAPES.get(value[i + 1], "\\" + value[i + 1]))
            i += 2
            continue
        out.append(char)
        i += 1
    raise EnvFileError(problem)
