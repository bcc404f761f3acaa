"""The bytes of one partition's entries, for DescribeLogDirs: summed from its consume-queue units.

A unit names its entry's commit-log offset and size; the units of one batch entry all name the same
entry, so an entry counts once (units of an entry are consecutive). The sum is kept per queue with the
offset it reached, so the next question reads only the units written since; when retention moves the
queue's first offset the queue is summed again. Nothing on the produce path: the work is done when asked.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ferrymq.core.store.consume_queue import UNIT, ConsumeQueue

#: units read per step (one file's worth at most, ConsumeQueue.read_units)
STEP = 65536


@dataclass(slots=True)
class _Sum:
    first: int  # the queue's min offset when summed
    upto: int  # units before this offset are counted
    last_phys: int  # the entry the last counted unit named
    bytes: int


class PartitionSizes:
    def __init__(self) -> None:
        self._sums: dict[tuple[str, int], _Sum] = {}

    def size(self, cq: ConsumeQueue) -> int:
        key = (cq.topic, cq.queue_id)
        s = self._sums.get(key)
        if s is None or s.first != cq.min_offset or s.upto > cq.max_offset:
            s = self._sums[key] = _Sum(cq.min_offset, cq.min_offset, -1, 0)
        while s.upto < cq.max_offset:
            units = cq.read_units(s.upto, STEP)
            if not units:
                break
            for phys, size, _ in struct.iter_unpack(UNIT.format, units):
                if phys != s.last_phys and size > 0:
                    s.bytes += size
                    s.last_phys = phys
            s.upto += len(units) // UNIT.size
        return s.bytes

    def forget(self, topic: str) -> None:
        for key in [k for k in self._sums if k[0] == topic]:
            del self._sums[key]
