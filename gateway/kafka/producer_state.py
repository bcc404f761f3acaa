"""Idempotent producers: producer ids, epochs and the last batches' sequences per partition.

As Kafka's ProducerStateManager: per (partition, producer id) the current epoch and the last 5
batches (first and last sequence, base offset). A batch equal to one of those is a duplicate,
acknowledged with its first offset and not written again; a batch whose first sequence is not
the last one + 1 is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is INVALID_PRODUCER_EPOCH; a
new epoch must start at sequence 0. A producer this partition has no state for is accepted at any
sequence (Kafka does the same once state has expired).

State is not persisted: the stored batches carry producer id, epoch and sequences, so a
partition's state is rebuilt the first time an idempotent producer writes to it after a start,
from its last ``REBUILD_ENTRIES`` entries (so a retry of a batch written just before a crash is
still a duplicate). Producer ids are allocated in blocks, the next block persisted first, so an
id is never handed out twice across restarts.

A producer's state expires ``expiration_ms`` after its last write (Kafka's
producer.id.expiration.ms, BrokerConfig kafkaProducerIdExpirationMs): ``expire`` drops it, and
an expired producer is unknown again (any sequence accepted), so idle producer ids cost nothing.
State rebuilt from the log carries the stored batches' times. Transactions (open ones, fencing
by marker epochs) are txn_partitions.py's.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ferrymq.core.persist import read_json, write_json_atomic
from ferrymq.gateway.kafka import records as rb

BATCHES_KEPT = 5
ID_BLOCK = 1000
REBUILD_ENTRIES = 256
MAX_EPOCH = 32767
#: Kafka's default producer.id.expiration.ms (one day)
DEFAULT_EXPIRATION_MS = 86_400_000


def _wall_ms() -> int:
    return int(time.time() * 1000)


class Check(Enum):
    OK = 0
    DUPLICATE = 1
    OUT_OF_ORDER = 2
    INVALID_EPOCH = 3


@dataclass(slots=True)
class _Batch:
    first_seq: int
    last_seq: int
    base_offset: int


@dataclass(slots=True)
class _Producer:
    epoch: int
    last_ms: int  # when it last wrote (wall clock ms)
    batches: deque[_Batch] = field(default_factory=lambda: deque(maxlen=BATCHES_KEPT))


#: yields (producer id, epoch, first sequence, last sequence, base offset, stored at ms), oldest first
BatchSource = Callable[[str, int], Iterator[tuple[int, int, int, int, int, int]]]


class ProducerStates:
    def __init__(
        self,
        id_file: Path,
        rebuild_source: BatchSource,
        *,
        expiration_ms: int = DEFAULT_EXPIRATION_MS,
        clock: Callable[[], int] = _wall_ms,
    ) -> None:
        self.id_file = id_file
        self._rebuild_source = rebuild_source
        self.expiration_ms = expiration_ms
        self._clock = clock
        self._partitions: dict[tuple[str, int], dict[int, _Producer]] = {}
        data = read_json(id_file)
        self._next_id = int(data.get("nextProducerId", 0)) if isinstance(data, dict) else 0
        self._block_end = self._next_id  # nothing reserved yet in this process

    # ---- producer ids --------------------------------------------------------------------------

    def new_producer_id(self) -> int:
        if self._next_id >= self._block_end:
            self._block_end = self._next_id + ID_BLOCK
            write_json_atomic(self.id_file, {"nextProducerId": self._block_end})
        pid = self._next_id
        self._next_id += 1
        return pid

    @property
    def ids_reserved(self) -> int:
        """Every id below this may have been handed out (what a slave must not reuse)."""
        return self._block_end

    def reserve_ids(self, end: int) -> None:
        """Never hand out an id below ``end`` (a slave, of its master's ids: after a failover the
        new master's ids must not collide with the old master's producers)."""
        if end > max(self._next_id, self._block_end):
            self._next_id = self._block_end = end
            write_json_atomic(self.id_file, {"nextProducerId": end})

    def known_producer_id(self, pid: int) -> bool:
        return 0 <= pid < self._next_id

    # ---- sequences -----------------------------------------------------------------------------

    def _partition(self, topic: str, partition: int) -> dict[int, _Producer]:
        key = (topic, partition)
        state = self._partitions.get(key)
        if state is None:
            state = self._partitions[key] = {}
            cutoff = self._clock() - self.expiration_ms
            for pid, epoch, first, last, base, at in self._rebuild_source(topic, partition):
                if at > cutoff:
                    self._record(state, pid, epoch, first, last, base, at)
        return state

    @staticmethod
    def _record(
        state: dict[int, _Producer], pid: int, epoch: int, first: int, last: int, base: int, at: int
    ) -> None:
        p = state.get(pid)
        if p is None or p.epoch != epoch:
            p = state[pid] = _Producer(epoch, at)
        p.last_ms = at
        p.batches.append(_Batch(first, last, base))

    def check(self, topic: str, partition: int, info: rb.BatchInfo) -> tuple[Check, int]:
        """How a batch of an idempotent producer fits; with DUPLICATE, its original base offset."""
        p = self._partition(topic, partition).get(info.producer_id)
        if p is None or p.last_ms <= self._clock() - self.expiration_ms:
            return Check.OK, -1
        if info.producer_epoch < p.epoch:
            return Check.INVALID_EPOCH, -1
        if info.producer_epoch > p.epoch:
            return (Check.OK if info.base_sequence == 0 else Check.OUT_OF_ORDER), -1
        for b in p.batches:
            if b.first_seq == info.base_sequence and b.last_seq == info.last_sequence:
                return Check.DUPLICATE, b.base_offset
        last = p.batches[-1].last_seq if p.batches else -1
        if info.base_sequence != (last + 1) % 0x80000000:
            return Check.OUT_OF_ORDER, -1
        return Check.OK, -1

    def appended(self, topic: str, partition: int, info: rb.BatchInfo, base_offset: int) -> None:
        self._record(
            self._partition(topic, partition),
            info.producer_id,
            info.producer_epoch,
            info.base_sequence,
            info.last_sequence,
            base_offset,
            self._clock(),
        )

    def expire(self) -> int:
        """Drop the producers that have not written for ``expiration_ms``; how many went.

        A partition's (empty) map stays: dropping it would rebuild the state from the log."""
        cutoff = self._clock() - self.expiration_ms
        gone = 0
        for state in self._partitions.values():
            for pid in [pid for pid, p in state.items() if p.last_ms <= cutoff]:
                del state[pid]
                gone += 1
        return gone

    def producers(self, topic: str, partition: int) -> list[tuple[int, int, int, int]]:
        """(producer id, epoch, last sequence, last write ms) of each producer the partition holds
        (DescribeProducers); rebuilt from the log on first use, as for a produce."""
        return [
            (pid, p.epoch, p.batches[-1].last_seq if p.batches else -1, p.last_ms)
            for pid, p in self._partition(topic, partition).items()
        ]

    def producer_count(self) -> int:
        """(partition, producer) states held."""
        return sum(len(state) for state in self._partitions.values())

    def forget_partition(self, topic: str, partition: int) -> None:
        self._partitions.pop((topic, partition), None)

    def forget_all(self) -> None:
        """Every partition's state is rebuilt from the log when next used (after a truncation)."""
        self._partitions.clear()

    def forget_topic(self, topic: str) -> None:
        for key in [k for k in self._partitions if k[0] == topic]:
            del self._partitions[key]
