"""Connectors under the real daemon: `border0-reconciler run --api local` as a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from helpers import cli, copy_examples, free_port, wait_for

from reconciler.border0.api_json import socket_create_body
from reconciler.border0.emulator.store import Store
from reconciler.model import ConnectorSpec, SocketSpec

SLEEPER = """
import os, subprocess, sys, time
if sys.argv[2] == "family":
    kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(sys.argv[3], "w") as f:
        f.write(str(kid.pid))
print("connector", sys.argv[1], "up", flush=True)
time.sleep(600)
"""


def manifest(path: Path, name: str, host: str, port: int) -> None:
    path.mkdir(exist_ok=True)
    (path / f"{name}.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\n"
        f"metadata:\n  name: {name}\n"
        f"spec:\n  type: http\n  connector:\n    host: {host}\n    port: {port}\n"
    )


def alive(pid: int) -> bool:
    """A live process (a zombie waiting for init to reap it counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Daemon:
    """`run manifests --api local` in tmp_path (state in tmp_path/local.db), or `run ARGS` in
    `cwd` when given."""

    def __init__(self, tmp_path: Path, *extra: str, cwd: Path | None = None) -> None:
        self.listen = f"127.0.0.1:{free_port()}"
        self.log = (tmp_path / f"daemon-{self.listen.rsplit(':', 1)[1]}.log").open("w+")
        base = [] if cwd else ["manifests", "--api", "local", "--state", str(tmp_path / "local.db")]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", *base, "--listen", self.listen,
             "--connector-startsecs", "0.3", "--connector-stop-timeout", "3s", *extra],
            cwd=cwd or tmp_path, stdout=self.log, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("BORDER0_")},
        )

    def status(self) -> dict | None:
        try:
            return httpx.get(f"http://{self.listen}/status", timeout=5).json()
        except (httpx.TransportError, ValueError):
            return None

    def connector(self, name: str, state: str = "RUNNING") -> dict | None:
        status = self.status()
        for c in (status or {}).get("connectors", []):
            if c["socket"] == name and c["state"] == state:
                return c
        return None

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


@pytest.fixture
def daemon(tmp_path):
    made: list[Daemon] = []

    def start(*extra: str, cwd: Path | None = None) -> Daemon:
        d = Daemon(tmp_path, *extra, cwd=cwd)
        made.append(d)
        return d

    yield start
    for d in made:
        d.close()


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


@pytest.mark.slow
def test_api_local_request_reaches_upstream_through_the_local_connector(tmp_path, daemon,
                                                                        upstream):
    manifest(tmp_path / "manifests", "web", "127.0.0.1", upstream)
    # The socket exists already, owned by this reconciler, on a port no other test uses (the
    # emulator hands out ports from 20000 up, the same in every fresh state file).
    port = free_port()
    store = Store(str(tmp_path / "local.db"), port_range=(port, port))
    spec = SocketSpec("web", "http", connector=ConnectorSpec(host="127.0.0.1", port=upstream))
    store.create_socket(socket_create_body(spec, "default"))
    store.close()

    d = daemon()
    first = wait_for(lambda: d.connector("web"), timeout=30, message="connector running")
    web = next(s for s in d.status()["sockets"] if s["name"] == "web")
    assert web["ports"] == [port]
    resp = wait_for(lambda: get(f"http://127.0.0.1:{port}/through"), timeout=15)
    assert resp.text == "upstream saw /through"

    os.kill(first["pid"], signal.SIGKILL)
    wait_for(lambda: (c := d.connector("web")) and c["pid"] != first["pid"], timeout=15,
             message="connector restarted")
    resp = wait_for(lambda: get(f"http://127.0.0.1:{port}/again"), timeout=15)
    assert resp.text == "upstream saw /again"
    now = d.connector("web")
    assert now["restarts"] == 1 and now["last_exit_code"] == -9
    assert now["last_error"].startswith("killed by signal 9")
    since = datetime.fromisoformat(now["since"])  # ISO 8601, like every time in /status
    assert since.tzinfo is not None and since <= datetime.now(UTC)
    metrics = httpx.get(f"http://{d.listen}/metrics", timeout=5).text
    assert 'connector_state{socket="web",state="RUNNING"} 1.0' in metrics

    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=20) == 0
    assert get(f"http://127.0.0.1:{port}/") is None
    out = d.output()
    assert f"listening on 127.0.0.1:{port}, forwarding to 127.0.0.1:{upstream}" in out


