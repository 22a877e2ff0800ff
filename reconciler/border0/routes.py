"""A request's operation, for metrics: the method and the route, so the set of values is bounded
by the API's routes, never by object names."""

from __future__ import annotations

__all__ = ["operation"]


def operation(method: str, path: str) -> str:
    """`PUT /socket/{id}` for `PUT /socket/web`: the object's id or name becomes `{id}`."""
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) > 1 and parts[0] in ("socket", "policy"):
        parts[1] = "{id}"
    return f"{method} /{'/'.join(parts)}"
