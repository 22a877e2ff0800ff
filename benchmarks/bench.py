"""Benchmarks of border0-reconciler against the emulator (the twin) it starts itself.

Run by hand (not part of the test run), from the repository root:

    python benchmarks/bench.py                  # every figure of issue 26 (~10 min on 2 cores)
    python benchmarks/bench.py --quick          # N = 1,000, no 100,000 plan, small daemon (~1 min)
    python benchmarks/bench.py --n 5000 --big 0 --only plan,apply --json out.json

What it measures (each in real child processes, as a user runs them), one row each in a table of
figure, value, goal, peer and ratio:
- `--help` and `validate` of one file: start-up, median of 5;
- a no-op plan of N sockets in the typed form (mixed types, typed upstreams, 10 connectors, 20
  policies; 4,000 secret fields at N = 10,000) at 0 ms and at --latency (50 ms), the median
  of 5 warm plans (the spread beside it): wall, CPU,
  peak RSS and the requests the emulator saw (its access log); each followed by its peer, a
  Terraform-style refresh (one GET per object, 10 at a time) against the same emulator; at
  0 ms, the same plan with every socket compared (no record of those in sync: a CI runner
  that keeps only the parse cache); where the plan's time goes (imports,
  YAML parse, validate, list, build, diff, render, in one fresh process, naming the YAML parser
  that ran); what the secret fields add to a cold plan;
- `apply` of 1,000 creates at --latency, parallelism 10, the median of 3 (each into a fresh
  twin): requests and the ratio to the ideal (requests x latency / parallelism);
- the daemon (`run`) at 10 and 10,000 sockets (50 connectors, a trivial `sleep` command, at
  10,000): idle CPU and RSS, /status, and write-to-applied latency over 30 edits (p50, p95, max);
- a no-op plan of 100,000 sockets in 1,000 files at --latency: time and peak RSS.
It prints the table, then the same figures as JSON on stderr (also written with --json FILE).
Every figure carries the 1-minute load average when it was taken.
"""

from __future__ import annotations

import argparse
import compileall
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

from reconciler.border0.session import STATE_DIR
from reconciler.manifests.stored_cache import CACHE_FILE
from reconciler.plan.in_sync import IN_SYNC_FILE
from reconciler.plan.memo import PLAN_MEMO_FILE

PYTHON = sys.executable
TOKEN = "bench-token-6c1d2f"
INSTANCE = "default"
N_POLICIES = 20
N_CONNECTORS = 10
#: One fingerprint key for the seed (in this process) and every child: secrets.py keys the
#: fingerprints in socket tags with it (secret_key.py: the environment, else a file beside
#: the state, which each child would otherwise create in its own working directory).
FINGERPRINT_KEY = "bench-fingerprint-key-0123456789abcdef"
SECRET_ENV = {"BENCH_SSH_PASSWORD": "bench-not-a-secret-1a2b",
              "BENCH_DB_PASSWORD": "bench-not-a-secret-7f3e"}
_REQUEST_LINE = re.compile(r'"(GET|POST|PUT|DELETE|PATCH) (/api/v1/\S*) HTTP/[\d.]+" (\d+)')
TIME = shutil.which("time", path="/usr/bin:/bin")
_LISTENING = re.compile(r"emulator listening on (http://\S+)")

# --- manifests ------------------------------------------------------------------------------


def _socket_yaml(i: int, connector: bool, one_policy: bool = False) -> str:
    """One socket manifest in the typed form docs/connectors.md recommends (spec.connectors
    and spec.upstream's serviceType with its typed block); the type cycles through http,
    https, ssh, tls and database (ssh and database with a password from an `{env: ...}`
    secret: 4,000 secret fields at N = 10,000). It names
    two of the 20 policies, or with `one_policy` one of the first ten. `connector`: the legacy
    `spec.connector` too (a local `socket connect` process the daemon supervises)."""
    kind = i % 5
    name = f"s{i:05d}"
    policies = (f"[p{i % 10:02d}]" if one_policy
                else f"[p{i % N_POLICIES:02d}, p{(i * 7 + 3) % N_POLICIES:02d}]")
    host = f"h{i}.internal"
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
    if kind in (0, 1):
        scheme = "http" if kind == 0 else "https"
        lines += [f"  type: {scheme}", f"  description: web app {i}", "  upstream:",
                  "    serviceType: http", "    httpServiceConfiguration:",
                  "      httpServiceType: standard", "      standardHttpServiceConfiguration:",
                  f"        hostname: {host}", "        port: 8080", f"        scheme: {scheme}",
                  f"        hostHeader: {host}"]
    elif kind == 2:
        lines += ["  type: ssh", f"  description: bastion {i}", "  upstream:",
                  "    serviceType: ssh", "    sshServiceConfiguration:",
                  "      sshServiceType: standard", "      standardSshServiceConfiguration:",
                  f"        hostname: {host}", "        port: 22",
                  "        sshAuthenticationType: username_and_password",
                  "        usernameAndPasswordAuthConfiguration:",
                  "          username: admin", "          password: {env: BENCH_SSH_PASSWORD}"]
    elif kind == 3:
        lines += ["  type: tls", f"  description: broker {i}", "  upstream:",
                  "    serviceType: tls", "    tlsServiceConfiguration:",
                  "      tlsServiceType: standard",
                  f"      standardTlsServiceConfiguration: {{hostname: {host}, port: 6379}}"]
    else:
        lines += ["  type: database", f"  description: database {i}", "  upstream:",
                  "    serviceType: database", "    databaseServiceConfiguration:",
                  "      databaseServiceType: standard",
                  "      standardDatabaseServiceConfiguration:",
                  f"        hostname: {host}", "        port: 5432", "        protocol: postgres",
                  "        authenticationType: username_and_password",
                  "        usernameAndPasswordAuthConfiguration:",
                  "          username: bench_user",
                  "          password: {env: BENCH_DB_PASSWORD}"]
    lines.append(f"  policies: {policies}")
    if connector:
        lines += ["  connector:", "    host: 127.0.0.1", f"    port: {10000 + i % 50000}"]
    else:
        lines.append(f"  connectors: [c{i % N_CONNECTORS}]")
    return "\n".join(lines) + "\n"


