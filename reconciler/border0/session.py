"""Where commands get their API client: a remote border0 or the embedded emulator (`local`).

Resolution order (as border0's CLI and Terraform provider): base URL from `--api`, else
`BORDER0_API`, else https://api.border0.com/api/v1; token from `--token-file`, else the first
set of `TOKEN_VARIABLES`: `BORDER0_ADMIN_TOKEN` (the CLI's), `BORDER0_TOKEN` (the Terraform
provider's), `BORDER0_AUTH_TOKEN` (the Go SDK's). A remote API without a token is refused before
any request is made.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from reconciler.border0.client import DEFAULT_API, Border0Client
from reconciler.border0.errors import ConfigurationError
from reconciler.private_files import private_dirs
from reconciler.secrets import (
    FINGERPRINT_KEY_ENV,
    FingerprintKeyError,
    load_fingerprint_key,
    use_fingerprint_key,
)

__all__ = [
    "DEFAULT_STATE",
    "LOCAL_EXTRA",
    "LOCAL_TOKEN",
    "STATE_DIR",
    "TOKEN_VARIABLES",
    "local_state",
    "missing_local_extra",
    "open_api",
    "private_state_dir",
    "resolve_token",
    "state_path",
    "use_key",
]

#: The embedded emulator's token: it listens on loopback only and lives as long as the command.
LOCAL_TOKEN = "border0-reconciler-local"
#: The folder of the daemon's and --api local's own files (the state, the connectors' record).
STATE_DIR = ".border0-reconciler"
DEFAULT_STATE = f"{STATE_DIR}/local.db"
#: Token variables, in the order they are read (the first one set wins).
TOKEN_VARIABLES = ("BORDER0_ADMIN_TOKEN", "BORDER0_TOKEN", "BORDER0_AUTH_TOKEN")


def resolve_token(token_file: str | None, env: Mapping[str, str]) -> str:
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read token file {token_file}: {exc.strerror or exc}"
            ) from None
        if not token:
            raise ConfigurationError(f"token file {token_file} is empty")
        return token
    for name in TOKEN_VARIABLES:
        if env.get(name, "").strip():
            return env[name].strip()
    raise ConfigurationError(
        "no border0 token: use --token-file, or set " + ", ".join(TOKEN_VARIABLES[:-1])
        + f" or {TOKEN_VARIABLES[-1]} (or --api local for the embedded emulator)"
    )


@contextmanager
def open_api(
    api: str | None,
    token_file: str | None,
    state: str | None,
    *,
    env: Mapping[str, str] | None = None,
    say: Callable[[str], None] | None = None,
    near: Sequence[str] = (),
) -> Iterator[Border0Client]:
    """A client for the chosen API; with `local`, the embedded emulator runs meanwhile, its
    state `state` or else found from the manifests `near` (`local_state`).

    `say` hears what the user should know meanwhile: a retry while border0 does not answer,
    a new local state file (so a run from another folder never plans against an empty
    organization unnoticed)."""
    env = os.environ if env is None else env
    api = (api or env.get("BORDER0_API") or DEFAULT_API).strip()
    use_key(state_path(state, api, near), state is None, env)
    if api == "local":
        with _local(state, say, near) as client:
            client.on_retry = say
            yield client
        return
    if not api.startswith(("http://", "https://")):
        raise ConfigurationError(f"bad --api {api!r}: give an http(s) URL or 'local'")
    token = resolve_token(token_file, env)
    with Border0Client(api, token) as client:
        client.on_retry = say
        yield client


def state_path(state: str | None, api: str | None, near: Sequence[str] = ()) -> Path:
    """The state file, the one rule for every command: with `--api local` found from the
    manifests' folder (`local_state`); against border0, `--state` or the working directory's
    default. The inventory and the fingerprint key live beside it."""
    if (api or os.environ.get("BORDER0_API") or "").strip() == "local":
        return local_state(state, near)
    return Path(state or DEFAULT_STATE)


def use_key(state: Path, default: bool, env: Mapping[str, str]) -> None:
    """Key this process's secret fingerprints (secrets.py): the environment's key, else the key
    file beside the state (created 0600 on first use); `default`: no --state was given."""
    directory = state.parent
    try:
        if not env.get(FINGERPRINT_KEY_ENV):
            private_state_dir(directory, always=default)
        use_fingerprint_key(load_fingerprint_key(directory, env))
    except FingerprintKeyError as exc:
        raise ConfigurationError(f"secret fingerprint key: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(
            f"secret fingerprint key: cannot create {directory}: {exc.strerror or exc} (set "
            f"{FINGERPRINT_KEY_ENV} to a shared key instead)") from None


def private_state_dir(directory: Path, *, always: bool) -> None:
    """Create the state directory 0700 (the database in it holds plaintext secrets), whatever
    the umask. An existing one is made 0700 too when `always` (the default
    `.border0-reconciler`, which older versions created 0755); a folder the user named with
    `--state` that existed already is left as it is (the database itself is 0600 anyway)."""
    created = not directory.exists()
    private_dirs(directory)
    if created or always:
        directory.chmod(0o700)
    if directory.name == STATE_DIR:
        _ignore_in_git(directory)


def _ignore_in_git(directory: Path) -> None:
    """A `.gitignore` of `*` in the state folder (as pytest and ruff do for their caches): the
    state never shows in `git status` nor reaches a commit, and the user's own .gitignore is
    not touched."""
    ignore = directory / ".gitignore"
    if ignore.exists() or ignore.is_symlink():
        return
    try:
        fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# border0-reconciler's own files (its local state holds secrets): "
                    "never in git\n*\n")
    except OSError:
        pass  # a read-only checkout: documented in docs/hardening.md


def _manifests_folder(near: Sequence[str]) -> Path:
    """The folder the manifests `near` share (a file counts as its folder); the working
    directory when none is given."""
    folders = []
    for p in near:
        path = Path(p).resolve()
        folders.append(path if path.is_dir() or not path.suffix else path.parent)
    if not folders:
        return Path.cwd().resolve()
    return Path(os.path.commonpath([str(f) for f in folders]))


def _searched(near: Sequence[str]) -> list[Path]:
    """The folders `local_state` looks in: the manifests' folder, then, inside a git
    repository, each folder above it up to the repository's root (as git finds `.git`)."""
    start = _manifests_folder(near)
    upwards = [start, *start.parents]
    root = next((i for i, f in enumerate(upwards) if (f / ".git").exists()), None)
    return upwards[: root + 1] if root is not None else [start]


