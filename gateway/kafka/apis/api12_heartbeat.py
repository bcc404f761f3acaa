"""Heartbeat (key 12), versions 0-4: a member says it is alive and learns of rebalances.

REBALANCE_IN_PROGRESS tells a member to rejoin; ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and
FENCED_INSTANCE_ID (v3+, static members) tell it that it is out of the group.
With an authorizer, READ on the group (else GROUP_AUTHORIZATION_FAILED).
Leaves out: nothing of the classic protocol.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(12, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if not authz.group(ctx, Operation.READ, request.group_id):
        return respond(
            request, {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.group_authorization_failed}
        )
    if not await ctx.frontend.coordinator.serves(request.group_id):
        return respond(request, {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.not_coordinator})
    error = ctx.frontend.coordinator.heartbeat(
        request.group_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
        request.generation_id,
    )
    return respond(request, {"throttle_time": NO_THROTTLE, "error_code": error})
