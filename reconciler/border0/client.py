"""The one HTTP client for the border0 API: auth, paging, retries, typed errors, counts.

Retries follow border0's own Go SDK (client/api_client.go `request`): a 429 is retried (up to
`max_retries_429` times) after its `Retry-After`, waited as given (at least 1 s, no cap but the
deadline); a 5xx answer is retried (up to `max_retries_5xx` times) after a capped exponential
backoff with jitter, on every method as the SDK does. No retry runs past the total `deadline`.
400/401/403/404 are never retried (but for the 404s after a write, below).

A request that got no answer (refused, reset, dropped, timed out) is sent again like a 5xx
only when a second copy cannot make a second object: a GET, PUT or DELETE (idempotent), or any
request that surely never left (`_NEVER_SENT`: no connection was made, or none was free). A POST
that may have reached border0 is raised at once, `ambiguous`: sent again, a create could be made
twice (a second connector token of one name). The SDK sends nothing again after a transport
error (it retries 404, 429 and 5xx only); apply recovers a lost create by name
(apply/runner.py `_Runner._create`), and the next plan revokes a token whose value was lost
(plan/connectors.py).

A retried write may have been applied the first time (a 5xx answer after the write ran). A
delete that meets 404 succeeds; PUTs and attach/detach are idempotent. A create that meets
"already exists" raises it: whether the object found by that name is ours (so the lost create
was applied) is apply's decision alone (apply/runner.py `_Runner._create`), with the ownership
check the client does not know.

Reads see our writes despite lagging replicas (`consistency`); sockets: `?activeOnly=true`.
This is the only home of border0's read-after-write delay: a read waits out the window of the
writes it would see, and `close()` waits out the rest of the last write's window, so the next
process (a plan in CI after an apply) reads what this one wrote. No caller sleeps for it.
A 404 to a PUT or DELETE soon after a write (within the read-after-write window) may be a
replica that has not seen the object yet: it is asked again `NOT_FOUND_RETRIES` times,
0.5-1 s apart, as the SDK retries 404s (border0-go client/api_client.go, notFoundRetryMax 3,
notFoundRetryWaitMin/Max 500 ms/1 s). When `/serverinfo` fails, the window is 1 s, as the
Terraform provider falls back (border0/provider.go, defaultReadAfterWriteDelay).

The token lives only in the `Authorization` header (httpx masks it in reprs) and in a
`secrets.Secret`; every error message is passed through `_redact` on its way out.
"""

from __future__ import annotations

import collections
import email.utils
import functools
import logging
import random
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self
from urllib.parse import quote

import httpx
import orjson

from reconciler import __version__
from reconciler.backoff import backoff
from reconciler.border0.consistency import WriteClock
from reconciler.border0.errors import (
    APIError,
    Border0Error,
    DeadlineExceeded,
    NotFound,
    TransportError,
    error_for_status,
)
from reconciler.border0.paging import walk_policy_pages, walk_socket_pages
from reconciler.border0.routes import operation
from reconciler.clock import SYSTEM, Clock
from reconciler.secrets import Secret, redact

__all__ = ["DEFAULT_API", "USER_AGENT", "Border0Client", "path_segment"]

