"""How long the plan's secret check takes: 4,000 keyed fingerprints (HMAC-SHA256), the target
being under 50 ms on one core (issue 23). Run by hand from the repository root:

    python benchmarks/fingerprints.py [--count 4000] [--repeat 5]

It fingerprints `count` distinct secrets, then times `verify` of every one (no cache: keyed
fingerprints are not cached), best of `repeat`, and prints the figure; for comparison, one
verification of an older unkeyed scrypt fingerprint (n=2^10, r=1), which an attacker could
repeat offline for every guess.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.secrets import (
    Secret,
    fingerprint,
    legacy_fingerprint,
    use_fingerprint_key,
    verify,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    use_fingerprint_key(os.urandom(32))
    pairs = [(Secret(f"password-{i}-{os.urandom(6).hex()}"), "") for i in range(args.count)]
    pairs = [(s, fingerprint(s)) for s, _ in pairs]
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        ok = all(verify(s, fp) for s, fp in pairs)
        best = min(best, time.perf_counter() - start)
        assert ok
    per = best / args.count * 1e6
    print(f"keyed fingerprint check, {args.count:,} secrets: {best * 1000:.1f} ms "
          f"({per:.1f} µs each; target < 50 ms) -> {'OK' if best < 0.05 else 'OVER'}")
    old = legacy_fingerprint(Secret("legacy"))
    start = time.perf_counter()
    verify(Secret("legacy"), old)
    print(f"one legacy unkeyed scrypt check (what a guess cost an attacker): "
          f"{(time.perf_counter() - start) * 1000:.2f} ms")
    return 0 if best < 0.05 else 1


if __name__ == "__main__":
    raise SystemExit(main())
