"""Fetch (key 1), versions 4-12 (advertised from 0; v13+ name topics by id).

Stored batches are served as they were written (no re-encoding); the batch holding the fetch
offset is served whole even if it starts before it. Native RocketMQ messages are served as record
batches built for the reply (mapping.py). A fetch with less than min_bytes waits up to max_wait
for an arrival on any of its partitions (the store's arrival listeners wake it), then reads
again. partition_max_bytes and max_bytes are honoured, except that the first batch is always
returned whole (KIP-74). Empty record sets are zero-length bytes, never null.
A partition owned by another broker group is NOT_LEADER_OR_FOLLOWER.
isolation_level: read_uncommitted reads up to the high watermark, read_committed only below the
last stable offset (txn_partitions.py: the first offset of the oldest open transaction, else the
high watermark); last_stable_offset is always filled, aborted_transactions (producer id, first
offset) only for read_committed (null otherwise). Control batches are served like any batch. A
parked read_committed fetch wakes on the marker's arrival, which moves the LSO.
Leaves out: fetch sessions (KIP-227: session_id 0, every fetch is a full one), follower fetching
and rack awareness.
"""

from __future__ import annotations

import time
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.core.remoting.route import PERM_READ
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.cluster import TopicPartitions
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.leader_epochs import check_epoch
from ferrymq.gateway.kafka.responses import NO_THROTTLE, millis, respond

READ_COMMITTED = 1


@api(1, 4, 12)
async def handle(ctx: RequestContext, request: Any) -> Any:
    session_id = getattr(request, "session_id", 0)
    if session_id != 0:  # we never hand out a session, so an incremental fetch cannot be ours
        return respond(
            request,
            {
                "throttle_time": NO_THROTTLE,
                "error_code": ErrorCode.fetch_session_id_not_found,
                "session_id": 0,
                "responses": (),
            },
        )
    max_wait = millis(request.max_wait) / 1000
    deadline = time.monotonic() + max_wait
    placed = await ctx.frontend.cluster.placements(
        {ft.topic: max((fp.partition for fp in ft.partitions), default=-1) for ft in request.topics}
    )
    denied = {ft.topic for ft in request.topics if not authz.topic(ctx, Operation.READ, ft.topic)}
    responses, total, waitable = _read(ctx, request, placed, denied)
    while total < request.min_bytes and waitable:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not await ctx.frontend.wait_for_data(waitable, remaining):
            break
        responses, total, waitable = _read(ctx, request, placed, denied)
    return respond(
        request,
        {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.none, "session_id": 0, "responses": responses},
    )


def _read(
    ctx: RequestContext, request: Any, placed: dict[str, TopicPartitions], denied: set[str]
) -> tuple[list[dict[str, Any]], int, list[tuple[str, int]]]:
    """Every requested partition read once: (responses, bytes, partitions worth waiting on);
    ``denied`` topics (no READ) are TOPIC_AUTHORIZATION_FAILED."""
    broker = ctx.frontend.broker
    plog = ctx.frontend.log
    txns = ctx.frontend.txn_partitions
    committed = request.isolation_level == READ_COMMITTED
    budget = request.max_bytes if request.max_bytes > 0 else 0x7FFFFFFF
    total = 0
    waitable: list[tuple[str, int]] = []
    responses = []
    for ft in request.topics:
        name = ft.topic
        tc = broker.topics.get(name)
        where = placed[name]
        parts = []
        for fp in ft.partitions:
            queue = where.queue_of(fp.partition)
            entry: dict[str, Any] = {
                "partition_index": fp.partition,
                "error_code": ErrorCode.none,
                "high_watermark": -1,
                "last_stable_offset": -1,
                "log_start_offset": -1,
                "aborted_transactions": () if committed else None,
                "preferred_read_replica": -1,
                "records": b"",
            }
            parts.append(entry)
            if name in denied:
                entry["error_code"] = ErrorCode.topic_authorization_failed
                continue
            if queue is None:
                entry["error_code"] = ErrorCode.not_leader_or_follower
                continue
            fenced = check_epoch(broker, getattr(fp, "current_leader_epoch", -1))
            if fenced:
                entry["error_code"] = fenced
                continue
            p = queue
            if tc is None or not 0 <= p < topics.partition_count(tc) or not tc.perm & PERM_READ:
                entry["error_code"] = ErrorCode.unknown_topic_or_partition
                continue
            room = min(fp.partition_max_bytes, budget - total)
            lso = txns.last_stable_offset(name, p, plog.offsets(name, p)[1])
            stop = lso if committed else None
            result = plog.fetch(name, p, fp.fetch_offset, max(room, 0), must_fill=total == 0, stop=stop)
            entry["high_watermark"] = result.high_watermark
            entry["last_stable_offset"] = min(lso, result.high_watermark)
            entry["log_start_offset"] = result.log_start_offset
            if result.out_of_range:
                entry["error_code"] = ErrorCode.offset_out_of_range
                continue
            if committed and result.records:
                entry["aborted_transactions"] = txns.aborted_between(name, p, fp.fetch_offset, lso)
            entry["records"] = result.records
            total += len(result.records)
            if result.records:
                broker.stats.on_get(name, result.count, len(result.records))
            waitable.append((name, p))
        responses.append({"topic": name, "partitions": parts})
    return responses, total, waitable
