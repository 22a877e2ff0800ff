"""Benchmarks of border0-reconciler against the emulator it starts itself.

Run by hand (not part of the test run), from the repository root:

    python benchmarks/bench.py                     # everything, N = 100, 1,000, 10,000 (~6 min)
    python benchmarks/bench.py --sizes 100,1000    # smaller plan/validate sizes
    python benchmarks/bench.py --quick             # N = 100, 1,000 and smaller daemon/apply runs
    python benchmarks/bench.py --only plan,apply --json out.json

What it measures (each in real child processes, as a user runs them):
- `validate` and `plan` of N unchanged sockets (mixed types, 20 policies, connectors): wall time,
  peak RSS of the command (from wait4's rusage), and the API requests the emulator saw (its
  access log): they must grow with N / page size, never one per object; for the largest N, each
  plan (at 0 ms and at --plan-latency) is followed by its peer, a Terraform-style refresh (one
  GET per object, 10 at a time) against the same emulator, and the ratio is printed;
- `apply` of 1,000 creates against the emulator at --latency 50: wall time against the ideal
  (requests x latency / parallelism);
- the daemon (`run`) with 1,000 sockets and 50 connectors (a trivial `sleep` command): resident
  memory (VmRSS) and CPU over an idle window, then watch latency: from a manifest write to the
  change visible in the API, median and worst of 20.
It prints one table, then the same figures as JSON (also written with --json FILE).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PYTHON = sys.executable
TOKEN = "bench-token-6c1d2f"
INSTANCE = "default"
N_POLICIES = 20
SECRET_ENV = {"BENCH_DB_USER": "bench_user", "BENCH_DB_PASSWORD": "bench-not-a-secret-7f3e"}
_REQUEST_LINE = re.compile(r'"(GET|POST|PUT|DELETE|PATCH) (/api/v1/\S*) HTTP/[\d.]+" (\d+)')
TIME = shutil.which("time", path="/usr/bin:/bin")
_LISTENING = re.compile(r"emulator listening on (http://\S+)")

# --- manifests ------------------------------------------------------------------------------


def _socket_yaml(i: int, connector: bool) -> str:
    """One socket manifest; the type cycles through every kind the format knows."""
    kind = i % 5
    name = f"s{i:05d}"
    policies = f"[p{i % N_POLICIES:02d}, p{(i * 7 + 3) % N_POLICIES:02d}]"
    lines = [
        "apiVersion: border0-reconciler/v1",
        "kind: Socket",
        "metadata:",
        f"  name: {name}",
        "  labels:",
        f"    team: team{i % 13}",
        "    env: bench",
        "spec:",
    ]
    if kind == 0:
        lines += ["  type: http", f"  description: web app {i}", "  upstream:", "    type: http"]
    elif kind == 1:
        lines += ["  type: https", f"  description: portal {i}", "  upstream:",
                  f"    httpHostname: portal{i}.internal"]
    elif kind == 2:
        lines += ["  type: ssh", f"  description: bastion {i}"]
    elif kind == 3:
        lines += ["  type: tls", f"  description: broker {i}"]
    else:
        lines += ["  type: database", f"  description: database {i}", "  upstream:",
                  "    type: postgres", "    username: {env: BENCH_DB_USER}",
                  "    password: {env: BENCH_DB_PASSWORD}"]
    lines.append(f"  policies: {policies}")
    if connector:
        lines += ["  connector:", "    host: 127.0.0.1", f"    port: {10000 + i % 50000}"]
    return "\n".join(lines) + "\n"


def _policy_yaml(j: int) -> str:
    return (
        "apiVersion: border0-reconciler/v1\nkind: Policy\nmetadata:\n"
        f"  name: p{j:02d}\nspec:\n  description: bench policy {j}\n  policyData:\n"
        "    version: v1\n    action: [http, ssh, database, tls]\n    condition:\n"
        f"      who:\n        email: [user{j}@example.com]\n"
        "      where:\n        allowed_ip: [0.0.0.0/0]\n"
    )


def generate(folder: Path, n: int, connectors: int = 0, per_file: int = 10) -> Path:
    """N sockets (`per_file` documents a file, in 10 folders) and 20 policies under `folder`."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "policies").mkdir(parents=True)
    for j in range(N_POLICIES):
        (folder / "policies" / f"p{j:02d}.yaml").write_text(_policy_yaml(j))
    for start in range(0, n, per_file):
        sub = folder / "sockets" / f"group{(start // per_file) % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        docs = [_socket_yaml(i, i < connectors) for i in range(start, min(n, start + per_file))]
        (sub / f"s{start:05d}.yaml").write_text("---\n".join(docs))
    return folder


