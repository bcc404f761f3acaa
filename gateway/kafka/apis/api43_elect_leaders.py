"""ElectLeaders (key 43), versions 0-2: nothing to elect, said per partition as Kafka says it.

A partition's leader is its broker group's master, the one replica a Kafka client sees (Metadata lists
the leader alone): it is always the preferred replica and always alive, so every existing partition is
ELECTION_NOT_NEEDED (preferred and unclean alike), as Kafka answers for a partition already led by its
preferred replica; with ``topic_partitions`` null (every partition) those are left out, leaving an empty
answer, as Kafka's controller does. Leadership inside a broker group moves by failover (controller mode),
not by this API. An unknown partition is UNKNOWN_TOPIC_OR_PARTITION.
With an authorizer, ALTER on the cluster (else CLUSTER_AUTHORIZATION_FAILED on the request, v1+, and on
each partition).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

NOT_NEEDED = "Leader election not needed for topic partition."


@api(43, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    wanted = request.topic_partitions
    if wanted is None:  # every partition: none needs an election, none is listed
        error = (
            ErrorCode.none if authz.cluster(ctx, Operation.ALTER) else ErrorCode.cluster_authorization_failed
        )
        return respond(
            request, {"throttle_time": NO_THROTTLE, "error_code": error, "replica_election_results": ()}
        )
    if not authz.cluster(ctx, Operation.ALTER):
        results = [
            {
                "topic": t.topic,
                "partition_result": [
                    {
                        "partition_id": p,
                        "error_code": ErrorCode.cluster_authorization_failed,
                        "error_message": None,
                    }
                    for p in t.partitions
                ],
            }
            for t in wanted
        ]
        return respond(
            request,
            {
                "throttle_time": NO_THROTTLE,
                "error_code": ErrorCode.cluster_authorization_failed,
                "replica_election_results": results,
            },
        )
    placed = await ctx.frontend.cluster.placements({t.topic: max(t.partitions, default=-1) for t in wanted})
    results = []
    for t in wanted:
        total = placed[t.topic].total
        parts = []
        for p in t.partitions:
            if 0 <= p < total:
                parts.append(
                    {
                        "partition_id": p,
                        "error_code": ErrorCode.election_not_needed,
                        "error_message": NOT_NEEDED,
                    }
                )
            else:
                parts.append(
                    {
                        "partition_id": p,
                        "error_code": ErrorCode.unknown_topic_or_partition,
                        "error_message": "This server does not host this topic-partition.",
                    }
                )
        results.append({"topic": t.topic, "partition_result": parts})
    return respond(
        request,
        {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.none, "replica_election_results": results},
    )
