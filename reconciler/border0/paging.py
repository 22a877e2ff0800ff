"""Walking border0's paged listings. `/sockets` pages say how many there are (so the rest are
fetched `PAGE_CONCURRENCY` at a time); `/policies` answers bare arrays that end with a short page.
Items are keyed by id: an object created meanwhile may shift the pages under the walk."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["PAGE_CONCURRENCY", "walk_policy_pages", "walk_socket_pages"]

#: Socket pages fetched at once, once the first page has told how many there are.
PAGE_CONCURRENCY = 16


def walk_socket_pages(fetch: Callable[[int], Any],
                      convert: Callable[[dict], Any] | None = None,
                      decode: Callable[[Any], Any] = lambda answer: answer) -> list[Any]:
    """Every socket, from `decode(fetch(page))`, until `next_page` <= 0; each passed through
    `convert`.

    The page threads make the round trips only (`fetch`); each answer is decoded and
    converted in the walking thread as it comes, and a page is asked for only when one is
    taken, so that no more than `PAGE_CONCURRENCY` answers wait undecoded and one at a time is
    held decoded (100,000 sockets' answers are several times their converted size). Decoding
    in the page threads made 16 threads of Python beside the manifests' load, whose lock
    handovers cost the CLI's plan of 10,000 sockets at 0 ms about 0.1 s of CPU."""
    def page_of(answer: Any) -> Any:
        data = decode(answer)
        if not isinstance(data, dict):
            return data
        items = data.get("list") or []
        return {"keyed": [(str(i.get("socket_id") or i.get("name")), convert(i) if convert else i)
                          for i in items],
                "pagination": data.get("pagination") or {}}

    sockets: dict[str, Any] = {}
    page, data = 1, page_of(fetch(1))
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
            at_once = min(PAGE_CONCURRENCY, last - 1)
            with ThreadPoolExecutor(at_once) as pool:
                for number, answer in _in_order(pool, at_once, fetch,
                                                range(next_page, last + 1)):
                    other = page_of(answer)
                    if number == last:
                        data = other
                    elif isinstance(other, dict):
                        for key, item in other["keyed"]:
                            sockets.setdefault(key, item)
            page = last
            if not isinstance(data, dict):
                return list(sockets.values())
            continue
        page, data = next_page, page_of(fetch(next_page))


def _in_order(pool: ThreadPoolExecutor, at_once: int, fetch: Callable[[int], Any],
              pages: range) -> Iterator[tuple[int, Any]]:
    """(page, its answer) in page order, `at_once` in flight: the next page is asked for as
    each answer is taken (before it is decoded). Those in flight are cancelled when the walk
    stops early (an error)."""
    numbers = iter(pages)
    window: deque[tuple[int, Future[Any]]] = deque(
        (n, pool.submit(fetch, n)) for n in itertools.islice(numbers, at_once))
    try:
        while window:
            number, future = window.popleft()
            answer = future.result()
            following = next(numbers, None)
            if following is not None:
                window.append((following, pool.submit(fetch, following)))
            yield number, answer
    finally:
        for _, future in window:
            future.cancel()


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