def _connector_yaml(j: int) -> str:
    return ("apiVersion: border0-reconciler/v1\nkind: Connector\nmetadata:\n"
            f"  name: c{j}\nspec:\n  description: bench connector {j}\n")


def _policy_yaml(j: int) -> str:
    return (
        "apiVersion: border0-reconciler/v1\nkind: Policy\nmetadata:\n"
        f"  name: p{j:02d}\nspec:\n  description: bench policy {j}\n  policyData:\n"
        "    version: v1\n    action: [http, ssh, database, tls]\n    condition:\n"
        f"      who:\n        email: [user{j}@example.com]\n"
        "      where:\n        allowed_ip: [0.0.0.0/0]\n"
    )


def generate(folder: Path, n: int, connectors: int = 0, per_file: int = 10,
             one_policy: bool = False) -> Path:
    """N sockets (`per_file` documents a file, in 10 folders) and 20 policies under `folder`."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "policies").mkdir(parents=True)
    for j in range(N_POLICIES):
        (folder / "policies" / f"p{j:02d}.yaml").write_text(_policy_yaml(j))
    (folder / "connectors.yaml").write_text("---\n".join(map(_connector_yaml,
                                                              range(N_CONNECTORS))))
    for start in range(0, n, per_file):
        sub = folder / "sockets" / f"group{(start // per_file) % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        docs = [_socket_yaml(i, i < connectors, one_policy)
                for i in range(start, min(n, start + per_file))]
        (sub / f"s{start:05d}.yaml").write_text("---\n".join(docs))
    return folder


def seed(db: Path, folder: Path, sockets: bool = True) -> dict[str, int]:
    """Write what `apply` would create straight into the emulator's database (fast set-up);
    without `sockets`, only the policies."""
    import reconciler.manifests.loader as manifests
    from reconciler.border0.api_json import (
        connector_body,
        policy_create_body,
        socket_create_body,
    )
    from reconciler.border0.emulator.store import Store
    from reconciler.secrets import use_fingerprint_key

    use_fingerprint_key(FINGERPRINT_KEY.encode())
    loaded = manifests.load([folder], env=SECRET_ENV)
    if not loaded.ok:
        raise SystemExit("generated manifests are invalid: " + str(loaded.diagnostics[:3]))
    # The twin gives every socket a TCP port from 40,000 (as border0 does); more sockets than
    # that (the 100,000-socket plan) get ports past the range, which no listing looks at.
    n = len(loaded.desired.sockets) if sockets else 0
    store = Store(str(db), org="bench", port_range=(20000, max(59999, 20000 + n + 1000)))
    try:
        ids = {}
        for name, spec in loaded.desired.policies.items():
            ids[name] = store.create_policy(policy_create_body(spec, INSTANCE))["id"]
        connector_ids = {name: store.create_connector(connector_body(spec, INSTANCE))
                         ["connector_id"] for name, spec in loaded.desired.connectors.items()}
        for spec in loaded.desired.sockets.values() if sockets else ():
            body = socket_create_body(spec, INSTANCE)
            if spec.connectors:
                body["connector_ids"] = [connector_ids[c] for c in spec.connectors]
            created = store.create_socket(body)
            store.update_socket_policies(
                created["socket_id"], [("add", ids[p]) for p in spec.all_policies]
            )
    finally:
        store.close()
    return {"sockets": len(loaded.desired.sockets), "policies": len(loaded.desired.policies),
            "connectors": len(connector_ids)}


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

    def warm_up(self) -> None:
        """One walk of the sockets before anything is measured: the twin answers its first
        listing 0.1-0.2 s slower than the next (its own code paths and SQLite's cache warming
        up, at 10,000 sockets), and border0 is a service already running."""
        from reconciler.border0.client import Border0Client

        with Border0Client(self.url, TOKEN) as client:
            client.list_sockets()
            client.list_policies()
            client.list_all_connectors()

    def round_trip(self, times: int = 21) -> float:
        """The twin's own round trip, seconds: the median of `times` GET /serverinfo one after
        another on one connection. At `--latency 50` it is 51-52 ms, not 50: its HTTP server
        and ours (Python both) add their parsing and writing to every request."""
        import httpx

        walls = []
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            http.get("/serverinfo")
            for _ in range(times):
                t0 = time.perf_counter()
                http.get("/serverinfo").raise_for_status()
                walls.append(time.perf_counter() - t0)
        return sorted(walls)[times // 2]

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
    #: figure, value, goal, peer, ratio, verdict
    rows: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, what: str, figure: str, goal: str = "", ok: bool | None = None,
            peer: str = "", ratio: str = "") -> None:
        """One row; the 1-minute load average goes with every figure (a shared machine's
        neighbours show in every wall time)."""
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        figure += f" (load {os.getloadavg()[0]:.1f})"
        self.rows.append((what, figure, goal, peer, ratio, verdict))
        print(f"  {what}: {figure}" + (f"  peer {peer} -> {ratio}" if peer else "")
              + (f"  [{goal}: {verdict}]" if goal else ""), flush=True)


def _fresh_db(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def _files(work: Path) -> tuple[Path, Path]:
    """The env file (secret values) and token file every command reads."""
    env_file = work / "bench.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRET_ENV.items()))
    token_file = work / "token"
    token_file.write_text(TOKEN)
    return env_file, token_file


#: Runs of each timed plan and apply, of which the median is the figure: on a shared
#: machine one run's wall time swings by a third from one minute to the next (docs/
#: performance.md); the spread is printed beside it.
TIMED_RUNS = 5
APPLY_RUNS = 3


def _median_of(items: list[Any], key: Callable[[Any], float]) -> Any:
    """The middle item by `key` (of an odd count; the lower middle of an even one)."""
    return sorted(items, key=key)[(len(items) - 1) // 2]


def _spread(walls: list[float]) -> str:
    return (f"median of {len(walls)}, {min(walls):.2f}-{max(walls):.2f}" if len(walls) > 1
            else "one run")


def _median_run(args: list[str], times: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of `times` runs (CPU says more on a busy machine)."""
    walls, cpus = [], []
    for _ in range(times):
        done = run_measured(args)
        if done.code != 0:
            raise SystemExit(f"{' '.join(args[2:4])} exited {done.code}: {done.stderr[-1500:]}")
        walls.append(done.wall)
        cpus.append(done.cpu)
    return statistics.median(walls), statistics.median(cpus)


