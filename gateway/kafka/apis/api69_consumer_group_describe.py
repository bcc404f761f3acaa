"""ConsumerGroupDescribe (key 69), versions 0-1: KIP-848 consumer groups as Kafka describes them.

Per group: state (Empty, Assigning, Reconciling, Stable), group epoch, assignment epoch, the
assignor in use, and each member's epoch, subscription (names and regex), current assignment and
target assignment (topic ids and names), member type "consumer" (v1). A group that does not exist
is GROUP_ID_NOT_FOUND "Group X not found.", a classic group GROUP_ID_NOT_FOUND "Group X is not a
consumer group.", as Kafka answers.
With an authorizer: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED) and on every topic its
members subscribe to (else TOPIC_AUTHORIZATION_FAILED for the group).
Classic-protocol members of a group being upgraded are listed with member type 0.
Leaves out: nothing of v0-1.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api03_metadata import topic_id
from ferrymq.gateway.kafka.apis.api15_describe_groups import GROUP_OPERATIONS, NOT_REQUESTED
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.group.assignors import Assignment
from ferrymq.gateway.kafka.group.consumer_group import ConsumerGroup
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

#: ConsumerGroupDescribe v1's member types: a consumer-protocol member, a classic one (an upgrade)
CONSUMER_MEMBER = 1
CLASSIC_MEMBER = 0


def _failed(group_id: str, error: ErrorCode, message: str | None = None) -> dict[str, Any]:
    return {
        "error_code": error,
        "error_message": message,
        "group_id": group_id,
        "group_state": "Dead",
        "group_epoch": -1,
        "assignment_epoch": -1,
        "assignor_name": "",
        "members": [],
    }


def _assignment(cluster_id: str, parts: Assignment) -> dict[str, Any]:
    return {
        "topic_partitions": [
            {"topic_id": topic_id(cluster_id, t), "topic_name": t, "partitions": sorted(ps)}
            for t, ps in sorted(parts.items())
        ]
    }


def _described(group: ConsumerGroup, cluster_id: str) -> dict[str, Any]:
    return {
        "error_code": ErrorCode.none,
        "error_message": None,
        "group_id": group.group_id,
        "group_state": group.state,
        "group_epoch": group.epoch,
        "assignment_epoch": group.assignment_epoch,
        "assignor_name": group.assignor,
        "members": [
            {
                "member_id": m.member_id,
                "instance_id": m.instance_id,
                "rack_id": m.rack_id,
                "member_epoch": m.epoch,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "subscribed_topic_names": list(m.topic_names),
                "subscribed_topic_regex": m.topic_regex,
                "assignment": _assignment(cluster_id, m.assigned),
                "target_assignment": _assignment(cluster_id, group.target.get(m.member_id, {})),
                "member_type": CONSUMER_MEMBER if m.classic is None else CLASSIC_MEMBER,
            }
            for m in sorted(group.members.values(), key=lambda m: m.member_id)
        ],
    }


@api(69, 0, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.frontend.coordinator
    cluster_id = ctx.frontend.cluster.cluster_id
    ops = GROUP_OPERATIONS if request.include_authorized_operations else NOT_REQUESTED
    out = []
    for group_id in request.group_ids:
        group = coordinator.consumers.get(group_id)
        if not authz.group(ctx, Operation.DESCRIBE, group_id):
            described = _failed(group_id, ErrorCode.group_authorization_failed)
        elif not await coordinator.serves(group_id):
            described = _failed(group_id, ErrorCode.not_coordinator)
        elif group is None:
            classic = coordinator.groups.get(group_id)
            message = f"Group {group_id} {'is not a consumer group' if classic else 'not found'}."
            described = _failed(group_id, ErrorCode.group_id_not_found, message)
        elif not all(authz.topic(ctx, Operation.DESCRIBE, t) for t in group.subscribed_topics()):
            described = _failed(group_id, ErrorCode.topic_authorization_failed)
        else:
            described = _described(group, cluster_id)
        out.append({**described, "authorized_operations": ops})
    return respond(request, {"throttle_time": NO_THROTTLE, "groups": out})
