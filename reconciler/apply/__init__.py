"""Apply: carry out a `Plan` against border0. `runner.py` executes it (ordered phases, bounded
concurrency, one result per action); `attach_groups.py` decides which attachments share a call."""

from reconciler.apply.runner import (
    ActionResult,
    ApplyResult,
    PlanNotApplicable,
    apply_plan,
)

__all__ = ["ActionResult", "ApplyResult", "PlanNotApplicable", "apply_plan"]
