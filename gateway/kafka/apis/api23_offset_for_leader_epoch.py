"""OffsetForLeaderEpoch (key 23), versions 2-4: where a leader epoch ends.

A partition's leader epoch is its broker group's master epoch (controller mode; 0 otherwise,
leader_epochs.py). The answer is the largest epoch at most the one asked for and the queue offset
where it ends, from the group's epoch history; the current epoch ends at the high watermark. So a
consumer validating its position after a failover learns of a truncation. A stale
current_leader_epoch is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH; a partition owned
by another broker group, or asked of a slave, is NOT_LEADER_OR_FOLLOWER.
With an authorizer, CLUSTER_ACTION on the cluster (a broker) or DESCRIBE on the topic (KIP-320's consumer),
else TOPIC_AUTHORIZATION_FAILED per partition, as Kafka.
Leaves out: replica (follower) requests.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.leader_epochs import check_epoch, end_of_epoch
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(23, 2, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    cluster = ctx.frontend.cluster
    broker = ctx.frontend.broker
    placed = await cluster.placements(
        {t.topic: max((p.partition for p in t.partitions), default=-1) for t in request.topics}
    )
    out = []
    as_broker = authz.cluster(ctx, Operation.CLUSTER_ACTION)
    for t in request.topics:
        parts = []
        denied = not as_broker and not authz.topic(ctx, Operation.DESCRIBE, t.topic)
        for p in t.partitions:
            queue, error = cluster.local_queue(t.topic, placed[t.topic], p.partition)
            error = ErrorCode.topic_authorization_failed if denied else error
            error = error or check_epoch(broker, p.current_leader_epoch)
            epoch, end = (-1, -1) if error else end_of_epoch(broker, t.topic, queue, p.leader_epoch)
            parts.append(
                {"error_code": error, "partition": p.partition, "leader_epoch": epoch, "end_offset": end}
            )
        out.append({"topic": t.topic, "partitions": parts})
    return respond(request, {"throttle_time": NO_THROTTLE, "topics": out})