def _fake_connector(tmp_path: Path, mode: str) -> tuple[str, Path]:
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    kid_file = tmp_path / "kid.pid"
    return f"{{python}} {script} {{name}} {mode} {kid_file}", kid_file


@pytest.mark.slow
def test_sigterm_to_the_daemon_leaves_no_child(tmp_path, daemon):
    manifest(tmp_path / "manifests", "app", "127.0.0.1", 1)
    template, kid_file = _fake_connector(tmp_path, "family")
    d = daemon("--connector-command", template)
    conn = wait_for(lambda: d.connector("app"), timeout=30, message="connector running")
    kid = int(wait_for(lambda: kid_file.exists() and kid_file.read_text()))
    assert alive(conn["pid"]) and alive(kid)
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=20) == 0
    assert not alive(conn["pid"])
    wait_for(lambda: not alive(kid), timeout=10, message="grandchild gone with its group")
    assert "connector app up" in d.output()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
@pytest.mark.slow
def test_sigkill_to_the_daemon_leaves_no_child(tmp_path, daemon):
    manifest(tmp_path / "manifests", "app", "127.0.0.1", 1)
    template, _ = _fake_connector(tmp_path, "single")
    d = daemon("--connector-command", template)
    conn = wait_for(lambda: d.connector("app"), timeout=30, message="connector running")
    d.proc.kill()
    d.proc.wait(timeout=10)
    wait_for(lambda: not alive(conn["pid"]), timeout=10, message="connector died with the daemon")


def test_a_bad_connector_template_is_a_one_line_error(tmp_path):
    manifest(tmp_path / "manifests", "app", "127.0.0.1", 1)
    code, _, err = cli(["run", "manifests", "--api", "local", "--state",
                        str(tmp_path / "local.db"), "--listen", "", "--connector-command",
                        "my-connector {nmae}"], cwd=tmp_path)
    assert code == 1
    assert err.startswith("error: connector command template: unknown placeholder {nmae}")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_every_example_connector_runs_with_the_local_api(daemon, tmp_path):
    """The README's demo: `run examples/ --api local` keeps a connector running for each socket
    that asks for one, whatever kind (forwarding, built-in web server, built-in ssh server)."""
    copy_examples(tmp_path / "manifests")
    # startsecs long enough that a connector which exits at once never counts as RUNNING
    d = daemon("--env-file", str(tmp_path / "manifests" / "demo.env"),
               "--connector-startsecs", "1.5s")
    wanted = {"analytics-db", "bastion", "docs", "grafana", "mqtt", "orders-db", "portal", "web"}

    def all_running() -> bool:
        connectors = (d.status() or {}).get("connectors", [])
        return {
            c["socket"] for c in connectors if c["state"] == "RUNNING" and c["restarts"] == 0
        } == wanted

    wait_for(all_running, timeout=30, message="every example connector RUNNING")


