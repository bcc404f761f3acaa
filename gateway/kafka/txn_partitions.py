"""Kafka transactions, the partition side: open transactions, markers, the last stable offset.

Per partition (topic, local queue) this keeps, as Kafka's ProducerStateManager and
TransactionIndex do (reference transactions-filters-security.md §2.4):

- the open transactions: producer id -> (epoch, first offset). The first transactional batch of a
  producer opens one at its base offset; a COMMIT/ABORT marker closes it;
- the highest epoch seen per transactional producer (batches and markers): an older one is
  INVALID_PRODUCER_EPOCH (the coordinator's abort after fencing bumps it);
- the aborted index: (producer id, first offset, marker offset) per ABORT marker, in log order.

Retention (``trim``, from the Kafka frontend's retention loop): once the log start passes an
ABORT marker its aborted-index entry goes, and so does the epoch of a producer whose last batch or
marker is below the log start and that has no transaction open.

The last stable offset (LSO) is the smallest first offset of the open transactions, or the high
watermark when none is open (or it is lower). read_committed Kafka consumers read below it, and
so do RocketMQ consumers (``stable_limit``, the store's per-queue pull limit), who besides never
get control batches nor the records of aborted transactions (``is_aborted``, in the batch
conversion).

Durability: the state is not written anywhere of its own: it is rebuilt from the log (the stored
transactional batches and control batches) the first time a partition is used after a start or
a truncation. So that only partitions that ever held a transaction are scanned, the first
transactional write to a partition records (topic, queue, offset) in ``kafkaTxnPartitions.json``
(fsynced, before the batch is stored); the rebuild scans batch headers from that offset on. A slave
copies that file's content from its master (a ``core.broker.replicated_state`` provider,
``kafkaTxnPartitions``), so once elected it rebuilds the transactions it replicated. Besides, each
transactional batch or marker a slave replicates counts at once (``replicated``, through the store's
dispatch listener, the per-entry step recovery's rebuild uses): a transaction the master began
after the slave's last copy still holds the new master's LSO at its first offset.

Markers are written by ``write_markers`` (the coordinator's call; WriteTxnMarkers, API 27, serves
it to other broker groups): one control batch per partition, magic 2, attributes 0x30, the
producer's id and epoch, base sequence -1, one record with key (int16 version 0, int16 type:
0 ABORT, 1 COMMIT) and value (int16 version 0, int32 coordinator epoch).
"""

from __future__ import annotations

import bisect
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from kio.schema.errors import ErrorCode

from ferrymq.core.persist import read_json, write_json_atomic
from ferrymq.core.store import (
    BATCH_FORMAT_KAFKA_V2,
    EntryKind,
    MessageStore,
    PutStatus,
    StoredEntry,
    StoreUnavailable,
)
from ferrymq.gateway.kafka import records as rb

if TYPE_CHECKING:
    from ferrymq.gateway.kafka.cluster import ClusterView

log = logging.getLogger("ferrymq.kafka")

ABORT, COMMIT = 0, 1
CONTROL_ATTRIBUTES = rb.CONTROL | rb.TRANSACTIONAL  # 0x30
BATCH = EntryKind.BATCH
_KEY = struct.Struct(">hh")  # version, type
_VALUE = struct.Struct(">hi")  # version, coordinator epoch
#: Produce versions above this answer a partition missing from the transaction with
#: TRANSACTION_ABORTABLE (KIP-890 part 1); older ones with INVALID_TXN_STATE
ABORTABLE_FROM_VERSION = 11


def marker_batch(pid: int, epoch: int, commit: bool, coordinator_epoch: int, now_ms: int) -> bytes:
    """The control batch that ends a transaction on a partition (base offset patched on store)."""
    record: rb.RecordTuple = (
        0,
        now_ms,
        _KEY.pack(0, COMMIT if commit else ABORT),
        _VALUE.pack(0, coordinator_epoch),
        [],
    )
    return rb.build_batch(0, [record], producer_id=pid, producer_epoch=epoch, attributes=CONTROL_ATTRIBUTES)


