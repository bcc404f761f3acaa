"""Fetch (key 1), versions 4-17 (advertised from 0; 0-3 are not served, as Kafka 4.0).

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
Fetch sessions (KIP-227, v7+): fetch_sessions.py keeps each session's partitions; an incremental
fetch reads every partition of its session and answers only those with news.
Client quotas (as Kafka): max_bytes is capped at what consumer_byte_rate allows in its window; the records'
bytes count once against it; a throttled fetch is answered at once with no partitions and its bytes are taken
back (the connection adds the throttle time and mutes, throttle.py).
v13+ name topics by id (topic_ids.py): an id no topic here has is answered UNKNOWN_TOPIC_ID for its
partitions, and a session keeps the kind of naming it was made with (fetch_sessions.py). v15's replica
state, v16's node endpoints and v17's replica directory concern followers and leader moves: not filled.
Leaves out: follower fetching and rack awareness.
"""

from __future__ import annotations

import time
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.core.auth.quotas import FETCH, user_name
from ferrymq.core.remoting.route import PERM_READ
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.cluster import TopicPartitions
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.fetch_sessions import FetchPlan, SessionPartition
from ferrymq.gateway.kafka.leader_epochs import check_epoch
from ferrymq.gateway.kafka.responses import NO_THROTTLE, millis, respond
from ferrymq.gateway.kafka.sasl import now_ms
from ferrymq.gateway.kafka.topic_ids import topic_id

READ_COMMITTED = 1


@api(1, 4, 17)
async def handle(ctx: RequestContext, request: Any) -> Any:
    by_id = request.__version__ >= 13
    names = _names(ctx, request)
    unknown = _unknown_ids(request, names) if by_id else []
    plan = _plan(ctx, request, names)
    if plan.error is not None:
        return respond(
            request,
            {
                "throttle_time": NO_THROTTLE,
                "error_code": getattr(ErrorCode, plan.error),
                "session_id": plan.session_id,
                "responses": (),
            },
        )
    by_topic: dict[str, list[SessionPartition]] = {}
    for part in plan.partitions:
        by_topic.setdefault(part.topic, []).append(part)
    max_wait = millis(request.max_wait) / 1000
    deadline = time.monotonic() + max_wait
    placed = await ctx.frontend.cluster.placements(
        {topic: max(p.partition for p in parts) for topic, parts in by_topic.items()}
    )
    denied = {topic for topic in by_topic if not authz.topic(ctx, Operation.READ, topic)}
    budget = request.max_bytes if request.max_bytes > 0 else 0x7FFFFFFF
    quotas = ctx.frontend.broker.security.quotas
    quoted = quotas.active(FETCH)
    if quoted:
        cap = quotas.max_in_window(FETCH, user_name(ctx.conn.principal), ctx.conn.client_id or "")
        budget = budget if cap is None else min(budget, max(int(cap), 1))
    responses, total, waitable = _read(ctx, request, by_topic, placed, denied, budget)
    while total < min(request.min_bytes, budget) and waitable:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not await ctx.frontend.wait_for_data(waitable, remaining):
            break
        responses, total, waitable = _read(ctx, request, by_topic, placed, denied, budget)
    if quoted and (throttle := ctx.conn.quota(FETCH, total)) > 0:
        quotas.unrecord(FETCH, user_name(ctx.conn.principal), ctx.conn.client_id or "", total, now_ms())
        ctx.throttle_ms = throttle
        incremental = plan.session is not None and plan.incremental
        return respond(
            request,
            {
                "throttle_time": NO_THROTTLE,
                "error_code": ErrorCode.none,
                "session_id": plan.session_id if incremental else 0,
                "responses": (),
            },
        )
    if plan.session is not None:
        responses = _session_answer(plan, responses)
    if by_id:
        cluster_id = ctx.frontend.cluster.cluster_id
        for topic in responses:
            topic["topic_id"] = topic_id(cluster_id, topic["topic"])
        responses += unknown
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": ErrorCode.none,
            "session_id": plan.session_id,
            "responses": responses,
        },
    )


