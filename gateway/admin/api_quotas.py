"""Client quotas (core/auth/quotas.py): list, set, remove; the same store Kafka's AlterClientQuotas writes.

An entity is named by the query parameters ``user`` and ``client_id``, either or both; ``<default>`` names
the default of that type (as Kafka's /config/users/<default>). Values are Kafka's keys
(producer_byte_rate, consumer_byte_rate in bytes/s, request_percentage); a PUT sets the keys given (null
removes one), a DELETE removes the whole entity or one ``key``. Checked as AlterClientQuotas checks them
(422 with Kafka's message); the file is fsynced before the answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict

from ferrymq.core.auth.quota_store import InvalidQuota, check_entity, check_value
from ferrymq.core.auth.quotas import CLIENT_ID, USER, Entity
from ferrymq.gateway.admin.context import ERRORS, AdminContext, get_ctx, not_found, unprocessable

router = APIRouter(tags=["quotas"])
DEFAULT = "<default>"


class QuotaOut(BaseModel):
    #: entity type ("user", "client-id") -> name, null for the type's default
    entity: dict[str, str | None]
    values: dict[str, float]


class QuotaValues(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: quota key -> value; null removes the key
    values: dict[str, float | None]


def _entity(user: str | None, client_id: str | None) -> Entity:
    parts: list[tuple[str, str | None]] = []
    if user is not None:
        parts.append((USER, None if user == DEFAULT else user))
    if client_id is not None:
        parts.append((CLIENT_ID, None if client_id == DEFAULT else client_id))
    try:
        return check_entity(parts)
    except InvalidQuota as exc:
        raise unprocessable(str(exc)) from None


def _out(ent: Entity, values: dict[str, float]) -> QuotaOut:
    return QuotaOut(entity=dict(ent), values=values)


USER_Q = Query(None, description='a user (principal name without "User:"), or <default>')
CLIENT_Q = Query(None, description="a client id, or <default>")


@router.get("/quotas", response_model=list[QuotaOut], summary="Every client quota set")
async def list_quotas(ctx: AdminContext = Depends(get_ctx)) -> list[QuotaOut]:
    return [_out(e, v) for e, v in ctx.broker.security.quotas.entries().items()]


@router.put(
    "/quotas", response_model=QuotaOut, responses=ERRORS, summary="Set (or remove) an entity's quotas"
)
async def put_quota(
    body: QuotaValues,
    user: str | None = USER_Q,
    client_id: str | None = CLIENT_Q,
    ctx: AdminContext = Depends(get_ctx),
) -> QuotaOut:
    ent = _entity(user, client_id)
    try:
        ops = {k: check_value(k, v) for k, v in body.values.items()}
    except InvalidQuota as exc:
        raise unprocessable(str(exc)) from None
    ctx.broker.security.quota_store.alter([(ent, ops)])
    return _out(ent, ctx.broker.security.quotas.entries().get(ent, {}))


@router.delete("/quotas", status_code=204, responses=ERRORS, summary="Remove an entity's quotas, or one key")
async def delete_quota(
    user: str | None = USER_Q,
    client_id: str | None = CLIENT_Q,
    key: str | None = Query(None, description="only this quota key"),
    ctx: AdminContext = Depends(get_ctx),
) -> Response:
    ent = _entity(user, client_id)
    current = ctx.broker.security.quotas.entries().get(ent)
    if not current or (key is not None and key not in current):
        raise not_found("no such quota")
    ctx.broker.security.quota_store.alter([(ent, {k: None for k in ([key] if key else current)})])
    return Response(status_code=204)