def local_state(state: str | None, near: Sequence[str] = ()) -> Path:
    """The --api local state file: `state` when given; else `.border0-reconciler/local.db` in
    the manifests' folder or, inside a git repository, the nearest folder above it that has
    one; a new one goes in the manifests' folder. Never the working directory's by accident:
    `apply` run from elsewhere finds the same state."""
    if state:
        return Path(state)
    searched = _searched(near)
    for folder in searched:
        if (folder / DEFAULT_STATE).exists():
            return folder / DEFAULT_STATE
    return searched[0] / DEFAULT_STATE


def _sockets_in(path: Path) -> int:
    """How many sockets a state file holds (0 when it cannot be read as one)."""
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM sockets").fetchone()[0])
    except (sqlite3.Error, OSError, ValueError):
        return 0


def _refuse_a_second_state(path: Path, near: Sequence[str]) -> None:
    """No state where the manifests' is looked for, but the working directory holds one with
    sockets in it (where earlier versions kept it, or a run from that folder made it): starting
    an empty one would plan every socket again, so say where we looked instead."""
    here = Path.cwd() / DEFAULT_STATE
    if path.exists() or not here.exists() or here.resolve() == path.resolve():
        return
    count = _sockets_in(here)
    if not count:
        return
    looked = ", ".join(str(f / DEFAULT_STATE) for f in _searched(near))
    raise ConfigurationError(
        f"--api local: no state for these manifests (looked in {looked}), but {here} holds "
        f"{count} socket(s) (earlier versions kept the state in the working directory): pass "
        f"--state {here}, or move it to {path}"
    )


#: The emulator's web framework (fastapi, pydantic) is an optional extra: the daemon and the
#: CLI against border0 do not need it.
LOCAL_EXTRA = "pip install 'border0-reconciler[local]'"


def missing_local_extra(exc: ModuleNotFoundError) -> str | None:
    """The one message for an emulator used without the `local` extra, else None."""
    if (exc.name or "").split(".")[0] not in ("fastapi", "pydantic"):
        return None
    return f"the border0 emulator needs the optional 'local' extra ({exc.name} is not " \
        f"installed): {LOCAL_EXTRA}"


@contextmanager
def _local(state: str | None, say: Callable[[str], None] | None,
           near: Sequence[str] = ()) -> Iterator[Border0Client]:
    try:
        from reconciler.border0.emulator.embedded import EmbeddedEmulator  # fastapi: on use
    except ModuleNotFoundError as exc:
        message = missing_local_extra(exc)
        if message is None:
            raise
        raise ConfigurationError(f"--api local: {message}") from None

    path = local_state(state, near)
    if state is None:
        _refuse_a_second_state(path, near)
    if say is not None and not path.exists():
        say(f"--api local: creating a new, empty state file {path.resolve()}")
    try:
        private_state_dir(path.parent, always=state is None)
    except OSError as exc:
        raise ConfigurationError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    emulator = EmbeddedEmulator()
    secrets = os.environ.get("BORDER0_EMULATOR_SECRETS_ON_READ", "").strip() or "omit"
    if secrets not in ("omit", "mask", "clear"):
        raise ConfigurationError(
            f"BORDER0_EMULATOR_SECRETS_ON_READ={secrets!r}: use omit, mask or clear")
    try:
        url = emulator.start(str(path), LOCAL_TOKEN, secrets_on_read=secrets)
    except Exception as exc:  # a broken state file, an unwritable directory
        raise ConfigurationError(f"cannot start the local emulator on {path}: {exc}") from exc
    try:
        with Border0Client(url, LOCAL_TOKEN, backoff_base=0.1, backoff_max=2.0) as client:
            yield client
    finally:
        emulator.stop()
