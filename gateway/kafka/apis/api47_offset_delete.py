"""OffsetDelete (key 47), version 0: delete a group's committed offsets of some partitions.

GROUP_SUBSCRIBED_TO_TOPIC for topics an active consumer group reads now, NON_EMPTY_GROUP for an
active group of another protocol (or live native RocketMQ consumers), GROUP_ID_NOT_FOUND for an
unknown group.
With an authorizer, DELETE on the group (else GROUP_AUTHORIZATION_FAILED for the request) and READ on each
topic (else TOPIC_AUTHORIZATION_FAILED for its partitions, the others still deleted), as Kafka.
Leaves out: nothing.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(47, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    topics = [(t.name, [p.partition_index for p in t.partitions]) for t in request.topics]
    coordinator = ctx.frontend.coordinator
    denied = [(name, parts) for name, parts in topics if not authz.topic(ctx, Operation.READ, name)]
    refused = [(name, [(p, ErrorCode.topic_authorization_failed) for p in parts]) for name, parts in denied]
    allowed = [t for t in topics if t not in denied]
    if not authz.group(ctx, Operation.DELETE, request.group_id):
        error, results = ErrorCode.group_authorization_failed, []
    elif await coordinator.serves(request.group_id):
        error, results = await coordinator.delete_offsets(request.group_id, allowed)
        results = refused + results
    else:
        error, results = ErrorCode.not_coordinator, []
    return respond(
        request,
        {
            "error_code": error,
            "throttle_time": NO_THROTTLE,
            "topics": [
                {"name": name, "partitions": [{"partition_index": p, "error_code": e} for p, e in parts]}
                for name, parts in results
            ],
        },
    )
