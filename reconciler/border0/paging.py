"""Walking border0's paged listings. `/sockets` pages say how many there are (so the rest are
fetched `PAGE_CONCURRENCY` at a time); `/policies` answers bare arrays that end with a short page.
Items are keyed by id: an object created meanwhile may shift the pages under the walk."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["PAGE_CONCURRENCY", "walk_policy_pages", "walk_socket_pages"]

#: Socket pages fetched at once, once the first page has told how many there are.
PAGE_CONCURRENCY = 16


def walk_socket_pages(get: Callable[[int], Any]) -> list[dict]:
    """Every socket, from `get(page)`, until `next_page` <= 0."""
    sockets: dict[str, dict] = {}
    page, data = 1, get(1)
    if isinstance(data, list):  # a server without paging answers the bare array
        return data
    while True:
        items = data.get("list") or []
        for item in items:  # keyed by id: a socket created meanwhile may shift pages
            sockets.setdefault(str(item.get("socket_id") or item.get("name")), item)
        pagination = data.get("pagination") or {}
        next_page = int(pagination.get("next_page") or 0)
        if next_page <= page or not items:
            return list(sockets.values())
        last = int(pagination.get("total_pages") or 0)
        if page == 1 and last > next_page:
            with ThreadPoolExecutor(min(PAGE_CONCURRENCY, last - 1)) as pool:
                pages = list(pool.map(get, range(next_page, last + 1)))
            for other in pages[:-1]:
                for item in (other.get("list") or []) if isinstance(other, dict) else []:
                    sockets.setdefault(str(item.get("socket_id") or item.get("name")), item)
            page, data = last, pages[-1]
            if not isinstance(data, dict):
                return list(sockets.values())
            continue
        page, data = next_page, get(next_page)


def walk_policy_pages(get: Callable[[int], Any], page_size: int) -> list[dict]:
    """Every policy, from `get(page)`, until a short page or one with nothing new."""
    policies: dict[str, dict] = {}
    page = 1
    while True:
        items = get(page)
        new = [p for p in items or [] if str(p.get("id")) not in policies]
        for item in new:
            policies[str(item.get("id"))] = item
        if len(items or []) < page_size or not new:
            return list(policies.values())
        page += 1
