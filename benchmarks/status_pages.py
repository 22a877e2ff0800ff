"""/status and the status page with 10,000 sockets (issue 26: /status under 200 ms).

The daemon's report of one reconcile of N sockets is made once (`report.summarize`, as the loop
does); the status server then answers from that snapshot over real HTTP on 127.0.0.1. Prints
the median and worst of 20 requests for a page of sockets, the whole list, and the status page.

    python benchmarks/status_pages.py [--sockets 10000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.metrics import DaemonMetrics
from reconciler.daemon.report import Run, summarize
from reconciler.daemon.status import Snapshot, StatusView
from reconciler.daemon.status_server import StatusServer
from reconciler.model import Actual, Desired, LiveSocket, SocketSpec
from reconciler.plan.types import Plan
from reconciler.reconcile import ReconcileResult, Stage

GOAL_MS = 200.0


def snapshot(n: int) -> Snapshot:
    names = [f"svc-{i:06}" for i in range(n)]
    desired = Desired(sockets={name: SocketSpec(name, "http", "a service") for name in names})
    actual = Actual(sockets={name: LiveSocket(f"id-{i}", name, "http", "a service",
                                              dnsname=f"{name}.border0.io", tcp_ports=(20000,))
                             for i, name in enumerate(names)})
    result = ReconcileResult(True, Stage.DONE, plan=Plan(), desired=desired, actual=actual)
    started = time.perf_counter()
    report = summarize(result, None, Run("interval", None, time.time(), 1.0, True,
                                         DaemonConfig(path="/m")))
    print(f"summarize of {n:,} sockets: {(time.perf_counter() - started) * 1000:.0f} ms "
          "(once per reconcile, on the loop's thread)")
    return Snapshot(report=report, reconciles=1)


def timed(client: httpx.Client, path: str, params: dict[str, str]) -> tuple[float, float, int]:
    times, size = [], 0
    for _ in range(20):
        started = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return statistics.median(times), max(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    n = parser.parse_args().sockets
    snap = snapshot(n)
    config = DaemonConfig(path="/m", listen="127.0.0.1:0")
    view = StatusView(config, lambda: snap, parts=lambda: (), leader=None,
                      connectors=list, metrics=DaemonMetrics())
    server = StatusServer(view, "127.0.0.1:0")
    host, port = server.bind()
    server.start()
    try:
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as client:
            print(f"{'request':<38} {'median ms':>10} {'max ms':>8} {'bytes':>11}  goal")
            for label, path, params in (
                ("/status?limit=100", "/status", {"limit": "100"}),
                ("/status?limit=100&offset=9000", "/status", {"limit": "100", "offset": "9000"}),
                ("/ (status page, one page of rows)", "/", {}),
                ("/status?limit=100&sort=-name&filter=s", "/status",
                 {"limit": "100", "sort": "-name", "filter": "s"}),
                ("/?sort=-ports&filter=s (every socket)", "/", {"sort": "-ports", "filter": "s"}),
                (f"/status (all {n:,} sockets)", "/status", {}),
            ):
                median, worst, size = timed(client, path, params)
                goal = (f"< {GOAL_MS:.0f} ms" if ("limit" in params or path == "/")
                        and "sort" not in params else "-")
                print(f"{label:<38} {median:>10.1f} {worst:>8.1f} {size:>11,}  {goal}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
