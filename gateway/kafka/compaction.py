"""Log compaction of Kafka topics: cleanup.policy=compact and compact,delete.

Serves the topic configs cleanup.policy (compact, compact+delete), min.cleanable.dirty.ratio,
delete.retention.ms and min.compaction.lag.ms; leaves out max.compaction.lag.ms (stored and
described only), the removal of transaction markers (kept), and Kafka's refusal of keyless records
(they are kept).

Design. ferrymq's commit log holds every topic interleaved, so a compacted partition's dead
records cannot be removed from it in place. As RocketMQ 5's compaction topic does, a partition
gets its own compacted part (core/store/compacted_log.py): a file of entries in the commit log's
layout covering offsets below its cleaned point, which the store serves to every reader (Kafka
Fetch and ListOffsets, RocketMQ pulls, producer-state rebuilds) while the commit log serves the
dirty head above it. A clean reads the current view (the old compacted part, then the commit log
up to the cleanable end), keeps the last record of every key, and writes the new part; the swap
is one atomic rename, so a crash leaves the old part or the new one.

What a clean keeps, per partition:

- the cleanable end: the last stable offset (no open transaction is cleaned), or the first entry
  appended less than min.compaction.lag.ms ago (records younger than that stay as they are, in the
  dirty head);
- a clean runs when dirty / (clean + dirty) bytes reaches min.cleanable.dirty.ratio;
- below the cleanable end the latest record of each key survives; a tombstone (null value) that
  is the latest of its key goes once it was appended more than delete.retention.ms ago;
- memory is bounded whatever the partition's size, as Kafka's cleaner bounds it: the offset map
  (``OffsetMap``) holds 16-byte digests of the keys of the *dirty* section only, at most
  kafkaCleanerDedupeBufferSize bytes of them (log.cleaner.dedupe.buffer.size); a record older
  than its key's offset there goes, any other stays (the cleaned part already holds one record
  per key). When the map fills, the clean stops at that entry and the next pass goes on from
  there. The view is read entry by entry and the survivors streamed to the new part's file;
- offsets are kept: a rewritten batch has its original base offset and last offset delta (gaps
  inside, as Kafka's cleaner leaves them), an emptied batch goes whole;
- records of aborted transactions go; committed transactional records are compacted as any
  other; transaction markers are kept; records without a key and native RocketMQ messages without
  KEYS are kept; a native message's key is its KEYS property (what the Kafka view of it shows);
- compact,delete also applies retention.ms and retention.bytes (frontend.apply_retention).

The clean runs in a worker thread (``asyncio.to_thread``): reading entries of the mapped commit
log below the high watermark is safe while the loop appends; only installing the new part
happens on the loop. The pure functions below take time as an argument.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ferrymq.core.remoting.message import PROPERTY_KEYS
from ferrymq.core.remoting.route import TopicConfig
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2, EntryKind, MessageStore, StoredEntry, compacted_log
from ferrymq.core.store.entry import encode_batch_entry
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka import topics

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger(__name__)

#: how often partitions of compacted topics are looked at (Kafka's log.cleaner.backoff.ms)
CLEANER_CHECK_S = 15.0
_EPOCH = struct.Struct(">i")
#: (producer id, batch base offset) -> whether the batch belongs to an aborted transaction
Aborted = Callable[[int, int], bool]


@dataclass(frozen=True, slots=True)
class CleanPolicy:
    delete_retention_ms: int
    min_lag_ms: int
    min_dirty_ratio: float


def policy_of(tc: TopicConfig) -> CleanPolicy | None:
    """The topic's compaction settings, None if it is not compacted."""
    policy = tc.attributes.get(topics.CLEANUP_POLICY, "")
    if "compact" not in {p.strip() for p in policy.split(",")}:
        return None
    d = topics.TOPIC_CONFIG_DEFAULTS
    a = tc.attributes
    try:
        return CleanPolicy(
            int(a.get(topics.DELETE_RETENTION_MS, d[topics.DELETE_RETENTION_MS])),
            int(a.get(topics.MIN_COMPACTION_LAG_MS, d[topics.MIN_COMPACTION_LAG_MS])),
            float(a.get(topics.MIN_CLEANABLE_DIRTY_RATIO, d[topics.MIN_CLEANABLE_DIRTY_RATIO])),
        )
    except ValueError:
        return None


# ---- pure: what survives -------------------------------------------------------------------


def cleanable_end(dirty: Iterable[StoredEntry], start: int, now_ms: int, min_lag_ms: int) -> tuple[int, int]:
    """(cleanable end, dirty bytes) over the dirty entries from ``start``: up to the first entry
    appended less than ``min_lag_ms`` ago."""
    end, size = start, 0
    for entry in dirty:
        if entry.store_timestamp > now_ms - min_lag_ms:
            break
        end = entry.next_queue_offset
        size += entry.size
    return end, size


