"""The connector command line: a template rendered into an argv list (never a shell string).

A template is split with `shlex` first and each token is rendered on its own, so a value with
spaces stays one argument and nothing a manifest says can inject shell syntax. Placeholders:

    {name}            socket name                 {socket_id}   border0 socket id
    {type}            socket type (http, tls, ...)  {python}      this interpreter (sys.executable)
    {host} {port}     spec.connector.host / port   {socket_port} first TCP port border0 allocated
    {socket_ports}    all allocated ports, comma-separated
    {httpserver_dir}  the folder the web server serves (spec.connector.httpserverDir or the
                      empty placeholder), only with httpserver
    {identity_file} {proxy}  the spec.connector fields of the same name
    {flags}           the seed CLI's optional flags set in the spec: --httpserver,
                      --httpserver_dir D, --sshserver, --identity_file F, --proxy P
    {local_flags}     the local connector's: --httpserver, --httpserver-dir D, --sshserver

A token that uses a placeholder with no value is left out, and so is the option right before it
when the token is only that placeholder: `--port {port}` disappears as a whole when the spec sets
no port. `{flags}` and `{local_flags}` expand to zero or more arguments and must stand alone.
Write `{{` and `}}` for literal braces. The border0 token is never a placeholder: it reaches the
child through its environment.

The built-in web server never serves the reconciler's own files: a socket with `httpserver` and
no `httpserverDir` gets an empty placeholder folder (never the working directory), and a folder
that holds (or is) one of the `protected` paths (the manifests, the state, the token and env
files) is refused with `UnsafeWebRoot`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shlex
import string
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reconciler.model import ConnectorSpec

__all__ = [
    "DEFAULT_TEMPLATE",
    "LOCAL_CONNECTOR_TEMPLATE",
    "PLACEHOLDERS",
    "ConnectorTarget",
    "TemplateError",
    "UnsafeWebRoot",
    "child_command",
    "empty_web_root",
    "env_for_token",
    "render_command",
    "validate_template",
    "web_root",
]

DEFAULT_TEMPLATE = "border0 socket connect {name} --host {host} --port {port} {flags}"

#: The template used with `--api local`: the built-in stand-in for `border0 socket connect`.
LOCAL_CONNECTOR_TEMPLATE = (
    "{python} -m reconciler local-connector {name} --listen-port {socket_port} "
    "--host {host} --port {port} {local_flags}"
)

_LIST_PLACEHOLDERS = ("flags", "local_flags")
PLACEHOLDERS = (
    "name",
    "socket_id",
    "type",
    "python",
    "host",
    "port",
    "socket_port",
    "socket_ports",
    "httpserver_dir",
    "identity_file",
    "proxy",
    *_LIST_PLACEHOLDERS,
)


class TemplateError(ValueError):
    """A connector command template that cannot be rendered (bad syntax, unknown placeholder)."""


class UnsafeWebRoot(ValueError):
    """An httpserverDir that holds the reconciler's own files (manifests, state, token)."""


@functools.cache
def empty_web_root() -> str:
    """The folder served when a socket turns the web server on without naming one: empty,
    0700, made once per process and removed at exit (if still empty)."""
    path = tempfile.mkdtemp(prefix="border0-reconciler-empty-web-root-")
    atexit.register(_remove_if_empty, path)
    return path


def _remove_if_empty(path: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)


def web_root(directory: str | None, protected: Iterable[str] = ()) -> str:
    """The folder the built-in web server may serve: `directory` unless it is, or contains, one
    of `protected` (symlinks resolved); the empty placeholder when none is given."""
    if not directory:
        return empty_web_root()
    served = os.path.realpath(directory)
    inside = served.rstrip(os.sep) + os.sep
    for path in protected:
        real = os.path.realpath(path)
        if real == served or real.startswith(inside):
            raise UnsafeWebRoot(
                f"httpserverDir {directory!r} holds {path}: the built-in web server may not "
                "serve the reconciler's own files; name a folder of its own"
            )
    return directory


@dataclass(frozen=True)
class ConnectorTarget:
    """One connector the supervisor should keep running: the socket's connector spec and the
    live socket facts (id, allocated ports) the command may need."""

    name: str
    spec: ConnectorSpec
    socket_type: str
    socket_id: str
    tcp_ports: tuple[int, ...] = ()
    #: A `border0 connector start` process (connectors/agents.py): its argv, used as is (no
    #: template), and the environment it adds (its own connector token): never the admin
    #: token's. Part of equality: a rotated token restarts this process and no other.
    argv: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)


def _seed_flags(spec: ConnectorSpec, served: str | None) -> list[str]:
    flags: list[str] = []
    if spec.httpserver:
        flags.append("--httpserver")
    if served:  # always given with --httpserver: border0's connector would serve its CWD
        flags += ["--httpserver_dir", served]
    if spec.sshserver:
        flags.append("--sshserver")
    if spec.identity_file:
        flags += ["--identity_file", spec.identity_file]
    if spec.proxy:
        flags += ["--proxy", spec.proxy]
    return flags


