"""SyncGroup (key 14), versions 0-5: the leader hands out the assignment; every member gets its own.

A follower's request waits until the leader's arrives (or the group rebalances again); v5 checks
the protocol type and name against the group's (INCONSISTENT_GROUP_PROTOCOL).
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
from ferrymq.gateway.kafka.group.state import SyncRequest, SyncResult
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(14, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    req = SyncRequest(
        request.member_id,
        getattr(request, "group_instance_id", None),
        request.generation_id,
        getattr(request, "protocol_type", None),
        getattr(request, "protocol_name", None),
        {a.member_id: a.assignment for a in request.assignments},
    )
    if not authz.group(ctx, Operation.READ, request.group_id):
        r = SyncResult(ErrorCode.group_authorization_failed)
    elif await ctx.frontend.coordinator.serves(request.group_id):
        r = await ctx.frontend.coordinator.sync(request.group_id, req)
    else:
        r = SyncResult(ErrorCode.not_coordinator)
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": r.error,
            "protocol_type": r.protocol_type,
            "protocol_name": r.protocol_name,
            "assignment": r.assignment,
        },
    )
