"""Renderers of a plan. Each reads only the versioned JSON form (`Plan.to_json()`), as Terraform's
views do, so text, JSON, YAML and Markdown cannot disagree. Chosen from a dict by format name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.render import json as json_renderer
from reconciler.render import markdown as markdown_renderer
from reconciler.render import text as text_renderer
from reconciler.render.output import MACHINE_FORMATS

__all__ = ["FORMATS", "RENDERERS", "render"]

RENDERERS: dict[str, Callable[..., str]] = {
    "text": text_renderer.render,
    "json": json_renderer.render,
    "yaml": lambda plan_json: MACHINE_FORMATS["yaml"](dict(plan_json)),
    "markdown": markdown_renderer.render,
}
FORMATS = tuple(RENDERERS)


def render(plan_json: Mapping[str, Any], fmt: str = "text", *, color: bool = False) -> str:
    """Render the JSON form of a plan in `fmt`; colour only applies to text."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}") from None
    if fmt == "text":
        return renderer(plan_json, color=color)
    return renderer(plan_json)
