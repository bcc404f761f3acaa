"""Commit-log entries: their two layouts, and the one typed read every reader goes through.

An entry is either a RocketMQ stored message (core/remoting/message.py owns that layout) or a
*batch entry* (ferrymq's): several messages with consecutive queue offsets stored verbatim, how
the Kafka frontend stores a record batch. Readers (the Kafka fetch, the converter for RocketMQ
pulls, the admin message view, recovery) get a ``StoredEntry`` from ``read_entry`` instead of
unpacking headers themselves, so a change of layout touches this module only.

Batch entry layout (big-endian)::

    TOTALSIZE i | MAGIC i | QUEUEID i | BASE_QUEUEOFFSET q | PHYSICALOFFSET q | STORETIMESTAMP q |
    COUNT i | FORMAT h | TOPICLEN h | TOPIC | [COUNT tag codes q, if FORMAT has BATCH_FLAG_TAG_CODES] |
    PAYLOAD (the rest; FORMAT says how to read it)
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from enum import Enum
from typing import NamedTuple

from ferrymq.core.remoting.message import (
    MAGIC_V1,
    MAGIC_V2,
    MessageExt,
    StoredFields,
    decode_stored_fields,
    read_stored_fields,
)

BATCH_MAGIC = -626843456  # 0xDAA320C0
BATCH_HEAD = struct.Struct(">iiiqqqihh")
BATCH_FORMAT_KAFKA_V2 = 1
#: FORMAT flag: the payload begins with COUNT 8-byte tag codes, one per message, so tag filters
#: apply to the messages of a batch entry and recovery can rebuild their consume-queue units
BATCH_FLAG_TAG_CODES = 0x100
_SIZE = struct.Struct(">i")  # TOTALSIZE
#: builds a StoredEntry without the NamedTuple's Python-level __new__ (once per entry served)
_new_tuple = tuple.__new__


class CorruptRecord(ValueError):
    """The bytes at an offset are not a complete, valid entry (a torn tail)."""


class EntryKind(Enum):
    MESSAGE = "message"  # one RocketMQ stored message
    BATCH = "batch"  # a batch entry: COUNT messages stored verbatim


class StoredEntry(NamedTuple):
    """One commit-log entry, read in place: ``view`` is the mapped commit log, never a copy.

    Immutable; a NamedTuple rather than a frozen dataclass because the Kafka fetch builds one per
    entry it serves and a frozen dataclass costs several times as much to construct.
    """

    kind: EntryKind
    offset: int  # commit-log offset
    queue_id: int
    queue_offset: int  # of its first message
    message_count: int  # 1, or a batch entry's COUNT
    store_timestamp: int
    format: int  # a batch entry's format (BATCH_FORMAT_*, flags removed); 0 for a message
    flags: int  # a batch entry's FORMAT flags (BATCH_FLAG_TAG_CODES); 0 for a message
    view: memoryview  # the whole entry
    #: a batch entry's payload (tag codes excluded), served as it lies; a message's whole record
    payload: memoryview
    fields: StoredFields | None  # a message's layout (positions in ``view``)

    @property
    def size(self) -> int:
        return len(self.view)

    @property
    def next_queue_offset(self) -> int:
        """The queue offset after this entry's messages."""
        return self.queue_offset + self.message_count

    @property
    def _payload_at(self) -> int:
        return len(self.view) - len(self.payload)

    @property
    def tag_table(self) -> memoryview:
        """A batch entry's tag codes as stored (COUNT 8-byte codes), empty without them."""
        if not self.flags & BATCH_FLAG_TAG_CODES:
            return self.view[0:0]
        at = self._payload_at
        return self.view[at - 8 * self.message_count : at]

    @property
    def tag_codes(self) -> list[int] | None:
        """A batch entry's tag code per message, if it carries them."""
        table = self.tag_table
        return list(struct.unpack(f">{self.message_count}q", table)) if table else None

    @property
    def topic(self) -> str:
        if self.fields is not None:
            at, n = self.fields.topic_at, self.fields.topic_len
        else:
            at, n = BATCH_HEAD.size, self._payload_at - BATCH_HEAD.size - len(self.tag_table)
        try:
            return bytes(self.view[at : at + n]).decode()
        except UnicodeDecodeError:
            raise CorruptRecord(f"the topic of the entry at {self.offset} is not UTF-8") from None

    def message(self) -> MessageExt:
        """A message entry decoded (the body copied out of the commit log)."""
        if self.fields is None:
            raise ValueError(f"the entry at {self.offset} is a batch entry, not a message")
        try:
            return decode_stored_fields(self.view, self.fields)
        except (struct.error, ValueError) as exc:  # bad UTF-8, a bad IPv6 host
            raise CorruptRecord(f"the message at {self.offset}: {exc}") from None


def read_entry(buf: bytes | memoryview, pos: int = 0) -> StoredEntry:
    """The entry at ``pos`` of ``buf``, headers checked (not the body CRC); CorruptRecord if none."""
    view = memoryview(buf)
    try:
        (size,) = _SIZE.unpack_from(view, pos)
    except struct.error:
        raise CorruptRecord(f"no entry at {pos}") from None
    if size <= 8 or pos + size > len(view):
        raise CorruptRecord(f"size {size} at {pos}")
    return entry_of(view[pos : pos + size])


def entry_of(view: memoryview) -> StoredEntry:
    """The entry that ``view`` holds exactly (how the store reads one a consume-queue unit points
    at); CorruptRecord if it holds none."""
    try:
        size, magic, queue_id, base, phys, store_ts, count, fmt, topic_len = BATCH_HEAD.unpack_from(view)
        if size != len(view):
            raise CorruptRecord(f"size {size} of an entry of {len(view)} bytes")
        if magic == BATCH_MAGIC:
            tagged = fmt & BATCH_FLAG_TAG_CODES
            payload_at = BATCH_HEAD.size + topic_len + (8 * count if tagged else 0)
            if count <= 0 or topic_len < 0 or payload_at > size:
                raise CorruptRecord(f"bad batch entry at {phys}")
            return _new_tuple(
                StoredEntry,
                (
                    EntryKind.BATCH,
                    phys,
                    queue_id,
                    base,
                    count,
                    store_ts,
                    fmt & ~BATCH_FLAG_TAG_CODES,
                    tagged,
                    view,
                    view[payload_at:],
                    None,
                ),
            )
        if magic in (MAGIC_V1, MAGIC_V2):
            f = read_stored_fields(view)
            if f.props_at + f.props_len != size:
                raise CorruptRecord(f"record length mismatch at {f.phys}")
            head = (EntryKind.MESSAGE, f.phys, f.queue_id, f.queue_offset, 1, f.store_timestamp)
            return _new_tuple(StoredEntry, (*head, 0, 0, view, view, f))
    except CorruptRecord:
        raise
    except (struct.error, ValueError) as exc:
        raise CorruptRecord(f"entry: {exc}") from None
    raise CorruptRecord(f"magic {magic:#x}")


def iter_entries(buf: bytes | memoryview) -> Iterator[StoredEntry]:
    """The entries of a buffer holding whole entries back to back (a pull's buffers, a looked-up
    entry); unknown ones are skipped, a torn end ends the walk."""
    view = memoryview(buf)
    pos, n = 0, len(view)
    while pos + 8 <= n:
        (size,) = _SIZE.unpack_from(view, pos)
        if size <= 0 or pos + size > n:
            return
        try:
            yield read_entry(view, pos)
        except CorruptRecord:
            pass
        pos += size


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
