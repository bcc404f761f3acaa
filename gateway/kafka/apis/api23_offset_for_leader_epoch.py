"""OffsetForLeaderEpoch (key 23), versions 2-4: where a leader epoch ends.

Every partition has had one leader epoch, 0, so any epoch asked about ends at the high watermark
(consumers validating their position after a metadata change never see a truncation).
A partition owned by another broker group is NOT_LEADER_OR_FOLLOWER.
Leaves out: replica (follower) requests.
"""

from __future__ import annotations

from typing import Any

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(23, 2, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    cluster = ctx.frontend.cluster
    placed = await cluster.placements(
        {t.topic: max((p.partition for p in t.partitions), default=-1) for t in request.topics}
    )
    out = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            queue, error = cluster.local_queue(t.topic, placed[t.topic], p.partition)
            epoch, end = (-1, -1) if error else (0, ctx.frontend.log.offsets(t.topic, queue)[1])
            parts.append(
                {"error_code": error, "partition": p.partition, "leader_epoch": epoch, "end_offset": end}
            )
        out.append({"topic": t.topic, "partitions": parts})
    return respond(request, {"throttle_time": NO_THROTTLE, "topics": out})
