"""Reliability: convergence under faults, crash safety, and the rules that guard deletes.

Real parts only: the emulator on a thread (with its fault options), the CLI and the daemon
command in this process; the daemon as a child process where a SIGKILL and its connector
processes (found in /proc) are the subject. Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import PYTHON, cli, wait_for

from reconciler.border0.api_json import socket_from_api
from reconciler.border0.client import Border0Client
from reconciler.reconcile import ReconcileOptions, reconcile

DB_PASSWORD = "Rel-Db-Pa55-c41e"
ENV = {"REL_DB_PASSWORD": DB_PASSWORD}

# --- manifests ------------------------------------------------------------------------------


def socket_yaml(name: str, type_: str = "http", *, description: str = "", policies: tuple = (),
                connector: bool = False, prune: bool = True) -> str:
    lines = ["apiVersion: border0-reconciler/v1", "kind: Socket", "metadata:", f"  name: {name}"]
    if not prune:
        lines += ["  annotations:", '    border0-reconciler/prune: "false"']
    lines += ["spec:", f"  type: {type_}", f"  description: {description or name}"]
    if type_ == "database":
        lines += ["  upstream:", "    type: postgres", "    username: app",
                  "    password: {env: REL_DB_PASSWORD}"]
    if policies:
        lines.append(f"  policies: [{', '.join(policies)}]")
    if connector:
        lines += ["  connector:", "    host: 127.0.0.1", "    port: 9"]
    return "\n".join(lines) + "\n"


def policy_yaml(name: str, *, description: str = "", prune: bool = True) -> str:
    meta = "" if prune else '  annotations:\n    border0-reconciler/prune: "false"\n'
    return (
        f"apiVersion: border0-reconciler/v1\nkind: Policy\nmetadata:\n  name: {name}\n{meta}"
        f"spec:\n  description: {description or name}\n  policyData:\n    version: v1\n"
        "    action: [http, ssh, tls, database]\n    condition:\n      who:\n"
        "        email: [ops@example.com]\n"
    )


def write_all(folder: Path, files: dict[str, str]) -> Path:
    """Make `folder` hold exactly `files` (name -> text); each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, folder / name)
    return folder


def inventory(client: Border0Client) -> dict[str, Any]:
    """What border0 holds: socket and policy name counts, descriptions, attachments, owners."""
    sockets = client.list_sockets()
    policies = client.list_policies()
    return {
        "sockets": Counter(s["name"] for s in sockets),
        "policies": Counter(p["name"] for p in policies),
        "descriptions": {s["name"]: s.get("description") for s in sockets},
        "attached": {s["name"]: sorted(p["name"] for p in s.get("policies") or [])
                     for s in sockets},
        "owners": {s["name"]: socket_from_api(s).ownership.instance for s in sockets},
    }


# --- processes ------------------------------------------------------------------------------


