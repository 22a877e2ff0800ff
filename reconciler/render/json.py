"""The JSON rendering: the plan's versioned JSON form itself (docs/plan-format.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["render"]


def render(plan_json: Mapping[str, Any]) -> str:
    return json.dumps(plan_json, indent=2, ensure_ascii=False) + "\n"
