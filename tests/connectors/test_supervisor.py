"""The connector supervisor with real child processes (tiny Python scripts as fake connectors)."""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from reconciler.clock import ManualClock
from reconciler.connectors.supervisor import ConnectorTarget, State, Supervisor
from reconciler.model import ConnectorSpec

# The fake connector: records each start as "name pid monotonic port" in STARTS, prints a
# line, then behaves as its --host says: run (until SIGTERM), fail (exit 3), stubborn (ignores
# SIGTERM), family (starts a grandchild in its group), leak (prints the secrets it was given).
FAKE = """
import os, signal, subprocess, sys, time
name, mode, port, starts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with open(starts, "a") as f:
    f.write(f"{name} {os.getpid()} {time.monotonic()} {port}\\n")
print(f"hello from {name} on {port}", flush=True)
if mode == "fail":
    print("cannot connect to border0", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(starts + ".stubborn", "w").close()  # SIGTERM is ignored from here on
if mode == "family":
    kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(starts + ".kid", "w") as f:
        f.write(str(kid.pid))
if mode == "leak":
    print("token=" + os.environ.get("BORDER0_ADMIN_TOKEN", "") +
          " pw=" + os.environ.get("FAKE_SECRET", ""), flush=True)
    with open(starts + ".env", "w") as f:
        f.write(os.environ.get("BORDER0_ADMIN_TOKEN", "") + "\\n" + " ".join(sys.argv))
while True:
    time.sleep(3600)
"""


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, Path]:
    script = tmp_path / "fake_connector.py"
    script.write_text(FAKE)
    return {"script": script, "starts": tmp_path / "starts.log"}


@pytest.fixture
def make_supervisor(fake):
    made: list[Supervisor] = []

    def make(**kwargs) -> Supervisor:
        template = f"{{python}} {fake['script']} {{name}} {{host}} {{port}} {fake['starts']}"
        options = {
            "command_template": template,
            "startsecs": 0.3,
            "backoff_base": 0.1,
            "backoff_max": 2.0,
            "stop_timeout": 2.0,
            "fatal_after": 3,
        }
        options.update(kwargs)
        sup = Supervisor(**options)
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.stop_all(timeout=1.0)


def target(name: str, mode: str = "run", port: int = 1000) -> ConnectorTarget:
    return ConnectorTarget(name, ConnectorSpec(host=mode, port=port), "tls", f"id-{name}", (4000,))


def starts(fake, name: str | None = None) -> list[tuple[str, int, float, int]]:
    if not fake["starts"].exists():
        return []
    rows = []
    for line in fake["starts"].read_text().splitlines():
        n, pid, t, port = line.split()
        if name is None or n == name:
            rows.append((n, int(pid), float(t), int(port)))
    return rows


def by_name(sup: Supervisor) -> dict:
    return {s.name: s for s in sup.status()}


def running(sup: Supervisor, *names: str):
    st = by_name(sup)
    if all(n in st and st[n].state is State.RUNNING for n in names):
        return st
    return None