def seed(db: Path, folder: Path) -> dict[str, int]:
    """Write what `apply` would create straight into the emulator's database (fast set-up)."""
    import reconciler.manifests.loader as manifests
    from reconciler import model
    from reconciler.border0.emulator.store import Store

    loaded = manifests.load([folder], env=SECRET_ENV)
    if not loaded.ok:
        raise SystemExit("generated manifests are invalid: " + str(loaded.diagnostics[:3]))
    store = Store(str(db), org="bench")
    try:
        ids = {}
        for name, spec in loaded.desired.policies.items():
            ids[name] = store.create_policy(model.policy_to_api(spec, INSTANCE))["id"]
        for spec in loaded.desired.sockets.values():
            created = store.create_socket(model.socket_to_api(spec, INSTANCE))
            store.update_socket_policies(
                created["socket_id"], [("add", ids[p]) for p in spec.all_policies]
            )
    finally:
        store.close()
    return {"sockets": len(loaded.desired.sockets), "policies": len(loaded.desired.policies)}


# --- processes ------------------------------------------------------------------------------


class Emulator:
    """`python -m reconciler emulator --access-log` as a child; counts requests it answers."""

    def __init__(self, db: Path, *flags: str) -> None:
        env = dict(os.environ, BORDER0_EMULATOR_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "reconciler", "emulator", "--listen", "127.0.0.1:0", "--db", str(db),
             "--org", "bench", "--access-log", *flags],
            cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.url = ""
        self.requests: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        wait(lambda: self.url or self.proc.poll() is not None, 30, "the emulator to listen")
        if not self.url:
            raise SystemExit("the emulator did not start")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            match = _REQUEST_LINE.search(line)
            if match:
                with self._lock:
                    self.requests.append((match[1], match[2], int(match[3])))
            elif not self.url and (found := _LISTENING.search(line)):
                self.url = found[1]

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list[tuple[str, str, int]]:
        with self._lock:
            return self.requests[mark:]

    def settled_count(self) -> int:
        """The request count once the access log has caught up (lines arrive asynchronously)."""
        last = -1
        while True:
            now = self.count()
            if now == last:
                return now
            last = now
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Run:
    code: int
    wall: float
    max_rss_mb: float
    cpu: float
    stdout: str = ""
    stderr: str = ""


def run_measured(args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> Run:
    """Run a child to completion: wall time, its peak RSS and CPU time.

    Measured by /usr/bin/time -v (a small parent): the rusage of a child forked straight from
    this process would count this process's own RSS, which Linux folds in at exec.
    """
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("BORDER0_RECONCILER_DEBUG", None)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "time.txt"
        timed = [TIME, "-v", "-o", str(report), *args] if TIME else args
        t0 = time.perf_counter()
        done = subprocess.run(timed, cwd=str(REPO), env=full_env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        wall = time.perf_counter() - t0
        rss, cpu = float("nan"), float("nan")
        if TIME and report.exists():
            text = report.read_text()
            rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)[1]) / 1024
            user = float(re.search(r"User time \(seconds\): ([\d.]+)", text)[1])
            system = float(re.search(r"System time \(seconds\): ([\d.]+)", text)[1])
            cpu = user + system
    return Run(done.returncode, wall, rss, cpu, done.stdout, done.stderr)


def wait(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def reconciler(*args: str) -> list[str]:
    return [PYTHON, "-m", "reconciler", *args]


# --- the benchmarks -------------------------------------------------------------------------


@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # what, figure, target, ok
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, what: str, figure: str, target: str = "", ok: bool | None = None) -> None:
        """One row; the 1-minute load average goes with every figure (a shared machine's
        neighbours show in every wall time)."""
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        figure += f" (load {os.getloadavg()[0]:.1f})"
        self.rows.append((what, figure, target, verdict))
        print(f"  {what}: {figure}" + (f"  [{target}: {verdict}]" if target else ""), flush=True)