@pytest.mark.slow
def test_the_built_in_web_server_never_serves_the_reconcilers_own_files(daemon, tmp_path):
    """Issue 12 #9, the README's demo from a repository root: the docs example
    (`httpserver: true`, no folder) served the working directory, the state database with the
    demo passwords in it included. It serves an empty folder now, and a socket whose
    httpserverDir holds the manifests or the state does not get a web server at all."""
    repo = tmp_path / "repo"
    copy_examples(repo / "examples")
    (repo / ".git").mkdir()
    (repo / ".git" / "config").write_text("[core]\n")
    (repo / "examples" / "sockets" / "whole-repo.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata:\n  name: whole-repo\n"
        "spec:\n  type: http\n  connector: {httpserver: true, httpserverDir: .}\n"
    )
    # Both web-server sockets exist already (ours), on ports no other test uses.
    (repo / ".border0-reconciler").mkdir()
    ports = {"docs": free_port(), "whole-repo": free_port()}
    for name, port in ports.items():
        store = Store(str(repo / ".border0-reconciler" / "local.db"), port_range=(port, port))
        spec = SocketSpec(name, "http", connector=ConnectorSpec(httpserver=True))
        store.create_socket(socket_create_body(spec, "default"))
        store.close()
    d = daemon("examples/", "--api", "local", "--env-file", "examples/demo.env", cwd=repo)
    wait_for(lambda: d.connector("docs"), timeout=60, message="the docs connector running")
    docs = f"http://127.0.0.1:{ports['docs']}"
    wait_for(lambda: get(docs + "/"), timeout=30, message="the docs web server answering")
    for path in ("/.border0-reconciler/local.db", "/examples/demo.env", "/.git/config"):
        response = get(docs + path)
        assert response is not None and response.status_code == 404, (path, response)
    listing = get(docs + "/")
    assert listing is not None and listing.status_code == 200
    assert "examples" not in listing.text and ".border0-reconciler" not in listing.text

    wait_for(lambda: "may not serve the reconciler's own files" in d.output(), timeout=30)
    assert get(f"http://127.0.0.1:{ports['whole-repo']}/.border0-reconciler/local.db") is None
    assert d.connector("whole-repo") is None  # not RUNNING


# --- no orphans, even after SIGKILL (issue 12 #3, issue 15 #5) ------------------------------

#: The issue's connector: a shell that starts the local connector in the background and waits.
FORKING = ("sh -c '{python} -m reconciler local-connector {name} --listen-port {socket_port} "
           "--host {host} --port {port} & wait'")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, session, start time) of a process, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[3]), int(fields[19])


def _tree(sid: int) -> dict[int, int]:
    """pid -> start time of every live process of session `sid` (a connector and its forks)."""
    tree = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) and st[1] == sid and st[0] != "Z":
            tree[int(entry.name)] = st[2]
    return tree


def _survivors(trees: dict[int, int]) -> list[int]:
    """The processes of `trees` still alive: same pid, same start time, not a zombie."""
    return [pid for pid, start in trees.items()
            if (st := _stat(pid)) and st[0] != "Z" and st[2] == start]


@pytest.fixture
def leftovers():
    """Trees (pid -> start time) a test watches; whatever of them survives the test is killed,
    so a failing run (the code before the fix) leaves no orphans behind on the machine."""
    trees: list[dict[int, int]] = []
    yield trees
    for tree in trees:
        for pid in _survivors(tree):
            os.kill(pid, signal.SIGKILL)


def _forking_world(tmp_path: Path, upstream: int, count: int = 5) -> dict[str, int]:
    """`count` sockets, ours already, each on a free port; their connector forks."""
    ports = {}
    for i in range(count):
        name = f"app{i}"
        manifest(tmp_path / "manifests", name, "127.0.0.1", upstream)
        port = free_port()
        while port in ports.values():  # the OS may hand the same free port out twice
            port = free_port()
        ports[name] = port
        store = Store(str(tmp_path / "local.db"), port_range=(port, port))
        spec = SocketSpec(name, "http", connector=ConnectorSpec(host="127.0.0.1", port=upstream))
        store.create_socket(socket_create_body(spec, "default"))
        store.close()
    return ports


def _all_serving(d: Daemon, ports: dict[str, int]) -> dict[str, dict]:
    """Every connector RUNNING, never restarted, and its forked local connector answering."""
    connectors = {n: d.connector(n) for n in ports}
    if not all(c and c["restarts"] == 0 for c in connectors.values()):
        return {}
    if not all((r := get(f"http://127.0.0.1:{p}/")) and r.status_code == 200
               for p in ports.values()):
        return {}
    return connectors  # type: ignore[return-value]


