"""Produce (key 0), versions 3-12 (advertised from 0; 0-2 are not served, as Kafka 4.0).
v12 is v11 on the wire (it tells a TV2 broker the producer may skip AddPartitionsToTxn; we finalize no
transaction.version, so Java clients keep adding partitions).

Each record batch is checked through its header (size, magic 2, CRC-32C, counts), its base
offset and leader epoch patched, and stored verbatim as one batch entry; compressed batches
(gzip, snappy raw or xerial, lz4, zstd) are stored as they came. acks=0 gets no response, acks=1
a response once stored, acks=-1 (all) once durable under SYNC_FLUSH and acknowledged by every
in-sync slave of the broker group, with the topic's min.insync.replicas enforced (isr.py:
NOT_ENOUGH_REPLICAS before the append, NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT after
the request's timeout). Idempotent producers: duplicates get the original offset and are not written twice;
out-of-order sequences and stale epochs are rejected (producer_state.py). Records carrying the
``rocketmq.tags`` header get their tag hash in the consume queue (mapping.py): compressed batches
are inflated to look, up to kafkaMaxInflatedBatchBytes (MESSAGE_TOO_LARGE beyond), and one that
inflates beyond a few times its size is inflated in a thread, off the event loop; a connection's
produces store one at a time in arrival order all the same (``conn.produce_order``).
A partition owned by another broker group is NOT_LEADER_OR_FOLLOWER; an owned one is stored in
its local queue. While an HA slave that did not identify as ferrymq (an Apache RocketMQ slave,
which cannot dispatch batch entries; core/ha/master.py) is connected, produce gets
POLICY_VIOLATION.
Transactions (txn_partitions.py): a transactional batch (attribute bit 4) needs the request's
transactional_id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka) and opens its producer's
transaction on the partition; an epoch older than the producer's last is INVALID_PRODUCER_EPOCH, a
non-transactional batch of a producer with a transaction open there INVALID_TXN_STATE; the first
batch of a transaction on a partition is verified with the transaction coordinator when there is
one (KIP-890 part 1, ``KafkaFrontend.txn_coordinator.partition_in_transaction``): not in the
transaction is TRANSACTION_ABORTABLE for v11, INVALID_TXN_STATE before. Control batches are
INVALID_RECORD (only the coordinator writes markers).
Client quotas: the request's size counts once against producer_byte_rate (as Kafka, request.sizeInBytes);
over it the connection puts the throttle time in the response and mutes (throttle.py), acks=0 included.
Leaves out: LogAppendTime topics, per-record errors (v8 record_errors stay empty).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.core.auth.quotas import PRODUCE
from ferrymq.core.remoting.route import PERM_WRITE
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2, PutStatus, StoreUnavailable
from ferrymq.gateway.kafka import authz, isr, mapping, topics
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.producer_state import Check
from ferrymq.gateway.kafka.responses import NO_THROTTLE, millis, respond

log = logging.getLogger("ferrymq.kafka")

_CHECK_ERRORS = {
    Check.OUT_OF_ORDER: ErrorCode.out_of_order_sequence_number,
    Check.INVALID_EPOCH: ErrorCode.invalid_producer_epoch,
}


@api(0, 3, 12)
async def handle(ctx: RequestContext, request: Any) -> Any:
    acks = request.acks
    deadline = time.monotonic() + millis(request.timeout) / 1000
    async with ctx.conn.produce_order:
        responses, end_offset = await _store(ctx, request)
    if ctx.frontend.broker.security.quotas.active(PRODUCE):
        ctx.throttle_ms = ctx.conn.quota(PRODUCE, ctx.size)
    if acks == -1 and end_offset:
        await _acknowledge_all(ctx, request, responses, end_offset, deadline)
    if acks == 0:
        return None
    return respond(request, {"responses": responses, "throttle_time": NO_THROTTLE})


async def _acknowledge_all(
    ctx: RequestContext, request: Any, responses: list[dict[str, Any]], end_offset: int, deadline: float
) -> None:
    """acks=all: durable under SYNC_FLUSH, then replicated to the in-sync slaves (isr.py); the
    stored partitions' error codes say how that ended."""
    broker = ctx.frontend.broker
    error = ErrorCode.none
    if broker.config.sync_flush:
        try:
            if not await broker.store.wait_durable(end_offset):
                error = ErrorCode.request_timed_out
        except StoreUnavailable as exc:  # stored, never made durable: not a success
            log.error("produce from %s not acknowledged: %s", ctx.conn.peer, exc)
            error = ErrorCode.kafka_storage_error
    ha = broker.ha
    waited = error == ErrorCode.none and bool(ha.slaves)
    if waited and not await isr.wait_replicated(ha, end_offset, deadline - time.monotonic()):
        error = ErrorCode.request_timed_out
    in_sync = ha.in_sync_count()
    for t in responses:
        min_isr = 1
        if error == ErrorCode.none and (tc := broker.topics.get(t["name"])) is not None:
            min_isr = isr.min_insync_replicas(tc)
        for p in t["partition_responses"]:
            if p["error_code"] == ErrorCode.none:
                p["error_code"] = error if error != ErrorCode.none else isr.after_wait(min_isr, in_sync)