class Daemon:
    """`python -m reconciler run` as a child with JSON logs on stderr (collected)."""

    def __init__(self, path: Path, api: str, token: str, *args: str,
                 env: dict[str, str] | None = None) -> None:
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", BORDER0_ADMIN_TOKEN=token,
                        **(env or {}))
        full_env.pop("BORDER0_RECONCILER_DEBUG", None)
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "reconciler", "run", str(path), "--api", api,
             "--listen", "127.0.0.1:0", "--log-format", "json", *args],
            # beside the manifests, as a user runs it: its state (the fingerprint key among
            # it) is the CLI's of the same folder, and never lands in the repository
            cwd=str(Path(path).resolve().parent), env=full_env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self.out: list[str] = []
        for stream, sink in ((self.proc.stderr, self.lines), (self.proc.stdout, self.out)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()
        listen = wait_for(self._listen, timeout=60, message="the daemon to listen")
        self.http = httpx.Client(base_url=f"http://{listen}", timeout=10)

    @staticmethod
    def _read(stream: Any, sink: list[str]) -> None:
        sink.extend(stream)  # line by line, as they come

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def _listen(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError("the daemon exited: " + "".join(self.lines))
        return next((r["listen"] for r in self.records() if "listen" in r), None)

    def status(self) -> dict[str, Any]:
        return self.http.get("/status").json()

    def wait(self, predicate: Any, timeout: float, message: str, interval: float = 0.05) -> Any:
        """wait_for, showing the daemon's last log lines when it times out."""
        try:
            return wait_for(predicate, timeout=timeout, message=message, interval=interval)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\ndaemon log:\n{''.join(self.lines[-30:])}") from None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def daemons() -> Iterator[Any]:
    started: list[Daemon] = []

    def start(*args: Any, **kw: Any) -> Daemon:
        daemon = Daemon(*args, **kw)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def processes_with(marker: str) -> dict[int, list[str]]:
    """pid -> argv of every live process with `marker` as one of its arguments (the daemon, whose
    --connector-command merely contains it, is not one)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace")
            argv = argv.rstrip("\0").split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and marker in argv:
            found[int(entry.name)] = argv
    return found


def parent_of(pid: int) -> int:
    try:
        return int((Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split())[1])
    except (OSError, IndexError, ValueError):
        return -1


# --- convergence under faults ---------------------------------------------------------------


def _round(n_sockets: int, removed: set[int], edited: set[int]) -> dict[str, str]:
    files = {"policies.yaml": policy_yaml("ops") + "---\n" + policy_yaml("dev")}
    types = ("http", "https", "ssh", "tls", "database")
    for i in range(n_sockets):
        if i in removed:
            continue
        files[f"s{i:02d}.yaml"] = socket_yaml(
            f"app-{i:02d}", types[i % 5], description=f"app {i}" + (" v2" if i in edited else ""),
            policies=("ops",) if i % 2 else ("ops", "dev"),
        )
    return files


@pytest.mark.timeout(240)
@pytest.mark.slow  # in this process, but a soak of many applies: out of the quick loop
def test_repeated_applies_converge_under_faults_with_no_duplicate_or_lost_object(
    emulator_factory, tmp_path: Path
) -> None:
    """--fail-rate 0.3 (500s and dropped connections, before and after the write) and
    --rate-limit 20: each apply may fail part-way; repeating it reaches exactly the manifests."""
    folder = tmp_path / "m"
    db = tmp_path / "faults.db"
    rounds = [
        _round(14, removed=set(), edited=set()),
        _round(18, removed={1, 2, 3, 4}, edited={5, 6, 7}),  # deletes within the guard
    ]
    faults_seen = Counter()
    for files in rounds:
        write_all(folder, files)
        emu = emulator_factory(db_path=str(db), fail_rate=0.3, rate_limit=20)
        client = emu.client(backoff_max=0.3)
        for _attempt in range(25):
            result = reconcile([folder], client, ReconcileOptions(env=ENV, parallelism=8))
            if result.ok and result.plan is not None and not result.plan.has_changes:
                break
        else:
            pytest.fail(f"no convergence in 25 applies: {result.stage}: {result.error}")
        faults_seen.update(status for (_, status), n in client.request_counts.items()
                           for _ in range(n) if status in (0, 429, 500))
        emu.stop()

        clean = emulator_factory(db_path=str(db))  # the same database, served without faults
        state = inventory(clean.client())
        want_sockets = {f"app-{name[1:3]}" for name in files if name.startswith("s")}
        assert state["sockets"] == Counter({name: 1 for name in want_sockets})  # no dup/loss
        assert state["policies"] == Counter({"ops": 1, "dev": 1})
        for name in want_sockets:
            i = int(name.split("-")[1])
            edited = "v2" in files[f"s{i:02d}.yaml"]
            assert state["descriptions"][name] == f"app {i}" + (" v2" if edited else "")
            assert state["attached"][name] == (["ops"] if i % 2 else ["dev", "ops"])
            assert state["owners"][name] == "default"
        check = reconcile([folder], clean.client(), ReconcileOptions(env=ENV, dry_run=True))
        assert check.ok and check.plan is not None and not check.plan.has_changes
        clean.stop()
    # the faults really happened: 500s or dropped answers, and 429s
    assert faults_seen[429] > 0 and faults_seen[500] + faults_seen[0] > 5, faults_seen


# --- crash safety ---------------------------------------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_large_apply_then_restart_converges_cleanly(
    emulator_process, daemons, tmp_path: Path
) -> None:
    """The daemon is SIGKILLed while it creates 200 sockets (emulator at 40 ms latency): its
    connectors die with it; started again it converges with no duplicate socket, and runs exactly
    one connector per socket."""
    emu = emulator_process(latency=40)
    client = emu.client()
    marker = f"b0r-crash-{uuid.uuid4().hex[:10]}"
    template = f'{{python}} -c "import time; time.sleep(3600)" {marker} {{name}}'
    args = ("--connector-command", template, "--connector-startsecs", "0.3s",
            "--interval", "1h", "--debounce", "100ms")
    folder = tmp_path / "m"
    with_connectors = {f"c{i}.yaml": socket_yaml(f"conn-{i}", connector=True) for i in range(4)}
    write_all(folder, with_connectors)

    first = daemons(folder, emu.url, emu.token, *args, "--parallelism", "2")
    first.wait(lambda: len(processes_with(marker)) == 4, timeout=60,
               message="the first daemon's four connectors")
    assert all(parent_of(pid) == first.proc.pid for pid in processes_with(marker))

    bulk = "---\n".join(socket_yaml(f"bulk-{i:03d}", ("http", "tls", "ssh")[i % 3],
                                    policies=("ops",) if i % 10 == 0 else ())
                        for i in range(200))
    write_all(folder, {**with_connectors, "ops.yaml": policy_yaml("ops"), "bulk.yaml": bulk})

    def mid_apply() -> bool:
        made = sum(1 for s in client.list_sockets() if s["name"].startswith("bulk-"))
        return 20 <= made < 180

    wait_for(mid_apply, timeout=60, interval=0.02, message="the apply to be under way")
    first.kill()
    made = sum(1 for s in client.list_sockets() if s["name"].startswith("bulk-"))
    assert made < 200, "the apply finished before the kill: nothing was tested"
    # PR_SET_PDEATHSIG: no connector outlives the SIGKILLed daemon
    wait_for(lambda: not processes_with(marker), timeout=20,
             message="the connectors of the killed daemon to exit")

    second = daemons(folder, emu.url, emu.token, *args, "--parallelism", "8")
    expected = {f"bulk-{i:03d}" for i in range(200)} | {f"conn-{i}" for i in range(4)}

    def converged() -> bool:
        status = second.status()
        running = [c for c in status.get("connectors", []) if c["state"] == "RUNNING"]
        state = inventory(client)
        # the attachments grant access: they wait out the grace window after the last edit
        attached = all(state["attached"].get(f"bulk-{i:03d}") == (["ops"] if i % 10 == 0 else [])
                       for i in range(200))
        return (bool(status.get("last_success")) and len(running) == 4
                and set(state["sockets"]) == expected and attached)

    second.wait(converged, timeout=120, interval=0.2, message="the restarted daemon to converge")
    state = inventory(client)
    assert state["sockets"] == Counter({name: 1 for name in expected})  # no duplicate
    assert state["policies"] == Counter({"ops": 1})
    assert all(state["attached"][f"bulk-{i:03d}"] == (["ops"] if i % 10 == 0 else [])
               for i in range(200))
    connectors = processes_with(marker)
    assert sorted(argv[-1] for argv in connectors.values()) == [f"conn-{i}" for i in range(4)]
    assert all(parent_of(pid) == second.proc.pid for pid in connectors)  # no orphan, no dup
    assert second.terminate() == 0
    wait_for(lambda: not processes_with(marker), timeout=20,
             message="the connectors to stop with the daemon")


# --- deletes: the guard, prune=false and ownership on every path ----------------------------


@pytest.fixture
def owned_world(emulator, tmp_path: Path) -> dict[str, Any]:
    """border0 holding: 6 sockets + 1 policy of ours that may be pruned, a socket and a policy
    of ours marked prune=false, a socket of another instance, and objects nobody manages."""
    client = emulator.client()
    ours = write_all(tmp_path / "ours", {
        "pol.yaml": policy_yaml("ops") + "---\n" + policy_yaml("kept-pol", prune=False),
        **{f"a{i}.yaml": socket_yaml(f"app-{i}", policies=("ops",)) for i in range(1, 7)},
        "keep.yaml": socket_yaml("kept", "tls", prune=False),
    })
    assert reconcile([ours], client, ReconcileOptions(env=ENV)).ok
    theirs = write_all(tmp_path / "theirs", {"o.yaml": socket_yaml("other-team", "ssh")})
    assert reconcile([theirs], client, ReconcileOptions(env=ENV, instance="other")).ok
    client.create_socket({"name": "hand-made", "socket_type": "tls", "description": "by hand"})
    client.create_policy({"name": "hand-pol", "description": "by hand",
                          "policy_data": {"version": "v1", "action": ["http"], "condition": {}}})
    token = tmp_path / "token"
    token.write_text(emulator.token)
    env_file = tmp_path / "rel.env"
    env_file.write_text(f"REL_DB_PASSWORD={DB_PASSWORD}\n")
    return {"client": client, "emulator": emulator, "dir": tmp_path,
            "api": ["--api", emulator.url, "--token-file", str(token)],
            "env": ["--env-file", str(env_file)], "before": inventory(client)}


NEVER_DELETED = {"kept", "other-team", "hand-made"}
NEVER_DELETED_POLICIES = {"kept-pol", "hand-pol"}


def _cli(world: dict[str, Any], *args: str, api: bool = True) -> tuple[int, str, str]:
    code, out, err = cli([*args, *(world["api"] if api else []), *world["env"]],
                         cwd=world["dir"], timeout=120)
    assert "Traceback" not in out + err and "internal error" not in out + err, err
    return code, out, err


def _refused_everywhere(world: dict[str, Any], folder: Path, daemon_run: Any) -> None:
    """Each path that can delete refuses the plan, and border0 is left exactly as it was."""
    path = str(folder)
    before = world["before"]
    for args in (["plan", path], ["apply", path, "--auto-approve"], ["run", path, "--once"]):
        code, out, err = _cli(world, *args)
        assert code == 1, (args, out, err)
        assert "refusing to delete" in out + err, (args, out, err)
        assert inventory(world["client"]) == before, args
    saved = world["dir"] / "refused-plan.json"
    code, out, err = _cli(world, "plan", path, "--save", str(saved))
    assert code == 1 and "refusing to delete" in out + err
    if saved.exists():  # whatever was written must not apply
        code, out, err = _cli(world, "apply", str(saved), api=True)
        assert code == 1, (out, err)
    assert inventory(world["client"]) == before
    # --delete-grace 0: this is the mass-delete guard's test; with a grace period the first pass
    # would defer the deletes (a success with nothing to do) and only the next one be refused.
    daemon = daemon_run(folder, world["emulator"].url, world["emulator"].token, "--interval",
                        "1h", "--delete-grace", "0", *world["env"])
    wait_for(lambda: any(r.get("message", "").startswith("reconcile failed")
                         for r in list(daemon.records)),
             timeout=60, message="the daemon's reconcile to be refused")
    assert any("refusing to delete" in line for line in daemon.lines)
    assert daemon.status()["last_success"] is None
    assert inventory(world["client"]) == before
    assert daemon.terminate() == 0


@pytest.mark.timeout(240)
def test_empty_manifests_delete_nothing_on_any_path(owned_world, daemon_run, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.md").write_text("an empty or wrong checkout\n")
    _refused_everywhere(owned_world, empty, daemon_run)


@pytest.mark.timeout(240)
def test_more_deletes_than_max_delete_are_refused_on_any_path(owned_world, daemon_run,
                                                              tmp_path) -> None:
    # 9 objects of ours; keeping 1 socket + ops would delete 5 sockets > 9 // 2
    partial = write_all(tmp_path / "partial", {
        "pol.yaml": policy_yaml("ops"), "a1.yaml": socket_yaml("app-1", policies=("ops",)),
    })
    _refused_everywhere(owned_world, partial, daemon_run)

    # allowed through a saved plan: only ours, never prune=false, never others'
    saved = tmp_path / "plan.json"
    code, out, err = _cli(owned_world, "plan", str(partial), "--max-delete", "5",
                          "--save", str(saved))
    assert code == 0, err
    assert "kept: prune disabled" in out + err
    code, out, err = _cli(owned_world, "apply", str(saved))
    assert code == 0, err
    state = inventory(owned_world["client"])
    assert set(state["sockets"]) == {"app-1"} | NEVER_DELETED
    assert set(state["policies"]) == {"ops"} | NEVER_DELETED_POLICIES

    # and the daemon's --once with --allow-mass-delete on an empty folder
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = _cli(owned_world, "run", str(empty), "--once", "--allow-mass-delete")
    assert code == 0, err
    state = inventory(owned_world["client"])
    assert set(state["sockets"]) == NEVER_DELETED
    assert set(state["policies"]) == NEVER_DELETED_POLICIES
    assert state["owners"] == {"kept": "default", "other-team": "other", "hand-made": None}