def gone(pgid: int) -> bool:
    """True once no live process is left in the group `pgid` (our children lead their own).

    A zombie counts as gone: an orphaned grandchild waits for init to reap it, and init in a
    container may take its time.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


@pytest.mark.slow
def test_starts_one_connector_per_target_in_its_own_group(make_supervisor, fake):
    sup = make_supervisor()
    sup.sync({"a": target("a"), "b": target("b")})
    st = wait_for(lambda: running(sup, "a", "b"), message="a and b running")
    # RUNNING means alive for startsecs; on a busy machine the child may not have logged its
    # start yet: wait for the log rather than read it once.
    wait_for(lambda: {r[0] for r in starts(fake)} == {"a", "b"}, message="both starts logged")
    assert st["a"].pid != st["b"].pid
    for s in st.values():
        assert os.getpgid(s.pid) == s.pid  # leads its own process group
        assert s.restarts == 0 and s.last_exit_code is None
    assert {r[0] for r in starts(fake)} == {"a", "b"}
    assert st["a"].to_dict()["state"] == "running"


@pytest.mark.slow
def test_killed_connector_comes_back_within_the_backoff(make_supervisor):
    sup = make_supervisor()
    sup.sync({"a": target("a")})
    old = wait_for(lambda: running(sup, "a"))["a"]
    os.kill(old.pid, signal.SIGKILL)
    new = wait_for(
        lambda: (s := running(sup, "a")) and s["a"].pid != old.pid and s["a"], timeout=10
    )
    assert new.restarts == 1
    assert new.last_exit_code == -signal.SIGKILL
    assert (State.RUNNING, State.EXITED) in sup.transitions("a")
    assert (State.EXITED, State.BACKOFF) in sup.transitions("a")
    assert gone(old.pid)


@pytest.mark.slow
def test_always_failing_connector_backs_off_with_growing_delays_then_fatal(
    make_supervisor, fake, caplog
):
    # startsecs well above a failing child's life, even on a busy machine: each exit is a failed
    # start (one that outlived startsecs would count as started and reset the series).
    caplog.set_level(logging.WARNING, logger="reconciler.connector")
    sup = make_supervisor(backoff_base=0.2, fatal_after=4, startsecs=5.0)
    sup.sync({"bad": target("bad", mode="fail")})
    st = wait_for(lambda: by_name(sup)["bad"].state is State.FATAL and by_name(sup), timeout=20)
    bad = st["bad"]
    assert bad.pid is None and bad.last_exit_code == 3
    assert "exited with code 3" in bad.last_error and "gave up after 4" in bad.last_error
    assert "cannot connect to border0" in bad.last_error  # the child's last line, as context
    times = [r[2] for r in starts(fake, "bad")]
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # the delays it chose double; the gaps between real starts (which add each child's start-up
    # and life, seconds apart on a busy machine) are never shorter than them
    delays = re.findall(r"restarting in ([0-9.]+)s", caplog.text)
    assert delays == ["0.2", "0.4", "0.8"], caplog.text
    for gap, delay in zip(gaps, (0.2, 0.4, 0.8)):
        assert gap >= delay * 0.95, gaps
    history = sup.transitions("bad")
    assert history.count((State.STARTING, State.BACKOFF)) == 4
    assert history[-1] == (State.BACKOFF, State.FATAL)

    # SIGHUP: a fresh series of starts, which fails the same way.
    sup.reset_fatal()
    wait_for(lambda: len(starts(fake, "bad")) >= 5, message="restart after reset_fatal")
    wait_for(lambda: by_name(sup)["bad"].state is State.FATAL, timeout=20)
    assert (State.FATAL, State.STARTING) in sup.transitions("bad")


@pytest.mark.slow
def test_fatal_connector_starts_again_when_its_spec_changes(make_supervisor, fake):
    sup = make_supervisor(fatal_after=1)
    sup.sync({"x": target("x", mode="fail")})
    wait_for(lambda: by_name(sup)["x"].state is State.FATAL)
    sup.sync({"x": target("x", mode="run")})
    st = wait_for(lambda: running(sup, "x"))
    assert st["x"].last_error is None
    assert (State.FATAL, State.STOPPED) in sup.transitions("x")


@pytest.mark.slow
def test_editing_one_port_restarts_that_connector_only(make_supervisor, fake):
    sup = make_supervisor()
    targets = {n: target(n) for n in ("a", "b", "c")}
    sup.sync(targets)
    before = wait_for(lambda: running(sup, "a", "b", "c"))
    sup.sync({**targets, "b": target("b", port=2000)})
    after = wait_for(
        lambda: (s := running(sup, "a", "b", "c")) and s["b"].pid != before["b"].pid and s
    )
    assert after["a"].pid == before["a"].pid and after["c"].pid == before["c"].pid
    assert starts(fake, "b")[-1][3] == 2000
    assert len(starts(fake, "a")) == 1 and len(starts(fake, "c")) == 1
    assert after["b"].restarts == 0  # a change is not a crash
    assert gone(before["b"].pid)
    # The same targets again change nothing.
    sup.sync({**targets, "b": target("b", port=2000)})
    assert {s.name: s.pid for s in sup.status()} == {n: after[n].pid for n in "abc"}


@pytest.mark.slow
def test_removed_target_stops_its_connector(make_supervisor):
    sup = make_supervisor()
    sup.sync({"a": target("a"), "b": target("b")})
    st = wait_for(lambda: running(sup, "a", "b"))
    sup.sync({"a": target("a")})
    wait_for(lambda: "b" not in by_name(sup), message="b forgotten")
    assert gone(st["b"].pid)
    assert by_name(sup)["a"].pid == st["a"].pid


@pytest.mark.slow
def test_stop_all_leaves_no_process_even_grandchildren_or_stubborn_ones(make_supervisor, fake):
    sup = make_supervisor(stop_timeout=0.5)
    sup.sync({"a": target("a"), "fam": target("fam", "family"), "stub": target("stub", "stubborn")})
    st = wait_for(lambda: running(sup, "a", "fam", "stub"))
    kid_file = Path(str(fake["starts"]) + ".kid")
    kid = int(wait_for(lambda: kid_file.exists() and kid_file.read_text()))
    assert os.getpgid(kid) == st["fam"].pid
    sup.stop_all()  # returns once every group is gone (the stubborn one SIGKILLed)
    assert sup.status() == []
    for s in st.values():
        wait_for(lambda s=s: gone(s.pid), timeout=5, message=f"group of {s.name} gone")
    wait_for(lambda: _not_alive(kid), message="grandchild gone")
    with pytest.raises(RuntimeError):
        sup.sync({"a": target("a")})


def _not_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie (reparented to init and not reaped yet) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.slow
def test_stubborn_connector_gets_sigkill_after_stop_timeout(make_supervisor, fake, caplog):
    caplog.set_level(logging.INFO, logger="reconciler.connector")
    sup = make_supervisor(stop_timeout=0.4)
    sup.sync({"stub": target("stub", "stubborn")})
    st = wait_for(lambda: running(sup, "stub"))
    # RUNNING comes after `startsecs`; a child slower than that to start (a loaded machine)
    # would die of the SIGTERM it had not yet learnt to ignore
    wait_for(lambda: Path(str(fake["starts"]) + ".stubborn").exists(), message="SIGTERM ignored")
    sup.sync({})
    wait_for(lambda: sup.status() == [], message="stubborn connector killed")
    assert gone(st["stub"].pid)
    assert any("SIGKILL" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_child_output_is_logged_with_socket_name_and_secrets_redacted(make_supervisor, fake, caplog):
    caplog.set_level(logging.INFO, logger="reconciler.connector")
    token, secret = "tok-3f9a7c1e55", "hunter2-db-password"
    sup = make_supervisor(
        env={"BORDER0_ADMIN_TOKEN": token, "FAKE_SECRET": secret},
        secrets=lambda: [secret],
    )
    sup.sync({"leaky": target("leaky", "leak")})
    wait_for(lambda: any("token=" in r.getMessage() for r in caplog.records), message="leak line")
    lines = [r for r in caplog.records if getattr(r, "socket", None) == "leaky"]
    text = "\n".join(r.getMessage() for r in lines)
    assert "hello from leaky" in text
    assert "token=(sensitive) pw=(sensitive)" in text
    assert token not in text and secret not in text
    # The token reached the child through its environment, not its command line.
    env_file = Path(str(fake["starts"]) + ".env")
    child_token, argv = wait_for(lambda: env_file.exists() and env_file.read_text()).split("\n")
    assert child_token == token and token not in argv


def test_token_in_the_command_line_is_refused(make_supervisor):
    sup = make_supervisor(env={"BORDER0_TOKEN": "tok-abcdef"}, fatal_after=1)
    sup.sync({"tok-abcdef": target("tok-abcdef")})  # {name} would put the token into argv
    st = wait_for(lambda: by_name(sup)["tok-abcdef"].state is State.FATAL and by_name(sup))
    assert "may not appear" in st["tok-abcdef"].last_error


@pytest.mark.slow
def test_spawn_error_counts_as_failed_start(tmp_path):
    sup = Supervisor(command_template=f"{tmp_path}/no-such-connector {{name}}",
                     startsecs=0.2, backoff_base=0.05, fatal_after=2)
    try:
        sup.sync({"a": target("a")})
        st = wait_for(lambda: by_name(sup)["a"].state is State.FATAL and by_name(sup))
        assert "cannot start" in st["a"].last_error
        assert st["a"].pid is None
    finally:
        sup.stop_all()


@pytest.mark.slow
def test_remove_while_starting_backoff_or_fatal(make_supervisor):
    sup = make_supervisor(startsecs=30.0, backoff_base=30.0, fatal_after=2)
    sup.sync({"s": target("s"), "b": target("b", "fail")})
    wait_for(lambda: by_name(sup)["b"].state is State.BACKOFF)
    st = by_name(sup)
    assert st["s"].state is State.STARTING  # 30 s startsecs: still starting
    sup.sync({})
    wait_for(lambda: sup.status() == [])
    assert gone(st["s"].pid)

    sup2 = make_supervisor(fatal_after=1)
    sup2.sync({"f": target("f", "fail")})
    wait_for(lambda: by_name(sup2)["f"].state is State.FATAL)
    sup2.sync({})
    wait_for(lambda: sup2.status() == [])


DAEMON = """
import sys, time
from reconciler.model import ConnectorSpec
from reconciler.clock import ManualClock
from reconciler.connectors.supervisor import ConnectorTarget, State, Supervisor
sup = Supervisor(command_template=sys.argv[1], startsecs=0.2)
sup.sync({"a": ConnectorTarget("a", ConnectorSpec(host="run", port=1), "tls", "id", ())})
while not any(s.state is State.RUNNING for s in sup.status()):
    time.sleep(0.02)