def bench_plan(work: Path, n: int, res: Results, latency_ms: float = 0,
               with_peer: bool = False) -> None:
    """validate and plan with nothing to change, N sockets; with `latency_ms`, plan once more
    against an emulator that slow (a network between the reconciler and border0). With
    `with_peer`, each plan is followed by a Terraform-style refresh against the same emulator."""
    folder = generate(work / f"manifests-{n}", n)
    db = work / f"plan-{n}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    t0 = time.perf_counter()
    seeded = seed(db, folder)
    print(f"N={n}: seeded {seeded} in {time.perf_counter() - t0:.1f}s", flush=True)
    env_file = work / "bench.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRET_ENV.items()))
    token_file = work / "token"
    token_file.write_text(TOKEN)

    validate = run_measured(reconciler("validate", str(folder)))
    if validate.code != 0:
        raise SystemExit(f"validate failed: {validate.stderr[-2000:]}")
    def measure_plan(emu: Emulator) -> tuple[Any, int]:
        """One `plan` of the unchanged folder: its measurement and the requests it made."""
        mark = emu.settled_count()
        result = run_measured(reconciler(
            "plan", str(folder), "--api", emu.url, "--token-file", str(token_file),
            "--env-file", str(env_file), "--detailed-exitcode", "--no-color"))
        return result, emu.settled_count() - mark

    emu = Emulator(db)
    try:
        plan, requests = measure_plan(emu)
        if plan.code != 0:
            raise SystemExit(f"plan of unchanged N={n} exited {plan.code} (0 = no changes):\n"
                             f"{plan.stdout[-1500:]}{plan.stderr[-1500:]}")
        phases = _phases(folder, emu.url, env_file)
        refresh = refresh_peer(emu, n) if with_peer else None
    finally:
        emu.stop()
    slow_plan, slow_requests, slow_refresh = None, 0, None
    if latency_ms:
        emu = Emulator(db, "--latency", f"{latency_ms:g}")
        try:
            slow_plan, slow_requests = measure_plan(emu)
            slow_refresh = refresh_peer(emu, n) if with_peer else None
        finally:
            emu.stop()
        if slow_plan.code != 0:
            raise SystemExit(f"plan at {latency_ms:g} ms exited {slow_plan.code}")
    data = {
        "n": n,
        "validate_wall_s": round(validate.wall, 3),
        "validate_max_rss_mb": round(validate.max_rss_mb, 1),
        "plan_wall_s": round(plan.wall, 3),
        "plan_max_rss_mb": round(plan.max_rss_mb, 1),
        "plan_cpu_s": round(plan.cpu, 3),
        "plan_requests": requests,
        "phases_s": phases,
    }
    if refresh is not None:
        data.update(refresh_wall_s=round(refresh, 3), refresh_ratio=round(refresh / plan.wall, 1))
    if slow_plan is not None:
        data.update(latency_ms=latency_ms, plan_at_latency_wall_s=round(slow_plan.wall, 3),
                    plan_at_latency_requests=slow_requests)
    if slow_refresh is not None and slow_plan is not None:
        data.update(refresh_at_latency_wall_s=round(slow_refresh, 3),
                    refresh_at_latency_ratio=round(slow_refresh / slow_plan.wall, 1))
    res.data.setdefault("plan", []).append(data)
    res.add(f"validate N={n}", f"{validate.wall:.2f} s, {validate.max_rss_mb:.0f} MB peak")
    target = n == 10_000
    peer = ""
    if refresh is not None:
        peer = f"; refresh peer {refresh:.2f} s -> {refresh / plan.wall:.1f}x"
    res.add(
        f"plan N={n} unchanged",
        f"{plan.wall:.2f} s, {plan.max_rss_mb:.0f} MB peak, {requests} requests "
        f"(load {phases['load']:.2f} s, fetch {phases['fetch']:.2f} s, diff {phases['plan']:.2f} s)"
        + peer,
        ("< 1.2 s, < 150 requests" + (", >= 10x refresh" if refresh is not None else ""))
        if target else "",
        (plan.wall < 1.2 and requests < 150 and (refresh is None or refresh / plan.wall >= 10))
        if target else None,
    )
    if slow_plan is not None:
        peer = ""
        if slow_refresh is not None:
            peer = f"; refresh peer {slow_refresh:.2f} s -> {slow_refresh / slow_plan.wall:.1f}x"
        res.add(f"plan N={n} unchanged, emulator at {latency_ms:g} ms latency",
                f"{slow_plan.wall:.2f} s, {slow_requests} requests" + peer,
                "< 1.5 s" + (", >= 30x refresh" if slow_refresh is not None else "")
                if target else "",
                (slow_plan.wall < 1.5 and (slow_refresh is None
                                           or slow_refresh / slow_plan.wall >= 30))
                if target else None)


