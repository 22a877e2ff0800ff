"""Connector agents: `run --connectors-only --connector-selector team=payments`.

An agent runs on the host next to the services it exposes and keeps just the connectors of the
sockets whose labels match its selector. It reads the manifests (which sockets, which upstreams)
and border0 (their ids and ports) but never plans or applies: `reconcile.observe` stands in
for `reconcile.reconcile` in the daemon's loop and has no path to a write. The writer runs
elsewhere, usually with `--no-connectors`.

Selectors are Kubernetes equality-based label selectors: `key=value`, `key==value`, `key!=value`,
joined by commas (AND). `key!=value` also matches sockets without the label, as in Kubernetes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from reconciler.clock import SYSTEM, Clock
from reconciler.errors import UserError
from reconciler.model import Desired
from reconciler.reconcile import ReconcileOptions, ReconcileResult, observe

__all__ = ["Selector", "observe_for", "parse_selector"]

# A label key as Kubernetes allows it (optional DNS prefix and '/'), and a value (may be empty).
_KEY = r"(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_TERM = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")


@dataclass(frozen=True)
class Selector:
    """A conjunction of (key, operator, value) terms; the empty selector matches everything."""

    terms: tuple[tuple[str, str, str], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, op, value in self.terms:
            if (labels.get(key) == value) != (op == "="):
                return False
        return True

    def __str__(self) -> str:
        return ",".join(f"{k}{op}{v}" for k, op, v in self.terms)


def parse_selector(text: str) -> Selector:
    """`team=payments,env!=dev` -> Selector ('' selects all); UserError naming a bad term."""
    if not text.strip():
        return Selector()
    terms = []
    for part in text.split(","):
        match = _TERM.match(part)
        if not match:
            raise UserError(
                f"--connector-selector: {part.strip()!r} is not key=value, key==value or "
                "key!=value (terms are joined by commas)"
            )
        key, op, value = match.group(1), match.group(4), match.group(5)
        terms.append((key, "=" if op in ("=", "==") else "!=", value))
    return Selector(tuple(terms))


def selected(desired: Desired, selector: Selector) -> Desired:
    """Only the sockets the selector matches (policies are the writer's business)."""
    sockets = {n: s for n, s in desired.sockets.items() if selector.matches(s.labels)}
    return replace(desired, sockets=sockets, policies={})


def observe_for(selector: Selector, clock: Clock = SYSTEM) -> Callable[..., ReconcileResult]:
    """A `reconcile_fn` for the daemon that stops at `reconcile.observe`: it loads and lists
    but never plans or writes. Until the manifests have been unchanged for the delete grace,
    it holds (`ReconcileResult.held_until`): a socket they lost keeps its connector while
    border0 still has it, as the writer defers its delete (an editor emptying a file for a
    moment cut the service off), and the daemon looks again when the hold ends."""

    def observe_selected(
        paths: Sequence[str | os.PathLike[str]], client: object, options: ReconcileOptions
    ) -> ReconcileResult:
        result = observe(paths, client, options)
        if result.desired is None:
            return result
        settled = result.changed_at + options.delete_grace
        return replace(result, desired=selected(result.desired, selector),
                       held_until=settled if settled > clock.time() else None)

    return observe_selected
