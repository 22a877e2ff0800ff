"""Where commands get their API client: a remote border0 or the embedded emulator (`local`).

Resolution order (as border0's CLI and Terraform provider): base URL from `--api`, else
`BORDER0_API`, else https://api.border0.com/api/v1; token from `--token-file`, else the first
set of `TOKEN_VARIABLES`: `BORDER0_ADMIN_TOKEN` (the CLI's), `BORDER0_TOKEN` (the Terraform
provider's), `BORDER0_AUTH_TOKEN` (the Go SDK's). A remote API without a token is refused before
any request is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from reconciler.border0.client import DEFAULT_API, Border0Client
from reconciler.border0.errors import ConfigurationError

__all__ = [
    "DEFAULT_STATE",
    "LOCAL_EXTRA",
    "LOCAL_TOKEN",
    "TOKEN_VARIABLES",
    "missing_local_extra",
    "open_api",
    "private_state_dir",
    "resolve_token",
]

#: The embedded emulator's token: it listens on loopback only and lives as long as the command.
LOCAL_TOKEN = "border0-reconciler-local"
DEFAULT_STATE = ".border0-reconciler/local.db"
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
) -> Iterator[Border0Client]:
    """A client for the chosen API; with `local`, the embedded emulator runs meanwhile.

    `say` hears what the user should know meanwhile: a retry while border0 does not answer,
    a new local state file (so a run from another folder never plans against an empty
    organization unnoticed)."""
    env = os.environ if env is None else env
    api = (api or env.get("BORDER0_API") or DEFAULT_API).strip()
    if api == "local":
        with _local(state, say) as client:
            client.on_retry = say
            yield client
        return
    if not api.startswith(("http://", "https://")):
        raise ConfigurationError(f"bad --api {api!r}: give an http(s) URL or 'local'")
    token = resolve_token(token_file, env)
    with Border0Client(api, token) as client:
        client.on_retry = say
        yield client


def private_state_dir(directory: Path, *, always: bool) -> None:
    """Create the state directory 0700 (the database in it holds plaintext secrets), whatever
    the umask. An existing one is made 0700 too when `always` (the default
    `.border0-reconciler`, which older versions created 0755); a folder the user named with
    `--state` that existed already is left as it is (the database itself is 0600 anyway)."""
    created = not directory.exists()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if created or always:
        directory.chmod(0o700)


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
def _local(state: str | None, say: Callable[[str], None] | None) -> Iterator[Border0Client]:
    try:
        from reconciler.border0.emulator.embedded import EmbeddedEmulator  # fastapi: on use
    except ModuleNotFoundError as exc:
        message = missing_local_extra(exc)
        if message is None:
            raise
        raise ConfigurationError(f"--api local: {message}") from None

    path = Path(state or DEFAULT_STATE)
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