def marker_of(batch: bytes | memoryview, info: rb.BatchInfo) -> tuple[int, int] | None:
    """(type, coordinator epoch) of a control batch's record; None if it is not a marker."""
    try:
        record = next(rb.iter_records(rb.records_bytes(batch, info), 1, info.base_timestamp))
    except (ValueError, StopIteration):
        return None
    if record.key is None or len(record.key) != 4 or record.value is None or len(record.value) < 6:
        return None
    _, kind = _KEY.unpack(record.key)
    _, coordinator_epoch = _VALUE.unpack_from(record.value)
    return kind, coordinator_epoch


@dataclass(slots=True)
class PartitionTxns:
    """One partition's transactions (pure state; offsets are Kafka offsets = queue offsets)."""

    open: dict[int, tuple[int, int]] = field(default_factory=dict)  # pid -> (epoch, first offset)
    opened_ms: dict[int, int] = field(default_factory=dict)  # pid -> when seen open (this process)
    epochs: dict[int, int] = field(default_factory=dict)  # pid -> highest epoch seen
    lasts: dict[int, int] = field(default_factory=dict)  # pid -> offset of its last batch or marker
    aborted: list[tuple[int, int, int]] = field(default_factory=list)  # (pid, first, last), by last
    _lasts: list[int] = field(default_factory=list)  # the aborted entries' last offsets, for bisect

    def first_unstable(self) -> int | None:
        return min(first for _, first in self.open.values()) if self.open else None

    def batch(self, pid: int, epoch: int, base: int, now_ms: int) -> None:
        """A transactional batch stored (or rebuilt) at ``base``: opens the producer's transaction
        if none is; ``now_ms`` is when this process first saw it open (the orphan fallback's clock,
        never the producer's timestamps)."""
        self.epochs[pid] = max(epoch, self.epochs.get(pid, epoch))
        self.lasts[pid] = base
        if pid not in self.open:
            self.open[pid] = (epoch, base)
            self.opened_ms[pid] = now_ms

    def marker(self, pid: int, epoch: int, commit: bool, offset: int) -> None:
        """A marker stored at ``offset`` closes the producer's transaction (ABORT: indexed)."""
        self.epochs[pid] = max(epoch, self.epochs.get(pid, epoch))
        self.lasts[pid] = offset
        opened = self.open.pop(pid, None)
        self.opened_ms.pop(pid, None)
        if opened is not None and not commit:
            self.aborted.append((pid, opened[1], offset))
            self._lasts.append(offset)

    def trim(self, log_start: int) -> None:
        """Retention moved the log start: forget aborted transactions whose marker is gone, and
        the epochs of producers with nothing left in the log and no transaction open (Kafka
        deletes the transaction index with its segment and evicts such producer state)."""
        cut = bisect.bisect_left(self._lasts, log_start)
        if cut:
            del self.aborted[:cut]
            del self._lasts[:cut]
        for pid in [p for p, last in self.lasts.items() if last < log_start and p not in self.open]:
            del self.lasts[pid]
            self.epochs.pop(pid, None)

    def aborted_between(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """(pid, first offset) of aborted transactions with last >= lo and first < hi (Fetch)."""
        start = bisect.bisect_left(self._lasts, lo)
        return [(pid, first) for pid, first, _ in self.aborted[start:] if first < hi]

    def is_aborted(self, pid: int, offset: int) -> bool:
        """Whether the producer's batch at ``offset`` belongs to an aborted transaction."""
        start = bisect.bisect_left(self._lasts, offset)
        return any(p == pid and first <= offset for p, first, _ in self.aborted[start:])


def _apply(st: PartitionTxns, entry: StoredEntry, info: rb.BatchInfo, now_ms: int) -> None:
    """One stored transactional batch or marker (rebuild and replication alike)."""
    if info.attributes & rb.CONTROL:
        marker = marker_of(entry.payload, info)
        if marker is not None and marker[0] in (ABORT, COMMIT):
            st.marker(info.producer_id, info.producer_epoch, marker[0] == COMMIT, entry.queue_offset)
    else:
        st.batch(info.producer_id, info.producer_epoch, entry.queue_offset, now_ms)


class TxnPartitions:
    """Every local partition's transactions, the produce checks and the markers."""

    def __init__(
        self,
        store: MessageStore,
        cluster: ClusterView,
        tracked_file: Path,
        *,
        sync_flush: bool = False,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.store = store
        self.cluster = cluster
        self.tracked_file = tracked_file
        self.sync_flush = sync_flush
        self._clock = clock
        data = read_json(tracked_file)
        #: (topic, queue) -> the offset of its first transactional batch (where a rebuild starts)
        self._tracked: dict[tuple[str, int], int] = {}
        if isinstance(data, dict):
            for topic, queues in data.items():
                for q, offset in dict(queues).items():
                    self._tracked[(topic, int(q))] = int(offset)
        self._partitions: dict[tuple[str, int], PartitionTxns] = {}

    # ---- state -----------------------------------------------------------------------------------

    def state(self, topic: str, queue: int) -> PartitionTxns | None:
        """The partition's transactions, rebuilt from the log on first use; None if it never had one."""
        key = (topic, queue)
        st = self._partitions.get(key)
        if st is None:
            start = self._tracked.get(key)
            if start is None:
                return None
            st = self._partitions[key] = self._rebuild(topic, queue, start)
        return st

    def _rebuild(self, topic: str, queue: int, start: int) -> PartitionTxns:
        st = PartitionTxns()
        now_ms = self._clock()
        for entry in self.store.entries(topic, queue, start):
            if entry.kind is BATCH and entry.format == BATCH_FORMAT_KAFKA_V2:
                info = rb.read_header(entry.payload)
                if info.attributes & rb.TRANSACTIONAL:
                    _apply(st, entry, info, now_ms)
        if st.open or st.aborted:
            log.info(
                "%s-%d: transactions rebuilt from offset %d: %d open, %d aborted",
                topic,
                queue,
                start,
                len(st.open),
                len(st.aborted),
            )
        return st

    def _track(self, topic: str, queue: int, offset: int) -> None:
        """Record (durably, before the first transactional batch is stored) that the partition
        has transactions to rebuild after a restart."""
        self._tracked[(topic, queue)] = offset
        self._save()

    def _save(self) -> None:
        data: dict[str, dict[str, int]] = {}
        for (topic, q), offset in self._tracked.items():
            data.setdefault(topic, {})[str(q)] = offset
        write_json_atomic(self.tracked_file, data)

    # ---- replicated state (core.broker.replicated_state) -----------------------------------------

    def dump(self) -> bytes:
        """On the master: which partitions hold transactions, from where (the tracked file)."""
        return orjson.dumps([[t, q, o] for (t, q), o in sorted(self._tracked.items())])

    def load(self, data: bytes) -> None:
        """On a slave: the master's tracked partitions join ours (replicated batches never pass
        ``before_store`` here), so an elected slave rebuilds their transactions from the log."""
        added = False
        for topic, queue, offset in orjson.loads(data):
            key = (str(topic), int(queue))
            if key not in self._tracked or int(offset) < self._tracked[key]:
                self._tracked[key] = int(offset)
                self._partitions.pop(key, None)  # rebuilt from the new start when next used
                added = True
        if added:
            self._save()

    def replicated(self, entry: StoredEntry) -> None:
        """On a slave: a Kafka batch entry just replicated. A transactional one (batch or marker)
        counts at once, as recovery's rebuild counts it: the partition becomes tracked (durably)
        if it was not, and its state, if built, is updated. So an elected slave knows a
        transaction its master began after the last metadata copy (``load``), and its last
        stable offset stops at that transaction's first offset."""
        info = rb.read_header(entry.payload)
        if not info.attributes & rb.TRANSACTIONAL:
            return
        key = (entry.topic, entry.queue_id)
        if key not in self._tracked:
            self._track(entry.topic, entry.queue_id, entry.queue_offset)  # rebuilt from here when used
            return
        st = self._partitions.get(key)
        if st is not None:
            _apply(st, entry, info, self._clock())

    async def promoted(self) -> None:
        """Elected master: rebuild every partition from the log as replicated."""
        self.forget_all()

    def trim(self) -> None:
        """Every built partition's state below its log start goes (the retention loop's call)."""
        for (topic, queue), st in self._partitions.items():
            if st.aborted or st.lasts:
                st.trim(self.store.min_offset(topic, queue))

    def forget_all(self) -> None:
        """After a truncation: every partition is rebuilt from what is left when next used."""
        self._partitions.clear()

    def forget_topic(self, topic: str) -> None:
        for key in [k for k in self._partitions if k[0] == topic]:
            del self._partitions[key]
        if any(k[0] == topic for k in self._tracked):
            self._tracked = {k: v for k, v in self._tracked.items() if k[0] != topic}
            self._save()

    # ---- reads -------------------------------------------------------------------------------------

    def stable_limit(self, topic: str, queue: int) -> int | None:
        """The first offset of the oldest open transaction, None if none is open (the store's
        ``stable_offset`` hook: RocketMQ pulls stop there)."""
        st = self.state(topic, queue)
        return None if st is None else st.first_unstable()

    def last_stable_offset(self, topic: str, queue: int, high_watermark: int) -> int:
        first = self.stable_limit(topic, queue)
        return high_watermark if first is None else min(first, high_watermark)

    def aborted_between(self, topic: str, queue: int, lo: int, hi: int) -> list[dict[str, int]]:
        """Fetch's aborted_transactions for [lo, hi) under read_committed."""
        st = self.state(topic, queue)
        if st is None or not st.aborted:
            return []
        return [{"producer_id": pid, "first_offset": first} for pid, first in st.aborted_between(lo, hi)]

    def is_aborted(self, topic: str, queue: int, pid: int, offset: int) -> bool:
        st = self.state(topic, queue)
        return st is not None and bool(st.aborted) and st.is_aborted(pid, offset)

    # ---- produce -------------------------------------------------------------------------------------

    def check_batch(
        self,
        topic: str,
        queue: int,
        partition: int,
        info: rb.BatchInfo,
        produce_version: int,
        coordinator: Any,
    ) -> ErrorCode:
        """Whether a produced batch may be stored: its producer's epoch and transaction state."""
        transactional = info.attributes & rb.TRANSACTIONAL
        st = self.state(topic, queue)
        if st is None and not transactional:
            return ErrorCode.none
        pid, epoch = info.producer_id, info.producer_epoch
        if transactional and pid < 0:
            return ErrorCode.invalid_record
        known = st.epochs.get(pid) if st is not None else None
        if known is not None and epoch < known:
            return ErrorCode.invalid_producer_epoch
        opened = st.open.get(pid) if st is not None else None
        if not transactional:
            return ErrorCode.invalid_txn_state if opened is not None else ErrorCode.none
        if opened is None and coordinator is not None:
            verdict = coordinator.partition_in_transaction(pid, epoch, topic, partition)
            if verdict is False:
                if produce_version >= ABORTABLE_FROM_VERSION:
                    return ErrorCode.transaction_abortable
                return ErrorCode.invalid_txn_state
        return ErrorCode.none

    def before_store(self, topic: str, queue: int, info: rb.BatchInfo, base: int) -> None:
        """A transactional batch is about to be stored at ``base``: make the partition tracked."""
        if info.attributes & rb.TRANSACTIONAL and (topic, queue) not in self._tracked:
            self._partitions[(topic, queue)] = PartitionTxns()  # no transaction before it
            self._track(topic, queue, base)

    def stored(self, topic: str, queue: int, info: rb.BatchInfo, base: int) -> None:
        """A transactional batch was stored at ``base``."""
        if info.attributes & rb.TRANSACTIONAL:
            st = self.state(topic, queue)
            assert st is not None  # tracked by before_store
            st.batch(info.producer_id, info.producer_epoch, base, self._clock())

    # ---- markers -----------------------------------------------------------------------------------

    async def write_markers(
        self,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        partitions: list[tuple[str, int]],
    ) -> dict[tuple[str, int], int]:
        """Append a COMMIT/ABORT marker to each local partition the producer has a transaction
        open on and close it there; a Kafka error code per (topic, partition). Idempotent: no
        open transaction is a no-op answering 0. Durable under SYNC_FLUSH before answering."""
        wanted: dict[str, int] = {}
        for topic, p in partitions:
            wanted[topic] = max(wanted.get(topic, -1), p)
        placed = await self.cluster.placements(wanted)
        out: dict[tuple[str, int], int] = {}
        end = 0
        for topic, p in partitions:
            queue, error = self.cluster.local_queue(topic, placed[topic], p)
            if error:
                out[(topic, p)] = error
                continue
            error, stored_end = self._write_marker(
                topic, queue, producer_id, producer_epoch, commit, coordinator_epoch
            )
            out[(topic, p)] = error
            end = max(end, stored_end)
        if end and self.sync_flush:
            failed: ErrorCode | None = None
            try:
                if not await self.store.wait_durable(end):
                    failed = ErrorCode.request_timed_out
            except StoreUnavailable as exc:
                log.error("transaction markers of producer %d not durable: %s", producer_id, exc)
                failed = ErrorCode.kafka_storage_error
            if failed is not None:
                out = {k: (failed if v == ErrorCode.none else v) for k, v in out.items()}
        return out

    def abort_orphans(
        self, now_ms: int, max_age_ms: int, known: Callable[[int], bool], coordinator_epoch: int
    ) -> list[tuple[str, int, int]]:
        """The fallback against a last stable offset stuck for good: write an ABORT marker for
        every transaction seen open here longer than ``max_age_ms`` (kafkaTransactionMaxTimeoutMs:
        any coordinator would have ended it) whose producer the local coordinator does not
        ``known`` (its state was lost, e.g. a failover before the slave copied it). The
        (topic, queue, producer id) aborted."""
        out = []
        for (topic, queue), st in list(self._partitions.items()):
            for pid, opened_ms in list(st.opened_ms.items()):
                if opened_ms + max_age_ms >= now_ms or known(pid):
                    continue
                epoch = st.epochs.get(pid, st.open[pid][0])
                log.error(
                    "%s-%d: transaction of producer %d (epoch %d) open since offset %d for over %d ms "
                    "and unknown to this coordinator: aborting it",
                    topic,
                    queue,
                    pid,
                    epoch,
                    st.open[pid][1],
                    max_age_ms,
                )
                error, _ = self._write_marker(topic, queue, pid, epoch, False, coordinator_epoch)
                if error == ErrorCode.none:
                    out.append((topic, queue, pid))
        return out

    def _write_marker(
        self, topic: str, queue: int, pid: int, epoch: int, commit: bool, coordinator_epoch: int
    ) -> tuple[ErrorCode, int]:
        st = self.state(topic, queue)
        if st is None or pid not in st.open:
            return ErrorCode.none, 0
        if epoch < st.open[pid][0]:
            return ErrorCode.invalid_producer_epoch, 0
        base = self.store.max_offset(topic, queue)
        batch = bytearray(marker_batch(pid, epoch, commit, coordinator_epoch, self._clock()))
        rb.patch_base(batch, base)
        result = self.store.put_batch_entry(topic, queue, 1, BATCH_FORMAT_KAFKA_V2, batch)
        if result.status != PutStatus.OK:
            log.error(
                "%s-%d: transaction marker of producer %d not stored: %s", topic, queue, pid, result.status
            )
            return ErrorCode.kafka_storage_error, 0
        st.marker(pid, epoch, commit, base)
        return ErrorCode.none, result.end_offset
