"""JoinGroup (key 11), versions 0-9: a member joins a classic group (group/state.py).

v4+ new dynamic members first get MEMBER_ID_REQUIRED with their id; v5+ carry group.instance.id
(static membership); v9 tells a rejoining static leader to skip the assignment. v0 has no
rebalance timeout: the session timeout serves as one, as in Kafka. The request stays parked until
the group's join phase completes. A group with live native RocketMQ consumers answers
INCONSISTENT_GROUP_PROTOCOL (logged with the group's name; JoinGroup has no error message field).
With an authorizer, READ on the group (else GROUP_AUTHORIZATION_FAILED).
Leaves out: the v8+ reason string (only logged by Kafka), a maximum group size.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.group.state import JoinRequest, JoinResult
from ferrymq.gateway.kafka.responses import NO_THROTTLE, millis, respond


def client_host(ctx: RequestContext) -> str:
    """Kafka's form of a member's address: "/" and the IP."""
    return "/" + ctx.conn.peer.rsplit(":", 1)[0]


@api(11, 0, 9)
async def handle(ctx: RequestContext, request: Any) -> Any:
    v = ctx.api_version
    session = millis(request.session_timeout)
    req = JoinRequest(
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        client_id=ctx.conn.client_id or "",
        client_host=client_host(ctx),
        session_timeout_ms=session,
        rebalance_timeout_ms=millis(request.rebalance_timeout) if v >= 1 else session,
        protocol_type=request.protocol_type,
        protocols=tuple((p.name, p.metadata) for p in request.protocols),
        require_known_member_id=v >= 4,
        supports_skip_assignment=v >= 9,
    )
    if not authz.group(ctx, Operation.READ, request.group_id):
        r = JoinResult(ErrorCode.group_authorization_failed, request.member_id)
    elif await ctx.frontend.coordinator.serves(request.group_id):
        r = await ctx.frontend.coordinator.join(request.group_id, req, ctx.conn.peer)
    else:
        r = JoinResult(ErrorCode.not_coordinator, request.member_id)
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": r.error,
            "generation_id": r.generation_id,
            "protocol_type": r.protocol_type,
            # nullable from v7 only
            "protocol_name": r.protocol_name if v >= 7 else (r.protocol_name or ""),
            "leader": r.leader,
            "skip_assignment": r.skip_assignment,
            "member_id": r.member_id,
            "members": [
                {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata}
                for m in r.members
            ],
        },
    )
