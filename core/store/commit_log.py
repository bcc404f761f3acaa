"""The commit log: every message of every topic, appended to fixed-size segment files.

Records are RocketMQ's stored-message layout (core/remoting/message.py), so a pull response is a
byte copy of the log. A record never spans two segments: when one does not fit, the rest of the
segment gets a BLANK filler (TOTALSIZE, BLANK magic) and the record starts the next segment, as
RocketMQ's ``CommitLog`` does. Offsets are global and contiguous across segments.

Entry types are told apart by their magic code. Besides RocketMQ messages (v1 and v2 magic), the
log is designed to carry *batch entries* (``BATCH_MAGIC``): one entry holding several messages
with consecutive queue offsets, read back verbatim — how the Kafka frontend stores a record batch.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ferrymq.core.remoting.message import (
    BLANK_MAGIC,
    MAGIC_V1,
    MAGIC_V2,
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    SYSFLAG_BORNHOST_V6,
    SYSFLAG_STOREHOST_V6,
    string_to_properties,
    tags_code,
)
from ferrymq.core.store.mapped_file import MappedFile, MappedFileQueue

_HEAD = struct.Struct(">ii")
#: minimum room a segment keeps for the BLANK filler (RocketMQ END_FILE_MIN_BLANK_LENGTH)
END_FILE_MIN_BLANK_LENGTH = 8

#: A batch entry (ferrymq): several messages with consecutive queue offsets in one record.
#: TOTALSIZE i | MAGIC i | QUEUEID i | BASE_QUEUEOFFSET q | PHYSICALOFFSET q | STORETIMESTAMP q |
#: COUNT i | FORMAT h | TOPICLEN h | TOPIC | PAYLOAD (the rest; FORMAT says how to read it)
BATCH_MAGIC = -626843456  # 0xDAA320C0
BATCH_HEAD = struct.Struct(">iiiqqqihh")
BATCH_FORMAT_KAFKA_V2 = 1
#: FORMAT flag: the payload begins with COUNT 8-byte tag codes, one per message, so tag filters
#: apply to the messages of a batch entry and recovery can rebuild their consume-queue units
BATCH_FLAG_TAG_CODES = 0x100


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


class CorruptRecord(ValueError):
    """The bytes at an offset are not a complete, valid entry (a torn tail)."""


class CommitLog:
    """Appends and reads entries; ``write_offset`` is where the next entry goes."""

    def __init__(self, directory: Path, file_size: int) -> None:
        self.files = MappedFileQueue(directory, file_size)
        self.file_size = file_size
        self.write_offset = self.files.min_offset

    @property
    def min_offset(self) -> int:
        return self.files.min_offset

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
            f = self.files.file_for_write(offset)
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

    def truncate_tail(self) -> None:
        """Erase everything after ``write_offset`` (a torn tail); later segments are deleted."""
        self.files.truncate_from(self.write_offset)


def describe_entry(buf: memoryview, pos: int, offset: int, room: int) -> DispatchRequest:
    """Check the entry at ``pos`` (CRC included) and return its dispatch information."""
    try:
        size, magic = _HEAD.unpack_from(buf, pos)
        if size <= 8 or size > room:
            raise CorruptRecord(f"size {size} at {offset}")
        if magic in (MAGIC_V1, MAGIC_V2):
            return _describe_message(buf, pos, offset, size, magic)
        if magic == BATCH_MAGIC:
            return _describe_batch(buf, pos, offset, size)
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise CorruptRecord(f"entry at {offset}: {exc}") from None
    raise CorruptRecord(f"magic {magic:#x} at {offset}")


def _describe_message(buf: memoryview, pos: int, offset: int, size: int, magic: int) -> DispatchRequest:
    crc, queue_id, _flag, queue_offset, phys, sys_flag = struct.unpack_from(">iiiqqi", buf, pos + 8)
    if phys != offset:
        raise CorruptRecord(f"physical offset {phys} stored at {offset}")
    p = pos + 48 + (20 if sys_flag & SYSFLAG_BORNHOST_V6 else 8)
    (store_ts,) = struct.unpack_from(">q", buf, p)
    p += 8 + (20 if sys_flag & SYSFLAG_STOREHOST_V6 else 8) + 12
    (body_len,) = struct.unpack_from(">i", buf, p)
    p += 4
    if body_len < 0 or p + body_len > pos + size:
        raise CorruptRecord(f"body length {body_len} at {offset}")
    if zlib.crc32(buf[p : p + body_len]) & 0x7FFFFFFF != crc:
        raise CorruptRecord(f"body CRC mismatch at {offset}")
    p += body_len
    if magic == MAGIC_V2:
        (topic_len,) = struct.unpack_from(">h", buf, p)
        p += 2
    else:
        topic_len = buf[p]
        p += 1
    topic = bytes(buf[p : p + topic_len]).decode()
    p += topic_len
    (prop_len,) = struct.unpack_from(">h", buf, p)
    p += 2
    if p + prop_len != pos + size:
        raise CorruptRecord(f"record length mismatch at {offset}")
    props = string_to_properties(bytes(buf[p : p + prop_len]).decode()) if prop_len > 0 else {}
    keys = props.get(PROPERTY_KEYS)
    return DispatchRequest(
        offset=offset,
        size=size,
        topic=topic,
        queue_id=queue_id,
        queue_offset=queue_offset,
        count=1,
        tags_code=tags_code(props.get(PROPERTY_TAGS)),
        store_timestamp=store_ts,
        keys=keys.split() if keys else [],
        uniq_key=props.get(PROPERTY_UNIQ_KEY),
    )


def _describe_batch(buf: memoryview, pos: int, offset: int, size: int) -> DispatchRequest:
    _, _, queue_id, base, phys, store_ts, count, fmt, topic_len = BATCH_HEAD.unpack_from(buf, pos)
    if phys != offset or count <= 0:
        raise CorruptRecord(f"bad batch entry at {offset}")
    start = pos + BATCH_HEAD.size
    topic = bytes(buf[start : start + topic_len]).decode()
    codes = None
    if fmt & BATCH_FLAG_TAG_CODES:
        if BATCH_HEAD.size + topic_len + 8 * count > size:
            raise CorruptRecord(f"batch entry at {offset} is shorter than its tag codes")
        codes = list(struct.unpack_from(f">{count}q", buf, start + topic_len))
    return DispatchRequest(
        offset=offset,
        size=size,
        topic=topic,
        queue_id=queue_id,
        queue_offset=base,
        count=count,
        tags_code=0,
        store_timestamp=store_ts,
        keys=[],
        uniq_key=None,
        tags_codes=codes,
    )


def batch_payload_offset(fmt: int, topic_len: int, count: int) -> int:
    """Where a batch entry's payload starts, from the entry's first byte."""
    return BATCH_HEAD.size + topic_len + (8 * count if fmt & BATCH_FLAG_TAG_CODES else 0)


def encode_batch_entry(
    *,
    topic: bytes,
    queue_id: int,
    base_queue_offset: int,
    physical_offset: int,
    store_timestamp: int,
    count: int,
    fmt: int,
    payload: bytes | bytearray | memoryview,
) -> bytes:
    """A batch entry around ``payload``, which is stored verbatim."""
    size = BATCH_HEAD.size + len(topic) + len(payload)
    head = BATCH_HEAD.pack(
        size,
        BATCH_MAGIC,
        queue_id,
        base_queue_offset,
        physical_offset,
        store_timestamp,
        count,
        fmt,
        len(topic),
    )
    return b"".join((head, topic, payload))