def _batches(
    entry: StoredEntry, limit: int, aborted: Aborted | None
) -> Iterable[tuple[int, rb.BatchInfo, list[rb.Record] | None]]:
    """(base offset, header, records) of a Kafka batch entry: None to keep the batch whole (a
    marker, one that does not inflate), none for a batch of an aborted transaction."""
    payload = entry.payload
    pos = 0
    while pos + rb.HEADER_SIZE <= len(payload):
        info = rb.read_header(payload, pos)
        base = rb.base_offset_of(payload, pos)
        records: list[rb.Record] | None = None
        if info.attributes & rb.TRANSACTIONAL and aborted is not None and aborted(info.producer_id, base):
            records = [] if not info.attributes & rb.CONTROL else None
        elif not info.attributes & rb.CONTROL:
            try:
                data = rb.records_bytes(payload, info, limit)
                records = list(rb.iter_records(data, info.count, info.base_timestamp))
            except ValueError:  # over the inflate cap or corrupt: kept as it is
                records = None
        yield base, info, records
        pos += info.size


def _native_key(entry: StoredEntry) -> bytes | None:
    keys = entry.message().properties.get(PROPERTY_KEYS)
    return keys.encode() if keys else None


#: what one key of the offset map costs in memory (a 16-byte digest and an int in a dict)
MAP_ENTRY_BYTES = 136


class OffsetMap:
    """Kafka's SkimpyOffsetMap: 16-byte key digests -> the key's latest offset, at most
    ``capacity`` of them (a collision of 128-bit digests is as unlikely as Kafka's MD5 one)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._latest: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._latest)

    @staticmethod
    def digest(key: bytes | memoryview) -> bytes:
        return hashlib.blake2b(key, digest_size=16).digest()

    def get(self, key: bytes | memoryview) -> int | None:
        return self._latest.get(self.digest(key))

    def put_all(self, keyed: list[tuple[bytes, int]]) -> bool:
        """Add one entry's (digest, offset) pairs, or none of them (False) if they do not fit."""
        new = {d for d, _ in keyed if d not in self._latest}
        if self._latest and len(self._latest) + len(new) > self.capacity:
            return False
        for d, offset in keyed:
            self._latest[d] = offset
        return True


def _entry_keys(entry: StoredEntry, end: int, limit: int, aborted: Aborted | None) -> list[tuple[bytes, int]]:
    """(key digest, offset) of every keyed record of an entry below ``end``, in order."""
    if entry.kind is EntryKind.MESSAGE:
        key = _native_key(entry)
        return [] if key is None else [(OffsetMap.digest(key), entry.queue_offset)]
    if entry.format != BATCH_FORMAT_KAFKA_V2:
        return []
    return [
        (OffsetMap.digest(r.key), base + r.offset_delta)
        for base, _info, records in _batches(entry, limit, aborted)
        for r in records or ()
        if r.key is not None and base + r.offset_delta < end
    ]


def build_offset_map(
    entries: Iterable[StoredEntry], end: int, limit: int, capacity: int, aborted: Aborted | None = None
) -> tuple[OffsetMap, int]:
    """The offset map of the dirty entries below ``end``, and where it stops: ``end``, or the first
    entry whose keys no longer fit (the first entry always goes in, so a clean always progresses)."""
    offsets = OffsetMap(capacity)
    for entry in entries:
        if entry.queue_offset >= end:
            break
        if not offsets.put_all(_entry_keys(entry, end, limit, aborted)):
            return offsets, entry.queue_offset
    return offsets, end


def _kept(record: rb.Record, offset: int, latest: OffsetMap, tombstone_alive: bool) -> bool:
    if record.key is None:
        return True
    found = latest.get(record.key)
    if found is not None and offset < found:
        return False
    return record.value is not None or tombstone_alive


def rewrite(
    entry: StoredEntry,
    latest: OffsetMap,
    now_ms: int,
    policy: CleanPolicy,
    limit: int,
    aborted: Aborted | None = None,
) -> bytes | memoryview | None:
    """The entry as the compacted part keeps it: whole, rewritten, or None (nothing survives)."""
    tombstone_alive = entry.store_timestamp > now_ms - policy.delete_retention_ms
    if entry.kind is EntryKind.MESSAGE:
        key = _native_key(entry)
        found = latest.get(key) if key is not None else None
        return entry.view if found is None or found <= entry.queue_offset else None
    if entry.format != BATCH_FORMAT_KAFKA_V2:
        return entry.view
    out: list[bytes | memoryview] = []
    changed = False
    for base, info, records in _batches(entry, limit, aborted):
        whole = entry.payload[info.start : info.start + info.size]
        if records is None:
            out.append(whole)
            continue
        kept = [r for r in records if _kept(r, base + r.offset_delta, latest, tombstone_alive)]
        if records and len(kept) == len(records):
            out.append(whole)
            continue
        changed = True
        if kept:
            out.append(
                rb.build_batch(
                    base,
                    [(r.offset_delta, r.timestamp, r.key, r.value, r.headers) for r in kept],
                    codec=info.compression,
                    producer_id=info.producer_id,
                    producer_epoch=info.producer_epoch,
                    base_sequence=info.base_sequence,
                    leader_epoch=_EPOCH.unpack_from(whole, 12)[0],
                    attributes=info.attributes & ~rb.COMPRESSION_MASK,
                    last_offset_delta=info.last_offset_delta,
                )
            )
    if not changed:
        return entry.view
    if not out:
        return None
    return encode_batch_entry(
        topic=entry.topic.encode(),
        queue_id=entry.queue_id,
        base_queue_offset=entry.queue_offset,
        physical_offset=entry.offset,
        store_timestamp=entry.store_timestamp,
        count=entry.message_count,
        fmt=entry.format | entry.flags,
        payload=b"".join((entry.tag_table, *out)),
    )


