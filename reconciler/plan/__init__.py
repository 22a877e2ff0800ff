"""Step 3 of the flow: diff `Desired` against `Actual` into a `Plan` (plain data), with the
ownership, prune and mass-delete rules; saved plans.
"""
