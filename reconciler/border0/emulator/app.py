"""The emulator's HTTP surface: border0's socket and policy endpoints under /api/v1 (FastAPI).

Handlers are plain `def`s (run in threads; the store locks); they return JSONResponse directly
(the store already produces API JSON), while the pydantic models in `models` describe those
answers in the published OpenAPI document at /api/v1/openapi.json.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from reconciler import __version__
from reconciler.border0.emulator import models as m
from reconciler.border0.emulator.faults import FaultInjector
from reconciler.border0.emulator.guard import Guard
from reconciler.border0.emulator.rules import present_socket
from reconciler.border0.emulator.staleness import StaleReads
from reconciler.border0.emulator.store import Store, StoreError
from reconciler.clock import SYSTEM, Clock

__all__ = ["API_PREFIX", "CONNECTOR_CONFIG", "SECRETS_ON_READ", "create_app"]

#: How GET answers show upstream_password / protected_password (rules.present_socket).
SECRETS_ON_READ = ("omit", "mask", "clear")

API_PREFIX = "/api/v1"
#: The twin's read for a test stand-in connector (connector token only); not border0's API.
CONNECTOR_CONFIG = "/connector/config"
MAX_PAGE_SIZE = 1000
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.Error, "description": text}
    for code, text in ((400, "Bad Request"), (401, "Unauthorized"), (404, "Not Found"),
                       (429, "Too Many Requests"), (500, "Internal Server Error"))
}

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token>")
_access_token = APIKeyHeader(
    name="x-access-token", auto_error=False, description="x-access-token: <token> (border0 CLI)"
)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"status_code": status, "error_message": message}, status_code=status, headers=headers
    )


class _OrjsonResponse(JSONResponse):
    """JSON in orjson's compact form: 3-4x the standard library's speed on a page of sockets
    (the answers are JSON already: stored JSON plus str/int/bool)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _ok(content: Any) -> JSONResponse:
    return _OrjsonResponse(content)