# ---- blocking: one partition's clean (a worker thread) -------------------------------------


def clean_partition(
    store: MessageStore,
    topic: str,
    queue_id: int,
    policy: CleanPolicy,
    now_ms: int,
    limit: int = rb.DEFAULT_MAX_INFLATED,
    force: bool = False,
    before_swap: Callable[[Path], None] | None = None,
    stable: int | None = None,
    aborted: Aborted | None = None,
    map_capacity: int = 1_000_000,
) -> compacted_log.CompactedLog | None:
    """Write the partition's new compacted part if it is worth it (``force``: any dirty bytes);
    returns it for the caller to install on the loop, or None. ``stable``: the first offset of
    the oldest open transaction; ``aborted`` tells the batches of aborted ones; ``map_capacity``:
    the most keys the offset map holds (the clean stops where it fills)."""
    lo, hi = store.readable_bounds(topic, queue_id)
    if stable is not None:
        hi = max(lo, min(hi, stable))
    part = store.compacted.get((topic, queue_id))
    start = max(lo, part.end) if part is not None else lo
    end, dirty = cleanable_end(store.entries(topic, queue_id, start, hi), start, now_ms, policy.min_lag_ms)
    if dirty == 0:
        return None
    clean = part.size if part is not None else 0
    if not force and dirty / (clean + dirty) < policy.min_dirty_ratio:
        return None
    latest, end = build_offset_map(
        store.entries(topic, queue_id, start, end), end, limit, map_capacity, aborted
    )
    kept = (
        survivor
        for entry in store.entries(topic, queue_id, lo, end)
        if (survivor := rewrite(entry, latest, now_ms, policy, limit, aborted)) is not None
    )
    directory = compacted_log.queue_dir(store.compacted_root, topic, queue_id)
    return compacted_log.write(directory, end, kept, before_swap)


class LogCleaner:
    """Cleans the partitions of compacted topics one at a time, off the loop."""

    def __init__(self, broker: Broker, aborted: Callable[[str, int, int, int], bool] | None = None) -> None:
        self.broker = broker
        #: (topic, partition, producer id, offset) -> in an aborted transaction (txn_partitions)
        self.aborted = aborted
        self.cleans = 0  # partitions cleaned (tests, metrics)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CLEANER_CHECK_S)
            try:
                await self.clean_all()
            except Exception:
                log.exception("kafka log cleaner failed")

    async def clean_all(self, now_ms: int | None = None, force: bool = False) -> int:
        """One pass over every compacted topic; returns how many partitions were cleaned
        (``force``: whatever their dirty ratio)."""
        store = self.broker.store
        if store.replica_only:  # a slave serves what its master's log holds
            return 0
        limit = self.broker.config.kafka_max_inflated_batch_bytes
        capacity = self.broker.config.kafka_cleaner_dedupe_buffer_size // MAP_ENTRY_BYTES
        cleaned = 0
        for tc in list(self.broker.topics.topics.values()):
            policy = policy_of(tc)
            if policy is None:
                continue
            for q in range(topics.partition_count(tc)):
                if (tc.topic_name, q) not in store.consume_queues:
                    continue
                now = int(time.time() * 1000) if now_ms is None else now_ms
                # on the loop: the transactions' state is built (or rebuilt) here, not in the thread
                stable = store.stable_offset(tc.topic_name, q) if store.stable_offset is not None else None
                part = await asyncio.to_thread(
                    clean_partition,
                    store,
                    tc.topic_name,
                    q,
                    policy,
                    now,
                    limit,
                    force,
                    None,
                    stable,
                    self._aborted_in(tc.topic_name, q),
                    capacity,
                )
                if part is not None and (tc.topic_name, q) in store.consume_queues:
                    store.install_compacted(tc.topic_name, q, part)
                    cleaned += 1
                    log.info(
                        "compacted %s-%d below offset %d: %d bytes kept",
                        tc.topic_name,
                        q,
                        part.end,
                        part.size,
                        extra={"topic": tc.topic_name},
                    )
        self.cleans += cleaned
        return cleaned

    def _aborted_in(self, topic: str, queue: int) -> Aborted | None:
        check = self.aborted
        if check is None:
            return None
        return lambda pid, offset: check(topic, queue, pid, offset)
