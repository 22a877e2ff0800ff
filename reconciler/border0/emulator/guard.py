"""The emulator's front door (ASGI middleware): token, body size, then the request contract.

In this order, so a request without a valid token costs nothing: the token is checked from the
headers before one byte of the body is read (401), a body over `MAX_BODY` bytes is refused
from its Content-Length or as soon as the stream passes the limit (413), never read whole; then
the body's JSON and query parameters are checked against border0's request schemas
(`contract.check`) and a request border0 would not take is answered 400 in border0's error
shape, naming the field. The app behind gets the body replayed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from reconciler.border0.emulator import contract
from reconciler.border0.emulator.faults import ARRIVED

__all__ = ["MAX_BODY", "Guard"]

MAX_BODY = 1024 * 1024
#: Paths (under the API prefix) that need no token: border0's /serverinfo is public
#: (the TF provider asks it before anything else, border0/provider.go); the docs are ours.
PUBLIC = ("/serverinfo", "/openapi.json", "/docs", "/docs/oauth2-redirect")


class Guard:
    def __init__(self, app: Any, *, token: str, prefix: str,
                 policy_version: Callable[[str], str | None] | None = None,
                 connector_paths: tuple[str, ...] = (),
                 connector_token: Callable[[str], str | None] | None = None) -> None:
        self.app = app
        self.prefix = prefix
        self._token = token.encode()
        self._policy_version = policy_version or (lambda _id: None)
        #: Paths a connector token opens (and the admin token does not); no other path
        #: takes a connector token.
        self._connector_paths = connector_paths
        self._connector_token = connector_token or (lambda _t: None)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(self.prefix + "/"):
            await self.app(scope, receive, send)
            return
        # the round trip starts here, unless the server noted its first bytes (embedded.py)
        scope.setdefault(ARRIVED, asyncio.get_running_loop().time())
        relative = path[len(self.prefix):].rstrip("/") or "/"
        if relative in self._connector_paths:
            if self._connector_token(self._given(scope).decode("latin-1")) is None:
                await _answer(send, 401, "unauthorized: missing, revoked or expired connector "
                              "token", close=True)
                return
        elif relative not in PUBLIC and not self._authorized(scope):
            await _answer(send, 401, "unauthorized: missing or invalid token", close=True)
            return
        length = _content_length(scope)
        if length is not None and length > MAX_BODY:
            await _answer(send, 413, f"request body larger than {MAX_BODY} bytes", close=True)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await _answer(send, 413, f"request body larger than {MAX_BODY} bytes", close=True)
                return
        problems = self._problems(scope["method"], relative, scope, body)
        if problems:
            await _answer(send, 400, "invalid request: " + "; ".join(problems))
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        given = self._given(scope)
        return bool(given) and hmac.compare_digest(given, self._token)

    @staticmethod
    def _given(scope: dict[str, Any]) -> bytes:
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-access-token", b"")
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        return given

    def _problems(self, method: str, relative: str, scope: dict[str, Any],
                  raw: bytearray) -> list[str]:
        operation = contract.operation_of(method, relative)
        if operation is None:
            return []  # not an operation of ours either: the app answers 404 or 405
        query = [k for k, _ in parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                         keep_blank_values=True)]
        body = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                return ["the request body is not valid JSON"]
        stored = None
        if operation == "PUT /policy/{uuid}" and isinstance(body, dict) and not body.get("version"):
            stored = self._policy_version(relative.split("/")[2])
        return contract.check(method, relative, query, body, stored_policy_version=stored)


def _content_length(scope: dict[str, Any]) -> int | None:
    for key, value in scope.get("headers") or ():
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Any, status: int, message: str, *, close: bool = False) -> None:
    """border0's error shape: {"status_code": N, "error_message": "..."} (client/http_client.go
    in border0-go decodes exactly these two keys). `close`: the body was left unread, so the
    connection ends rather than parse the rest of it as the next request."""
    body = json.dumps({"status_code": status, "error_message": message},
                      separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