REFRESH_PARALLELISM = 10


def refresh_peer(emu: Emulator, n: int) -> float:
    """A Terraform-style refresh, the peer our plan is compared with: one GET per object (each
    socket by name, each policy by id), `REFRESH_PARALLELISM` at a time, as `terraform plan`
    with the border0 provider reads every resource in its state (-parallelism=10 is
    Terraform's default). Wall time in seconds."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    limits = httpx.Limits(max_connections=REFRESH_PARALLELISM)
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=30, limits=limits) as http:
        policy_ids = [p["id"] for p in http.get("/policies").json()]
        paths = [f"/socket/s{i:05d}" for i in range(n)] + [f"/policy/{p}" for p in policy_ids]

        def get(path: str) -> None:
            http.get(path).raise_for_status()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(REFRESH_PARALLELISM) as pool:
            list(pool.map(get, paths))
        return time.perf_counter() - t0


_PHASES_CODE = """
import json, sys, time
import reconciler.manifests.loader as manifests
from reconciler.border0.client import Border0Client
from reconciler.manifests.loader import read_env_file
from reconciler.border0.inventory import fetch_actual
from reconciler.plan.planner import make_plan
folder, url, token, env_file = sys.argv[1:5]
t0 = time.perf_counter(); loaded = manifests.load([folder], env=read_env_file(env_file))
t1 = time.perf_counter()
with Border0Client(url, token) as client:
    actual = fetch_actual(client)
