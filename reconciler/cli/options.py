"""What every command shares: exit codes, the one-line error handler, the API options and the
options of the listing commands. Command modules import these; nothing here imports them."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click

from reconciler.border0.errors import Border0Error
from reconciler.errors import UserError

__all__ = [
    "EXIT_CHANGES", "EXIT_ERROR", "EXIT_OK", "api_options", "fail", "friendly_errors",
    "instance_option", "list_format_option", "no_policies_option", "secret_root_option",
    "wide_option",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


def fail(message: str, code: int = EXIT_ERROR) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every exception into one line on stderr and exit code 1 (no traceback).

    Set BORDER0_RECONCILER_DEBUG=1 to see the traceback of an unexpected error.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (SystemExit, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.ClickException:
            raise
        except (UserError, Border0Error) as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get("BORDER0_RECONCILER_DEBUG"):
                raise
            fail(
                f"internal error ({type(exc).__name__}); "
                "set BORDER0_RECONCILER_DEBUG=1 to see the traceback"
            )

    return wrapper


def api_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that talks to border0."""
    func = click.option(
        "--api",
        envvar="BORDER0_API",
        default=None,
        help="border0 API base URL, or 'local' for the embedded emulator "
        "[env BORDER0_API; default https://api.border0.com/api/v1].",
    )(func)
    func = click.option(
        "--token-file",
        type=click.Path(dir_okay=False),
        default=None,
        help="File holding the border0 token [else env BORDER0_ADMIN_TOKEN, BORDER0_TOKEN, "
        "BORDER0_AUTH_TOKEN].",
    )(func)
    func = click.option(
        "--state",
        type=click.Path(dir_okay=False),
        default=None,
        help="SQLite file of the embedded emulator with --api local "
        "[default .border0-reconciler/local.db].",
    )(func)
    return func


instance_option = click.option(
    "--instance", default="default", show_default=True,
    help="Ownership instance: MANAGED says this, other (its id) or unmanaged.")
wide_option = click.option("--wide", is_flag=True, help="Do not cut cells to fit 120 columns.")
list_format_option = click.option("--format", "fmt", type=click.Choice(["text", "json"]),
                                  default="text", show_default=True)

#: `{file: PATH}` secrets are read only under these folders (and the manifests' own).
secret_root_option = click.option(
    "--secret-root", "secret_roots", multiple=True, type=click.Path(file_okay=False),
    envvar="BORDER0_SECRET_ROOTS", help="Folder secret files may be read from, repeatable "
    "[env BORDER0_SECRET_ROOTS; default /var/run/secrets, /run/secrets, /etc/secrets; "
    "the manifests' folder always].")

#: Organizations whose access is granted elsewhere (Tailscale PAM: border0's docs say to manage
#: only connectors and sockets there) turn policy management off.
no_policies_option = click.option(
    "--no-policies", "no_policies", is_flag=True, envvar="BORDER0_RECONCILER_NO_POLICIES",
    help="Do not manage border0 policies: no request reads or writes /policies or /policy; "
    "kind: Policy manifests and spec.policies are ignored [env BORDER0_RECONCILER_NO_POLICIES].")