async def _store(ctx: RequestContext, request: Any) -> tuple[list[dict[str, Any]], int]:
    """Store every partition's batches: the responses, and the commit-log end reached."""
    acks = request.acks
    end_offset = 0
    responses: list[dict[str, Any]] = []
    placed = await ctx.frontend.cluster.placements(
        {t.name: max((pd.index for pd in t.partition_data), default=-1) for t in request.topic_data}
    )
    txn_id = request.transactional_id
    txn_denied = txn_id is not None and not authz.transactional_id(ctx, Operation.WRITE, txn_id)
    for topic_data in request.topic_data:
        parts = []
        where = placed[topic_data.name]
        denied = (
            ErrorCode.transactional_id_authorization_failed
            if txn_denied
            else None
            if authz.topic(ctx, Operation.WRITE, topic_data.name)
            else ErrorCode.topic_authorization_failed
        )
        for pd in topic_data.partition_data:
            queue = where.queue_of(pd.index)
            if denied is not None:
                error, base, start = denied, -1, -1
            elif acks not in (0, 1, -1):
                error, base, start = ErrorCode.invalid_required_acks, -1, -1
            elif queue is None:
                error, base, start = ErrorCode.not_leader_or_follower, -1, -1
            else:
                error, base, start, end = await _produce(
                    ctx, topic_data.name, queue, pd.records, acks, (pd.index, request)
                )
                end_offset = max(end_offset, end)
            parts.append(
                {
                    "index": pd.index,
                    "error_code": error,
                    "base_offset": base,
                    "log_append_time": None,
                    "log_start_offset": start,
                    "record_errors": (),
                    "error_message": None,
                }
            )
        responses.append({"name": topic_data.name, "partition_responses": parts})
    return responses, end_offset


def _tag_codes(data: bytes, batches: list[rb.BatchInfo], limit: int) -> list[list[int] | None]:
    return [mapping.batch_tag_codes(data, info, limit) for info in batches]


async def _inflated_tag_codes(
    ctx: RequestContext, data: bytes, batches: list[rb.BatchInfo], cap: int
) -> list[list[int] | None]:
    """Tag codes of the batches: inflated here up to a few times their size, and in one of the
    frontend's inflate threads (cramjam lets the event loop run meanwhile) up to ``cap`` if that
    is not enough."""
    quick = min(cap, rb.first_buffer(data))
    try:
        return _tag_codes(data, batches, quick)
    except rb.InflateLimit:
        if quick >= cap:
            raise
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(ctx.frontend.inflater, _tag_codes, data, batches, cap)


_foreign_logged = 0.0


def _log_foreign(foreign: set[str], peer: str) -> None:
    """Say why produce is refused, at most once a minute (every produce gets the error)."""
    global _foreign_logged
    now = time.monotonic()
    if now - _foreign_logged >= 60:
        _foreign_logged = now
        log.warning(
            "Kafka produce from %s refused (POLICY_VIOLATION): HA slave(s) %s did not identify as "
            "ferrymq (Apache RocketMQ slaves cannot read Kafka record batches)",
            peer,
            ", ".join(sorted(foreign)),
        )


