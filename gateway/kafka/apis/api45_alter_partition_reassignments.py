"""AlterPartitionReassignments (key 45), version 0: replicas cannot be moved; said per partition.

A partition is one consume queue of one broker group, replicated by that group's slaves, and a Kafka
client sees its leader as its only replica (api03_metadata.py). So: asking for the current replica list
(the leader alone) is accepted and does nothing, as Kafka accepts a reassignment to the current replicas;
cancelling (replicas null) is NO_REASSIGNMENT_IN_PROGRESS; an empty list or any other list is
INVALID_REPLICA_ASSIGNMENT with a message saying why. An unknown partition is
UNKNOWN_TOPIC_OR_PARTITION.
With an authorizer, ALTER on the cluster (else CLUSTER_AUTHORIZATION_FAILED at the top).
Leaves out: moving a partition between broker groups (the store does not move queues).
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

log = logging.getLogger("ferrymq.kafka")

CANNOT_MOVE = (
    "ferrymq partitions are replicated by their broker group's slaves; the replica set of a partition "
    "is its leader and cannot be reassigned"
)


@api(45, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if not authz.cluster(ctx, Operation.ALTER):
        return respond(
            request,
            {
                "throttle_time": NO_THROTTLE,
                "error_code": ErrorCode.cluster_authorization_failed,
                "error_message": None,
                "responses": (),
            },
        )
    cluster = ctx.frontend.cluster
    placed = await cluster.placements(
        {t.name: max((p.partition_index for p in t.partitions), default=-1) for t in request.topics}
    )
    out = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            error, message = _check(cluster.leader_of(t.name, p.partition_index), placed[t.name].total, p)
            parts.append(
                {"partition_index": p.partition_index, "error_code": error, "error_message": message}
            )
            if error not in (ErrorCode.none, ErrorCode.no_reassignment_in_progress):
                log.info(
                    "reassigning %s-%d from %s: %s", t.name, p.partition_index, ctx.conn.peer, error.name
                )
        out.append({"name": t.name, "partitions": parts})
    return respond(
        request,
        {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.none, "error_message": None, "responses": out},
    )


def _check(leader: int, total: int, p: Any) -> tuple[ErrorCode, str | None]:
    if not 0 <= p.partition_index < total:
        return ErrorCode.unknown_topic_or_partition, "This server does not host this topic-partition."
    if p.replicas is None:
        return ErrorCode.no_reassignment_in_progress, "No reassignment in progress for this partition."
    if not p.replicas:
        return (
            ErrorCode.invalid_replica_assignment,
            "The manual partition assignment includes an empty replica list.",
        )
    if list(p.replicas) == [leader]:
        return ErrorCode.none, None
    return ErrorCode.invalid_replica_assignment, CANNOT_MOVE
