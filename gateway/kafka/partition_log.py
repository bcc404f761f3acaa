"""A partition (topic, queue) read the Kafka way, through the store's typed entry reads.

Fetch walks the store's entries from the fetch offset (``MessageStore.entries``): a Kafka batch
entry is served as its stored bytes (the batch holding the fetch offset is served whole even if
it starts earlier, as Kafka does; clients skip the records before their offset), then the walk
goes on after its records; a run of native RocketMQ messages becomes one record batch built for
the reply (mapping.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ferrymq.core.remoting.message import MessageExt
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2, EntryKind, MessageStore, StoredEntry
from ferrymq.gateway.kafka import mapping
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.framing import Parts


def readable(entry: StoredEntry | None) -> StoredEntry | None:
    """The entry if Kafka can read it: a native message or a Kafka batch entry."""
    if entry is None or entry.kind is EntryKind.MESSAGE or entry.format == BATCH_FORMAT_KAFKA_V2:
        return entry
    return None


def timestamps(entry: StoredEntry) -> tuple[int, int]:
    """(first, max) record timestamp of a native message or a Kafka batch entry."""
    if entry.kind is EntryKind.BATCH:
        return rb.timestamps_of(entry.payload)
    born = entry.message().born_timestamp
    return born, born


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

    def offsets(self, topic: str, partition: int) -> tuple[int, int]:
        """(log start offset, high watermark): the group's confirmed end in a gated group."""
        return self.store.readable_bounds(topic, partition)

    def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        max_bytes: int,
        must_fill: bool,
        stop: int | None = None,
    ) -> FetchResult:
        """Batches from ``offset`` up to ``max_bytes`` (at least one whole batch if ``must_fill``),
        below the high watermark, or ``stop`` if lower (read_committed: the last stable offset)."""
        lo, hi = self.store.readable_bounds(topic, partition)
        end = hi if stop is None else min(hi, stop)
        if offset < lo or offset > self.store.max_offset(topic, partition):  # past the log end
            return FetchResult(b"", hi, lo, out_of_range=True)
        parts: list[bytes | memoryview] = []
        natives: list[MessageExt] = []
        total = count = natives_served = 0
        for entry in self.store.entries(topic, partition, offset, end):
            if entry.kind is EntryKind.MESSAGE:
                msg = entry.message()
                size = len(msg.body) + 70
                if total + size > max_bytes and (total or not must_fill):
                    break
                natives.append(msg)
                natives_served += 1
                total += size
                continue
            if entry.format != BATCH_FORMAT_KAFKA_V2:
                continue
            if natives:
                parts.append(mapping.native_batch(natives))
                natives = []
            batch = entry.payload
            size = len(batch)
            if total + size > max_bytes and (total or not must_fill):
                break
            parts.append(batch)
            total += size
            count += entry.message_count
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
        store = self.store
        lo, hi = store.queue_bounds(topic, partition)
        end = hi
        while lo < hi:
            mid = (lo + hi) // 2
            entry = readable(store.entry_for(topic, partition, mid))
            if entry is not None and timestamps(entry)[1] >= timestamp:
                hi = mid
            else:
                lo = mid + 1
        entry = readable(store.entry_for(topic, partition, lo)) if lo < end else None
        if entry is None:
            return None
        if entry.kind is EntryKind.MESSAGE:
            return entry.queue_offset, entry.message().born_timestamp
        batch = entry.payload
        info = rb.read_header(batch)
        base = rb.base_offset_of(batch)
        try:
            data = rb.records_bytes(batch, info)
        except ValueError:  # over the inflate cap: the batch's first offset answers conservatively
            return max(base, lo), info.max_timestamp
        for record in rb.iter_records(data, info.count, info.base_timestamp):
            offset = base + record.offset_delta
            if offset >= lo and record.timestamp >= timestamp:
                return offset, record.timestamp
        return None

    def max_timestamp(self, topic: str, partition: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the record with the largest timestamp (ListOffsets -3).

        Looks at the last entries only (up to 1000 units back): timestamps mostly rise. As Kafka 3.8+
        (KAFKA-16310), the offset is the record's, the earliest one holding the largest timestamp.
        """
        lo, hi = self.store.queue_bounds(topic, partition)
        best: StoredEntry | None = None
        best_ts = 0
        for entry in self.store.entries_before(topic, partition, hi, max(lo, hi - 1000)):
            if readable(entry) is None:
                continue
            _, mx = timestamps(entry)
            if best is None or mx >= best_ts:  # newest first: on a tie the earlier entry wins
                best, best_ts = entry, mx
        if best is None:
            return None
        if best.kind is EntryKind.MESSAGE:
            return best.queue_offset, best_ts
        batch = best.payload
        info = rb.read_header(batch)
        base = rb.base_offset_of(batch)
        try:
            data = rb.records_bytes(batch, info)
        except ValueError:  # over the inflate cap: the batch's first offset answers conservatively
            return max(base, lo), best_ts
        for record in rb.iter_records(data, info.count, info.base_timestamp):
            if record.timestamp == best_ts and base + record.offset_delta >= lo:
                return base + record.offset_delta, best_ts
        return best.next_queue_offset - 1, best_ts
