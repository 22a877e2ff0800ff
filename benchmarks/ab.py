"""Two versions of the code side by side: the warm no-op plan of each, in turn, against one twin.

Run by hand from the repository root (not part of the test run):

    python benchmarks/ab.py HEAD~1 HEAD             # two commits, 10,000 sockets, 0 ms
    python benchmarks/ab.py main WORKTREE --latency 50 --runs 12

A change is measured against the code before it here, not by two runs of `bench.py` at two
times: on a shared machine the same code's plan swings by a tenth from one hour to the next.
Both sides run the same way, and that is the point of this tool: each version is copied out
(`git archive`, or the working tree's files for `WORKTREE`) and run by `PYTHONPATH` from its
copy, in a state folder of its own, in turn (ABBA), after one warm-up run each. Running one
side from the editable install and the other by `PYTHONPATH` favoured the installed side by
0.10-0.14 s at 10,000 sockets in an A/A run (benchmarks/README.md, "Session 9"). Prints each
side's median and minimum wall time and median CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # this folder's: the twin, the manifests it generates

#: What a copy of the code holds: the package and the files it reads beside it.
COPIED = ("reconciler", "schemas", "pyproject.toml")


def export(revision: str, target: Path) -> None:
    """`revision`'s code into `target`, compiled (`bench.compile_bytecode`: a copy run from
    source, as PYTHONDONTWRITEBYTECODE=1 leaves it, carries its compilation in every run);
    `WORKTREE`: the files as they are now."""
    target.mkdir(parents=True)
    if revision == "WORKTREE":
        for name in COPIED:
            source = bench.REPO / name
            if source.is_dir():
                shutil.copytree(source, target / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target / name)
    else:
        archive = subprocess.run(["git", "-C", str(bench.REPO), "archive", revision, *COPIED],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    bench.compile_bytecode(target / "reconciler")


def plan_once(code: Path, cwd: Path, args: list[str], memo: bool = False) -> tuple[float, float]:
    """One plan of the code in `code`, run in `cwd`: (wall, CPU) seconds; exits on a failure.
    Without `memo` the memo of the last plan (reconciler/plan/memo.py) is removed first, so
    the plan is made."""
    if not memo:
        (cwd / bench.STATE_DIR / bench.PLAN_MEMO_FILE).unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(code),
               BORDER0_RECONCILER_FINGERPRINT_KEY=bench.FINGERPRINT_KEY)
    before = os.times()
    t0 = time.perf_counter()
    done = subprocess.run([bench.PYTHON, "-m", "reconciler", "plan", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"plan of {code} exited {done.returncode}: {done.stderr[-1500:]}")
    return wall, (after.children_user - before.children_user
                  + after.children_system - before.children_system)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="a git revision, or WORKTREE")
    parser.add_argument("new", help="a git revision, or WORKTREE")
    parser.add_argument("--n", type=int, default=10_000, help="sockets (default 10,000)")
    parser.add_argument("--latency", type=float, default=0, metavar="MS",
                        help="the twin's latency (default 0 ms)")
    parser.add_argument("--runs", type=int, default=10, help="timed plans per side (default 10)")
    parser.add_argument("--memo", action="store_true",
                        help="keep the memo of the last plan: time plans shown from it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="b0r-ab-") as tmp:
        work = Path(tmp)
        sides = {}
        for label, revision in (("old", args.old), ("new", args.new)):
            export(revision, work / label / "code")
            (work / label / "cwd").mkdir()
            sides[label] = (revision, work / label / "code", work / label / "cwd")
        folder = bench.generate(work / f"manifests-{args.n}", args.n)
        db = bench._fresh_db(work / "twin.db")
        bench.seed(db, folder)
        env_file, token_file = bench._files(work)
        emulator = bench.Emulator(db, "--latency", f"{args.latency:g}")
        try:
            emulator.warm_up()
            plan_args = [str(folder), "--api", emulator.url, "--token-file", str(token_file),
                         "--env-file", str(env_file), "--detailed-exitcode", "--no-color"]
            for _, code, cwd in sides.values():  # the parse cache and the record written
                plan_once(code, cwd, plan_args)
                plan_once(code, cwd, plan_args, args.memo)
            results: dict[str, list[tuple[float, float]]] = {label: [] for label in sides}
            for run in range(args.runs):
                order = list(sides) if run % 2 == 0 else list(reversed(sides))
                for label in order:
                    _, code, cwd = sides[label]
                    results[label].append(plan_once(code, cwd, plan_args, args.memo))
        finally:
            emulator.stop()
    print(f"no-op plan of {args.n:,} sockets at {args.latency:g} ms, "
          f"{'from the memo' if args.memo else 'made'}, {args.runs} runs a side, in turn "
          f"(load {os.getloadavg()[0]:.1f}):")
    for label, (revision, _, _) in sides.items():
        walls = sorted(w for w, _ in results[label])
        cpus = [c for _, c in results[label]]
        print(f"  {label} {revision}: wall median {statistics.median(walls):.3f} s, min "
              f"{walls[0]:.3f} s, max {walls[-1]:.3f} s; CPU median "
              f"{statistics.median(cpus):.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
