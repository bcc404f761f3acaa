"""LeaveGroup (key 13), versions 0-5: members leave a group, which rebalances without them.

v0-v2 name one member; v3+ a batch of members, each by member id and/or group instance id (an
admin may remove a static member by its instance id alone), with an error per member.
With an authorizer, READ on the group (else GROUP_AUTHORIZATION_FAILED).
Leaves out: the v5 reason string (only logged by Kafka).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(13, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if ctx.api_version < 3:
        members = [(request.member_id, None)]
    else:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    if not authz.group(ctx, Operation.READ, request.group_id):
        error, errors = ErrorCode.group_authorization_failed, []
    elif await ctx.frontend.coordinator.serves(request.group_id):
        error, errors = ctx.frontend.coordinator.leave(request.group_id, members)
    else:
        error, errors = ErrorCode.not_coordinator, []
    if ctx.api_version < 3:
        if error == ErrorCode.none and errors:
            error = errors[0]
        return respond(request, {"throttle_time": NO_THROTTLE, "error_code": error})
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": error,
            "members": [
                {"member_id": member_id, "group_instance_id": instance_id, "error_code": e}
                for (member_id, instance_id), e in zip(members, errors, strict=False)
            ],
        },
    )
