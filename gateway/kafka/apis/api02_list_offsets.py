"""ListOffsets (key 2), versions 1-10 (advertised from 0; v0's offset arrays are not served).

Per partition: -2 earliest (the log start offset), -1 latest (the high watermark), -3 max
timestamp (v7; the last entries' largest timestamp and the last offset of that entry), or a
timestamp: the first record whose timestamp is at or after it (-1/-1 if none), found by binary
search over entries' max timestamps and then inside the batch (decompressing it if need be).
A partition owned by another broker group is NOT_LEADER_OR_FOLLOWER.
isolation_level (v2+): under read_committed the end is the last stable offset instead of the high
watermark (-1 answers it; timestamp lookups stop below it), as Kafka.
With an authorizer, DESCRIBE on the topic (else TOPIC_AUTHORIZATION_FAILED).
Without tiered storage, -4 (earliest local, v8+) is the log start and -5 (latest tiered, v9+) finds
nothing (-1/-1), as Kafka answers with remote storage off. v10's timeout_ms has nothing to wait for.
Leaves out: tiered storage.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.leader_epochs import check_epoch, current_epoch
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
READ_COMMITTED = 1


@api(2, 1, 10)
async def handle(ctx: RequestContext, request: Any) -> Any:
    plog = ctx.frontend.log
    cluster = ctx.frontend.cluster
    committed = getattr(request, "isolation_level", 0) == READ_COMMITTED
    placed = await cluster.placements(
        {t.name: max((p.partition_index for p in t.partitions), default=-1) for t in request.topics}
    )
    out = []
    for t in request.topics:
        parts = []
        denied = not authz.topic(ctx, Operation.DESCRIBE, t.name)
        for p in t.partitions:
            index, error = cluster.local_queue(t.name, placed[t.name], p.partition_index)
            if denied:
                error = ErrorCode.topic_authorization_failed
            error = error or check_epoch(ctx.frontend.broker, getattr(p, "current_leader_epoch", -1))
            entry: dict[str, Any] = {
                "partition_index": p.partition_index,
                "error_code": error,
                "timestamp": -1,
                "offset": -1,
                "leader_epoch": current_epoch(ctx.frontend.broker),
            }
            parts.append(entry)
            if error:
                continue
            start, end = plog.offsets(t.name, index)
            if committed:
                end = ctx.frontend.txn_partitions.last_stable_offset(t.name, index, end)
            if p.timestamp == LATEST:
                entry["offset"] = end
            elif p.timestamp in (EARLIEST, EARLIEST_LOCAL):
                entry["offset"] = start
            elif p.timestamp == MAX_TIMESTAMP:
                found = plog.max_timestamp(t.name, index)
                if found is not None and found[0] < end:
                    entry["offset"], entry["timestamp"] = found
            elif p.timestamp >= 0:
                found = plog.offset_for_time(t.name, index, p.timestamp)
                if found is not None and found[0] < end:  # never past the high watermark
                    entry["offset"], entry["timestamp"] = found
            elif p.timestamp != LATEST_TIERED:  # no tiered storage: nothing found (-1/-1)
                entry["error_code"] = ErrorCode.invalid_request
        out.append({"name": t.name, "partitions": parts})
    return respond(request, {"throttle_time": NO_THROTTLE, "topics": out})