print(sup.status()[0].pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
@pytest.mark.slow
def test_sigkill_of_the_supervising_process_leaves_no_child(fake, tmp_path):
    script = tmp_path / "daemon.py"
    script.write_text(DAEMON)
    template = f"{{python}} {fake['script']} {{name}} {{host}} {{port}} {fake['starts']}"
    proc = subprocess.Popen([sys.executable, str(script), template], stdout=subprocess.PIPE,
                            text=True)
    try:
        child = int(proc.stdout.readline())
        assert not gone(child)
        proc.kill()
        proc.wait()
        wait_for(lambda: _not_alive(child), message="connector died with its parent")
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_backoff_doubles_for_short_runs_and_resets_after_a_stable_run(make_supervisor, caplog):
    """Time through the supervisor's clock: startsecs, backoff and the stable run pass when the
    test moves the clock, so the delays are read from what the supervisor chose."""
    caplog.set_level(logging.INFO, logger="reconciler.connector")
    clock = ManualClock()
    sup = make_supervisor(startsecs=0.1, backoff_base=0.1, stable_secs=1.0, clock=clock)
    sup.sync({"a": target("a")})

    def up() -> Any:  # time moves 50 ms per look: startsecs and any backoff pass
        return wait_for(lambda: clock.advance(0.05) or running(sup, "a"))["a"]

    def kill_running() -> None:
        st = up()
        os.kill(st.pid, signal.SIGKILL)
        wait_for(lambda: clock.advance(0.05) or by_name(sup)["a"].pid != st.pid)

    def delays() -> list[str]:
        return [r.getMessage().rsplit("restarting in ", 1)[1] for r in caplog.records
                if "restarting in" in r.getMessage()]

    kill_running()
    kill_running()
    wait_for(lambda: len(delays()) == 2)
    assert delays() == ["0.1s", "0.2s"]  # short runs: the delay doubles
    stable = up()
    clock.advance(1.2)  # a stable run: longer than stable_secs, on the supervisor's clock
    assert by_name(sup)["a"].pid == stable.pid
    kill_running()
    wait_for(lambda: len(delays()) == 3)
    assert delays()[2] == "0.1s"  # after a stable run: back to the base delay
