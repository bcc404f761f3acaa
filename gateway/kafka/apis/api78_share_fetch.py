"""ShareFetch (key 78), versions 1-2 (Kafka 4.2's; v0 was 4.0's early access): share group records.

Acknowledgements carried by the request are applied first (share_delivery.py maps them to POP),
then every partition of the member's share session is popped for the group (up to max_records in
all); each acquired run is answered with its delivery count and the lock time
(kafkaShareRecordLockDurationMs). A fetch that acquires nothing waits up to max_wait for an arrival
on its partitions or a record given back (a release or an ended lock), then pops again.
Share sessions (group/share_group.py): epoch 0 opens one (acknowledgements then are
INVALID_REQUEST), -1 closes it after acknowledging (the member's other records are released),
otherwise the next epoch in turn (else INVALID_SHARE_SESSION_EPOCH; none open:
SHARE_SESSION_NOT_FOUND). v2's is_renew_ack fetches nothing, as Kafka.
Partition errors: UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER (another broker
group owns it), TOPIC_AUTHORIZATION_FAILED (no READ). READ on the group (else
GROUP_AUTHORIZATION_FAILED for the whole request).
Leaves out: min_bytes/max_bytes/batch_size (max_records, at most 5000, bounds the reply), v2's record-limit
acquire mode (records are always acquired one by one, which both modes allow), node endpoints.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.core.remoting.route import PERM_READ
from ferrymq.gateway.kafka import authz, share_delivery, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, millis, respond
from ferrymq.gateway.kafka.topic_ids import topic_id

#: records acquired per ShareFetch when max_records is not positive, and at most otherwise (a fetch
#: reads what it acquires at once)
DEFAULT_RECORDS = 500
MAX_RECORDS = 5000


def failed(request: Any, error: ErrorCode, message: str | None = None, lock_ms: int = 0) -> Any:
    """The whole request refused (also ShareAcknowledge's shape)."""
    return answer(request, lock_ms, (), error, message)


def answer(
    request: Any,
    lock_ms: int,
    responses: Any,
    error: ErrorCode = ErrorCode.none,
    message: str | None = None,
) -> Any:
    """A ShareFetch or ShareAcknowledge response (the same top level)."""
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": error,
            "error_message": message,
            "acquisition_lock_timeout": datetime.timedelta(milliseconds=lock_ms),
            "responses": responses,
            "node_endpoints": (),
        },
    )


def named(ctx: RequestContext, topic_ids: Any) -> list[str | None]:
    index, local = ctx.frontend.topic_ids, ctx.frontend.broker.topics
    return [index.name_in(t, local) for t in topic_ids]


def preflight(ctx: RequestContext, request: Any) -> tuple[ErrorCode, str | None]:
    """The checks ShareFetch and ShareAcknowledge share: enabled, member id, READ on the group."""
    if not ctx.frontend.broker.config.kafka_share_groups_enable:
        return ErrorCode.unsupported_version, "Share groups are not enabled."
    if not request.group_id:
        return ErrorCode.invalid_request, "GroupId can't be empty."
    if not authz.group(ctx, Operation.READ, request.group_id):
        return ErrorCode.group_authorization_failed, None
    if not request.member_id:
        return ErrorCode.invalid_request, "MemberId can't be empty."
    return ErrorCode.none, None


@api(78, 1, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    frontend = ctx.frontend
    broker = frontend.broker
    lock_ms = broker.config.kafka_share_record_lock_duration_ms
    error, message = preflight(ctx, request)
    if error != ErrorCode.none:
        return failed(request, error, message)
    group_id, member_id, epoch = request.group_id, request.member_id, request.share_session_epoch
    names = named(ctx, [t.topic_id for t in request.topics])
    acks = [fp for t in request.topics for fp in t.partitions if fp.acknowledgement_batches]
    if epoch == 0 and acks:
        return failed(request, ErrorCode.invalid_request, "Acknowledge data present on initial epoch.")
    wanted = [
        (n, fp.partition_index)
        for n, t in zip(names, request.topics, strict=True)
        if n
        for fp in t.partitions
    ]
    shares = frontend.share_groups
    error, session, released = shares.session(group_id, member_id, epoch, wanted)
    share_delivery.release(broker, group_id, released)
    if session is None:
        return failed(request, error)
    for n, gone in zip(
        named(ctx, [t.topic_id for t in request.forgotten_topics_data]),
        request.forgotten_topics_data,
        strict=True,
    ):
        if n:
            session.partitions.difference_update((n, p) for p in gone.partitions)
    entries, unknown = acknowledge_request(ctx, request, names, _entry)
    if epoch == -1:
        share_delivery.release(broker, group_id, shares.close_session(group_id, member_id))
    elif not getattr(request, "is_renew_ack", False):
        await _fetch(ctx, request, sorted(session.partitions), entries, lock_ms)
    return answer(request, lock_ms, by_topic(frontend.cluster.cluster_id, entries, unknown))


Entry = Callable[[int, ErrorCode, ErrorCode, "str | None"], dict[str, Any]]


def acknowledge_request(
    ctx: RequestContext, request: Any, names: list[str | None], entry: Entry
) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[Any, list[dict[str, Any]]]]:
    """Apply the acknowledgements of every partition a ShareFetch/ShareAcknowledge names; its answer
    ``entry(partition, error, acknowledge error, message)`` per (topic, partition), and per unknown id."""
    broker, shares = ctx.frontend.broker, ctx.frontend.share_groups
    entries: dict[tuple[str, int], dict[str, Any]] = {}
    unknown: dict[Any, list[dict[str, Any]]] = {}
    for n, t in zip(names, request.topics, strict=True):
        for p in t.partitions:
            if n is None:
                unknown.setdefault(t.topic_id, []).append(
                    entry(p.partition_index, ErrorCode.unknown_topic_id, ErrorCode.none, None)
                )
                continue
            code, text = ErrorCode.none, None
            if p.acknowledgement_batches:
                code, text = share_delivery.acknowledge(
                    broker,
                    shares,
                    request.group_id,
                    request.member_id,
                    n,
                    p.partition_index,
                    p.acknowledgement_batches,
                )
            entries[(n, p.partition_index)] = entry(p.partition_index, ErrorCode.none, code, text)
    return entries, unknown


