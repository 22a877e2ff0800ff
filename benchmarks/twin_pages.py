"""The twin's cost per request (issue 26): a walk of N sockets in pages of 100 and of 1,000
against `python -m reconciler emulator` in a child process, one page after the other, with
the reconciler's client; the twin's CPU per socket shows whether a walk stays linear in N (an
OFFSET scan made it grow with N squared). Also 1,000 creates, 10 at a time (apply's shape).

    python benchmarks/twin_pages.py [--sockets 10000,40000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reconciler.border0.client import Border0Client
from reconciler.border0.emulator.store import Store

TOKEN = "bench-twin-token"


def seeded(folder: Path, n: int) -> Path:
    db = folder / f"twin-{n}.db"
    store = Store(str(db), port_range=(1024, 1024 + n + 2000))
    try:
        for i in range(n):
            store.create_socket({"name": f"svc-{i:06}", "socket_type": "http",
                                 "upstream_http_hostname": "10.0.0.1", "description": "a service"})
    finally:
        store.close()
    return db


class Twin:
    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "emulator", "--listen", "127.0.0.1:0",
             "--db", str(db)], env=dict(os.environ, BORDER0_EMULATOR_TOKEN=TOKEN),
            stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        self.url = line.split("listening on ")[1].split()[0]

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def walk(client: Border0Client, page_size: int) -> int:
    page, seen = 1, 0
    while page > 0:
        answer = client._json("GET", "/sockets", params={"page": page, "page_size": page_size})
        seen += len(answer["list"])
        page = answer["pagination"]["next_page"]
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", default="10000,40000")
    sizes = [int(n) for n in parser.parse_args().sockets.split(",")]
    print(f"load {os.getloadavg()[0]:.1f}")
    print(f"{'sockets':>8} {'page':>5} {'walk s':>7} {'ms/page':>8} {'twin CPU s':>11} "
          f"{'us/socket':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            twin = Twin(seeded(Path(tmp), n))
            try:
                with Border0Client(twin.url, TOKEN) as client:
                    walk(client, 100)  # warm: the twin's pages and SQLite's cache
                    for size in (100, 1000):
                        cpu, started = twin.cpu(), time.perf_counter()
                        assert walk(client, size) == n
                        wall, used = time.perf_counter() - started, twin.cpu() - cpu
                        pages = -(-n // size)
                        print(f"{n:>8,} {size:>5} {wall:>7.2f} {wall / pages * 1000:>8.1f} "
                              f"{used:>11.2f} {used / n * 1e6:>10.1f}")
                    cpu, started = twin.cpu(), time.perf_counter()
                    with ThreadPoolExecutor(10) as pool:
                        list(pool.map(lambda i: client.create_socket(
                            {"name": f"new-{i}", "socket_type": "ssh"}), range(1000)))
                    wall, used = time.perf_counter() - started, twin.cpu() - cpu
                    print(f"{'':>8} 1,000 creates, 10 at a time: {wall:.2f} s, twin CPU "
                          f"{used / 1000 * 1000:.2f} ms a create")
            finally:
                twin.stop()


if __name__ == "__main__":
    main()