def bench_startup(work: Path, res: Results, times: int = 5) -> None:
    """`--help` and `validate` of one file (ten sockets): start-up, median of `times`."""
    folder = generate(work / "startup", 10)
    one = next((folder / "sockets").rglob("*.yaml"))
    (folder / "one").mkdir()
    single = folder / "one" / "sockets.yaml"
    # no policy or connector references: the one file stands alone
    single.write_text(one.read_text().replace("  policies: ", "  # policies: ")
                      .replace("  connectors: ", "  # connectors: "))
    help_s, help_cpu = _median_run(reconciler("--help"), times)
    validate_s, validate_cpu = _median_run(reconciler("validate", str(single)), times)
    res.data["startup"] = {"help_s": round(help_s, 3), "help_cpu_s": round(help_cpu, 3),
                           "validate_one_file_s": round(validate_s, 3),
                           "validate_one_file_cpu_s": round(validate_cpu, 3)}
    res.add("`--help`", f"{help_s * 1000:.0f} ms, {help_cpu * 1000:.0f} ms CPU (median of {times})",
            "< 150 ms", help_s < 0.15)
    res.add("`validate` of one file",
            f"{validate_s * 1000:.0f} ms, {validate_cpu * 1000:.0f} ms CPU (median of {times})",
            "< 300 ms", validate_s < 0.3)


