"""The one capped exponential backoff: the client's retries, the daemon's requeue and the
connector supervisor's restarts all wait `base * 2^(attempt-1)` seconds, never more than `cap`.

With `jitter`, the wait is drawn between half and all of that, so many clients retrying the same
failure do not retry in step.
"""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 64  # beyond this every cap in use is reached; keeps the float finite


def backoff(attempt: int, *, base: float, cap: float, jitter: bool = False) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry): base, 2*base, ...

    Attempts below 1 count as 1.
    """
    doublings = min(max(attempt - 1, 0), _MAX_DOUBLINGS)
    ceiling = min(cap, base * (2 ** doublings))
    if jitter:
        return ceiling / 2 + random.uniform(0, ceiling / 2)
    return ceiling
