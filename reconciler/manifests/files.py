"""Around the manifests: which files to read, and env files (KEY=VALUE) for secret references.

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
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from reconciler.errors import UserError

__all__ = ["SUFFIXES", "EnvFileError", "discover", "environment", "read_env_file"]

SUFFIXES = (".yaml", ".yml")


def discover(
    paths: Sequence[str | os.PathLike[str]], problem: Callable[[str, str, bool], None]
) -> list[Path]:
    """Manifest files under `paths`, in a stable order, hidden entries skipped.

    A directory is read recursively (a symlinked root is followed, symlinked subdirectories
    are not); a file named explicitly is read whatever its suffix. `problem(path, message,
    is_error)` is called for a path that cannot be listed (True) or holds no manifest (False).
    """
    files: list[Path] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
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
        root = Path(raw)
        if root.is_dir():  # follows a symlinked root (git-sync swaps one)
            before = len(files)
            for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith(".") and name.lower().endswith(SUFFIXES):
                        add(Path(dirpath, name))
            if len(files) == before:
                problem(str(root), "no manifest files (*.yaml, *.yml) in this directory", False)
        elif root.exists() or root.is_symlink():
            add(root)
        else:
            problem(str(root), "no such file or directory", True)
    return files


class EnvFileError(UserError, ValueError):
    """An env file that cannot be read or parsed; the message never holds a value."""


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """KEY=VALUE lines (`export` allowed), `#` comments, values optionally quoted."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
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
