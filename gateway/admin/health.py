"""GET /healthz (the process answers) and GET /readyz (registered with a name server and the
store takes writes; when it does not — a failed sync, a full disk — ``reason`` says why): what a
load balancer or an orchestrator probes."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ferrymq.gateway.admin.context import AdminContext, get_ctx
from ferrymq.gateway.admin.models import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "not ready"}},
    summary="Registered with a name server and the store is writable",
)
async def readyz(ctx: AdminContext = Depends(get_ctx)) -> JSONResponse:
    registered = ctx.broker.registered
    store = ctx.broker.store
    writable = store.writable
    body = Readiness(
        ready=registered and writable,
        registered=registered,
        store_writable=writable,
        reason=None if writable else store.unwritable_reason,
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if body.ready else 503)
