"""DescribeQuorum (key 55), versions 0-2: answered as a KRaft node that does not lead the metadata quorum.

There is no KRaft quorum: the metadata lives with the name servers (and the controllers in controller
mode). Kafka's raft client, asked on a node that is not the quorum leader, answers
NOT_LEADER_OR_FOLLOWER on ``__cluster_metadata`` partition 0; a request for any other partition gets
UNKNOWN_TOPIC_OR_PARTITION on each partition it names. ``kafka-metadata-quorum describe`` and the admin
client's describeMetadataQuorum then fail with that error instead of finding the API missing.
With an authorizer, DESCRIBE on the cluster (else CLUSTER_AUTHORIZATION_FAILED at the top).
Leaves out: voters, observers and nodes (there are none to report).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import respond

METADATA_TOPIC = "__cluster_metadata"


@api(55, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if not authz.cluster(ctx, Operation.DESCRIBE):
        return _answer(request, ErrorCode.cluster_authorization_failed, ())
    asked = [(t.topic_name, int(p.partition_index)) for t in request.topics for p in t.partitions]
    if asked == [(METADATA_TOPIC, 0)]:
        return _answer(
            request, ErrorCode.none, [_topic(METADATA_TOPIC, [0], ErrorCode.not_leader_or_follower)]
        )
    topics = [
        _topic(t.topic_name, [p.partition_index for p in t.partitions], ErrorCode.unknown_topic_or_partition)
        for t in request.topics
    ]
    return _answer(request, ErrorCode.none, topics)


def _topic(name: str, partitions: list[int], error: ErrorCode) -> dict[str, Any]:
    parts = [
        {
            "partition_index": p,
            "error_code": error,
            "error_message": None,
            "leader_id": -1,
            "leader_epoch": -1,
            "high_watermark": -1,
            "current_voters": (),
            "observers": (),
        }
        for p in partitions
    ]
    return {"topic_name": name, "partitions": parts}


def _answer(request: Any, error: ErrorCode, topics: Any) -> Any:
    return respond(request, {"error_code": error, "error_message": None, "topics": topics, "nodes": ()})
