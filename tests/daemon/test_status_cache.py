"""/status serves its socket and policy rows from bytes encoded once per published report
(issue 26: /status unpaged under 200 ms at 10,000 sockets): the bytes follow every publish,
every connector state change and every change of the redaction set, over real HTTP."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from reconciler.connectors.connector import State
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.logs import RedactFilter
from reconciler.daemon.metrics import DaemonMetrics
from reconciler.daemon.report import Run, summarize
from reconciler.daemon.status import Snapshot, StatusView, status_problems
from reconciler.model import Actual, Desired, LiveSocket, SocketSpec
from reconciler.plan.types import Plan
from reconciler.reconcile import ReconcileResult, Stage

CONFIG = DaemonConfig(path="/m", listen="127.0.0.1:0")


def report_of(descriptions: dict[str, str]):
    """The report of a reconcile that found these sockets in sync."""
    desired = Desired(sockets={n: SocketSpec(n, "http", d) for n, d in descriptions.items()})
    actual = Actual(sockets={n: LiveSocket(f"id-{n}", n, "http", d, dnsname=f"{n}.border0.io")
                             for n, d in descriptions.items()})
    result = ReconcileResult(True, Stage.DONE, plan=Plan(), desired=desired, actual=actual)
    return summarize(result, None, Run("interval", None, time.time(), 0.1, True, CONFIG))


@dataclass
class Connector:
    """What the status view reads of a supervised connector."""

    name: str
    state: State = State.RUNNING
    restarts: int = 0
    last_error: str | None = None


def test_status_rows_follow_each_publish_connector_state_and_redaction_set(status_server):
    published = [Snapshot(report=report_of({"web": "v1", "db": "hunter22-pass"}), reconciles=1)]
    connectors = [Connector("web")]
    redactor = RedactFilter()
    view = StatusView(CONFIG, lambda: published[-1], parts=lambda: (), leader=None,
                      connectors=lambda: list(connectors), metrics=DaemonMetrics())
    http = status_server(view, redactor.redact)

    def rows() -> dict[str, tuple[str, str | None]]:
        document = http.get("/status").json()
        assert status_problems(document) == []
        return {r["name"]: (r["description"], r["connector"]) for r in document["sockets"]}

    first = http.get("/status")
    assert first.text == json.dumps(view.status(), indent=2) + "\n"  # the same text as ever
    assert rows() == {"web": ("v1", "RUNNING"), "db": ("hunter22-pass", None)}

    published.append(Snapshot(report=report_of({"web": "v2"}), reconciles=2))
    assert rows() == {"web": ("v2", "RUNNING")}

    connectors[0] = Connector("web", State.BACKOFF, restarts=1, last_error="exit 1")
    assert rows() == {"web": ("v2", "BACKOFF")}

    published.append(Snapshot(report=report_of({"web": "v2", "db": "hunter22-pass"}),
                              reconciles=3))
    assert rows()["db"] == ("hunter22-pass", None)
    redactor.set_secrets(["hunter22-pass"])  # the next load found it is a secret
    assert rows()["db"] == ("(sensitive)", None)
    assert "hunter22-pass" not in http.get("/status").text
    paged = http.get("/status", params={"limit": 1, "offset": 0}).json()
    assert [(r["name"], r["description"]) for r in paged["sockets"]] == [("db", "(sensitive)")]
