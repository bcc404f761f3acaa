"""OffsetForLeaderEpoch (key 23), versions 2-4: where a leader epoch ends.

Every partition has had one leader epoch, 0, so any epoch asked about ends at the high watermark
(consumers validating their position after a metadata change never see a truncation).
A partition owned by another broker group is NOT_LEADER_OR_FOLLOWER.
Leaves out: replica (follower) requests.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka import topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(23, 2, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.frontend.broker
    placed = await ctx.frontend.placements(
        {t.topic: max((p.partition for p in t.partitions), default=-1) for t in request.topics}
    )
    out = []
    for t in request.topics:
        tc = broker.topics.get(t.topic)
        where = placed[t.topic]
        parts = []
        for p in t.partitions:
            queue = where.queue_of(p.partition)
            if queue is None or tc is None or not 0 <= queue < topics.partition_count(tc):
                parts.append(
                    {
                        "error_code": ErrorCode.not_leader_or_follower
                        if queue is None
                        else ErrorCode.unknown_topic_or_partition,
                        "partition": p.partition,
                        "leader_epoch": -1,
                        "end_offset": -1,
                    }
                )
                continue
            _, end = ctx.frontend.log.offsets(t.topic, queue)
            parts.append(
                {"error_code": ErrorCode.none, "partition": p.partition, "leader_epoch": 0, "end_offset": end}
            )
        out.append({"topic": t.topic, "partitions": parts})
    return respond(request, {"throttle_time": NO_THROTTLE, "topics": out})
