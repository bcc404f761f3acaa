"""The admin FastAPI application: REST API under /api, health, metrics, the web console at /.

Auth: with a token configured, every path needs it -- /api, /metrics, /docs, /openapi.json, the
console -- except the prefixes opened by adminOpenPaths (and reads, with read_open); a missing or
wrong token gets a bare 401. The token comes as ``Authorization: Bearer <token>``, or as the
password of HTTP Basic auth, which a browser asks for when it opens the console. Errors are JSON
``{"detail": ...}``; an unexpected exception is logged with the peer and answered 500 without a
stack trace.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ferrymq import __version__
from ferrymq.gateway.admin import (
    api_cluster,
    api_groups,
    api_messages,
    api_quotas,
    api_timeseries,
    api_topics,
    api_trace,
    health,
    metrics,
)
from ferrymq.gateway.admin.context import AdminContext, peer_of

log = logging.getLogger("ferrymq.admin")

STATIC = Path(__file__).parent / "static"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(auto_error=False, description="the admin token (adminToken / FERRYMQ_ADMIN_TOKEN)")


async def _documents_bearer(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Declares the bearer scheme in OpenAPI (/docs gets an Authorize button); the check itself
    is the middleware, which runs before anything else looks at the request."""


def authorized(ctx: AdminContext, method: str, path: str, authorization: str | None) -> bool:
    if not ctx.token or (ctx.read_open and method in READ_METHODS):
        return True
    if any(path == p or path.startswith(p.rstrip("/") + "/") for p in ctx.open_paths):
        return True
    scheme, _, credentials = (authorization or "").partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":  # a browser on the console: any user name, the token as password
        try:
            credentials = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme != "bearer":
        return False
    return secrets.compare_digest(credentials.strip().encode(), ctx.token.encode())


def create_app(ctx: AdminContext) -> FastAPI:
    app = FastAPI(
        title="ferrymq admin",
        version=__version__,
        description="Manage and watch a ferrymq broker: cluster, topics, consumer groups, messages.",
    )
    app.state.ctx = ctx
    app.state.metrics = metrics.registry_for(ctx)

    api = APIRouter(prefix="/api", dependencies=[Depends(_documents_bearer)])
    for module in (api_cluster, api_topics, api_groups, api_messages, api_trace, api_timeseries, api_quotas):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(metrics.router)

    @app.middleware("http")
    async def _auth(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if not authorized(ctx, request.method, path, request.headers.get("authorization")):
            log.warning(
                "admin: rejected %s %s from %s: bad or missing token", request.method, path, peer_of(request)
            )
            # Basic for pages a browser opens (it then asks for the token), Bearer for the API
            scheme = "Bearer" if path.startswith("/api") else 'Basic realm="ferrymq admin"'
            return Response(status_code=401, headers={"WWW-Authenticate": scheme})
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code >= 400 and request.method not in READ_METHODS:
            log.info(
                "admin: %s %s from %s: %d %s",
                request.method,
                request.url.path,
                peer_of(request),
                exc.status_code,
                exc.detail,
            )
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in exc.errors()]
        log.info(
            "admin: %s %s from %s: 422 %s",
            request.method,
            request.url.path,
            peer_of(request),
            "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in errors),
        )
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.error(
            "admin: %s %s from %s failed", request.method, request.url.path, peer_of(request), exc_info=exc
        )
        return JSONResponse({"detail": "internal error (logged by the broker)"}, status_code=500)

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
