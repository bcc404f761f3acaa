"""DescribeClientQuotas (key 48), versions 0-1: the quotas set per user / client-id entity.

Filter components match an entity type exactly (match_type 0, a name), its default (1) or any name (2);
``strict`` keeps only entities with no other types. With an authorizer, DESCRIBE_CONFIGS on the cluster
(else CLUSTER_AUTHORIZATION_FAILED, as Kafka). A bad filter (an ``ip`` or unknown entity type, a type twice,
an unknown match type) is INVALID_REQUEST with Kafka's message.
Leaves out: ``ip`` entities.
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.core.auth.quota_store import InvalidQuota
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

log = logging.getLogger("ferrymq.kafka")


@api(48, 0, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    def error(code: ErrorCode, message: str | None) -> Any:
        values = {"throttle_time": NO_THROTTLE, "error_code": code, "error_message": message, "entries": None}
        return respond(request, values)

    if not authz.cluster(ctx, Operation.DESCRIBE_CONFIGS):
        return error(ErrorCode.cluster_authorization_failed, None)
    components = [(c.entity_type, int(c.match_type), c.match) for c in request.components]
    try:
        found = ctx.frontend.broker.security.quota_store.describe(components, request.strict)
    except InvalidQuota as exc:
        log.info(
            "DescribeClientQuotas from %s (client %s): %s",
            ctx.conn.peer,
            ctx.conn.client_id,
            exc,
            extra={"peer": ctx.conn.peer, "api_key": 48},
        )
        return error(ErrorCode.invalid_request, str(exc))
    entries = [
        {
            "entity": [{"entity_type": t, "entity_name": n} for t, n in ent],
            "values": [{"key": k, "value": v} for k, v in sorted(values.items())],
        }
        for ent, values in found.items()
    ]
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": ErrorCode.none,
            "error_message": None,
            "entries": entries,
        },
    )
