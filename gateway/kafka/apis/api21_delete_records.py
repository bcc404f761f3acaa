"""DeleteRecords (key 21), versions 0-2: move a partition's log start offset forward.

Records before the offset (-1: the high watermark) are gone for Kafka and RocketMQ readers
alike; the new start is persisted (log_start.py) and re-applied after a restart. The bytes stay
in the commit log until retention deletes its segment. A partition owned by another broker
group is NOT_LEADER_OR_FOLLOWER.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka import topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(21, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    f = ctx.frontend
    placed = await f.placements(
        {t.name: max((p.partition_index for p in t.partitions), default=-1) for t in request.topics}
    )
    out = []
    for t in request.topics:
        tc = f.broker.topics.get(t.name)
        where = placed[t.name]
        parts = []
        for p in t.partitions:
            queue = where.queue_of(p.partition_index)
            index = -1 if queue is None else queue
            error, low = ErrorCode.none, -1
            if queue is None:
                error = ErrorCode.not_leader_or_follower
            elif tc is None or not 0 <= index < topics.partition_count(tc):
                error = ErrorCode.unknown_topic_or_partition
            else:
                start, end = f.log.offsets(t.name, index)
                target = end if p.offset == -1 else p.offset
                if target < 0 or target > end:
                    error = ErrorCode.offset_out_of_range
                else:
                    low = f.delete_records(t.name, index, target) if target > start else start
            parts.append({"partition_index": p.partition_index, "low_watermark": low, "error_code": error})
        out.append({"name": t.name, "partitions": parts})
    return respond(request, {"throttle_time": NO_THROTTLE, "topics": out})
