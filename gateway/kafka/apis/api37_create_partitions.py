"""CreatePartitions (key 37), versions 0-3: more partitions (queues) for a topic.

The new count must be larger than the current one; the topic's read and write queue numbers
grow and the name servers learn it at once. validate_only checks without changing.
With an authorizer, ALTER on the topic (else TOPIC_AUTHORIZATION_FAILED), as Kafka.
Leaves out: replica placement (assignments are not checked beyond their number).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(37, 0, 3)
async def handle(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.frontend.broker
    out = []
    for t in request.topics:
        tc = broker.topics.get(t.name)
        error, message = ErrorCode.none, None
        if not authz.topic(ctx, Operation.ALTER, t.name):
            error, message = ErrorCode.topic_authorization_failed, "Topic authorization failed."
        elif tc is None or topics.invalid_name(t.name) or topics.is_internal(broker, t.name):
            error, message = ErrorCode.unknown_topic_or_partition, f"The topic '{t.name}' does not exist."
        elif t.count <= (current := topics.partition_count(tc)):
            error = ErrorCode.invalid_partitions
            message = (
                f"Topic currently has {current} partitions, which is higher than the requested {t.count}."
            )
        elif t.count > topics.MAX_PARTITIONS:
            error, message = (
                ErrorCode.invalid_partitions,
                f"Number of partitions must be at most {topics.MAX_PARTITIONS}.",
            )
        elif t.assignments is not None and len(t.assignments) != t.count - topics.partition_count(tc):
            error = ErrorCode.invalid_replica_assignment
            added = t.count - topics.partition_count(tc)
            message = f"Adding {added} partitions but {len(t.assignments)} assignments provided."
        elif not request.validate_only:
            topics.update(broker, dataclasses.replace(tc, read_queue_nums=t.count, write_queue_nums=t.count))
        out.append({"name": t.name, "error_code": error, "error_message": message})
    return respond(request, {"throttle_time": NO_THROTTLE, "results": out})
