"""DeleteRecords (key 21), versions 0-2: move a partition's log start offset forward.

Records before the offset (-1: the high watermark) are gone for Kafka and RocketMQ readers
alike; the new start is persisted (log_start.py) and re-applied after a restart. The bytes stay
in the commit log until retention deletes its segment. A partition owned by another broker
group is NOT_LEADER_OR_FOLLOWER.
With an authorizer, DELETE on the topic (else TOPIC_AUTHORIZATION_FAILED per partition).
Leaves out: the request's timeout (there are no followers to wait for).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(21, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    f = ctx.frontend
    placed = await f.cluster.placements(
        {t.name: max((p.partition_index for p in t.partitions), default=-1) for t in request.topics}
    )
    out = []
    for t in request.topics:
        parts = []
        denied = not authz.topic(ctx, Operation.DELETE, t.name)
        for p in t.partitions:
            index, error = f.cluster.local_queue(t.name, placed[t.name], p.partition_index)
            if denied:
                error = ErrorCode.topic_authorization_failed
            low = -1
            if not error:
                start, end = f.log.offsets(t.name, index)
                target = end if p.offset == -1 else p.offset
                if target < 0 or target > end:
                    error = ErrorCode.offset_out_of_range
                else:
                    low = f.delete_records(t.name, index, target) if target > start else start
            parts.append({"partition_index": p.partition_index, "low_watermark": low, "error_code": error})
        out.append({"name": t.name, "partitions": parts})
    return respond(request, {"throttle_time": NO_THROTTLE, "topics": out})
