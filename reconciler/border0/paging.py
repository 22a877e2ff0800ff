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


def walk_socket_pages(get: Callable[[int], Any],
                      convert: Callable[[dict], Any] | None = None) -> list[Any]:
    """Every socket, from `get(page)`, until `next_page` <= 0; each passed through `convert`
    as its page arrives (in the page's thread), so that no more than the pages in flight are
    held as decoded JSON (100,000 sockets' answers are several times their converted size)."""
    def fetch(page: int) -> Any:
        data = get(page)
        if not isinstance(data, dict):
            return data
        items = data.get("list") or []
        return {"keyed": [(str(i.get("socket_id") or i.get("name")), convert(i) if convert else i)
                          for i in items],
                "pagination": data.get("pagination") or {}}

    sockets: dict[str, Any] = {}
    page, data = 1, fetch(1)
    if isinstance(data, list):  # a server without paging answers the bare array
        return [convert(i) for i in data] if convert else data
    while True:
        items = data["keyed"]
        for key, item in items:  # keyed by id: a socket created meanwhile may shift pages
            sockets.setdefault(key, item)
        pagination = data["pagination"]
        next_page = int(pagination.get("next_page") or 0)
        if next_page <= page or not items:
            return list(sockets.values())
        last = int(pagination.get("total_pages") or 0)
        if page == 1 and last > next_page:
            with ThreadPoolExecutor(min(PAGE_CONCURRENCY, last - 1)) as pool:
                pages = pool.map(fetch, range(next_page, last + 1))  # consumed as they come
                for number in range(next_page, last + 1):
                    other = next(pages)
                    if number == last:
                        data = other
                    elif isinstance(other, dict):
                        for key, item in other["keyed"]:
                            sockets.setdefault(key, item)
            page = last
            if not isinstance(data, dict):
                return list(sockets.values())
            continue
        page, data = next_page, fetch(next_page)


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