def create_app(
    store: Store,
    *,
    token: str,
    org: str | None = "local",
    latency_ms: float = 0,
    fail_rate: float = 0.0,
    rate_limit: int = 0,
    read_after_write_delay_ms: int = 0,
    seed: int | None = None,
    secrets_on_read: str = "omit",
    clock: Clock = SYSTEM,
) -> Any:
    """The ASGI app: FastAPI with the border0 routes, behind the guard (token, body size,
    request contract), fault injection and slash tolerance. `.fastapi` on the result is the
    FastAPI app; `.faults` the injector; `.store` the store. `clock` times the replica lag
    and the rate limit's refill (a test's ManualClock, shared with its client)."""
    if not token:
        raise ValueError("the emulator needs a token")
    if secrets_on_read not in SECRETS_ON_READ:
        raise ValueError(f"secrets_on_read must be one of {SECRETS_ON_READ}")
    stale = StaleReads(read_after_write_delay_ms, clock)
    store.on_write = stale.record

    def out(socket: dict[str, Any]) -> dict[str, Any]:
        return present_socket(socket, secrets_on_read)
    if org:
        store.org = org
    api = FastAPI(
        title="border0 API (local emulator)",
        version=__version__,
        description="The socket and policy endpoints of the border0 API, served by "
        "border0-reconciler's emulator. Errors: {status_code, error_message}.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        redirect_slashes=False,
    )
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(StoreError, _store_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)

    public = APIRouter(prefix=API_PREFIX, responses={500: _ERRORS[500]})

    @public.get("/serverinfo", response_model=m.ServerInfo, tags=["Server"])
    def serverinfo() -> JSONResponse:
        """How long a read may lag a write (border0 replicates across regions); no token needed."""
        return _ok({"data_consistency": {"rx_after_tx_delay_ms": read_after_write_delay_ms}})

    r = APIRouter(
        prefix=API_PREFIX,
        # The admin token is checked once, by the Guard in front of this app (guard.py), before
        # any body is read; here it is documented only (_openapi_with_border0_errors).
        responses={k: v for k, v in _ERRORS.items() if k in (401, 429, 500)},
    )
    e400, e404 = {400: _ERRORS[400]}, {404: _ERRORS[404]}

    @r.get("/sockets", response_model=m.SocketPage, tags=["Socket"], responses=e400)
    def list_sockets(
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(100, ge=1, le=MAX_PAGE_SIZE),
        name: str | None = None,
        search: str | None = None,
        socket_type: str | None = None,
    ) -> JSONResponse:
        """Sockets, paged; `next_page` <= 0 means this is the last page."""
        result = store.list_sockets(
            page=page, page_size=page_size, name=name, search=search, socket_type=socket_type
        )
        pages = -(-result.total // page_size)
        items = stale.many(
            "socket", result.items, last_page=page >= pages,
            keep=lambda s: (not name or s["name"] == name)
            and (not socket_type or s["socket_type"] == socket_type),
        )
        return _ok(
            {
                "list": [out(s) for s in items],
                "pagination": {
                    "current_page": page,
                    "next_page": page + 1 if page < pages else -1,
                    "total_records": result.total,
                    "total_pages": pages,
                    "records_per_page": page_size,
                    "actual_page_size": len(result.items),
                },
            }
        )

    @r.get("/socket", response_model=list[m.Socket], tags=["Socket"])
    def list_sockets_legacy() -> JSONResponse:
        """Every socket as a bare array (the legacy listing)."""
        return _ok([out(s) for s in stale.many("socket", store.list_sockets().items)])

    @r.post("/socket", response_model=m.Socket, tags=["Socket"], responses=e400)
    def create_socket(body: m.SocketCreate) -> JSONResponse:
        return _ok(out(store.create_socket(body.model_dump(exclude_unset=True))))

    @r.get("/socket/{id_or_name}", response_model=m.Socket, tags=["Socket"], responses=e404)
    def get_socket(
        id_or_name: str, active_only: bool = Query(False, alias="activeOnly")
    ) -> JSONResponse:
        """By id, a deleted socket is answered too unless ?activeOnly=true (store.get_socket)."""
        return _ok(out(stale.one(
            "socket", id_or_name,
            lambda: store.get_socket(id_or_name, active_only=active_only))))

    @r.put("/socket/{id_or_name}", response_model=m.Socket, tags=["Socket"],
           responses={**e400, **e404})
    def update_socket(id_or_name: str, body: m.SocketUpdate) -> JSONResponse:
        return _ok(out(store.update_socket(id_or_name, body.model_dump(exclude_unset=True))))

    @r.delete("/socket/{id_or_name}", status_code=204, response_class=Response,
              tags=["Socket"], responses=e404)
    def delete_socket(id_or_name: str) -> Response:
        store.delete_socket(id_or_name)
        return Response(status_code=204)

    @r.put("/socket/{id_or_name}/policy", response_model=m.Socket, tags=["Socket"],
           responses={**e400, **e404})
    def update_socket_policies(id_or_name: str, body: m.Actions) -> JSONResponse:
        """Attach (`add`) and detach (`remove`) policies by id; all or nothing."""
        store.update_socket_policies(id_or_name, [(a.action, a.id) for a in body.actions])
        return _ok(out(store.get_socket(id_or_name)))

    @r.get("/socket/{id_or_name}/connectors", response_model=m.ConnectorList, tags=["Socket"],
           responses=e404)
    def list_socket_connectors(id_or_name: str) -> JSONResponse:
        """The connectors that serve the socket (its `connector_ids`)."""
        return _ok({"list": store.socket_connectors(id_or_name)})

    @r.get("/socket/{id_or_name}/upstream_configurations", response_model=m.UpstreamConfigs,
           tags=["Socket"], responses=e404)
    def list_upstream_configurations(id_or_name: str) -> JSONResponse:
        """The socket's upstream configuration, credentials included (as border0 answers it:
        TF stores passwords and keys from here)."""
        return _ok({"list": store.socket_upstream_configurations(id_or_name)})

    @r.post("/socket/{id_or_name}/signkey", tags=["Socket"],
            responses={**e400, **e404, 501: {"model": m.Error, "description": "Not modelled"}})
    def sign_socket_key(id_or_name: str, body: m.SignKey) -> JSONResponse:
        """Taken as border0's SDK and CLI send it ({"ssh_public_key": ...}); the twin holds no
        SSH certificate authority, so it signs nothing (501)."""
        store.get_socket(id_or_name)
        return _error(501, "the emulator does not sign SSH keys")

    # --- connectors (border0-go client/connector.go) ------------------------------------

    @r.get("/connectors", response_model=m.Connectors, tags=["Connector"])
    def list_connectors() -> JSONResponse:
        return _ok({"list": store.list_connectors_all()})

    @r.post("/connector", response_model=m.Connector, tags=["Connector"], responses=e400)
    def create_connector(body: m.ConnectorBody) -> JSONResponse:
        return _ok(store.create_connector(body.model_dump(exclude_unset=True)))

    @r.put("/connector", response_model=m.Connector, tags=["Connector"],
           responses={**e400, **e404})
    def update_connector(body: m.ConnectorBody) -> JSONResponse:
        """The connector named by `connector_id` in the body; unsent fields are reset."""
        return _ok(store.update_connector(body.model_dump(exclude_unset=True)))

    @r.post("/connector/token", response_model=m.ConnectorToken, tags=["Connector"],
            responses={**e400, **e404})
    def create_connector_token(body: m.ConnectorTokenBody) -> JSONResponse:
        """The only answer that holds the token's value."""
        return _ok(store.create_connector_token(body.model_dump(exclude_unset=True)))

    @r.get("/connector/{connector_id}", response_model=m.Connector, tags=["Connector"],
           responses=e404)
    def get_connector(connector_id: str) -> JSONResponse:
        return _ok(store.get_connector(connector_id))

    @r.delete("/connector/{connector_id}", status_code=204, response_class=Response,
              tags=["Connector"], responses=e404)
    def delete_connector(connector_id: str) -> Response:
        """Its tokens are revoked and sockets bound to it lose the link."""
        store.delete_connector(connector_id)
        return Response(status_code=204)

    @r.get("/connector/{connector_id}/tokens", response_model=m.ConnectorTokens,
           tags=["Connector"], responses=e404)
    def list_connector_tokens(connector_id: str) -> JSONResponse:
        return _ok(store.connector_tokens(connector_id))

    @r.get("/connector/{connector_id}/token/{token_id}", response_model=m.ConnectorToken,
           tags=["Connector"], responses=e404)
    def get_connector_token(connector_id: str, token_id: str) -> JSONResponse:
        return _ok(store.connector_token(connector_id, token_id))

    @r.delete("/connector/{connector_id}/token/{token_id}", status_code=204,
              response_class=Response, tags=["Connector"], responses=e404)
    def delete_connector_token(connector_id: str, token_id: str) -> Response:
        """Revokes the token: it authenticates nothing from now on."""
        store.delete_connector_token(connector_id, token_id)
        return Response(status_code=204)

    @r.get("/policies", response_model=list[m.Policy], tags=["Policy"], responses=e400)
    def list_policies(
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int | None = Query(None, ge=1, le=MAX_PAGE_SIZE),
        org_wide: bool | None = None,
        socket_id: str | None = None,
    ) -> JSONResponse:
        """Every policy as a bare array; `page_size` slices it, `socket_id` keeps the policies
        attached to that socket (and the org-wide ones), `org_wide=true` alone the org-wide
        ones (border0-cli cmd/socket.go)."""
        policies = stale.many("policy", store.list_policies(
            socket_id=socket_id, org_wide_only=bool(org_wide) and not socket_id))
        if page_size:
            policies = policies[(page - 1) * page_size : page * page_size]
        return _ok(policies)

    @r.get("/policies/find", response_model=m.Policy, tags=["Policy"],
           responses={**e400, **e404})
    def find_policy(name: str = Query(..., min_length=1)) -> JSONResponse:
        return _ok(stale.one("policy", name, lambda: store.find_policy(name)))

    @r.post("/policies", response_model=m.Policy, tags=["Policy"], responses=e400)
    def create_policy(body: m.PolicyCreate) -> JSONResponse:
        return _ok(store.create_policy(body.model_dump(exclude_unset=True)))

    @r.get("/policy/{policy_id}", response_model=m.Policy, tags=["Policy"], responses=e404)
    def get_policy(policy_id: str) -> JSONResponse:
        return _ok(stale.one("policy", policy_id, lambda: store.get_policy(policy_id)))

    @r.put("/policy/{policy_id}", response_model=m.Policy, tags=["Policy"],
           responses={**e400, **e404})
    def update_policy(policy_id: str, body: m.PolicyUpdate) -> JSONResponse:
        return _ok(store.update_policy(policy_id, body.model_dump(exclude_unset=True)))

    @r.delete("/policy/{policy_id}", status_code=204, response_class=Response, tags=["Policy"],
              responses=e404)
    def delete_policy(policy_id: str) -> Response:
        store.delete_policy(policy_id)
        return Response(status_code=204)

    @r.put("/policy/{policy_id}/socket", response_model=m.Policy, tags=["Policy"],
           responses={**e400, **e404})
    def update_policy_sockets(policy_id: str, body: m.Actions) -> JSONResponse:
        """Attach (`add`) and detach (`remove`) sockets (by id or name); all or nothing."""
        store.update_policy_sockets(policy_id, [(a.action, a.id) for a in body.actions])
        return _ok(store.get_policy(policy_id))

    def connector_authorized(
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        access_token: Annotated[str | None, Depends(_access_token)],
    ) -> str:
        given = bearer.credentials if bearer is not None else access_token
        connector_id = store.connector_of_token(given) if given else None
        if connector_id is None:
            raise ApiError(401, "unauthorized: missing, revoked or expired connector token")
        return connector_id

    agent = APIRouter(prefix=API_PREFIX, responses={401: _ERRORS[401], 500: _ERRORS[500]})

    @agent.get(CONNECTOR_CONFIG, response_model=m.ConnectorConfig, tags=["Twin only"])
    def connector_config(
        connector_id: str = Depends(connector_authorized),
    ) -> JSONResponse:
        """Twin only, for a test stand-in of `border0 connector start`: the connector's
        configuration and the sockets bound to it, upstream configurations with credentials.
        Authenticated by a CONNECTOR token (the admin token is refused here, and a connector
        token everywhere else). border0's real connector is pushed the same data over a gRPC
        control stream (border0-proto connector/connector.proto: Init, UpdateConfig)."""
        return _ok(store.connector_config(connector_id))

    api.include_router(public)
    api.include_router(agent)  # before `r`: /connector/config is not /connector/{id}
    api.include_router(r)
    api.openapi = _openapi_with_border0_errors(  # type: ignore[method-assign]
        api, admin=[route.path for route in r.routes])

    faults = FaultInjector(
        _Tolerant(api), latency_ms=latency_ms, fail_rate=fail_rate,
        rate_limit=rate_limit, seed=seed, clock=clock,
    )
    guard = Guard(faults, token=token, prefix=API_PREFIX, policy_version=store.policy_version,
                  connector_paths=(CONNECTOR_CONFIG,), connector_token=store.connector_of_token)
    guard.fastapi = api  # type: ignore[attr-defined]
    guard.faults = faults  # type: ignore[attr-defined]
    guard.store = store  # type: ignore[attr-defined]
    return guard


class _Tolerant:
    """border0's leniencies: `/api/v1/sockets/` is `/api/v1/sockets` (no redirect), and a body
    is JSON whatever its content type says (`curl -d` sends form-urlencoded)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope, path=path.rstrip("/") or "/")
                scope["raw_path"] = scope["path"].encode()
            if scope["method"] in ("POST", "PUT", "PATCH"):
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = dict(scope, headers=[*headers, (b"content-type", b"application/json")])
        await self.app(scope, receive, send)


def _openapi_with_border0_errors(api: FastAPI, admin: Sequence[str]
                                 ) -> Callable[[], dict[str, Any]]:
    """FastAPI documents 422 validation errors; border0 (and this emulator) answers 400. The
    `admin` paths take the admin token (checked by the Guard, documented here)."""
    original = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = original()
            for path, item in schema.get("paths", {}).items():
                for operation in item.values():
                    if path in admin:
                        operation.setdefault("security", [{"HTTPBearer": []},
                                                          {"APIKeyHeader": []}])
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None:
                        responses.setdefault(
                            "400",
                            {"description": "Bad Request",
                             "content": {"application/json": {
                                 "schema": {"$ref": "#/components/schemas/Error"}}}},
                        )
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            api.openapi_schema = schema
        return api.openapi_schema

    return openapi


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.message)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreError)
    return _error(exc.status, str(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return _error(400, "invalid request: " + "; ".join(problems))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    return _error(exc.status_code, message, getattr(exc, "headers", None))
