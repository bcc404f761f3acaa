"""A partition (topic, queue) read the Kafka way, through the store's consume queue and commit log.

Fetch walks consume-queue units from the fetch offset: a Kafka batch entry is served as its stored
bytes (the batch holding the fetch offset is served whole even if it starts earlier, as Kafka
does; clients skip the records before their offset) and the walk jumps past its records; a run of
native RocketMQ messages becomes one record batch built for the reply (mapping.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ferrymq.core.remoting.message import MAGIC_V1, MAGIC_V2, MessageExt, decode_stored_message
from ferrymq.core.store import MessageStore
from ferrymq.core.store.commit_log import BATCH_FLAG_TAG_CODES, BATCH_FORMAT_KAFKA_V2, BATCH_HEAD, BATCH_MAGIC
from ferrymq.core.store.consume_queue import ConsumeQueue
from ferrymq.gateway.kafka import mapping
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.framing import Parts

_HEAD = struct.Struct(">ii")


@dataclass(slots=True)
class Entry:
    """One commit-log entry as Kafka sees it."""

    base_offset: int
    count: int
    kafka: memoryview | None = None  # the stored Kafka batch bytes
    native: MessageExt | None = None  # or a RocketMQ message

    def timestamps(self) -> tuple[int, int]:
        """(first, max) record timestamp."""
        if self.kafka is not None:
            return rb.timestamps_of(self.kafka)
        assert self.native is not None
        return self.native.born_timestamp, self.native.born_timestamp


@dataclass(slots=True)
class FetchResult:
    records: bytes | memoryview | Parts  # stored batches as they lie in the commit log, not joined
    high_watermark: int
    log_start_offset: int
    out_of_range: bool = False
    count: int = 0  # records served


class PartitionLog:
    def __init__(self, store: MessageStore) -> None:
        self.store = store

    def queue(self, topic: str, partition: int) -> ConsumeQueue | None:
        return self.store.consume_queues.get((topic, partition))

    def offsets(self, topic: str, partition: int) -> tuple[int, int]:
        """(log start offset, high watermark)."""
        cq = self.queue(topic, partition)
        return (cq.min_offset, cq.max_offset) if cq else (0, 0)

    def entry(self, cq: ConsumeQueue, offset: int) -> Entry | None:
        """The entry holding queue offset ``offset``, or None (never written, aged out)."""
        unit = cq.unit(offset)
        if unit is None or unit[1] <= 0 or unit[0] < self.store.commit_log.min_offset:
            return None
        phys, size, _ = unit
        buf = self.store.commit_log.read(phys, size)
        _, magic = _HEAD.unpack_from(buf, 0)
        if magic == BATCH_MAGIC:
            _, _, _, base, _, _, count, fmt, topic_len = BATCH_HEAD.unpack_from(buf, 0)
            if fmt & ~BATCH_FLAG_TAG_CODES != BATCH_FORMAT_KAFKA_V2:
                return None
            start = BATCH_HEAD.size + topic_len + (8 * count if fmt & BATCH_FLAG_TAG_CODES else 0)
            return Entry(base, count, kafka=buf[start:])
        if magic in (MAGIC_V1, MAGIC_V2):
            msg = decode_stored_message(buf)
            return Entry(msg.queue_offset, 1, native=msg)
        return None

    def fetch(self, topic: str, partition: int, offset: int, max_bytes: int, must_fill: bool) -> FetchResult:
        """Batches from ``offset`` up to ``max_bytes`` (at least one whole batch if ``must_fill``)."""
        cq = self.queue(topic, partition)
        if cq is None:
            return FetchResult(b"", 0, 0, out_of_range=offset != 0)
        lo, hi = cq.min_offset, cq.max_offset
        if offset < lo or offset > hi:
            return FetchResult(b"", hi, lo, out_of_range=True)
        parts: list[bytes | memoryview] = []
        natives: list[MessageExt] = []
        total = count = natives_served = 0
        cursor = offset
        while cursor < hi:
            entry = self.entry(cq, cursor)
            if entry is None:
                cursor += 1
                continue
            if entry.native is not None:
                size = len(entry.native.body) + 70
                if total + size > max_bytes and (total or not must_fill):
                    break
                natives.append(entry.native)
                natives_served += 1
                total += size
                cursor += 1
                continue
            assert entry.kafka is not None
            if natives:
                parts.append(mapping.native_batch(natives))
                natives = []
            size = len(entry.kafka)
            if total + size > max_bytes and (total or not must_fill):
                break
            parts.append(entry.kafka)
            total += size
            count += entry.count
            cursor = entry.base_offset + entry.count
        if natives:
            parts.append(mapping.native_batch(natives))
        records: bytes | memoryview | Parts = parts[0] if len(parts) == 1 else Parts(parts) if parts else b""
        return FetchResult(records, hi, lo, count=count + natives_served)

    # ---- timestamps ----------------------------------------------------------------------------

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with a timestamp >= ``timestamp``, or None.

        Binary search over entries by their max timestamp (timestamps mostly rise, as Kafka's
        time index assumes), then a look inside the batch found.
        """
        cq = self.queue(topic, partition)
        if cq is None:
            return None
        lo, hi = cq.min_offset, cq.max_offset
        while lo < hi:
            mid = (lo + hi) // 2
            entry = self.entry(cq, mid)
            if entry is not None and entry.timestamps()[1] >= timestamp:
                hi = mid
            else:
                lo = mid + 1
        entry = self.entry(cq, lo) if lo < cq.max_offset else None
        if entry is None:
            return None
        if entry.native is not None:
            return entry.base_offset, entry.native.born_timestamp
        assert entry.kafka is not None
        info = rb.read_header(entry.kafka)
        base = rb.base_offset_of(entry.kafka)
        data = rb.records_bytes(entry.kafka, info)
        for record in rb.iter_records(data, info.count, info.base_timestamp):
            offset = base + record.offset_delta
            if offset >= lo and record.timestamp >= timestamp:
                return offset, record.timestamp
        return None

    def max_timestamp(self, topic: str, partition: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the record with the largest timestamp (ListOffsets -3).

        Looks at the last entries only (up to 1000 units back): timestamps mostly rise.
        """
        cq = self.queue(topic, partition)
        if cq is None or cq.max_offset <= cq.min_offset:
            return None
        best: tuple[int, int] | None = None
        cursor = cq.max_offset - 1
        stop = max(cq.min_offset, cq.max_offset - 1000)
        while cursor >= stop:
            entry = self.entry(cq, cursor)
            if entry is None:
                cursor -= 1
                continue
            _, mx = entry.timestamps()
            if best is None or mx > best[1]:
                best = (entry.base_offset + entry.count - 1, mx)
            cursor = entry.base_offset - 1
        return best
