"""The contract test (issue 11 §3): every request the reconciler's client sends, anywhere in the
test suite, is checked against border0's reference request schemas; the session fails if any
uses an operation, query parameter or body field border0's API does not know.

How: `httpx.Client.send` is wrapped (in this process, and through `contract_site/
sitecustomize.py` in every Python child process a test starts: the CLI, the daemon) so each
request carrying the client's User-Agent (`border0-reconciler/…`) is checked with
`reconciler.border0.emulator.contract.check`, the emulator's own check (one home), and one
JSON line (test id, operation, problems; never a value) is appended to the file named by
BORDER0_CONTRACT_LOG. At session end `pytest_sessionfinish` lists the problems and fails the run.
A test that sends a bad request on purpose through the client carries
`@pytest.mark.contract_exempt("why")`. Children started with a bare environment are not seen.

Loaded by tests/conftest.py (`pytest_plugins`); tests/test_emulator_contract.py proves it fails.
Under pytest-xdist the controller makes the log before it starts the workers, which inherit
its name, append to it, and leave the check to the controller.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

LOG = "BORDER0_CONTRACT_LOG"
SITE = str(Path(__file__).resolve().parent / "contract_site")
USER_AGENT = "border0-reconciler/"
API_PREFIX = "/api/v1"


# --- recording (this process and children) --------------------------------------------------


def install(httpx: Any) -> None:
    """Wrap httpx.Client.send once; requests are checked only while LOG is set."""
    client = httpx.Client
    if getattr(client.send, "_contract_recorder", False):
        return
    original = client.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if os.environ.get(LOG) and request.headers.get("user-agent", "").startswith(USER_AGENT):
            _record(request)
        return original(self, request, *args, **kwargs)

    send._contract_recorder = True  # type: ignore[attr-defined]
    client.send = send


def _record(request: Any) -> None:
    from reconciler.border0.emulator import contract

    # The raw (still quoted) path: a name the client quoted stays one segment.
    path = request.url.raw_path.decode("ascii", "replace").split("?", 1)[0]
    path = path[path.find(API_PREFIX) + len(API_PREFIX):] if API_PREFIX in path else path
    method = request.method.upper()
    try:
        raw = request.content
    except Exception:  # noqa: BLE001 - a streamed body: nothing to check
        raw = b""
    try:
        body = json.loads(raw) if raw.strip() else None
        problems = contract.check(method, path, list(request.url.params.keys()), body)
    except ValueError:
        problems = ["the request body is not valid JSON"]
    line = json.dumps({
        "test": os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0],
        "op": contract.operation_of(method, path) or f"{method} {path}",
        "problems": problems,
    }) + "\n"
    fd = os.open(os.environ[LOG], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())  # one write: lines from parallel processes stay whole
    finally:
        os.close(fd)


# --- the pytest plugin ------------------------------------------------------------------------

_state: dict[str, Any] = {"exempt": set(), "own_log": None}


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "contract_exempt(reason): the client sends a bad request on purpose")
    if not os.environ.get(LOG):
        fd, path = tempfile.mkstemp(prefix="border0-contract-", suffix=".jsonl")
        os.close(fd)
        os.environ[LOG] = path
        _state["own_log"] = path
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if SITE not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([*paths, SITE])
    import httpx

    install(httpx)


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """The exempt tests, also written to the log: under pytest-xdist the workers collect and
    the controller, which never does, reads the log at the end."""
    _state["exempt"] = {i.nodeid for i in items if i.get_closest_marker("contract_exempt")}
    if _state["exempt"] and os.environ.get(LOG):
        lines = "".join(json.dumps({"exempt": test}) + "\n" for test in sorted(_state["exempt"]))
        with open(os.environ[LOG], "a", encoding="utf-8") as log:
            log.write(lines)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get(LOG)
    if not path or path != _state["own_log"]:
        return
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    except OSError:
        pass
    finally:
        Path(path).unlink(missing_ok=True)
        os.environ.pop(LOG, None)
    exempt = _state["exempt"] | {r["exempt"] for r in records if "exempt" in r}
    checked = [r for r in records if "test" in r and r["test"] not in exempt]
    bad: dict[tuple[str, str], set[str]] = {}
    for record in checked:
        for problem in record["problems"]:
            bad.setdefault((record["op"], problem), set()).add(record["test"])
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else (lambda s: print(s, file=sys.stderr))
    ops = len({r["op"] for r in checked})
    if reporter is not None and (checked or bad):
        reporter.write_sep("-", "border0 API contract", red=bool(bad))
    if not bad:
        if checked:
            write(f"contract: {len(checked)} client requests ({ops} operations) checked "
                  "against border0's reference request schemas: all known")
        return
    for (op, problem), tests in sorted(bad.items()):
        write(f"{op}: {problem}")
        for test in sorted(tests)[:3]:
            write(f"    sent by {test}")
    write(f"contract: {len(bad)} problem(s) in {len(checked)} client requests; see "
          "reconciler/border0/emulator/allowlist.py for what border0's own tools justify")
    session.exitstatus = 1