def bench_plan(work: Path, n: int, res: Results, latencies: tuple[float, ...] = (0, 50),
               with_peer: bool = True, secrets_delta: bool = True) -> None:
    """validate and no-op plans of N sockets at each latency, each followed by its peer (a
    Terraform-style refresh) against the same emulator; the plan's time phase by phase; what
    the secret fields (every database socket's username and password, checked against the
    fingerprints in border0's tags) add to a cold plan."""
    folder = generate(work / f"manifests-{n}", n)
    db = _fresh_db(work / f"plan-{n}.db")
    t0 = time.perf_counter()
    seeded = seed(db, folder)
    print(f"N={n}: seeded {seeded} in {time.perf_counter() - t0:.1f}s", flush=True)
    env_file, token_file = _files(work)

    validate = run_measured(reconciler("validate", str(folder)))
    if validate.code != 0:
        raise SystemExit(f"validate failed: {validate.stderr[-2000:]}")
    res.add(f"validate N={n:,}", f"{validate.wall:.2f} s, {validate.max_rss_mb:.0f} MB peak")
    res.data.setdefault("plan", {})[n] = data = {
        "validate_wall_s": round(validate.wall, 3),
        "validate_max_rss_mb": round(validate.max_rss_mb, 1)}

    def measure_plan(emu: Emulator, of: Path = folder,
                     forget: tuple[str, ...] = ()) -> tuple[Run, int]:
        """One `plan` of the unchanged folder: its measurement and the requests it made;
        without what earlier plans kept in the state folder that `forget` names (the
        children's working directory is REPO: docs/performance.md, "A parse cache",
        "Unchanged sockets" and "A plan with nothing to do")."""
        _forget(forget)
        mark = emu.settled_count()
        result = run_measured(reconciler(
            "plan", str(of), "--api", emu.url, "--token-file", str(token_file),
            "--env-file", str(env_file), "--detailed-exitcode", "--no-color"))
        if result.code != 0:
            raise SystemExit(f"plan of unchanged N={n} exited {result.code} (0 = no changes):\n"
                             f"{result.stdout[-1500:]}{result.stderr[-1500:]}")
        return result, emu.settled_count() - mark

    def measure_plans(emu: Emulator) -> tuple[Run, int, list[float]]:
        """`TIMED_RUNS` warm plans, after one that leaves the memo in place (a plan that finds
        nothing to do keeps one, unless it changed the inventory it read): the median one (by
        wall time), its requests, every wall."""
        measure_plan(emu)
        runs = [measure_plan(emu) for _ in range(TIMED_RUNS)]
        median = _median_of(runs, key=lambda run: run[0].wall)
        return median[0], median[1], sorted(run.wall for run, _ in runs)

    def measure_without(emu: Emulator, forget: tuple[str, ...]) -> Run:
        """The median of 3 plans, each without `forget` (then the plan that puts them back)."""
        run = _median_of([measure_plan(emu, forget=forget)[0] for _ in range(3)],
                         key=lambda one: one.wall)
        measure_plan(emu)
        return run

    goals = {0: 1.0, 50: 1.5}
    for latency in latencies:
        emu = Emulator(db, *(("--latency", f"{latency:g}") if latency else ()))
        try:
            emu.warm_up()
            if latency == latencies[0]:  # cold: every file parsed (and the parses kept)
                cold, _ = measure_plan(emu, forget=PARSES)
                data[f"cold_at_{latency:g}ms"] = {"wall_s": round(cold.wall, 3),
                                                "cpu_s": round(cold.cpu, 3)}
                res.add(f"no-op plan N={n:,}, {latency:g} ms, cold (no parse cache, no record)",
                        f"{cold.wall:.2f} s wall, {cold.cpu:.2f} s CPU, "
                        f"{cold.max_rss_mb:.0f} MB")
            plan, requests, walls = measure_plans(emu)
            # the plan made: after a change the memo does not hold (border0's, or a file's
            # elsewhere in the tree), every unchanged socket skipped by its key
            unmemoed = measure_without(emu, MEMO)
            unrecorded = None
            if latency == latencies[0]:  # a plan that compares every socket (a CI runner
                # that keeps the parse cache, not the record)
                unrecorded = measure_without(emu, RECORD)
            refresh = refresh_peer(emu, n) if with_peer else None
            phases = _phases(folder, emu.url, env_file) if latency == 0 else None
        finally:
            emu.stop()
        entry = {"wall_s": round(plan.wall, 3), "cpu_s": round(plan.cpu, 3),
                 "max_rss_mb": round(plan.max_rss_mb, 1), "requests": requests,
                 "walls_s": [round(w, 3) for w in walls]}
        goal, ok = "", None
        if n == 10_000 and latency in goals:
            goal = f"< {goals[latency]:g} s" + (", >= 30x refresh" if latency == 50 else "")
            ok = plan.wall < goals[latency]
        peer = ratio = ""
        if refresh is not None:
            entry.update(refresh_s=round(refresh, 3), ratio=round(refresh / plan.wall, 1))
            peer, ratio = f"{refresh:.2f} s", f"{refresh / plan.wall:.1f}x"
            if n == 10_000 and latency == 50:
                ok = ok and refresh / plan.wall >= 30
        data[f"at_{latency:g}ms"] = entry
        res.add(f"no-op plan N={n:,}, {latency:g} ms",
                f"{plan.wall:.2f} s wall ({_spread(walls)}), {plan.cpu:.2f} s CPU, "
                f"{plan.max_rss_mb:.0f} MB, {requests} requests", goal, ok, peer, ratio)
        data[f"unmemoed_at_{latency:g}ms"] = {"wall_s": round(unmemoed.wall, 3),
                                               "cpu_s": round(unmemoed.cpu, 3),
                                               "max_rss_mb": round(unmemoed.max_rss_mb, 1)}
        res.add("  made, not shown from the memo (the record of sockets in sync)",
                f"{unmemoed.wall:.2f} s wall, {unmemoed.cpu:.2f} s CPU, "
                f"{unmemoed.max_rss_mb:.0f} MB (median of 3)")
        if unrecorded is not None:
            data[f"unrecorded_at_{latency:g}ms"] = {"wall_s": round(unrecorded.wall, 3),
                                                  "cpu_s": round(unrecorded.cpu, 3)}
            res.add("  every socket compared (no record of those in sync)",
                    f"{unrecorded.wall:.2f} s wall, {unrecorded.cpu:.2f} s CPU (median of 3)")
        if phases is not None:
            data["phases_s"] = phases
            res.add(f"  where it goes (one process, {phases['yaml']})",
                    ", ".join(f"{k} {phases[k]:.2f}" for k in _PHASE_NAMES) + " s")
        if phases is not None and secrets_delta:
            added = phases["diff"] - phases["diff_warm"]
            secrets = len(range(2, n, 5)) + len(range(4, n, 5))  # ssh and database passwords
            data["secrets_added_s"] = round(added, 3)
            res.add(f"  {secrets:,} secret fields add, cold",
                    f"{added:.3f} s (the diff cold, less the diff with them checked once)",
                    "< 0.1 s" if n == 10_000 else "", added < 0.1 if n == 10_000 else None)


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


