"""A test stand-in for `border0 connector start` (python tests/standin_connector.py --state F).

Like border0's connector it authenticates with the connector token in BORDER0_TOKEN against
BORDER0_API and serves the sockets bound to its connector. The real connector is pushed their
configuration over a gRPC control stream (border0-proto connector/connector.proto: Init,
UpdateConfig); this one polls the twin's `GET /connector/config`, a twin-only read with the same
content. Each socket's upstream (the first hostname and port of its upstream_configuration) is
served on a local port by a TCP forwarder; the state file (JSON, rewritten atomically) maps
socket names to those ports, so a test can prove which sockets this process serves and reach
each upstream through it. A refused token (401) ends it with exit code 3 and a line that says so;
SIGTERM ends it with 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

POLL = float(os.environ.get("STANDIN_POLL", "0.2"))


def upstream_address(config: Any) -> tuple[str, int] | None:
    """The first hostname/port pair anywhere in an upstream configuration."""
    if isinstance(config, dict):
        if isinstance(config.get("hostname"), str) and isinstance(config.get("port"), int):
            return config["hostname"], config["port"]
        for value in config.values():
            found = upstream_address(value)
            if found:
                return found
    return None


class Forwarder:
    """Listens on 127.0.0.1:<free port> and pipes each connection to (host, port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe_both, args=(client,), daemon=True).start()

    def _pipe_both(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.server.close()


def write_state(path: Path, served: dict[str, Forwarder]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({name: f.port for name, f in sorted(served.items())}))
    os.replace(tmp, path)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True, type=Path)
    args = parser.parse_args()
    token, api = os.environ.get("BORDER0_TOKEN"), os.environ.get("BORDER0_API")
    if not token or not api:
        print("border0 connector: BORDER0_TOKEN and BORDER0_API are required", flush=True)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    served: dict[str, Forwarder] = {}
    written: dict[str, tuple[str, int]] | None = None
    request = urllib.request.Request(
        api.rstrip("/") + "/connector/config", headers={"Authorization": f"Bearer {token}"})
    while not stop.is_set():
        try:  # urllib, not httpx: a fast start, so a refused token fails while "starting"
            with urllib.request.urlopen(request, timeout=5) as answer:
                config = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                print("border0 connector: authentication failed (401): the connector token "
                      "was refused", flush=True)
                return 3
            stop.wait(POLL)
            continue
        except (OSError, ValueError):
            stop.wait(POLL)
            continue
        wanted = {}
        for item in config.get("sockets") or ():
            address = upstream_address((item.get("config") or {}).get("upstream_configuration"))
            if address:
                wanted[item["name"]] = address
        for name in [n for n in served if wanted.get(n) != served[n].target]:
            served.pop(name).close()
        for name, address in wanted.items():
            if name not in served:
                served[name] = Forwarder(address)
        if wanted != written:
            write_state(args.state, served)
            written = wanted
            print(f"border0 connector: serving {len(served)} socket(s): "
                  f"{', '.join(sorted(served)) or '-'}", flush=True)
        stop.wait(POLL)
    for forwarder in served.values():
        forwarder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