async def _produce(
    ctx: RequestContext, topic: str, partition: int, data: bytes | None, acks: int, asked: tuple[int, Any]
) -> tuple[ErrorCode, int, int, int]:
    """Store one partition's batches: (error, base offset, log start offset, commit-log end).
    ``asked``: the Kafka partition index and the request (transactional id, version)."""
    frontend = ctx.frontend
    broker = frontend.broker
    tc = broker.topics.get(topic)
    if tc is None or not 0 <= partition < tc.write_queue_nums or topics.invalid_name(topic):
        return ErrorCode.unknown_topic_or_partition, -1, -1, 0
    if not tc.perm & PERM_WRITE:
        return ErrorCode.topic_authorization_failed, -1, -1, 0
    if broker.ha.foreign:  # an Apache RocketMQ slave would stop dispatching at a batch entry
        _log_foreign(broker.ha.foreign, ctx.conn.peer)
        return ErrorCode.policy_violation, -1, -1, 0
    if acks == -1:
        refused = isr.before_append(isr.min_insync_replicas(tc), broker.ha.in_sync_count())
        if refused != ErrorCode.none:
            return refused, -1, -1, 0
    store = broker.store
    if not data:
        return ErrorCode.corrupt_message, -1, -1, 0
    limit = min(topics.max_message_bytes(tc), store.max_batch_payload)
    try:
        batches = rb.split_batches(data)
        if any(info.size > limit for info in batches):
            return ErrorCode.message_too_large, -1, -1, 0
        tag_codes = await _inflated_tag_codes(
            ctx, data, batches, broker.config.kafka_max_inflated_batch_bytes
        )
    except rb.InflateLimit as exc:
        log.warning("produce to %s-%d from %s: refused: %s", topic, partition, ctx.conn.peer, exc)
        return ErrorCode.message_too_large, -1, -1, 0
    except rb.CorruptBatch as exc:
        log.warning("produce to %s-%d from %s: corrupt batch: %s", topic, partition, ctx.conn.peer, exc)
        return ErrorCode.corrupt_message, -1, -1, 0
    except (rb.InvalidBatch, ValueError) as exc:
        log.warning("produce to %s-%d from %s: invalid batch: %s", topic, partition, ctx.conn.peer, exc)
        return ErrorCode.invalid_record, -1, -1, 0
    if broker.topics.get(topic) is None:  # deleted while the batches were inflated
        return ErrorCode.unknown_topic_or_partition, -1, -1, 0
    txns = frontend.txn_partitions
    index, request = asked
    coordinator = getattr(frontend, "txn_coordinator", None)
    first_base = -1
    end = 0
    for info, codes in zip(batches, tag_codes, strict=True):
        if info.producer_id >= 0:
            if info.attributes & rb.TRANSACTIONAL and request.transactional_id is None:
                return ErrorCode.transactional_id_authorization_failed, -1, -1, 0
            refused = txns.check_batch(topic, partition, index, info, request.__version__, coordinator)
            if refused != ErrorCode.none:
                log.info("produce to %s-%d from %s: %s", topic, partition, ctx.conn.peer, refused.name)
                return refused, -1, -1, 0
        elif info.attributes & rb.TRANSACTIONAL:
            return ErrorCode.invalid_record, -1, -1, 0
        idempotent = info.producer_id >= 0 and info.base_sequence >= 0
        if idempotent:
            check, dup_base = frontend.producers.check(topic, partition, info)
            if check == Check.DUPLICATE:
                first_base = dup_base if first_base < 0 else first_base
                continue
            if check != Check.OK:
                return _CHECK_ERRORS[check], -1, -1, 0
        base = store.max_offset(topic, partition)
        batch = bytearray(memoryview(data)[info.start : info.start + info.size])
        rb.patch_base(batch, base)
        txns.before_store(topic, partition, info, base)
        result = store.put_batch_entry(topic, partition, info.count, BATCH_FORMAT_KAFKA_V2, batch, codes)
        if result.status != PutStatus.OK:
            return ErrorCode.kafka_storage_error, -1, -1, 0
        txns.stored(topic, partition, info, base)
        if idempotent:
            frontend.producers.appended(topic, partition, info, base)
        broker.stats.on_put(topic, info.count, info.size)
        first_base = base if first_base < 0 else first_base
        end = result.end_offset
    return ErrorCode.none, first_base, store.min_offset(topic, partition), end