t2 = time.perf_counter(); plan = make_plan(loaded.desired, actual); t3 = time.perf_counter()
assert loaded.ok and not plan.changes, (loaded.diagnostics[:3], plan.changes[:3])
print(json.dumps({"load": t1 - t0, "fetch": t2 - t1, "plan": t3 - t2}))
"""


def _phases(folder: Path, url: str, env_file: Path) -> dict[str, float]:
    """The plan's three steps timed in one child: load the manifests, list border0, diff."""
    done = subprocess.run([PYTHON, "-c", _PHASES_CODE, str(folder), url, TOKEN, str(env_file)],
                          cwd=str(REPO), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit("phase timing failed: " + done.stderr[-2000:])
    return {k: round(v, 3) for k, v in json.loads(done.stdout).items()}


def bench_apply(work: Path, n: int, latency_ms: float, parallelism: int, res: Results) -> None:
    """apply of N creates against a slow emulator, against the ideal."""
    folder = generate(work / f"apply-{n}", n)
    db = work / f"apply-{n}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    env_file = work / "bench.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRET_ENV.items()))
    token_file = work / "token"
    token_file.write_text(TOKEN)
    emu = Emulator(db, "--latency", f"{latency_ms:g}")
    try:
        mark = emu.settled_count()
        run = run_measured(reconciler(
            "apply", str(folder), "--api", emu.url, "--token-file", str(token_file),
            "--env-file", str(env_file), "--auto-approve", "--parallelism", str(parallelism)))
        emu.settled_count()
        seen = emu.since(mark)
        after = run_measured(reconciler(
            "plan", str(folder), "--api", emu.url, "--token-file", str(token_file),
            "--env-file", str(env_file), "--detailed-exitcode"))
    finally:
        emu.stop()
    if run.code != 0:
        raise SystemExit(f"apply failed: {run.stderr[-2000:]}")
    requests = len(seen)
    by_kind: dict[str, int] = {}
    for method, path, _ in seen:
        key = f"{method} {re.sub(r'/[0-9a-f-]{36}', '/{id}', path.split('?')[0])}"
        by_kind[key] = by_kind.get(key, 0) + 1
    ideal = requests * latency_ms / 1000 / parallelism
    ratio = run.wall / ideal if ideal else float("nan")
    res.data["apply"] = {
        "n": n, "latency_ms": latency_ms, "parallelism": parallelism, "wall_s": round(run.wall, 3),
        "requests": requests, "requests_by_kind": by_kind, "ideal_s": round(ideal, 3),
        "ratio": round(ratio, 3), "max_rss_mb": round(run.max_rss_mb, 1),
        "cpu_s": round(run.cpu, 3), "plan_after_exit_code": after.code,
    }
    res.add(
        f"apply N={n} creates, latency {latency_ms:g} ms, parallelism {parallelism}",
        f"{run.wall:.2f} s for {requests} requests; ideal {ideal:.2f} s -> {ratio:.2f}x; "
        f"plan after: exit {after.code}",
        "<= 1,050 requests, <= 1.1x ideal", requests <= 1050 and ratio <= 1.1,
    )


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _proc_cpu_s(pid: int) -> float:
    """CPU time of every thread of `pid`: schedstat's nanoseconds where the kernel has them
    (tick-sampled utime+stime is too coarse for an idle process on a VM), else utime+stime."""
    try:
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    """`python -m reconciler run` as a child with JSON logs; finds the port it listens on."""

    def __init__(self, folder: Path, url: str, env_file: Path, *flags: str) -> None:
        import httpx

        env = dict(os.environ, BORDER0_ADMIN_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            reconciler("run", str(folder), "--api", url, "--env-file", str(env_file),
                       "--listen", "127.0.0.1:0", "--log-format", "json", *flags),
            cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        self.records: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        listen = wait(self._listen, 60, "the daemon to listen")
        self.http = httpx.Client(base_url=f"http://{listen}", timeout=10)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.records.append(json.loads(line))
            except ValueError:
                pass

    def _listen(self) -> str | None:
        if self.proc.poll() is not None:
            raise SystemExit("the daemon exited early: " + json.dumps(self.records[-5:]))
        return next((r["listen"] for r in list(self.records) if "listen" in r), None)

    def status(self) -> dict[str, Any]:
        return self.http.get("/status").json()

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def bench_daemon(work: Path, n: int, connectors: int, idle_s: float, edits: int,
                 res: Results) -> None:
    """Daemon RSS and idle CPU with N sockets and C connectors, then watch latency."""
    import httpx

    folder = generate(work / f"daemon-{n}", n, connectors=connectors)
    db = work / f"daemon-{n}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    seed(db, folder)
    env_file = work / "bench.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRET_ENV.items()))
    emu = Emulator(db)
    daemon = None
    try:
        t0 = time.perf_counter()
        daemon = Daemon(folder, emu.url, env_file, "--interval", "1h",  # else default flags
                        "--connector-command", "sleep 86400", "--connector-startsecs", "1s")

        def converged() -> bool:
            status = daemon.status()
            running = [c for c in status.get("connectors", []) if c["state"] == "RUNNING"]
            return bool(status.get("last_success")) and len(running) == connectors

        wait(converged, 120, f"the daemon to converge with {connectors} connectors running",
             interval=0.2)
        startup = time.perf_counter() - t0
        pid = daemon.proc.pid
        rss_start = _proc_rss_mb(pid)
        cpu0, w0 = _proc_cpu_s(pid), time.perf_counter()
        time.sleep(idle_s)  # the measurement window itself, not synchronisation
        cpu1, w1 = _proc_cpu_s(pid), time.perf_counter()
        rss = _proc_rss_mb(pid)
        idle_cpu = (cpu1 - cpu0) / (w1 - w0) * 100

        # watch latency: edit one socket's description, poll the API until it shows
        latencies = []
        api = httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {TOKEN}"},
                           timeout=10)
        files = sorted((folder / "sockets").rglob("*.yaml"))
        try:
            for k in range(edits):
                target = files[-1 - (k % len(files))]  # files past the connector sockets
                text = target.read_text()
                first = re.search(r"name: (s\d+)\n", text)
                assert first is not None
                name = first[1]
                new = f"edited {k} {time.time_ns()}"
                text = re.sub(r"description: [^\n]*", f"description: {new}", text, count=1)
                tmp = target.with_suffix(".tmp")
                tmp.write_text(text)
                t_write = time.perf_counter()
                os.replace(tmp, target)

                def visible(name: str = name, new: str = new) -> bool:
                    return api.get(f"/socket/{name}").json().get("description") == new

                wait(visible, 60, f"edit {k} to reach the API", interval=0.01)
                latencies.append(time.perf_counter() - t_write)
        finally:
            api.close()
        rss_after = _proc_rss_mb(pid)
    finally:
        if daemon is not None:
            daemon.stop()
        emu.stop()
    median, worst = statistics.median(latencies), max(latencies)
    res.data["daemon"] = {
        "sockets": n, "connectors": connectors, "startup_to_converged_s": round(startup, 2),
        "rss_mb": round(rss, 1), "rss_at_converged_mb": round(rss_start, 1),
        "rss_after_watch_mb": round(rss_after, 1), "idle_window_s": idle_s,
        "idle_cpu_percent_of_core": round(idle_cpu, 3),
    }
    res.data["watch"] = {
        "edits": edits, "median_s": round(median, 3), "worst_s": round(worst, 3),
        "all_s": [round(x, 3) for x in latencies],
    }
    res.add(f"daemon RSS, {n} sockets + {connectors} connectors",
            f"{rss:.0f} MB (after {edits} edits: {rss_after:.0f} MB)", "< 100 MB", rss < 100)
    res.add(f"daemon idle CPU over {idle_s:g} s", f"{idle_cpu:.2f}% of a core", "< 0.5%",
            idle_cpu < 0.5)
    res.add(f"watch latency ({edits} edits, {n} sockets)",
            f"median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms", "median < 400 ms",
            median < 0.4)


