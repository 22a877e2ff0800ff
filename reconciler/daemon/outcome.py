"""What the daemon does next after a reconcile: one pure function, `decide` (Flux's shape).

    success   -> failures reset, no retry (the interval or a change comes next), ready
    invalid   -> manifests or plan refused: no backoff (retrying cannot help; the next change or
                 interval will), failures and readiness unchanged, the last good state stays
    failure   -> border0 could not be reached, an action failed, or an object of someone else
                 blocked its change (the rest applied): one more failure in a row, retried after
                 the backoff (not for blocked objects alone: a user's problem); not ready once
                 `fail_threshold` failures are reached

Only results that reached border0 (stage DONE or APPLY, with desired and actual) replace the
last good desired state and resync the connectors (not in a dry run).
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.daemon.config import DaemonConfig
from reconciler.reconcile import ReconcileResult, Stage

__all__ = ["FAILURE", "INVALID", "SUCCESS", "Next", "decide", "is_ready", "outcome_of"]

SUCCESS, FAILURE, INVALID = "success", "failure", "invalid"
#: Stages at which a reconcile stops for a problem in the manifests (not retried with backoff).
_CONFIG_STAGES = frozenset({Stage.LOAD, Stage.PLAN})
#: Stages after which border0's state is known: the result may become the last good state.
_REACHED_BORDER0 = frozenset({Stage.DONE, Stage.APPLY})


@dataclass(frozen=True)
class Next:
    outcome: str  # SUCCESS | INVALID | FAILURE
    failures: int  # failed reconciles in a row, this one included
    retry_in: float | None  # seconds until a retry; None: wait for the interval or a change
    succeeded_once: bool
    ready: bool
    keep: bool  # the result's desired and actual become the last good state
    sync_connectors: bool  # resync the connectors to that state


def is_ready(
    succeeded_once: bool, failures: int, config: DaemonConfig, invalid: bool = False
) -> bool:
    """Ready after the first success, until `fail_threshold` failures in a row; with
    `unready_on_invalid` (`run --unready-on-invalid`), also not while the manifests are invalid.
    By default invalid manifests leave it ready: the last good state stays in force."""
    if invalid and config.unready_on_invalid:
        return False
    return succeeded_once and failures < config.fail_threshold


def outcome_of(result: ReconcileResult) -> str:
    if result.ok:
        return SUCCESS
    return INVALID if result.stage in _CONFIG_STAGES else FAILURE


def decide(
    result: ReconcileResult, *, failures: int, succeeded_once: bool, config: DaemonConfig
) -> Next:
    """The step after `result`, given the failures in a row before it."""
    outcome = outcome_of(result)
    retry_in = None
    if outcome == SUCCESS:
        failures, succeeded_once = 0, True
    elif outcome == FAILURE:
        failures += 1
        applied = result.applied
        if not (result.blocked and not (applied is not None and applied.failed)):
            retry_in = config.backoff(failures)  # blocked objects alone: a user's problem
    keep = (
        result.desired is not None
        and result.actual is not None
        and result.stage in _REACHED_BORDER0
    )
    return Next(
        outcome=outcome,
        failures=failures,
        retry_in=retry_in,
        succeeded_once=succeeded_once,
        ready=is_ready(succeeded_once, failures, config, invalid=outcome == INVALID),
        keep=keep,
        sync_connectors=keep and not config.dry_run,
    )