_PHASE_NAMES = ("imports", "parse", "validate", "load_warm", "list", "build", "details", "diff",
                "render")
_PHASES_CODE = """
import json, os, sys, time
from pathlib import Path
from types import SimpleNamespace
t = time.perf_counter
t0 = t()
import reconciler.manifests.loader as manifests
from reconciler.manifests import yamlpos
from reconciler.border0.client import Border0Client
from reconciler.border0.inventory import fetch_actual, fetch_details
from reconciler.plan.planner import make_plan
from reconciler.render import render
from reconciler.secrets import use_fingerprint_key
out = {"imports": t() - t0}
from reconciler.cli.bulk import bulk_gc
no_gc = bulk_gc()  # as `plan` runs: no cyclic collection while it builds (cli/bulk.py)
no_gc.__enter__()
folder, url, token, env_file = sys.argv[1:5]
use_fingerprint_key(os.environ["BORDER0_RECONCILER_FINGERPRINT_KEY"].encode())
env = manifests.read_env_file(env_file)
texts = [p.read_text() for p in sorted(Path(folder).rglob("*.yaml"))]
t0 = t()
for text in texts:
    yamlpos.load_documents(text)
out["parse"] = t() - t0
t0 = t(); loaded = manifests.load([folder], env=env)
out["validate"] = t() - t0 - out["parse"]  # load = parse + schema checks + specs + secrets
# the load again with the parses the plans kept (the state folder in the working directory)
from reconciler.manifests.stored_cache import StoredParseCache
kept = StoredParseCache(Path(".border0-reconciler/manifests.cache"))
t0 = t(); manifests.load([folder], env=env, cache=kept); out["load_warm"] = t() - t0
out["warm_hits"] = kept.hits
with Border0Client(url, token) as client:
    t0 = t()
    sockets = client.list_sockets(); policies = client.list_policies()
    connectors = client.list_all_connectors()
    out["list"] = t() - t0
    t0 = t()
    listed = SimpleNamespace(list_sockets=lambda convert: list(map(convert, sockets)),
                             list_policies=lambda: policies,
                             list_all_connectors=lambda: connectors)
    actual = fetch_actual(listed)
    out["build"] = t() - t0
    t0 = t(); actual = fetch_details(client, loaded.desired, actual); out["details"] = t() - t0
    # the same listing built again: only the secrets' checks are warm for the second diff
    again = fetch_details(client, loaded.desired, fetch_actual(listed))
t0 = t(); plan = make_plan(loaded.desired, actual); out["diff"] = t() - t0
t0 = t(); make_plan(loaded.desired, again); out["diff_warm"] = t() - t0  # secrets checked
t0 = t(); render(plan.to_json(), "text"); out["render"] = t() - t0
assert loaded.ok and not plan.changes, (loaded.diagnostics[:3], plan.changes[:3])
out = {k: round(v, 3) for k, v in out.items()}
out["yaml"] = getattr(yamlpos, "PARSER", yamlpos.Loader.__mro__[1].__name__)
print(json.dumps(out))
"""