def _local_flags(spec: ConnectorSpec, served: str | None) -> list[str]:
    flags: list[str] = []
    if served:
        flags += ["--httpserver", "--httpserver-dir", served]
    if spec.sshserver:
        flags.append("--sshserver")
    return flags


def _values(
    target: ConnectorTarget, protected: Iterable[str]
) -> dict[str, str | list[str] | None]:
    spec = target.spec
    serving = spec.httpserver or bool(spec.httpserver_dir)
    served = web_root(spec.httpserver_dir, protected) if serving else None
    return {
        "name": target.name,
        "socket_id": target.socket_id or None,
        "type": target.socket_type or None,
        "python": sys.executable,
        "host": spec.host or None,
        "port": str(spec.port) if spec.port is not None else None,
        "socket_port": str(target.tcp_ports[0]) if target.tcp_ports else None,
        "socket_ports": ",".join(str(p) for p in target.tcp_ports) or None,
        "httpserver_dir": served,
        "identity_file": spec.identity_file or None,
        "proxy": spec.proxy or None,
        "flags": _seed_flags(spec, served),
        "local_flags": _local_flags(spec, served),
    }


def _parse_token(token: str) -> list[tuple[str, str | None]]:
    """(literal, field name or None) pairs of one token; TemplateError if malformed."""
    try:
        parts = list(string.Formatter().parse(token))
    except ValueError as exc:
        raise TemplateError(f"connector command template: {exc} in {token!r}") from None
    out: list[tuple[str, str | None]] = []
    for literal, field_name, format_spec, conversion in parts:
        if field_name is not None:
            if field_name not in PLACEHOLDERS:
                raise TemplateError(
                    f"connector command template: unknown placeholder {{{field_name}}}; "
                    f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
                )
            if format_spec or conversion:
                raise TemplateError(
                    f"connector command template: {{{field_name}}} takes no format or conversion"
                )
        out.append((literal, field_name))
    return out


def _split(template: str) -> list[str]:
    try:
        tokens = shlex.split(template)
    except ValueError as exc:
        raise TemplateError(f"connector command template: {exc}") from None
    if not tokens:
        raise TemplateError("connector command template is empty")
    return tokens


def render_command(
    template: str, target: ConnectorTarget, protected: Iterable[str] = ()
) -> list[str]:
    """The argv for `target`'s connector; see the module docstring for the rules (UnsafeWebRoot
    when its httpserverDir holds one of the `protected` paths)."""
    values = _values(target, protected)
    argv: list[str] = []
    last_was_option = False  # the previous argv entry is a literal option from the template
    for token in _split(template):
        parts = _parse_token(token)
        fields = [f for _, f in parts if f is not None]
        only_field = len(parts) == 1 and parts[0][0] == "" and fields
        if any(f in _LIST_PLACEHOLDERS for f in fields):
            if not only_field:
                raise TemplateError(
                    f"connector command template: {{{fields[0]}}} must be a token on its own"
                )
            argv += values[fields[0]]  # type: ignore[operator]
            last_was_option = False
            continue
        if any(values[f] is None for f in fields):
            if only_field and last_was_option:
                argv.pop()
            last_was_option = False
            continue
        argv.append("".join(lit + (str(values[f]) if f else "") for lit, f in parts))
        last_was_option = not fields and token.startswith("-")
    if not argv:
        raise TemplateError("connector command template renders to nothing")
    return argv


def validate_template(template: str) -> None:
    """Raise TemplateError now (at start-up) rather than when the first connector starts."""
    for token in _split(template):
        _parse_token(token)
    render_command(
        template,
        ConnectorTarget("example", ConnectorSpec(host="h", port=1), "tls", "id", (1,)),
    )


def env_for_token(token: str | None) -> Mapping[str, str]:
    """The environment entries that hand the border0 token to a connector (never argv)."""
    return {"BORDER0_ADMIN_TOKEN": token, "BORDER0_TOKEN": token} if token else {}


#: Every variable a border0 tool reads a token from (CLI, Terraform provider, Go SDK): none of
#: them reaches a `connector start` child except its own BORDER0_TOKEN.
_ALL_TOKEN_VARS = ("BORDER0_ADMIN_TOKEN", "BORDER0_TOKEN", "BORDER0_AUTH_TOKEN")


def child_command(
    template: str, target: ConnectorTarget, protected: Iterable[str],
    child_env: Mapping[str, str], admin_tokens: Iterable[str],
) -> tuple[list[str], Mapping[str, str]]:
    """(argv, environment) of a connector process. A `connector start` target (its own argv)
    gets our environment without any token variable and without any value that holds the
    admin token, plus its own (its connector token as BORDER0_TOKEN); a legacy one renders
    the template and gets `child_env`. The admin token on a command line is refused."""
    admin = tuple(t for t in admin_tokens if t)
    argv = list(target.argv) or render_command(template, target, protected)
    if any(t in arg for t in admin for arg in argv):
        raise TemplateError("the border0 token may not appear on a connector command line")
    if not target.argv:
        return argv, child_env
    env = {k: v for k, v in child_env.items()
           if k not in _ALL_TOKEN_VARS and not any(t in v for t in admin)}
    env.update(target.env)
    return argv, env
