"""ShareGroupDescribe (key 77), version 1 (Kafka 4.2's): share groups as Kafka describes them.

Per group: state (Empty, Stable), group epoch (also the assignment epoch: assignment is immediate),
the assignor "simple", and each member's epoch, client, subscription and assignment (every
partition of its topics: share partitions are shared). A group id no share group has is
GROUP_ID_NOT_FOUND ("Group X not found." / "Group X is not a share group." for a classic or
consumer group). With an authorizer: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED) and on
the topics its members subscribe to (else TOPIC_AUTHORIZATION_FAILED).
Leaves out: racks (echoed as the member sent them).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, share_delivery
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api15_describe_groups import GROUP_OPERATIONS, NOT_REQUESTED
from ferrymq.gateway.kafka.apis.api69_consumer_group_describe import _assignment, _failed
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.group.share_group import ShareGroup
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond
from ferrymq.gateway.kafka.sasl import now_ms

ASSIGNOR = "simple"


def _described(group: ShareGroup, cluster_id: str) -> dict[str, Any]:
    return {
        "error_code": ErrorCode.none,
        "error_message": None,
        "group_id": group.group_id,
        "group_state": group.state,
        "group_epoch": group.epoch,
        "assignment_epoch": group.epoch,
        "assignor_name": ASSIGNOR,
        "members": [
            {
                "member_id": m.member_id,
                "rack_id": m.rack_id,
                "member_epoch": m.epoch,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "subscribed_topic_names": list(m.topics),
                "assignment": _assignment(cluster_id, m.assignment),
            }
            for m in sorted(group.members.values(), key=lambda m: m.member_id)
        ],
    }


@api(77, 1, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    frontend = ctx.frontend
    coordinator = frontend.coordinator
    shares = frontend.share_groups
    cluster_id = frontend.cluster.cluster_id
    ops = GROUP_OPERATIONS if request.include_authorized_operations else NOT_REQUESTED
    out = []
    for group_id in request.group_ids:
        group = shares.groups.get(group_id)
        if group is not None:
            share_delivery.release(frontend.broker, group_id, shares.expire(group, now_ms()))
        if not authz.group(ctx, Operation.DESCRIBE, group_id):
            described = _failed(group_id, ErrorCode.group_authorization_failed)
        elif not await coordinator.serves(group_id):
            described = _failed(group_id, ErrorCode.not_coordinator)
        elif group is None:
            other = coordinator.groups.get(group_id) or coordinator.consumers.get(group_id)
            message = f"Group {group_id} {'is not a share group' if other else 'not found'}."
            described = _failed(group_id, ErrorCode.group_id_not_found, message)
        elif not all(authz.topic(ctx, Operation.DESCRIBE, t) for t in group.subscribed_topics()):
            described = _failed(group_id, ErrorCode.topic_authorization_failed)
        else:
            described = _described(group, cluster_id)
        out.append({**described, "authorized_operations": ops})
    return respond(request, {"throttle_time": NO_THROTTLE, "groups": out})
