"""DescribeTopicPartitions (key 75), version 0: topics and their partitions, paged (KIP-966).

What Metadata says of a topic (api03_metadata.py: leaders, epochs, replicas = ISR = the leader, topic ids),
for the named topics or, with none named, every listed topic the principal may DESCRIBE; topics in name
order, partitions in index order. At most ``response_partition_limit`` partitions are answered (capped at
2000, Kafka's max.request.partition.size.limit); ``next_cursor`` names the first partition left out, and a
request's ``cursor`` starts there (its topic must be among the named ones: INVALID_REQUEST otherwise, as
Kafka's DescribeTopicPartitionsRequestHandler). A named topic that does not exist is
UNKNOWN_TOPIC_OR_PARTITION (no auto-creation); without DESCRIBE on it, TOPIC_AUTHORIZATION_FAILED.
Eligible leader replicas (KIP-966) are empty lists, as a broker without ELR sends them.
Leaves out: ELR itself (no ISR to shrink below min.insync.replicas here), racks,
authorized operations (not computed).
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api03_metadata import ROUTE_FRESH_S, topic_metadata
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond
from ferrymq.gateway.kafka.topic_ids import ZERO

#: Kafka's max.request.partition.size.limit default
PARTITION_LIMIT = 2000

log = logging.getLogger("ferrymq.kafka")


@api(75, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    cluster = ctx.frontend.cluster
    broker = ctx.frontend.broker
    cursor = request.cursor
    if request.topics:
        names = sorted({t.name for t in request.topics})
        if cursor is not None and cursor.topic_name not in names:
            log.info(
                "DescribeTopicPartitions from %s: cursor topic %r not requested",
                ctx.conn.peer,
                cursor.topic_name,
            )
            # Kafka's error response for an InvalidRequestException: the error on every requested topic
            refused = [_error(ErrorCode.invalid_request, n) for n in names]
            return respond(request, {"throttle_time": NO_THROTTLE, "topics": refused, "next_cursor": None})
    else:
        names = sorted(tc.topic_name for tc in topics.listed_topics(broker))
    start_topic, start_partition = (cursor.topic_name, int(cursor.partition_index)) if cursor else ("", 0)
    names = [n for n in names if n >= start_topic]
    placed = await cluster.placements({n: -1 for n in names}, max_age=ROUTE_FRESH_S)
    limit = max(0, min(int(request.response_partition_limit), PARTITION_LIMIT))
    out: list[dict[str, Any]] = []
    next_cursor = None
    for name in names:
        if not authz.topic(ctx, Operation.DESCRIBE, name):
            if request.topics:
                out.append(_error(ErrorCode.topic_authorization_failed, name))
            continue
        where = placed.get(name)
        if broker.topics.get(name) is None and (where is None or not where.owners):
            out.append(_error(ErrorCode.unknown_topic_or_partition, name))
            continue
        assert where is not None
        described = topic_metadata(cluster, name, where)
        first = start_partition if name == start_topic else 0
        # ELR lists empty, never null: Kafka's broker sends [] and the Java admin client reads them unchecked
        parts = [
            {**p, "eligible_leader_replicas": (), "last_known_elr": ()}
            for p in described["partitions"][first:]
        ]
        if len(parts) > limit:
            next_cursor = {"topic_name": name, "partition_index": first + limit}
            parts = parts[:limit]
        limit -= len(parts)
        described["partitions"] = parts
        out.append(described)
        if next_cursor is not None:
            break
        if limit == 0:
            following = names[names.index(name) + 1 :]
            if following:
                next_cursor = {"topic_name": following[0], "partition_index": 0}
            break
    return respond(request, {"throttle_time": NO_THROTTLE, "topics": out, "next_cursor": next_cursor})


def _error(code: ErrorCode, name: str) -> dict[str, Any]:
    return {"error_code": code, "name": name, "topic_id": ZERO, "is_internal": False, "partitions": ()}
