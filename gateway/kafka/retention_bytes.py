"""retention.bytes: a partition keeps its newest entries within the topic's byte budget.

The bytes a partition holds are tallied from its consume-queue units (each unit names its entry's
commit-log position and size; the records of one batch entry share one), counting an entry at
its first unit from the partition's start. The tally follows the queue incrementally: each check
reads only the units appended since the last one and the ones it trims, so a check costs what was
produced since, not what is kept. If something else moved the start (retention.ms, DeleteRecords)
the tally is rebuilt from the new start. Whole entries go, oldest first, and the newest entry
always stays (Kafka never deletes the active segment).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ferrymq.core.store import MessageStore
from ferrymq.core.store.consume_queue import UNIT, ConsumeQueue

_CHUNK = 4096  # units read at a time


@dataclass(slots=True)
class _Tally:
    start: int  # the partition's first offset the tally counts from
    end: int  # offsets before this are counted
    total: int = 0  # bytes of the entries with a unit in [start, end)
    last_phys: int = -1  # commit-log position of the unit at end - 1


def _units(cq: ConsumeQueue, begin: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(queue offset, phys, size) of the units in [begin, end)."""
    offset = begin
    while offset < end:
        chunk = cq.read_units(offset, min(_CHUNK, end - offset))
        if not chunk:
            return
        for phys, size, _tag in UNIT.iter_unpack(chunk):
            yield offset, phys, size
            offset += 1


class RetentionBytes:
    """Per-partition byte tallies, and the trim that keeps each within its limit."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store
        self._tallies: dict[tuple[str, int], _Tally] = {}

    def trim(self, topic: str, queue_id: int, limit: int) -> None:
        """Move the partition's start past its oldest entries while it holds more than ``limit``."""
        cq = self.store.consume_queues.get((topic, queue_id))
        if cq is None:
            return
        tally = self._tallies.get((topic, queue_id))
        if tally is None or tally.start != cq.min_offset:
            tally = self._tallies[(topic, queue_id)] = _Tally(cq.min_offset, cq.min_offset)
        for _, phys, size in _units(cq, tally.end, cq.max_offset):
            if phys != tally.last_phys:
                tally.total += size
                tally.last_phys = phys
        tally.end = cq.max_offset
        if tally.total <= limit:
            return
        start, entry_phys, entry_size = tally.start, -1, 0
        for offset, phys, size in _units(cq, tally.start, tally.end):
            if phys == entry_phys:
                continue
            if entry_phys >= 0:  # the entry before ``offset`` is gone
                tally.total -= entry_size
                start = offset
                if tally.total <= limit:
                    break
            entry_phys, entry_size = phys, size
        if start > tally.start:
            tally.start = self.store.advance_min_offset(topic, queue_id, start)

    def forget_topic(self, topic: str) -> None:
        for key in [k for k in self._tallies if k[0] == topic]:
            del self._tallies[key]
