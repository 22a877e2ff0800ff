"""`local-connector NAME`: the stand-in for `border0 socket connect` that `--api local` runs
(`connectors.local.run_local_connector`)."""

from __future__ import annotations

import click

from reconciler.cli.options import friendly_errors
from reconciler.errors import UserError

__all__ = ["local_connector_cmd"]


@click.command("local-connector")
@click.argument("name")
@click.option("--listen-port", type=click.IntRange(1, 65535), required=True,
              help="Port to listen on: the socket's allocated port (socket_tcp_ports[0]).")
@click.option("--listen-host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--host", default="localhost", show_default=True, help="Upstream host to forward to.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Upstream port to forward to (required unless --httpserver or --sshserver).")
@click.option("--httpserver", is_flag=True, help="Serve a directory over HTTP instead of forwarding.")
@click.option("--sshserver", is_flag=True,
              help="Stand-in for the built-in ssh server: forward to this machine's sshd "
              "(--host, --port default 22).")
@click.option("--httpserver-dir", "--httpserver_dir", "httpserver_dir",
              type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory for --httpserver [default: an empty temporary one].")
@friendly_errors
def local_connector_cmd(name: str, listen_port: int, listen_host: str, host: str,
                        port: int | None, httpserver: bool, sshserver: bool,
                        httpserver_dir: str | None) -> None:
    """A local stand-in for `border0 socket connect`, used with --api local.

    Listens on LISTEN_HOST:LISTEN_PORT and forwards TCP to HOST:PORT, or serves a directory
    with --httpserver. Runs until SIGTERM (exit 0).
    """
    from reconciler.connectors.local import LocalConnectorOptions, run_local_connector
    from reconciler.serving import ListenError

    if sshserver and port is None:
        port = 22
    if port is None and not httpserver:
        raise UserError("--port is required unless --httpserver or --sshserver is given")
    opts = LocalConnectorOptions(
        name=name, listen_port=listen_port, host=host, port=port, httpserver=httpserver,
        httpserver_dir=httpserver_dir, listen_host=listen_host, sshserver=sshserver,
    )
    try:
        code = run_local_connector(opts)
    except ListenError as exc:
        raise UserError(str(exc)) from None
    raise SystemExit(code)
