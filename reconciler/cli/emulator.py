"""`emulator`: serve the border0 twin (`border0.emulator.server.serve`) until stopped. Needs the
`local` extra (fastapi, pydantic); without it, one line says how to install it."""

from __future__ import annotations

import click

from reconciler.cli.options import friendly_errors, listen_option, state_option
from reconciler.errors import UserError
from reconciler.secrets import SECRETS

__all__ = ["emulator_command"]

#: The secrets border0 never reads back (emulator/rules.py), named from our one list.
_PASSWORDS = " and ".join(f.name for f in SECRETS if not f.read_back)


@click.command("emulator")
@listen_option("HOST:PORT to serve on (port 0: any free port, printed on start).",
               default="127.0.0.1:8787")
@state_option("SQLite file holding the state [default: in memory, lost on exit].", dest="db")
@click.option("--token", envvar="BORDER0_EMULATOR_TOKEN", default=None,
              help="The token clients must send [env BORDER0_EMULATOR_TOKEN; required].")
@click.option("--org", default="local", show_default=True,
              help="Organization subdomain used in dnsnames (<name>-<org>.border0.io).")
@click.option("--latency", type=click.FloatRange(min=0), default=0, metavar="MS",
              help="Answer every request MS milliseconds after it arrives.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, metavar="P",
              help="Fail a share P of requests (500 or dropped connection).")
@click.option("--rate-limit", type=click.IntRange(min=0), default=0, metavar="N",
              help="At most N requests a second; beyond that 429 with Retry-After.")
@click.option("--read-after-write-delay", type=click.IntRange(min=0), default=0, metavar="MS",
              help="Reads see the state before a write for MS ms after it (a lagging "
                   "replica); /serverinfo reports it as rx_after_tx_delay_ms.")
@click.option("--secrets-on-read", type=click.Choice(["omit", "mask", "clear"]),
              envvar="BORDER0_EMULATOR_SECRETS_ON_READ", default="omit", show_default=True,
              help=f"How answers show {_PASSWORDS} "
                   "[env BORDER0_EMULATOR_SECRETS_ON_READ, also read by --api local].")
@click.option("--seed", type=int, default=None, help="Seed for the fault dice (repeatable runs).")
@click.option("--access-log", is_flag=True, help="Log one line per request.")
@friendly_errors
def emulator_command(listen: str, db: str | None, token: str | None, org: str, latency: float,
                     fail_rate: float, rate_limit: int, read_after_write_delay: int,
                     secrets_on_read: str, seed: int | None, access_log: bool) -> None:
    """Serve a border0-compatible API (sockets, policies) on SQLite, for tests and local use."""
    import sqlite3

    from reconciler.border0.session import missing_local_extra
    from reconciler.serving import parse_listen

    try:
        from reconciler.border0.emulator.server import ServeOptions, serve
    except ModuleNotFoundError as exc:
        message = missing_local_extra(exc)
        if message is None:
            raise
        raise UserError(message) from None

    if not token:
        raise UserError("the emulator needs a token: --token or BORDER0_EMULATOR_TOKEN")
    try:
        parse_listen(listen)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    options = ServeOptions(
        listen=listen, db=db, token=token, org=org, latency_ms=latency, fail_rate=fail_rate,
        rate_limit=rate_limit, read_after_write_delay_ms=read_after_write_delay,
        access_log=access_log, seed=seed, secrets_on_read=secrets_on_read,
    )
    try:
        code = serve(options)
    except sqlite3.Error as exc:
        raise UserError(f"cannot use database {db}: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    raise SystemExit(code)