def _phases(folder: Path, url: str, env_file: Path) -> dict[str, Any]:
    """The no-op plan's steps timed in one fresh child: imports, YAML parse, the rest of the
    load (schema checks, specs, secrets), list border0, build live objects, the sub-resource
    reads (details), diff, render; and the diff again against the listing built afresh, with
    only the secrets already checked ("diff_warm"). The collector is off as in `plan`
    (`cli/bulk.py`): with it on, the steps took up to twice as long as in the command."""
    done = subprocess.run([PYTHON, "-c", _PHASES_CODE, str(folder), url, TOKEN, str(env_file)],
                          cwd=str(REPO), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit("phase timing failed: " + done.stderr[-2000:])
    return json.loads(done.stdout)


#: What the plans keep in their state folder, each with what a plan without it does: the
#: memo of the last plan with nothing to do (none: the plan is made), the record of the
#: sockets in sync (none: every socket compared), the parse cache (none: every file parsed).
MEMO, RECORD, PARSES = (PLAN_MEMO_FILE,), (PLAN_MEMO_FILE, IN_SYNC_FILE), (
    PLAN_MEMO_FILE, IN_SYNC_FILE, CACHE_FILE)


def _forget(files: tuple[str, ...]) -> None:
    """Remove `files` from the plans' state folder (`PARSES`: what a fresh CI runner has)."""
    for name in files:
        (REPO / STATE_DIR / name).unlink(missing_ok=True)


def bench_big(work: Path, n: int, res: Results, latency_ms: float = 50) -> None:
    """A no-op plan of N sockets in N/100 files (100 documents a file) at `latency_ms`."""
    folder = generate(work / f"big-{n}", n, per_file=100)
    db = _fresh_db(work / f"big-{n}.db")
    t0 = time.perf_counter()
    seed(db, folder)
    print(f"N={n}: seeded in {time.perf_counter() - t0:.1f}s", flush=True)
    env_file, token_file = _files(work)
    validate = run_measured(reconciler("validate", str(folder)))
    emu = Emulator(db, "--latency", f"{latency_ms:g}")
    plans = []
    try:  # cold (the parse cache written), warm and made (no memo: the record of sockets in
        # sync), then warm from the memo the made plan kept (as the 10,000-socket rows)
        for forget in (PARSES, MEMO, ()):
            _forget(forget)
            plans.append(run_measured(reconciler(
                "plan", str(folder), "--api", emu.url, "--token-file", str(token_file),
                "--env-file", str(env_file), "--detailed-exitcode", "--no-color")))
    finally:
        emu.stop()
    cold, plan, memo = plans
    if any(run.code != 0 for run in (validate, *plans)):
        raise SystemExit(f"N={n}: validate exited {validate.code}, plans "
                         f"{[run.code for run in plans]}: {plan.stderr[-1500:]}")
    res.data["big"] = {"n": n, "validate_wall_s": round(validate.wall, 3),
                       "cold_plan_wall_s": round(cold.wall, 3),
                       "cold_plan_max_rss_mb": round(cold.max_rss_mb, 1),
                       "plan_wall_s": round(plan.wall, 3), "plan_cpu_s": round(plan.cpu, 3),
                       "plan_max_rss_mb": round(plan.max_rss_mb, 1),
                       "memo_plan_wall_s": round(memo.wall, 3),
                       "memo_plan_max_rss_mb": round(memo.max_rss_mb, 1)}
    res.add(f"validate N={n:,} ({n // 100:,} files)",
            f"{validate.wall:.2f} s, {validate.max_rss_mb:.0f} MB peak")
    res.add(f"no-op plan N={n:,}, {latency_ms:g} ms, cold (no parse cache, no record)",
            f"{cold.wall:.2f} s wall, {cold.cpu:.2f} s CPU, {cold.max_rss_mb:.0f} MB peak")
    res.add(f"no-op plan N={n:,}, {latency_ms:g} ms, made (no memo)",
            f"{plan.wall:.2f} s wall, {plan.cpu:.2f} s CPU, {plan.max_rss_mb:.0f} MB peak",
            "< 15 s, < 1 GB", plan.wall < 15 and plan.max_rss_mb < 1024)
    res.add(f"no-op plan N={n:,}, {latency_ms:g} ms, from the memo",
            f"{memo.wall:.2f} s wall, {memo.cpu:.2f} s CPU, {memo.max_rss_mb:.0f} MB peak")


def bench_apply(work: Path, n: int, latency_ms: float, parallelism: int, res: Results) -> None:
    """apply of N socket creates, each naming one of ten existing policies, against a slow
    emulator, against the ideal (requests x latency / parallelism). The floor is N creates and
    N/100 attachments from the policies' side (`PUT /policy/{id}/socket`, 100 sockets each).
    `APPLY_RUNS` applies, each into a fresh twin; the median one is the figure."""
    folder = generate(work / f"apply-{n}", n, one_policy=True)
    env_file, token_file = _files(work)
    applies = [_one_apply(work, folder, n, latency_ms, parallelism, env_file, token_file)
               for _ in range(APPLY_RUNS)]
    run, seen, after, _ = _median_of(applies, key=lambda one: one[0].wall)
    walls = sorted(one[0].wall for one in applies)
    requests = len(seen)
    by_kind: dict[str, int] = {}
    for method, path, _ in seen:
        key = f"{method} {re.sub(r'/[0-9a-f-]{36}', '/{id}', path.split('?')[0])}"
        by_kind[key] = by_kind.get(key, 0) + 1
    ideal = requests * latency_ms / 1000 / parallelism
    ratio = run.wall / ideal if ideal else float("nan")
    # the same ideal at the twin's measured round trip: what no client can beat on this twin
    rtt = statistics.median(one[3] for one in applies)
    twin_floor = requests * rtt / parallelism
    res.data["apply"] = {
        "n": n, "latency_ms": latency_ms, "parallelism": parallelism, "wall_s": round(run.wall, 3),
        "walls_s": [round(w, 3) for w in walls],
        "requests": requests, "requests_by_kind": by_kind, "ideal_s": round(ideal, 3),
        "ratio": round(ratio, 3), "max_rss_mb": round(run.max_rss_mb, 1),
        "cpu_s": round(run.cpu, 3), "plan_after_exit_code": after.code,
        "twin_round_trip_ms": round(rtt * 1000, 2), "twin_floor_s": round(twin_floor, 3),
        "ratio_to_twin_floor": round(run.wall / twin_floor, 3),
    }
    limit = n + 20
    res.add(f"apply of {n:,} creates, {latency_ms:g} ms, parallelism {parallelism}",
            f"{run.wall:.2f} s ({_spread(walls)}), {requests} requests, ideal {ideal:.2f} s "
            f"-> {ratio:.2f}x (plan after: exit {after.code}); the twin's own round trip "
            f"{rtt * 1000:.1f} ms: {twin_floor:.2f} s at it, {run.wall / twin_floor:.2f}x",
            f"<= 1.1x ideal, <= {limit:,} requests",
            ratio <= 1.1 and requests <= limit and after.code == 0)


def _one_apply(work: Path, folder: Path, n: int, latency_ms: float, parallelism: int,
               env_file: Path, token_file: Path
               ) -> tuple[Run, list[tuple[str, str, int]], Run, float]:
    """One apply into a fresh twin (the policies seeded, warmed up): the apply's measurement,
    the requests the twin answered for it, the plan after it (exit 0: nothing left), and the
    twin's own round trip (`Emulator.round_trip`, taken before the apply)."""
    db = _fresh_db(work / f"apply-{n}.db")
    seed(db, folder, sockets=False)
    emu = Emulator(db, "--latency", f"{latency_ms:g}")
    try:
        emu.warm_up()
        rtt = emu.round_trip()
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
    return run, seen, after, rtt


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


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench_daemon(work: Path, n: int, connectors: int, idle_s: float, edits: int,
                 res: Results) -> None:
    """The daemon with N sockets and C connectors: idle CPU and RSS, /status, then
    write-to-applied latency (a manifest replaced, the API polled until it shows the edit)."""
    import httpx

    folder = generate(work / f"daemon-{n}", n, connectors=connectors)
    db = _fresh_db(work / f"daemon-{n}.db")
    seed(db, folder)
    env_file, _ = _files(work)
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

        wait(converged, 300, f"the daemon to converge with {connectors} connectors running",
             interval=0.2)
        startup = time.perf_counter() - t0
        pid = daemon.proc.pid
        idle_cpu = rss = float("nan")
        status_s = []
        if idle_s:
            time.sleep(1)  # let the converging reconcile's tail (re-list, status) finish
            cpu0, w0 = _proc_cpu_s(pid), time.perf_counter()
            time.sleep(idle_s)  # the measurement window itself, not synchronisation
            cpu1, w1 = _proc_cpu_s(pid), time.perf_counter()
            idle_cpu = (cpu1 - cpu0) / (w1 - w0) * 100
            rss = _proc_rss_mb(pid)
            for _ in range(5):
                s0 = time.perf_counter()
                daemon.http.get("/status").raise_for_status()
                status_s.append(time.perf_counter() - s0)

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
    p50, p95, worst = (_percentile(latencies, 0.5), _percentile(latencies, 0.95), max(latencies))
    res.data.setdefault("daemon", {})[n] = {
        "sockets": n, "connectors": connectors, "startup_to_converged_s": round(startup, 2),
        "rss_mb": round(rss, 1), "rss_after_edits_mb": round(rss_after, 1),
        "idle_window_s": idle_s, "idle_cpu_percent_of_core": round(idle_cpu, 3),
        "status_s": [round(x, 3) for x in status_s],
        "edits": edits, "p50_s": round(p50, 3), "p95_s": round(p95, 3), "max_s": round(worst, 3),
        "all_s": [round(x, 3) for x in latencies],
    }
    if idle_s:
        res.add(f"idle daemon, {n:,} sockets + {connectors} connectors",
                f"{idle_cpu:.2f}% of a core over {idle_s:g} s, {rss:.0f} MB RSS "
                f"({rss_after:.0f} MB after the edits), converged in {startup:.1f} s",
                "< 1% of a core", idle_cpu < 1)
        worst_status = max(status_s)
        res.add(f"  /status with {n:,} sockets", f"{worst_status * 1000:.0f} ms (worst of 5)",
                "< 200 ms", worst_status < 0.2)
    goal = 0.3 if n <= 10 else 0.5
    res.add(f"write-to-applied, {n:,} sockets ({edits} edits)",
            f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {worst * 1000:.0f} ms",
            f"p50 < {goal * 1000:.0f} ms", p50 < goal)


# --- main -----------------------------------------------------------------------------------


def compile_bytecode(package: Path = REPO / "reconciler") -> str:
    """Compile `package` and the environment's libraries first, as `pip install` of the wheel
    does: a child that finds no `.pyc` (an editable or `uv pip` install, and
    PYTHONDONTWRITEBYTECODE=1 stops Python writing them) compiles every module it imports, and
    every start-up figure would carry 0.5 s that a user's install does not (docs/performance.md)."""
    import sysconfig
    folders = [package, Path(sysconfig.get_paths()["purelib"])]
    ok = all(compileall.compile_dir(str(f), quiet=2, workers=0) for f in folders)
    return "compiled" if ok else "compiled, with errors (some modules start from source)"


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
        "environment": _environment(),
    }


