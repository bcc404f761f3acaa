"""AlterClientQuotas (key 49), versions 0-1: set and remove quotas of user / client-id entities.

Each entry is checked on its own (core/auth/quota_store.py: entity types ``user`` and ``client-id`` once
each, keys producer_byte_rate / consumer_byte_rate / request_percentage, no negative values, whole bytes);
a bad one is INVALID_REQUEST with Kafka's message and the others still apply. ``validate_only`` checks and
changes nothing. With an authorizer, ALTER_CONFIGS on the cluster (else every entry
CLUSTER_AUTHORIZATION_FAILED, as Kafka). The quotas file is fsynced before the answer; rates of clients
already measured start again under the new quotas.
Leaves out: ``ip`` entities and controller_mutation_rate (INVALID_REQUEST).
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.core.auth.quota_store import InvalidQuota, check_entity, check_value
from ferrymq.core.auth.quotas import Entity
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

log = logging.getLogger("ferrymq.kafka")


def _check(entry: Any) -> tuple[Entity, dict[str, float | None]]:
    ent = check_entity((e.entity_type, e.entity_name) for e in entry.entity)
    ops: dict[str, float | None] = {}
    for op in entry.ops:
        if op.key in ops:
            raise InvalidQuota(f"Duplicate quota key {op.key} for one entity")
        ops[op.key] = check_value(op.key, None if op.remove else float(op.value))
    return ent, ops


@api(49, 0, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    may = authz.cluster(ctx, Operation.ALTER_CONFIGS)
    results = []
    changes = []
    for entry in request.entries:
        code, message = ErrorCode.none, None
        if not may:
            code = ErrorCode.cluster_authorization_failed
        else:
            try:
                changes.append(_check(entry))
            except InvalidQuota as exc:
                code, message = ErrorCode.invalid_request, str(exc)
                log.info(
                    "AlterClientQuotas from %s (client %s): %s",
                    ctx.conn.peer,
                    ctx.conn.client_id,
                    exc,
                    extra={"peer": ctx.conn.peer, "api_key": 49},
                )
        results.append(
            {
                "error_code": code,
                "error_message": message,
                "entity": [
                    {"entity_type": e.entity_type, "entity_name": e.entity_name} for e in entry.entity
                ],
            }
        )
    ctx.frontend.broker.security.quota_store.alter(changes, request.validate_only)
    return respond(request, {"throttle_time": NO_THROTTLE, "entries": results})
