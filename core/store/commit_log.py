"""The commit log: every message of every topic, appended to fixed-size segment files.

Records are RocketMQ's stored-message layout (core/remoting/message.py), so a pull response is a
byte copy of the log. A record never spans two segments: when one does not fit, the rest of the
segment gets a BLANK filler (TOTALSIZE, BLANK magic) and the record starts the next segment, as
RocketMQ's ``CommitLog`` does. Offsets are global and contiguous across segments.

Entry types are told apart by their magic code. Besides RocketMQ messages (v1 and v2 magic), the
log carries *batch entries* (``BATCH_MAGIC``): one entry holding several messages with consecutive
queue offsets, read back verbatim — how the Kafka frontend stores a record batch. Both layouts
are read through entry.py (``entry_of``); this module adds the checks recovery needs (CRC).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ferrymq.core.remoting.message import (
    BLANK_MAGIC,
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    string_to_properties,
    tags_code,
)
from ferrymq.core.store.entry import CorruptRecord, StoredEntry, entry_of
from ferrymq.core.store.mapped_file import MappedFile, MappedFileQueue

_HEAD = struct.Struct(">ii")
_SIZE = struct.Struct(">i")
#: minimum room a segment keeps for the BLANK filler (RocketMQ END_FILE_MIN_BLANK_LENGTH)
END_FILE_MIN_BLANK_LENGTH = 8


@dataclass(slots=True)
class DispatchRequest:
    """What consume queues and the index need to know of one commit-log entry."""

    offset: int
    size: int
    topic: str
    queue_id: int
    queue_offset: int
    count: int  # messages in the entry: 1, or a batch entry's COUNT
    tags_code: int
    store_timestamp: int
    keys: list[str]
    uniq_key: str | None
    #: a batch entry's tag code per message (BATCH_FLAG_TAG_CODES), else None
    tags_codes: list[int] | None = None
    #: a batch entry's format (BATCH_FORMAT_*, flags removed), 0 for a message: lets a frontend's
    #: dispatch listener skip the entries it did not write without reading them
    format: int = 0


class CommitLog:
    """Appends and reads entries; ``write_offset`` is where the next entry goes."""

    def __init__(self, directory: Path, file_size: int) -> None:
        self.files = MappedFileQueue(directory, file_size)
        self.file_size = file_size
        self.write_offset = self.files.min_offset
        #: called (on the writer's thread) after a roll to a new segment: the store then
        #: prepares the following one in a worker thread
        self.on_roll: Callable[[], None] | None = None

    @property
    def min_offset(self) -> int:
        return self.files.min_offset

    def prepare_next(self) -> None:
        """Create and allocate the segment after the one being written (thread-safe: a worker
        thread calls it). OSError (ENOSPC) if the disk has no room for it."""
        self.files.prepare(self.write_offset - self.write_offset % self.file_size + self.file_size)

    def reserve(self, size: int) -> tuple[MappedFile, int]:
        """Where an entry of ``size`` bytes goes: (file, global offset), rolling if needed."""
        if size + END_FILE_MIN_BLANK_LENGTH > self.file_size:
            raise ValueError(f"entry of {size} bytes exceeds the commit-log segment size")
        offset = self.write_offset
        f = self.files.file_for_write(offset)
        if offset + size + END_FILE_MIN_BLANK_LENGTH > f.end:
            remaining = f.end - offset
            f.write(offset - f.start, _HEAD.pack(remaining, BLANK_MAGIC))
            f.touch()
            offset = f.end
            self.write_offset = offset
            f = self.files.file_for_write(offset)  # OSError (ENOSPC): the filler stays, valid
            if self.on_roll is not None:
                self.on_roll()
        return f, offset

    def append(self, f: MappedFile, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write an entry at the offset ``reserve`` returned."""
        f.write(offset - f.start, data)
        self.write_offset = offset + len(data)

    def read(self, offset: int, size: int) -> memoryview:
        f = self.files.file_for(offset)
        if f is None:
            raise KeyError(offset)
        pos = offset - f.start
        return f.view[pos : pos + size]

    def entry_size(self, offset: int) -> int:
        f = self.files.file_for(offset)
        if f is None or offset >= self.write_offset:
            raise KeyError(offset)
        (size,) = struct.unpack_from(">i", f.view, offset - f.start)
        return size

    def read_entry(self, offset: int) -> memoryview:
        return self.read(offset, self.entry_size(offset))

    def flush(self) -> None:
        self.files.flush()

    def close(self) -> None:
        self.files.close()

    # ---- recovery ----------------------------------------------------------------------------

    def scan(self, start: int) -> Iterator[DispatchRequest]:
        """Validate and describe every entry from ``start`` on; stop at the first bad one.

        ``write_offset`` ends where the last valid entry ends.
        """
        offset = max(start, self.files.min_offset)
        self.write_offset = offset
        while True:
            f = self.files.file_for(offset)
            if f is None:
                return
            pos = offset - f.start
            if pos + 8 > f.size:
                offset = f.end
                continue
            size, magic = _HEAD.unpack_from(f.view, pos)
            if magic == BLANK_MAGIC and size == f.size - pos:
                offset = f.end
                self.write_offset = offset
                continue
            try:
                req = describe_entry(f.view, pos, offset, f.size - pos)
            except CorruptRecord:
                return
            offset += req.size
            self.write_offset = offset
            yield req

    # ---- replication (core/ha): the same bytes at the same offsets on master and slave --------

    def read_for_replication(self, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` written bytes from ``offset``, never past the end of its segment
        (a BLANK filler is sent as it is); empty at the write offset. KeyError if ``offset`` is
        not in the log (before the first segment, past the end)."""
        end = self.write_offset
        if offset == end:
            return b""
        f = self.files.file_for(offset)
        if f is None or offset > end:
            raise KeyError(offset)
        stop = min(end, f.end, offset + max_bytes)
        return bytes(f.view[offset - f.start : stop - f.start])

    def write_replicated(self, offset: int, data: bytes) -> None:
        """Write bytes a master sent at their own offset (the caller checked it is the next one).

        ``write_offset`` does not move: ``scan_replicated`` advances it over complete entries.
        ValueError if they would cross a segment end (the master's segment size differs)."""
        rolled = self.files.file_for(offset) is None
        f = self.files.file_for_write(offset)
        if offset + len(data) > f.end:
            raise ValueError(
                f"{len(data)} bytes at {offset} cross the end of segment {f.path.name}: is the master's "
                f"mappedFileSizeCommitLog {self.file_size} too?"
            )
        f.write(offset - f.start, data)
        if rolled and self.on_roll is not None:
            self.on_roll()

    def scan_replicated(self, end: int) -> Iterator[DispatchRequest]:
        """The complete entries between ``write_offset`` and ``end`` (what arrived), validated
        as recovery does; ``write_offset`` moves past each one and past complete BLANK fillers.
        A partial entry at the end waits for the rest. CorruptRecord for bytes that are no
        entry."""
        offset = self.write_offset
        while offset < end:
            f = self.files.file_for(offset)
            if f is None:
                return
            pos = offset - f.start
            avail = min(end, f.end) - offset
            if avail < 8:
                return
            size, magic = _HEAD.unpack_from(f.view, pos)
            if magic == BLANK_MAGIC and size == f.end - offset:
                if avail < size:
                    return
                offset = self.write_offset = f.end
                continue
            if size <= 8 or size > f.end - offset:
                raise CorruptRecord(f"entry size {size} at {offset}")
            if size > avail:
                return
            req = describe_entry(f.view, pos, offset, avail)
            offset = self.write_offset = offset + size
            yield req

    def truncate_tail(self) -> None:
        """Erase everything after ``write_offset`` (a torn tail); later segments are deleted."""
        self.files.truncate_from(self.write_offset)


def describe_entry(buf: memoryview, pos: int, offset: int, room: int) -> DispatchRequest:
    """Check the entry at ``pos`` (a message's body CRC included) and return its dispatch
    information."""
    try:
        (size,) = _SIZE.unpack_from(buf, pos)
        if size <= 8 or size > room:
            raise CorruptRecord(f"size {size} at {offset}")
        entry = entry_of(buf[pos : pos + size])
        if entry.offset != offset:
            raise CorruptRecord(f"physical offset {entry.offset} stored at {offset}")
        props = _checked_properties(entry) if entry.fields is not None else {}
        keys = props.get(PROPERTY_KEYS)
        return DispatchRequest(
            offset=offset,
            size=size,
            topic=entry.topic,
            queue_id=entry.queue_id,
            queue_offset=entry.queue_offset,
            count=entry.message_count,
            tags_code=tags_code(props.get(PROPERTY_TAGS)),
            store_timestamp=entry.store_timestamp,
            keys=keys.split() if keys else [],
            uniq_key=props.get(PROPERTY_UNIQ_KEY),
            tags_codes=entry.tag_codes,
            format=entry.format,
        )
    except CorruptRecord:
        raise
    except (struct.error, ValueError) as exc:
        raise CorruptRecord(f"entry at {offset}: {exc}") from None


def _checked_properties(entry: StoredEntry) -> dict[str, str]:
    """A message entry's properties, once its body CRC matched."""
    f = entry.fields
    assert f is not None
    view = entry.view
    if zlib.crc32(view[f.body_at : f.body_at + f.body_len]) & 0x7FFFFFFF != f.crc:
        raise CorruptRecord(f"body CRC mismatch at {entry.offset}")
    return string_to_properties(bytes(view[f.props_at : f.props_at + f.props_len]).decode())