def _watchdog_of(daemon_pid: int) -> int:
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and "sessions = set()" in (entry / "cmdline").read_text()
                    and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    == daemon_pid):
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError("no watchdog")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")
@pytest.mark.parametrize("watchdog_killed_too", [False, True])
@pytest.mark.slow
def test_a_sigkilled_daemon_leaves_no_process_of_a_forking_connector(
        tmp_path, daemon, upstream, watchdog_killed_too, leftovers):
    """Issue 12 #3: connectors that fork (`sh -c '... local-connector ... & wait'`); kill -9 of
    the daemon left the local connectors running, holding their ports, and the restarted
    daemon's connectors all went FATAL ("address already in use"). Now the watchdog ends them
    at once; if it is SIGKILLed too, the restarted daemon ends them from its record."""
    ports = _forking_world(tmp_path, upstream)
    first = daemon("--connector-command", FORKING)
    running = wait_for(lambda: _all_serving(first, ports), timeout=60,
                       message="5 forking connectors serving")
    trees = {pid: start for c in running.values() for pid, start in _tree(c["pid"]).items()}
    leftovers.append(trees)
    assert len(trees) == 10  # 5 shells, 5 local connectors
    if watchdog_killed_too:
        os.kill(_watchdog_of(first.proc.pid), signal.SIGKILL)
    first.proc.kill()
    first.proc.wait(timeout=10)
    if watchdog_killed_too:  # only the shells die (their parent-death signal)
        time.sleep(1.0)  # no condition to wait on: this checks that nothing else happens
        assert len(_survivors(trees)) == 5
    else:
        wait_for(lambda: not _survivors(trees), timeout=10, message="old trees gone")

    second = daemon("--connector-command", FORKING)
    wait_for(lambda: _all_serving(second, ports), timeout=60,
             message="every connector RUNNING after the restart, none restarted")
    assert _survivors(trees) == []
    if watchdog_killed_too:
        assert "ended 5 process(es) left by an earlier daemon's connectors" in second.output()
    record = json.loads((tmp_path / "connectors.json").read_text())
    assert sorted(g["name"] for g in record["groups"]) == sorted(ports)

    new_trees = {pid: start for c in _all_serving(second, ports).values()
                 for pid, start in _tree(c["pid"]).items()}
    leftovers.append(new_trees)
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(timeout=30) == 0
    assert _survivors(new_trees) == []
    assert not (tmp_path / "connectors.json").exists()  # a clean stop leaves no record


ESCAPER = """
import os, sys, time
if os.fork() == 0:
    os.setsid()  # leaves the connector's session and group: no group signal reaches it
    open(sys.argv[1], "w").write(str(os.getpid()))
    time.sleep(600)
    os._exit(0)
print("connector up", flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER")
@pytest.mark.slow
def test_a_process_that_left_its_connectors_session_ends_with_the_connector(tmp_path, daemon,
                                                                            leftovers):
    """The daemon is a child subreaper: a connector's fork in a session of its own comes back
    to the daemon when the connector exits (killed, or stopped with the daemon), and the
    daemon ends it."""
    manifest(tmp_path / "manifests", "app", "127.0.0.1", 1)
    (tmp_path / "escaper.py").write_text(ESCAPER)
    pid_file = tmp_path / "escaped.pid"
    d = daemon("--connector-command", f"{{python}} {tmp_path / 'escaper.py'} {pid_file}")
    conn = wait_for(lambda: d.connector("app"), timeout=30, message="connector running")
    escaped = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
    leftovers.append(first := {escaped: _stat(escaped)[2]})
    assert _stat(escaped)[1] != conn["pid"]  # it really left the connector's session
    pid_file.unlink()
    os.kill(conn["pid"], signal.SIGKILL)
    wait_for(lambda: not _survivors(first), timeout=10, message="the escaped process ended")

    wait_for(lambda: (c := d.connector("app")) and c["pid"] != conn["pid"], timeout=15)
    escaped = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
    leftovers.append(second := {escaped: _stat(escaped)[2]})
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0
    assert _survivors(second) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER")
@pytest.mark.slow
def test_a_connectors_fork_whose_parent_exits_keeps_running_with_its_connector(
        tmp_path, daemon, leftovers):
    """`(helper &)`: the subshell exits at once and the helper comes back to the daemon (a
    subreaper). It is still the running connector's (its session): left alone, and ended with
    the connector."""
    manifest(tmp_path / "manifests", "app", "127.0.0.1", 1)
    d = daemon("--connector-command", "sh -c '(sleep 600 &); echo up; exec sleep 601'")
    conn = wait_for(lambda: d.connector("app"), timeout=30, message="connector running")
    helper = wait_for(lambda: [p for p in _tree(conn["pid"]) if p != conn["pid"]])[0]
    leftovers.append(tree := _tree(conn["pid"]))
    assert int(Path(f"/proc/{helper}/stat").read_text().rsplit(")", 1)[1].split()[1]) \
        == d.proc.pid  # re-parented to the daemon, and (RUNNING came a tick later) alive:
    assert _survivors({helper: tree[helper]}) == [helper]
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0
    assert _survivors(tree) == []


#: A connector whose tree leaves every session and group it could be found by: a `setsid` child
#: with a grandchild of its own, and a daemonizing double fork (its middle exits at once). Each
#: writes its pid into the folder argv[1].
TREE = """
import os, sys, time
def note():
    open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        note(); time.sleep(600); os._exit(0)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            note(); time.sleep(600); os._exit(0)
        os._exit(0)
    note(); time.sleep(600); os._exit(0)
