"""DescribeGroups (key 15), versions 0-6: state, protocol and members of groups.

A Kafka group as Kafka describes it (member metadata and assignments only once Stable); a group
held by native RocketMQ consumers as "Stable" with protocol type "" (as Kafka's simple groups, so
Kafka admin tools accept it) and its consumers without assignments;
a group with only committed offsets (on any broker group) as "Empty"; an unknown group as "Dead",
from v6 GROUP_ID_NOT_FOUND with a message (KIP-1043, as Kafka 4.0): "Group … not found.", or for a
KIP-848 consumer group "Group … is not a classic group." (Kafka's wording; ConsumerGroupDescribe
describes it).
With an authorizer, DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED).
Leaves out: authorized operations are all group operations
(there are no ACLs).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.group.state import GroupState, GroupSummary
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

#: READ (3), DELETE (6) and DESCRIBE (8), as Kafka without an authorizer reports for a group
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
NOT_REQUESTED = -(2**31)


@api(15, 0, 6)
async def handle(ctx: RequestContext, request: Any) -> Any:
    ops = GROUP_OPERATIONS if getattr(request, "include_authorized_operations", False) else NOT_REQUESTED
    groups = []
    coordinator = ctx.frontend.coordinator
    for group_id in request.groups:
        if not authz.group(ctx, Operation.DESCRIBE, group_id):
            error, s = (
                ErrorCode.group_authorization_failed,
                GroupSummary(group_id, GroupState.DEAD, "", "", ()),
            )
        elif await coordinator.serves(group_id):
            error, s = ErrorCode.none, await coordinator.describe(group_id)
            if ctx.api_version >= 6 and s.state == GroupState.DEAD and not s.members:
                error = ErrorCode.group_id_not_found
        else:
            error, s = ErrorCode.not_coordinator, GroupSummary(group_id, GroupState.DEAD, "", "", ())
        message = None
        if error == ErrorCode.group_id_not_found:
            kind = (
                "is not a classic group" if coordinator.consumers.get(group_id) is not None else "not found"
            )
            message = f"Group {group_id} {kind}."
        groups.append(
            {
                "error_code": error,
                "error_message": message,
                "group_id": group_id,
                "group_state": s.state.value,
                "protocol_type": s.protocol_type,
                "protocol_data": s.protocol_name,
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "member_metadata": m.metadata,
                        "member_assignment": m.assignment,
                    }
                    for m in s.members
                ],
                "authorized_operations": ops,
            }
        )
    return respond(request, {"throttle_time": NO_THROTTLE, "groups": groups})
