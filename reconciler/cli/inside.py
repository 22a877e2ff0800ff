"""Files written into a folder the user named (`import DIR`) stay inside it.

A planted symbolic link (`DIR/.env.example -> ~/.bashrc`, `DIR/sockets -> /etc`) must not carry
a write outside DIR, nor a hard link carry it into another file. So: every folder below DIR is
opened with O_NOFOLLOW | O_DIRECTORY, step by step from DIR's own descriptor, and a file is
written as a new file (O_CREAT | O_EXCL | O_NOFOLLOW) beside its target, then renamed over it:
a rename replaces a link itself, never what it points to. A symbolic link where a file or folder
is to be written is refused with one message before anything is written (`check`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from reconciler.errors import UserError

__all__ = ["check", "read_text", "write_text"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _parts(rel: str | os.PathLike[str]) -> tuple[str, ...]:
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise UserError(f"refusing to write {rel}: not a plain path inside the folder")
    return parts


def _refusal(root: Path, rel: str, what: str) -> UserError:
    return UserError(
        f"refusing to write {root / rel}: {what}; nothing was written (writes stay inside "
        f"{root}: remove it, or import into another folder)"
    )


def check(root: Path, rels: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse (UserError, nothing written) when a file to write, or a folder on its way, is a
    symbolic link, is not what it should be, or (a file) has other hard links."""
    for rel in rels:
        parts = _parts(rel)
        here = root
        for i, part in enumerate(parts):
            here = here / part
            try:
                st = here.lstat()
            except FileNotFoundError:
                break
            except OSError as exc:
                raise _refusal(root, str(rel), exc.strerror or str(exc)) from None
            last = i == len(parts) - 1
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(here)
                raise _refusal(root, str(PurePosixPath(*parts[: i + 1])),
                               f"it is a symbolic link (to {target})")
            if not last and not stat.S_ISDIR(st.st_mode):
                raise _refusal(root, str(PurePosixPath(*parts[: i + 1])), "it is not a folder")
            if last and not stat.S_ISREG(st.st_mode):
                raise _refusal(root, str(rel), "it is not a regular file")
            if last and st.st_nlink > 1:
                raise _refusal(root, str(rel), f"it has {st.st_nlink - 1} other hard link(s)")


@contextlib.contextmanager
def _folder(root: Path, parts: tuple[str, ...], *, create: bool) -> Iterator[int]:
    """A descriptor of root/parts[:-1], walked without following any link."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refusal(root, part, "it is a symbolic link or not a folder") from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def read_text(root: Path, rel: str) -> str | None:
    """root/rel's text, or None when it does not exist; never through a link."""
    parts = _parts(rel)
    with _folder(root, parts, create=False) as dir_fd:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refusal(root, rel, "it is a symbolic link") from None
            raise
        with os.fdopen(fd, encoding="utf-8") as f:
            return f.read()


def write_text(root: Path, rel: str, text: str) -> Path:
    """Write root/rel (folders made as needed) as a new file renamed over the old one."""
    parts = _parts(rel)
    with _folder(root, parts, create=True) as dir_fd:
        tmp = f".{parts[-1]}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o666, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, parts[-1], src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    return root / rel