note()
print("connector up", flush=True)
time.sleep(600)
"""


def _noted(folder: Path, count: int) -> dict[int, int] | None:
    """pid -> start time of the `count` processes noted in `folder`, once all are there."""
    pids = [int(p.name) for p in folder.iterdir()] if folder.exists() else []
    stats = {pid: st for pid in pids if (st := _stat(pid))}
    return {pid: st[2] for pid, st in stats.items()} if len(stats) == count else None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
@pytest.mark.parametrize("watchdog_killed_too", [False, True])
@pytest.mark.slow
def test_no_descendant_of_a_connector_outlives_it(tmp_path, daemon, leftovers,
                                                   watchdog_killed_too):
    """Issue 23 #4: `setsid` grandchildren of a connector survived kill -9 of the daemon, the
    next start's cleanup and a clean stop. Now none does; and a process of the same user that
    is not ours (no marker, or another instance's) survives all of it."""
    manifest(tmp_path / "manifests", "app", "127.0.0.1", 1)
    (tmp_path / "tree.py").write_text(TREE)
    bystanders = [
        subprocess.Popen(["sleep", "600"], start_new_session=True),
        subprocess.Popen(["sleep", "600"], start_new_session=True,
                         env={**os.environ, "BORDER0_RECONCILER_TREE": "0123456789abcdef:00"}),
    ]
    try:
        first_pids = tmp_path / "first"
        first_pids.mkdir()
        command = f"{{python}} {tmp_path / 'tree.py'} {{pids}}"
        first = daemon("--connector-command", command.replace("{pids}", str(first_pids)))
        wait_for(lambda: first.connector("app"), timeout=60, message="connector running")
        tree = wait_for(lambda: _noted(first_pids, 4), timeout=60, message="4 processes")
        leftovers.append(tree)
        if watchdog_killed_too:
            os.kill(_watchdog_of(first.proc.pid), signal.SIGKILL)
        first.proc.kill()
        first.proc.wait(timeout=10)
        if not watchdog_killed_too:
            wait_for(lambda: not _survivors(tree), timeout=10, message="the watchdog ended all")

        second_pids = tmp_path / "second"
        second_pids.mkdir()
        second = daemon("--connector-command", command.replace("{pids}", str(second_pids)))
        wait_for(lambda: not _survivors(tree), timeout=60, message="the restart ended all")
        if watchdog_killed_too:
            wait_for(lambda: "left by an earlier daemon's connectors" in second.output(),
                     timeout=10, message="the restart says what it ended")
        wait_for(lambda: second.connector("app"), timeout=60, message="connector running")
        tree = wait_for(lambda: _noted(second_pids, 4), timeout=60, message="4 processes")
        leftovers.append(tree)
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(timeout=30) == 0
        assert _survivors(tree) == []
        assert all(p.poll() is None for p in bystanders), "not ours: left alone"
    finally:
        for p in bystanders:
            p.kill()
            p.wait()