def _plan(ctx: RequestContext, request: Any, names: list[str | None]) -> FetchPlan:
    """The partitions this request reads: its own, or its session's (v7+)."""
    requested = [
        SessionPartition(
            names[i],
            fp.partition,
            fp.fetch_offset,
            fp.partition_max_bytes,
            getattr(fp, "log_start_offset", -1),
            getattr(fp, "current_leader_epoch", -1),
        )
        for i, ft in enumerate(request.topics)
        if names[i] is not None
        for fp in ft.partitions
    ]
    if request.__version__ < 7:
        return FetchPlan(requested)
    gone = request.forgotten_topics_data
    gone_names = _names(ctx, request, gone)
    forgotten = [(gone_names[i], p) for i, ft in enumerate(gone) if gone_names[i] for p in ft.partitions]
    return ctx.frontend.fetch_sessions.plan(
        request.session_id,
        request.session_epoch,
        requested,
        forgotten,
        time.monotonic(),
        topic_ids=request.__version__ >= 13,
    )


def _names(ctx: RequestContext, request: Any, topics: Any = None) -> list[str | None]:
    """The topic names of ``topics`` (the request's by default): v13+ name them by id (None: unknown)."""
    topics = request.topics if topics is None else topics
    if request.__version__ < 13:
        return [ft.topic for ft in topics]
    index, local = ctx.frontend.topic_ids, ctx.frontend.broker.topics
    return [index.name_in(ft.topic_id, local) for ft in topics]


def _unknown_ids(request: Any, names: list[str | None]) -> list[dict[str, Any]]:
    """The answer for the topic ids no topic here has: UNKNOWN_TOPIC_ID on each partition."""
    return [
        {
            "topic_id": ft.topic_id,
            "topic": "",
            "partitions": [
                {
                    "partition_index": fp.partition,
                    "error_code": ErrorCode.unknown_topic_id,
                    "high_watermark": -1,
                    "last_stable_offset": -1,
                    "log_start_offset": -1,
                    "aborted_transactions": None,
                    "preferred_read_replica": -1,
                    "records": b"",
                }
                for fp in ft.partitions
            ],
        }
        for i, ft in enumerate(request.topics)
        if names[i] is None
    ]


def _session_answer(plan: FetchPlan, responses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Remember what each partition was told; an incremental answer keeps only those with news."""
    assert plan.session is not None
    partitions = plan.session.partitions
    kept: list[dict[str, Any]] = []
    served: list[tuple[str, int]] = []
    for topic in responses:
        name = topic["topic"]
        parts = []
        for entry in topic["partitions"]:
            key = (name, entry["partition_index"])
            has_records = bool(entry["records"])
            if has_records:
                served.append(key)
            news = partitions[key].must_answer(
                entry["error_code"],
                entry["high_watermark"],
                entry["last_stable_offset"],
                entry["log_start_offset"],
                has_records,
            )
            if news or not plan.incremental:
                parts.append(entry)
        if parts:
            kept.append({"topic": name, "partitions": parts})
    plan.session.served_with_records(served)
    return kept


def _read(
    ctx: RequestContext,
    request: Any,
    by_topic: dict[str, list[SessionPartition]],
    placed: dict[str, TopicPartitions],
    denied: set[str],
    budget: int,
) -> tuple[list[dict[str, Any]], int, list[tuple[str, int]]]:
    """Every requested partition read once: (responses, bytes, partitions worth waiting on);
    ``denied`` topics (no READ) are TOPIC_AUTHORIZATION_FAILED."""
    broker = ctx.frontend.broker
    plog = ctx.frontend.log
    txns = ctx.frontend.txn_partitions
    committed = request.isolation_level == READ_COMMITTED
    total = 0
    waitable: list[tuple[str, int]] = []
    responses = []
    for name, wanted in by_topic.items():
        tc = broker.topics.get(name)
        where = placed[name]
        parts = []
        for fp in wanted:
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
            fenced = check_epoch(broker, fp.current_leader_epoch)
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
