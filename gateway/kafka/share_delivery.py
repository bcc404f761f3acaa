"""Share group records over POP: what ShareFetch (key 78) and ShareAcknowledge (key 79) both do.

A share group is a POP group of the same name over the same consume queues (partition = queue):
acquiring is a pop whose invisibility is the lock (kafkaShareRecordLockDurationMs), the delivery
count is the POP reconsume count + 1, and the acknowledgement types map to POP as:
ACCEPT -> ack, RELEASE -> change invisible time to 0 (back at once, count + 1), REJECT -> the
group's dead-letter queue (%DLQ%group) now, RENEW -> invisible for another lock duration.
A record delivered kafkaShareDeliveryCountLimit times goes to the DLQ when its lock ends or it is
released: the group's RocketMQ retryMaxTimes (created as limit - 1 for a new group; a group
RocketMQ consumers configured keeps its own) is what the POP revive timer checks.
Records are served as stored (the whole Kafka batch holding an acquired offset; the client keeps
only acquired offsets); native RocketMQ messages as batches built for the reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from ferrymq.core.broker.pop import INIT_MAX, INIT_MIN, PopRequest
from ferrymq.core.broker.subscription_group import SubscriptionGroupConfig
from ferrymq.gateway.kafka.framing import Parts
from ferrymq.gateway.kafka.group.share_group import Held, ShareGroups
from ferrymq.gateway.kafka.records import HEADER, HEADER_SIZE

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.gateway.kafka.partition_log import PartitionLog

GAP, ACCEPT, RELEASE, REJECT, RENEW = 0, 1, 2, 3, 4


def ensure_pop_group(broker: Broker, group_id: str) -> None:
    """The POP group behind a share group: retryMaxTimes = delivery count limit - 1 unless it exists."""
    groups = broker.subscription_groups
    if group_id not in groups.groups:
        limit = broker.config.kafka_share_delivery_count_limit
        groups.update(
            SubscriptionGroupConfig.model_validate({"groupName": group_id, "retryMaxTimes": limit - 1})
        )


def release(broker: Broker, group_id: str, held: Sequence[Held]) -> None:
    """Records a member gave up (left, closed its session): visible again at once."""
    for h in held:
        broker.pop.change_invisible(group_id, h.topic, h.receipt, 0)


def acknowledge(
    broker: Broker,
    groups: ShareGroups,
    group_id: str,
    member_id: str,
    topic: str,
    partition: int,
    batches: Sequence[Any],
) -> tuple[ErrorCode, str | None]:
    """Apply one partition's AcknowledgementBatches; the partition's error (INVALID_REQUEST for a
    malformed batch, INVALID_RECORD_STATE for an offset the member does not hold or whose lock ended)."""
    lock_ms = broker.config.kafka_share_record_lock_duration_ms
    error: tuple[ErrorCode, str | None] = (ErrorCode.none, None)
    for b in batches:
        first, last, types = b.first_offset, b.last_offset, b.acknowledge_types
        span = last - first + 1
        if span <= 0 or not types or (len(types) != 1 and len(types) != span):
            return ErrorCode.invalid_request, f"Invalid acknowledgement batch {first}-{last}."
        if any(not GAP <= t <= RENEW for t in types):
            return ErrorCode.invalid_request, f"Invalid acknowledge type in batch {first}-{last}."
        g = groups.groups.get(group_id)
        if len(types) == 1 and types[0] != GAP and (g is None or span > len(g.held)):
            error = ErrorCode.invalid_record_state, "The record state is invalid."  # some offsets not held
            offsets: Sequence[int] = sorted(
                o for (t, p, o) in (g.held if g else ()) if t == topic and p == partition
            )
            offsets = [o for o in offsets if first <= o <= last]
        else:
            offsets = range(first, last + 1)
        for off in offsets:
            kind = types[0] if len(types) == 1 else types[off - first]
            if kind == GAP:
                continue
            h = groups.take(group_id, (topic, partition, off), member_id)
            ok = h is not None and _apply(broker, groups, group_id, topic, partition, off, h, kind, lock_ms)
            if not ok:
                error = ErrorCode.invalid_record_state, "The record state is invalid."
    return error


def _apply(
    broker: Broker,
    groups: ShareGroups,
    group_id: str,
    topic: str,
    partition: int,
    offset: int,
    h: Held,
    kind: int,
    lock_ms: int,
) -> bool:
    pop = broker.pop
    if kind == ACCEPT:
        return pop.ack(group_id, topic, h.receipt)
    if kind == RELEASE:
        return pop.change_invisible(group_id, topic, h.receipt, 0) is not None
    if kind == REJECT:
        return pop.dead_letter(group_id, topic, h.receipt, h.times)
    renewed = pop.change_invisible(group_id, topic, h.receipt, lock_ms)
    if renewed is None:
        return False
    groups.acquire(group_id, (topic, partition, offset), Held(h.member_id, topic, renewed, h.times))
    return True


def acquire(
    broker: Broker,
    plog: PartitionLog,
    groups: ShareGroups,
    group_id: str,
    member_id: str,
    topic: str,
    partition: int,
    queue: int,
    max_records: int,
) -> tuple[bytes | Parts, list[dict[str, int]]]:
    """Pop up to ``max_records`` of one partition for ``member_id``: (records, AcquiredRecords)."""
    cfg = broker.config
    init = INIT_MIN if cfg.kafka_share_auto_offset_reset == "earliest" else INIT_MAX
    req = PopRequest(
        group_id, topic, queue, max_records, cfg.kafka_share_record_lock_duration_ms, init_mode=init
    )
    popped = sorted(broker.pop.pop(req).messages, key=lambda m: m.offset)
    if not popped:
        return b"", []
    acquired: list[dict[str, int]] = []
    runs: list[list[int]] = []
    for m in popped:
        groups.acquire(
            group_id, (topic, partition, m.offset), Held(member_id, topic, m.receipt, m.reconsume_times)
        )
        count = m.reconsume_times + 1
        last = acquired[-1] if acquired else None
        if last is not None and last["last_offset"] + 1 == m.offset and last["delivery_count"] == count:
            last["last_offset"] = m.offset
        else:
            acquired.append({"first_offset": m.offset, "last_offset": m.offset, "delivery_count": count})
        if runs and runs[-1][1] + 1 == m.offset:
            runs[-1][1] = m.offset
        else:
            runs.append([m.offset, m.offset])
    return _records(plog, topic, queue, runs), acquired


def _records(plog: PartitionLog, topic: str, queue: int, runs: list[list[int]]) -> bytes | Parts:
    """The stored batches holding ``runs`` of offsets, each batch once, in offset order."""
    parts: list[bytes | memoryview] = []
    covered = -1
    for start, end in runs:
        if end <= covered:
            continue
        got = plog.fetch(topic, queue, max(start, covered + 1), 1 << 30, True, stop=end + 1)
        data = got.records if isinstance(got.records, bytes | memoryview) else bytes(got.records)
        pos = 0
        while pos + HEADER_SIZE <= len(data):
            fields = HEADER.unpack_from(data, pos)
            size = fields[1] + 12
            last = fields[0] + fields[6]
            if last > covered:
                parts.append(data[pos : pos + size])
                covered = last
            pos += size
    if not parts:
        return b""
    return parts[0] if len(parts) == 1 else Parts(parts)