# --- main -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model_name = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model_name = line.split(":", 1)[1].strip()
            break
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "nproc": os.cpu_count(),
        "cpu": model_name,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def print_table(res: Results) -> None:
    widths = [max(len(r[i]) for r in res.rows + [("what", "figure", "target", "")])
              for i in range(4)]
    header = ("what", "figure", "target", "")
    print()
    for row in [header, tuple("-" * w for w in widths), *res.rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None, help="plan/validate sizes (default 100,1000,10000)")
    parser.add_argument("--quick", action="store_true",
                        help="N = 100,1000; apply of 300; daemon with a 5 s idle window, 10 edits")
    parser.add_argument("--only", default="plan,apply,daemon",
                        help="comma-separated: plan, apply, daemon")
    parser.add_argument("--plan-latency", type=float, default=50, metavar="MS",
                        help="also plan the largest N against an emulator this slow (0: no)")
    parser.add_argument("--no-peer", action="store_true",
                        help="skip the Terraform-style refresh peer (a minute at 10,000 sockets)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the JSON here")
    parser.add_argument("--workdir", default=None, help="keep generated files here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("100,1000" if args.quick else "100,1000,10000"))
             .split(",") if s]
    only = set(args.only.split(","))
    res = Results()
    res.data["machine"] = machine()
    print(f"machine: {res.data['machine']}", flush=True)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="b0r-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        if "plan" in only:
            for n in sizes:
                largest = n == max(sizes)
                bench_plan(work, n, res, args.plan_latency if largest else 0,
                           with_peer=largest and not args.no_peer)
        if "apply" in only:
            bench_apply(work, 300 if args.quick else 1000, 50, 8, res)
        if "daemon" in only:
            bench_daemon(work, 1000, 50, 5 if args.quick else 20, 10 if args.quick else 20, res)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    res.data["total_s"] = round(time.perf_counter() - t0, 1)
    print_table(res)
    print()
    print(json.dumps(res.data, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res.data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