def _entry(
    partition: int,
    error: ErrorCode = ErrorCode.none,
    ack_error: ErrorCode = ErrorCode.none,
    ack_message: str | None = None,
) -> dict[str, Any]:
    return {
        "partition_index": partition,
        "error_code": error,
        "error_message": None,
        "acknowledge_error_code": ack_error,
        "acknowledge_error_message": ack_message,
        "current_leader": {"leader_id": -1, "leader_epoch": -1},
        "records": b"",
        "acquired_records": (),
    }


async def _fetch(
    ctx: RequestContext,
    request: Any,
    partitions: list[tuple[str, int]],
    entries: dict[tuple[str, int], dict[str, Any]],
    lock_ms: int,
) -> None:
    """Acquire records of the session's partitions into ``entries``, waiting up to max_wait for some."""
    frontend = ctx.frontend
    broker = frontend.broker
    wanted: dict[str, int] = {}
    for name, p in partitions:
        wanted[name] = max(wanted.get(name, -1), p)
    placed = await frontend.cluster.placements(wanted)
    readable: list[tuple[str, int, int]] = []
    for name, p in partitions:
        entry = entries.get((name, p))
        tc = broker.topics.get(name)
        queue = placed[name].queue_of(p)
        error = ErrorCode.none
        if not authz.topic(ctx, Operation.READ, name):
            error = ErrorCode.topic_authorization_failed
        elif queue is None:
            error = ErrorCode.not_leader_or_follower
        elif tc is None or not 0 <= queue < topics.partition_count(tc) or not tc.perm & PERM_READ:
            error = ErrorCode.unknown_topic_or_partition
        else:
            readable.append((name, p, queue))
            continue
        if entry is None:
            entry = entries[(name, p)] = _entry(p)
        entry["error_code"] = error
    budget = min(request.max_records, MAX_RECORDS) if request.max_records > 0 else DEFAULT_RECORDS
    deadline = time.monotonic() + millis(request.max_wait) / 1000
    node = frontend.cluster.node_id
    while True:
        got = 0
        for name, p, queue in readable:
            if got >= budget:
                break
            records, acquired = share_delivery.acquire(
                broker,
                frontend.log,
                frontend.share_groups,
                request.group_id,
                request.member_id,
                name,
                p,
                queue,
                budget - got,
            )
            if not acquired:
                continue
            entry = entries.get((name, p))
            if entry is None:
                entry = entries[(name, p)] = _entry(p)
            entry["records"], entry["acquired_records"] = records, acquired
            entry["current_leader"] = {"leader_id": node, "leader_epoch": 0}
            got += sum(a["last_offset"] - a["first_offset"] + 1 for a in acquired)
        remaining = deadline - time.monotonic()
        if got or not readable or remaining <= 0:
            return
        await _park(ctx, [(name, queue) for name, _, queue in readable], remaining)


async def _park(ctx: RequestContext, queues: list[tuple[str, int]], timeout: float) -> None:
    """Until a record arrives on ``queues`` or POP gives records back, at most ``timeout`` seconds."""
    revived = ctx.frontend.broker.pop.on_revive()
    arrived = asyncio.ensure_future(ctx.frontend.wait_for_data(queues, timeout))
    try:
        await asyncio.wait([revived, arrived], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        revived.cancel()
        arrived.cancel()
        await asyncio.gather(arrived, return_exceptions=True)


def by_topic(
    cluster_id: str, entries: dict[tuple[str, int], dict[str, Any]], unknown: dict[Any, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The answered partitions by topic id; ``unknown`` ids keep the id the client sent."""
    out: dict[Any, list[dict[str, Any]]] = {}
    for (name, _), entry in sorted(entries.items()):
        out.setdefault(topic_id(cluster_id, name), []).append(entry)
    for tid, parts in unknown.items():
        out.setdefault(tid, []).extend(parts)
    return [{"topic_id": tid, "partitions": parts} for tid, parts in out.items()]
