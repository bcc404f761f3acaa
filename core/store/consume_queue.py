"""A consume queue: the index of one topic-queue into the commit log.

One 20-byte unit per queue offset — commit-log offset (8), entry size (4), tag hash (8) — in
fixed-size files named by byte position, as RocketMQ's ``ConsumeQueue``. A unit with size 0 was
never written. Every message of a batch entry gets its own unit pointing at the whole entry, so
queue offsets stay dense and a Kafka offset is a queue offset.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ferrymq.core.store.mapped_file import MappedFileQueue

UNIT = struct.Struct(">qiq")
UNIT_SIZE = UNIT.size


class ConsumeQueue:
    def __init__(self, directory: Path, topic: str, queue_id: int, file_size: int) -> None:
        self.topic = topic
        self.queue_id = queue_id
        file_size -= file_size % UNIT_SIZE
        self.files = MappedFileQueue(directory, file_size)
        self.unit_file_size = file_size
        self.min_offset = self.files.min_offset // UNIT_SIZE
        self.max_offset = self.min_offset  # next queue offset to write
        self._recover_max()

    def _recover_max(self) -> None:
        """Find the end of the written prefix of the last file by binary search."""
        if not self.files.files:
            return
        last = self.files.files[-1]
        lo, hi = 0, last.size // UNIT_SIZE  # invariant: units [0, lo) written, [hi, ..) not
        while lo < hi:
            mid = (lo + hi) // 2
            _, size, _ = UNIT.unpack_from(last.view, mid * UNIT_SIZE)
            if size > 0:
                lo = mid + 1
            else:
                hi = mid
        self.max_offset = (last.start // UNIT_SIZE) + lo
        if self.max_offset <= self.min_offset and len(self.files.files) == 1 and lo == 0:
            self.max_offset = self.min_offset

    def put(self, queue_offset: int, phys: int, size: int, tag_code: int) -> None:
        pos = queue_offset * UNIT_SIZE
        f = self.files.file_for_write(pos)
        f.write(pos - f.start, UNIT.pack(phys, size, tag_code))
        if queue_offset >= self.max_offset:
            self.max_offset = queue_offset + 1

    def put_units(self, queue_offset: int, units: bytes) -> None:
        """Write consecutive units (a batch entry); they never span a file boundary unsplit."""
        pos = queue_offset * UNIT_SIZE
        f = self.files.file_for_write(pos)
        if pos + len(units) > f.end:  # every file first: a full disk must not leave half the units
            self.files.file_for_write(f.end)
        view = memoryview(units)
        while view:
            f = self.files.file_for_write(pos)
            n = min(len(view), f.end - pos)
            f.write(pos - f.start, view[:n])
            view = view[n:]
            pos += n
        end = pos // UNIT_SIZE
        if end > self.max_offset:
            self.max_offset = end

    def read_units(self, queue_offset: int, max_units: int) -> memoryview:
        """Up to ``max_units`` units from ``queue_offset`` (within one file)."""
        if queue_offset < self.min_offset or queue_offset >= self.max_offset:
            return memoryview(b"")
        pos = queue_offset * UNIT_SIZE
        f = self.files.file_for(pos)
        if f is None:
            return memoryview(b"")
        n = min(max_units, self.max_offset - queue_offset, (f.end - pos) // UNIT_SIZE)
        rel = pos - f.start
        return f.view[rel : rel + n * UNIT_SIZE]

    def unit(self, queue_offset: int) -> tuple[int, int, int] | None:
        units = self.read_units(queue_offset, 1)
        return UNIT.unpack(units) if units else None

    def truncate_after_phys(self, commit_log_end: int) -> None:
        """Drop units that point at or past the end of the commit log (after a crash)."""
        offset = self.max_offset
        while offset > self.min_offset:
            u = self.unit(offset - 1)
            if u is not None and u[1] > 0 and u[0] + u[1] <= commit_log_end:
                break
            offset -= 1
        if offset < self.max_offset:
            self.files.truncate_from(offset * UNIT_SIZE)
            self.max_offset = offset

    def correct_min_offset(self, min_phys: int) -> None:
        """After retention deleted commit-log segments: skip units now pointing before them."""
        lo, hi = self.min_offset, self.max_offset
        while lo < hi:
            mid = (lo + hi) // 2
            u = self.unit(mid)
            if u is not None and u[0] >= min_phys:
                hi = mid
            else:
                lo = mid + 1
        self.min_offset = lo
        while len(self.files.files) > 1 and self.files.files[0].end <= lo * UNIT_SIZE:
            self.files.delete_first()

    def flush(self) -> None:
        self.files.flush()

    def close(self) -> None:
        self.files.close()