DEFAULT_API = "https://api.border0.com/api/v1"
USER_AGENT = f"border0-reconciler/{__version__}"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Methods sent again after a request went unanswered: idempotent (RFC 9110 9.2.2), so a second
#: copy changes nothing the first one did not.
_RESENDABLE = frozenset({"GET", "PUT", "DELETE"})
#: httpx errors raised before any byte of the request was sent (httpx/_exceptions.py; httpcore
#: raises them while it opens the connection or waits for a free one): any method is sent again.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: What a response's stream is once its body is read (`_decode`).
_EMPTY_BODY = httpx.ByteStream(b"")
#: 404s to a PUT or DELETE asked again inside the replication window, and the pause between
#: (border0-go client/api_client.go: notFoundRetryMax, notFoundRetryWaitMin/Max).
NOT_FOUND_RETRIES = 3
NOT_FOUND_WAIT = (0.5, 1.0)
#: The read-after-write delay when /serverinfo does not answer one (the Terraform provider's
#: defaultReadAfterWriteDelay, border0/provider.go).
FALLBACK_RX_DELAY = 1.0
log = logging.getLogger("reconciler.border0")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context a process, shared by its clients: building one reads the CA
    bundle (about 45 ms of CPU, measured here), which httpx otherwise pays for every client."""
    return httpx.create_ssl_context()


class Border0Client:
    """Thread-safe (one keep-alive connection pool shared by every thread); a context manager."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 10.0,
        deadline: float = 120.0,
        max_retries_429: int = 10,
        max_retries_5xx: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        #: Every wait (backoff, Retry-After, the read-after-write window) and the deadline.
        self.clock = clock
        self.timeout = timeout
        self.deadline = deadline
        self.max_retries_429 = max_retries_429
        self.max_retries_5xx = max_retries_5xx
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.request_counts: collections.Counter[tuple[str, int]] = collections.Counter()
        self._token = Secret(token, origin="token") if token else None
        self._lock = threading.Lock()
        self._rx_delay: float | None = None
        self._rx_asking = threading.Lock()  # one /serverinfo request at a time
        self._learning: threading.Thread | None = None  # learn_read_after_write_delay's ask
        #: Told about each retry of an unanswered or failed request, for the user to see.
        self.on_retry: Callable[[str], None] | None = None
        #: The last retry announced of the failure now ("not reachable", 2): requests in
        #: flight together fail together, and each retry is told once, not once a request.
        self._announced: tuple[str, int] = ("", 0)
        self.on_request: Callable[[str, int, float], None] | None = None  # (op, code, s)
        self._writes = WriteClock(self.read_after_write_delay, clock)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            follow_redirects=False,
            # plain http (the emulator) never reaches TLS: redirects are not followed
            verify=_tls_context() if self.base_url.startswith("https://") else False,
        )

    def __repr__(self) -> str:
        return f"Border0Client(base_url={self.base_url!r})"

    @property
    def token(self) -> Secret | None:
        """The token as a `Secret` (shown as (sensitive)): for connectors' environment and log
        redaction, never for printing."""
        return self._token

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections, after the read-after-write window of the last write (so a
        client made next, in this process or another, reads what this one wrote)."""
        try:
            self._writes.wait_out()
        finally:
            # a background /serverinfo ask ends first: a request blocked on a socket that
            # another thread closes is not woken (Linux), it would wait out its timeout
            if self._learning is not None:
                self._learning.join(self.timeout)
            self._http.close()

    # --- sockets --------------------------------------------------------------------------

    def list_sockets(self, page_size: int = 100,
                     convert: Callable[[dict], Any] | None = None) -> list[Any]:
        """Every socket, walking `/sockets` until `next_page` <= 0 (each through `convert`,
        page by page, when given, in the calling thread: `paging.walk_socket_pages`).

        The first page tells how many pages there are (`total_pages`): the rest are fetched
        `PAGE_CONCURRENCY` at a time (10,000 sockets are 100 pages; one round trip after the
        other would cost 100 times the latency), then the walk goes on page by page while the
        last page says there is more.
        """

        def fetch(page: int) -> httpx.Response:  # in a page's thread: the round trip
            return self._send("GET", "/sockets", params={"page": page, "page_size": page_size})[0]

        def decode(answer: httpx.Response) -> Any:  # in the walking thread
            return self._decode(answer, "GET", "/sockets")

        return walk_socket_pages(fetch, convert, decode)

    def get_socket(self, id_or_name: str) -> dict:
        """One live socket; a soft-deleted one is 404 (border0-go client/socket.go)."""
        return self._json("GET", f"/socket/{path_segment(id_or_name)}", params={"activeOnly": "true"})

    def find_socket(self, name: str) -> dict | None:
        try:
            return self.get_socket(name)
        except NotFound:
            return None

    def create_socket(self, body: dict) -> dict:
        return self._create("/socket", body)

    def update_socket(self, id_or_name: str, body: dict) -> dict:
        return self._json("PUT", f"/socket/{path_segment(id_or_name)}", body=body)

    def delete_socket(self, id_or_name: str) -> None:
        self._delete(f"/socket/{path_segment(id_or_name)}")

    def update_socket_policies(
        self, socket_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        self._attach(f"/socket/{path_segment(socket_id)}/policy", add, remove)

    def update_policy_sockets(
        self, policy_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        """Attach or detach many sockets to one policy in one call (the policy's side)."""
        self._attach(f"/policy/{path_segment(policy_id)}/socket", add, remove)

    def _attach(self, path: str, add: Sequence[str], remove: Sequence[str]) -> None:
        actions = [{"action": "add", "id": i} for i in add]
        actions += [{"action": "remove", "id": i} for i in remove]
        if actions:
            self._json("PUT", path, body={"actions": actions})

    def list_connectors(self, socket_id: str) -> list[dict]:
        """The socket's connector links, `{"list":[{connector_id, connector_name, ...}]}`
        (border0-go client/socket.go SocketConnectors)."""
        data = self._json("GET", f"/socket/{path_segment(socket_id)}/connectors")
        return list(data.get("list") or []) if isinstance(data, dict) else list(data or [])

    def list_upstream_configurations(self, socket_id: str) -> list[dict]:
        """The socket's upstream configurations, `{"list":[{"config": ...}]}` (border0-go
        client/socket.go SocketUpstreamConfigs). They hold credentials: pass them only to a
        write of the same socket."""
        data = self._json("GET", f"/socket/{path_segment(socket_id)}/upstream_configurations")
        return list(data.get("list") or []) if isinstance(data, dict) else list(data or [])

    def get_upstream_configuration(self, socket_id: str) -> dict | None:
        """The socket's upstream_configuration from `/socket/{id}/upstream_configurations`
        (border0-go client/socket.go SocketUpstreamConfigs; the provider reads it there)."""
        data = self._json("GET", f"/socket/{path_segment(socket_id)}/upstream_configurations")
        items = data.get("list") if isinstance(data, dict) else data
        for item in items or ():
            if isinstance(item, dict) and isinstance(item.get("config"), dict):
                return item["config"]
        return None

    # --- connectors (border0-go client/connector.go) --------------------------------------

    def list_all_connectors(self) -> list[dict]:
        """Every connector of the organization (`GET /connectors`: `{"list": [...]}` as the
        SDK's Connectors decodes it; a bare array is accepted too)."""
        data = self._json("GET", "/connectors")
        return list(data.get("list") or []) if isinstance(data, dict) else list(data or [])

    def get_connector(self, connector_id: str) -> dict:
        return self._json("GET", f"/connector/{path_segment(connector_id)}")

    def find_connector(self, name: str) -> dict | None:
        """A connector by name (border0 has no lookup by name: the list is searched)."""
        return next((c for c in self.list_all_connectors() if c.get("name") == name), None)

    def create_connector(self, body: dict) -> dict:
        return self._create("/connector", body)

    def update_connector(self, connector_id: str, body: dict) -> dict:
        """`PUT /connector` with the id in the body (SDK UpdateConnector)."""
        return self._json("PUT", "/connector", body={**body, "connector_id": connector_id})

    def delete_connector(self, connector_id: str) -> None:
        self._delete(f"/connector/{path_segment(connector_id)}")

    def list_connector_tokens(self, connector_id: str) -> list[dict]:
        data = self._json("GET", f"/connector/{path_segment(connector_id)}/tokens")
        return list(data.get("list") or []) if isinstance(data, dict) else list(data or [])

    def create_connector_token(self, body: dict) -> dict:
        """`POST /connector/token`: the only answer that holds the token's value. Not looked up
        by name on an ambiguous failure (no listing gives the value): the next plan replaces
        a token whose answer was lost (plan/connectors.py)."""
        return self._json("POST", "/connector/token", body=body)

    def delete_connector_token(self, connector_id: str, token_id: str) -> None:
        self._delete(f"/connector/{path_segment(connector_id)}/token/{path_segment(token_id)}")

    # --- policies -------------------------------------------------------------------------

    def list_policies(self, page_size: int = 100) -> list[dict]:
        """Every policy. `/policies` answers a bare array; pages end with a short page."""
        return walk_policy_pages(
            lambda page: self._json(
                "GET", "/policies", params={"page": page, "page_size": page_size}),
            page_size,
        )

    def find_policy(self, name: str) -> dict | None:
        try:
            data = self._json("GET", "/policies/find", params={"name": name})
        except NotFound:
            return None
        if isinstance(data, list):  # the reference OpenAPI document says an array
            return next((p for p in data if p.get("name") == name), None)
        return data or None

    def get_policy(self, policy_id: str) -> dict:
        return self._json("GET", f"/policy/{path_segment(policy_id)}")

    def create_policy(self, body: dict) -> dict:
        return self._create("/policies", body)

    def update_policy(self, policy_id: str, body: dict) -> dict:
        return self._json("PUT", f"/policy/{path_segment(policy_id)}", body=body)

    def delete_policy(self, policy_id: str) -> None:
        self._delete(f"/policy/{path_segment(policy_id)}")

    # --- server ---------------------------------------------------------------------------

    def read_after_write_delay(self) -> float:
        """Seconds a read may lag a write (`/serverinfo`), asked once. When it fails or says
        nothing, `FALLBACK_RX_DELAY` (1 s), as the Terraform provider (border0/provider.go).
        One request however many threads ask at once (an apply's first parallel PUTs all ask:
        they asked 10 times)."""
        with self._lock:
            if self._rx_delay is not None:
                return self._rx_delay
        with self._rx_asking:
            return self._ask_rx_delay()

    def _ask_rx_delay(self) -> float:
        with self._lock:
            if self._rx_delay is not None:  # another thread asked while this one waited
                return self._rx_delay
        try:
            ms = _window_ms(self._json("GET", "/serverinfo"))
        except (Border0Error, KeyError, TypeError, ValueError) as exc:
            log.debug("/serverinfo gave no read-after-write delay (%s); using %gs",
                      type(exc).__name__, FALLBACK_RX_DELAY)
            ms = FALLBACK_RX_DELAY * 1000.0
        return self._learnt_rx_delay(ms)

    def _learnt_rx_delay(self, ms: float) -> float:
        with self._lock:
            self._rx_delay = max(0.0, ms) / 1000.0
            return self._rx_delay

    def learn_read_after_write_delay(self) -> threading.Thread:
        """Ask `/serverinfo` in the background, before the writes that need it (an apply asks
        while its plan is shown, so the window takes none of the writes' slots). One quiet
        attempt: no retry and nothing announced; when it fails, or the command ends first
        and closes this client, `read_after_write_delay` asks again when a write needs it.
        Meanwhile `read_after_write_delay` waits for its answer rather than ask twice."""
        def ask() -> None:
            with self._rx_asking:
                with self._lock:
                    if self._rx_delay is not None:
                        return
                started = self.clock.monotonic()
                try:
                    response = self._http.request("GET", "/serverinfo")
                    self._count("GET", response.status_code, "/serverinfo", started)
                    ms = _window_ms(self._decode(response, "GET", "/serverinfo"))
                except Exception as exc:  # noqa: BLE001 - closed, unanswered, another shape
                    log.debug("/serverinfo in the background: %s", type(exc).__name__)
                    return
                self._learnt_rx_delay(ms)

        thread = self._learning = threading.Thread(target=ask, name="serverinfo", daemon=True)
        thread.start()
        return thread

    # --- the HTTP boundary ----------------------------------------------------------------

    def _create(self, path: str, body: Mapping[str, Any]) -> dict:
        """POST once (with the retry policy). A retry that meets "already exists" after a lost
        answer is raised like any conflict: apply looks the name up and checks ownership."""
        response, _ambiguous = self._send("POST", path, body=body)
        return self._decode(response, "POST", path)

    def _delete(self, path: str) -> None:
        try:
            self._send("DELETE", path)
        except NotFound:
            pass  # idempotent delete: already gone is gone

    def _json(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        response, _ = self._send(method, path, params=params, body=body)
        return self._decode(response, method, path)

    def _decode(self, response: httpx.Response, method: str, path: str) -> Any:
        # httpx links a response and its stream both ways (BoundSyncStream): a cycle that
        # keeps the body (200 KB a page of sockets, 200 MB over 100,000 sockets) until a
        # full garbage collection. The body is read by now: the link is cut.
        response.stream = _EMPTY_BODY
        if response.status_code == 204 or not response.content:
            return None
        try:
            return orjson.loads(response.content)  # a page of 100 sockets: 2-3x json's speed
        except ValueError:
            raise APIError(
                response.status_code, "the answer is not valid JSON", method, path
            ) from None

    def _send(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[httpx.Response, bool]:
        """One logical request with every retry; returns (answer, whether a write may have
        been applied by an earlier attempt). Raises the mapped error otherwise."""
        started = self.clock.monotonic()
        deadline_at = started + self.deadline
        if method == "GET" and path != "/serverinfo":
            self._writes.wait_before_read(path, deadline_at)
        tries_429 = tries_5xx = tries_404 = 0
        after_write = method in ("PUT", "DELETE") and self._writes.within_window()
        ambiguous = False
        try:
            while True:
                remaining = deadline_at - self.clock.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded(self._redact(
                        f"{method} {path}: no answer within the {self.deadline:g}s deadline"))
                t0 = self.clock.monotonic()
                try:
                    response = self._http.request(
                        method, path, params=params, json=body,
                        timeout=httpx.Timeout(min(self.timeout, remaining)),
                    )
                except httpx.TransportError as exc:
                    self._count(method, 0, path, t0)
                    sent = not isinstance(exc, _NEVER_SENT)
                    ambiguous = ambiguous or (sent and method in _WRITES)
                    tries_5xx += 1
                    problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    if sent and method not in _RESENDABLE:
                        raise TransportError(self._redact(
                            f"{method} {path}: {problem}: no answer, and border0 may have "
                            "carried it out, so it is not sent again")) from exc
                    if tries_5xx > self.max_retries_5xx:
                        raise TransportError(self._redact(
                            f"{method} {path}: {problem} (after {tries_5xx} attempts)")) from exc
                    self._announce("not reachable", tries_5xx)
                    self._pause(self._backoff(tries_5xx), deadline_at, method, path, problem)
                    continue
                status = response.status_code
                self._count(method, status, path, t0)
                if status < 500 and self._announced[1]:
                    self._announced = ("", 0)  # answered: the next failure is a new one
                if method in _WRITES and status < 500:
                    self._writes.wrote(path, body)
                if status == 429:
                    tries_429 += 1
                    if tries_429 > self.max_retries_429:
                        raise self._error(response, method, path)
                    wait = _retry_after(response, self.clock.time())
                    wait = self._backoff(tries_429) if wait is None else max(1.0, wait)
                    self._pause(wait, deadline_at, method, path, "429")
                    continue
                if status >= 500:
                    ambiguous = ambiguous or method in _WRITES
                    tries_5xx += 1
                    if tries_5xx > self.max_retries_5xx:
                        raise self._error(response, method, path)
                    problem = str(self._error(response, method, path))
                    self._announce(f"answered {status}", tries_5xx)
                    self._pause(self._backoff(tries_5xx), deadline_at, method, path, problem)
                    continue
                if status == 404 and method == "GET" and self._writes.may_lag(deadline_at):
                    continue
                if status == 404 and after_write and tries_404 < NOT_FOUND_RETRIES:
                    tries_404 += 1
                    self._pause(random.uniform(*NOT_FOUND_WAIT), deadline_at, method, path, "404")
                    continue
                if status >= 400:
                    raise self._error(response, method, path)
                return response, ambiguous
        except Border0Error as exc:
            exc.ambiguous = ambiguous  # an earlier attempt of this write may have been applied
            if ambiguous:  # then reads of it wait out its window too (apply reads it back)
                self._writes.wrote(path, body)
            raise

    def _announce(self, what: str, attempt: int) -> None:
        """Tell of a retry, once: the listings a plan starts together (and an apply's parallel
        writes) meet the same outage, and their first retries are one announcement, not one
        per request; a later retry (2/4 after 1/4) is told again."""
        with self._lock:
            if self._announced[0] == what and self._announced[1] >= attempt:
                return
            self._announced = (what, attempt)
        if self.on_retry is not None:
            self.on_retry(f"border0 API {what}, retrying {attempt}/{self.max_retries_5xx}...")

    def _backoff(self, attempt: int) -> float:
        """Capped exponential backoff with jitter: between half and all of base*2^(n-1)."""
        return backoff(attempt, base=self.backoff_base, cap=self.backoff_max, jitter=True)

    def _pause(self, delay: float, deadline_at: float, method: str, path: str, why: str) -> None:
        if self.clock.monotonic() + delay > deadline_at:
            raise DeadlineExceeded(self._redact(
                f"{method} {path}: gave up, the {self.deadline:g}s deadline would pass "
                f"(last: {why})"))
        log.debug("%s %s: %s; retrying in %.2fs", method, path, why, delay)
        self.clock.sleep(delay)

    def _count(self, method: str, status: int, path: str, t0: float) -> None:
        seconds = self.clock.monotonic() - t0
        with self._lock:
            self.request_counts[(method, status)] += 1
        if self.on_request is not None:  # each attempt: the daemon's latency histogram
            self.on_request(operation(method, path), status, seconds)
        log.debug("%s %s -> %s in %.1f ms", method, path, status or "no answer", seconds * 1000)

    def _error(self, response: httpx.Response, method: str, path: str) -> APIError:
        message = ""
        try:
            data = response.json()
            if isinstance(data, dict):
                message = str(data.get("error_message") or data.get("message") or "")
        except ValueError:
            pass
        if not message:
            message = response.text.strip()[:200] or response.reason_phrase
        if response.status_code == 401:
            message = f"{message} (check the border0 token)"
        return error_for_status(response.status_code, self._redact(message), method, path)

    def _redact(self, text: str) -> str:
        return redact(text, (self._token.value,)) if self._token is not None else text


def _window_ms(data: Any) -> float:
    """`data_consistency.rx_after_tx_delay_ms` of a `/serverinfo` answer (border0-go
    client/server_info.go); KeyError, TypeError or ValueError when it has none."""
    consistency = (data or {}).get("data_consistency") if isinstance(data, dict) else None
    return float(consistency["rx_after_tx_delay_ms"])  # type: ignore[index]


def path_segment(value: str) -> str:
    """One path segment: a name or id, quoted so it cannot change the path."""
    return quote(str(value), safe="")


def _retry_after(response: httpx.Response, now: float) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