def _environment() -> str:
    """What the children import beyond the product: the test extra pulls in trio (through
    selenium), which httpcore imports whenever it is installed (0.1 s of every start that
    talks to border0). Figures for users come from `pip install '.[local]'` alone."""
    import importlib.util

    if importlib.util.find_spec("trio") is not None:
        return "test extras installed (trio: +0.1 s a start); the product's figures need .[local]"
    return "product install (.[local])"


def print_table(res: Results) -> None:
    header = ("figure", "value", "goal", "peer", "ratio", "")
    widths = [max(len(r[i]) for r in [*res.rows, header]) for i in range(6)]
    print()
    for row in [header, tuple("-" * w for w in widths), *res.rows]:
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small: N = 1,000, no 100,000 plan, apply of 300, daemon at 10 and "
                        "1,000 sockets with 10 edits and a 5 s idle window (about a minute)")
    parser.add_argument("--n", type=int, default=None, help="no-op plan size (default 10,000)")
    parser.add_argument("--big", type=int, default=None,
                        help="the large plan's size (default 100,000; 0: skip it)")
    parser.add_argument("--apply-n", type=int, default=None, help="creates (default 1,000)")
    parser.add_argument("--daemon-n", default=None,
                        help="daemon sizes, comma-separated (default 10,10000)")
    parser.add_argument("--edits", type=int, default=None, help="edits per daemon (default 30)")
    parser.add_argument("--idle", type=float, default=None, help="idle window, s (default 20)")
    parser.add_argument("--latency", type=float, default=50, metavar="MS",
                        help="the slow emulator's latency (default 50 ms)")
    parser.add_argument("--only", default="startup,plan,apply,daemon,big",
                        help="comma-separated: startup, plan, apply, daemon, big")
    parser.add_argument("--no-peer", action="store_true",
                        help="skip the Terraform-style refresh peer (a minute at 10,000 sockets)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the JSON here")
    parser.add_argument("--workdir", default=None, help="keep generated files here")
    args = parser.parse_args(argv)
    quick = args.quick
    n = args.n or (1000 if quick else 10_000)
    big = args.big if args.big is not None else (0 if quick else 100_000)
    apply_n = args.apply_n or (300 if quick else 1000)
    daemon_sizes = [int(x) for x in (args.daemon_n or ("10,1000" if quick else "10,10000"))
                    .split(",") if x]
    edits = args.edits or (10 if quick else 30)
    idle = args.idle if args.idle is not None else (5 if quick else 20)
    only = set(args.only.split(","))
    os.environ["BORDER0_RECONCILER_FINGERPRINT_KEY"] = FINGERPRINT_KEY  # every child's key
    res = Results()
    compiled = compile_bytecode()
    res.data["machine"] = {**machine(), "bytecode": compiled}
    print(f"machine: {res.data['machine']}", flush=True)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="b0r-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        if "startup" in only:
            bench_startup(work, res)
        if "plan" in only:
            bench_plan(work, n, res, (0, args.latency), with_peer=not args.no_peer)
        if "apply" in only:
            bench_apply(work, apply_n, args.latency, 10, res)
        if "daemon" in only:
            for size in daemon_sizes:
                bench_daemon(work, size, 50 if size >= 1000 else 0, idle if size >= 1000 else 0,
                             edits, res)
        if "big" in only and big:
            bench_big(work, big, res, args.latency)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    res.data["total_s"] = round(time.perf_counter() - t0, 1)
    print_table(res)
    print(f"\nmachine: {res.data['machine']}; total {res.data['total_s']} s")
    print(json.dumps(res.data, indent=2), file=sys.stderr)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res.data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
