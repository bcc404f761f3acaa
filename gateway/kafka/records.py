"""Kafka RecordBatch v2, sans-IO: check, patch, read records, build batches.

The broker handles a produced batch through its 61-byte header only: size, magic, CRC-32C
(over attributes..end, so patching baseOffset and partitionLeaderEpoch keeps it valid), record
count, producer fields. Records are parsed (and decompressed, with cramjam) only where the
protocol needs them: cross-protocol reads, tag indexing of batches carrying the tag header, and
ListOffsets by timestamp inside a batch. Layout (big-endian)::

    baseOffset q | batchLength i | partitionLeaderEpoch i | magic b | crc I | attributes h |
    lastOffsetDelta i | baseTimestamp q | maxTimestamp q | producerId q | producerEpoch h |
    baseSequence i | recordCount i | records...

A record: length varint | attributes b | timestampDelta varlong | offsetDelta varint |
key (varint length, -1 = null) | value (same) | header count varint | headers (key, value).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import cramjam
import crc32c

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
CRC_START = 21  # attributes: what the CRC covers starts here
_BATCH_LENGTH = struct.Struct(">i")
_PATCH = struct.Struct(">qii")  # baseOffset, batchLength, partitionLeaderEpoch
_TIMES = struct.Struct(">qq")

COMPRESSION_MASK = 0x07
NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
TIMESTAMP_LOG_APPEND = 0x08
TRANSACTIONAL = 0x10
CONTROL = 0x20
NO_PRODUCER_ID = -1
XERIAL_MAGIC = b"\x82SNAPPY\x00"


class CorruptBatch(ValueError):
    """Bytes that are not a valid record batch (size, CRC): CORRUPT_MESSAGE."""


class InflateLimit(ValueError):
    """Compressed records that inflate beyond the broker's cap: MESSAGE_TOO_LARGE."""


class InvalidBatch(ValueError):
    """A well-formed batch the broker does not accept (magic, counts, control): INVALID_RECORD."""


@dataclass(slots=True)
class BatchInfo:
    """The header fields the broker uses, and where the batch lies in its buffer."""

    start: int
    size: int  # whole batch, 12 + batchLength
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    count: int

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def last_sequence(self) -> int:
        """Sequences wrap at 2^31 (Kafka's DefaultRecordBatch.incrementSequence)."""
        return (self.base_sequence + self.last_offset_delta) % 0x80000000


def split_batches(data: bytes | memoryview) -> list[BatchInfo]:
    """Check every batch in a produce request's records (size, magic, CRC, counts)."""
    out: list[BatchInfo] = []
    pos, n = 0, len(data)
    if n == 0:
        raise CorruptBatch("no record batch")
    while pos < n:
        if n - pos < HEADER_SIZE:
            raise CorruptBatch(f"{n - pos} bytes left, a batch header needs {HEADER_SIZE}")
        (
            _base,
            length,
            _epoch,
            magic,
            crc,
            attributes,
            last_delta,
            base_ts,
            max_ts,
            pid,
            pepoch,
            base_seq,
            count,
        ) = HEADER.unpack_from(data, pos)
        size = length + 12
        if length < HEADER_SIZE - 12 or pos + size > n:
            raise CorruptBatch(f"batch length {length} does not fit the {n - pos} bytes left")
        if magic != 2:
            if magic in (0, 1):
                raise InvalidBatch(f"message format v{magic}: only record batches v2 are accepted")
            raise CorruptBatch(f"magic {magic}")
        if crc32c.crc32c(data[pos + CRC_START : pos + size]) != crc:
            raise CorruptBatch("CRC-32C mismatch")
        if count <= 0 or last_delta != count - 1:
            raise InvalidBatch(f"record count {count} with last offset delta {last_delta}")
        if attributes & CONTROL:
            raise InvalidBatch("control batches are written by the transaction coordinator only")
        out.append(
            BatchInfo(pos, size, attributes, last_delta, base_ts, max_ts, pid, pepoch, base_seq, count)
        )
        pos += size
    return out


def patch_base(batch: bytearray, base_offset: int, leader_epoch: int = 0) -> None:
    """Assign offsets (and the leader epoch) in place; the CRC does not cover them."""
    (_, length, _) = _PATCH.unpack_from(batch, 0)
    _PATCH.pack_into(batch, 0, base_offset, length, leader_epoch)


def read_header(buf: bytes | memoryview, pos: int = 0) -> BatchInfo:
    """The header of a stored (already checked) batch."""
    (_, length, _, _, _, attributes, last_delta, base_ts, max_ts, pid, pepoch, base_seq, count) = (
        HEADER.unpack_from(buf, pos)
    )
    return BatchInfo(pos, length + 12, attributes, last_delta, base_ts, max_ts, pid, pepoch, base_seq, count)


def base_offset_of(buf: bytes | memoryview, pos: int = 0) -> int:
    return int(struct.unpack_from(">q", buf, pos)[0])


def timestamps_of(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """(baseTimestamp, maxTimestamp) of the batch at ``pos``."""
    base, mx = _TIMES.unpack_from(buf, pos + 27)
    return int(base), int(mx)


# ---- compression ---------------------------------------------------------------------------


#: how far a compressed batch may inflate by default (BrokerConfig kafkaMaxInflatedBatchBytes)
DEFAULT_MAX_INFLATED = 32 * 1024 * 1024
#: the first output buffer is this many times the compressed size (at least FIRST_BUFFER), and
#: grows eightfold up to the cap: a bomb costs at most about 1.15 times the cap in work
FIRST_RATIO = 8
FIRST_BUFFER = 64 * 1024
_BUFFER_FULL = "failed to write whole buffer"  # cramjam's words for output beyond the buffer
_STREAMS = {GZIP: cramjam.gzip, LZ4: cramjam.lz4, ZSTD: cramjam.zstd}


def decompress(codec: int, data: bytes | memoryview, limit: int = DEFAULT_MAX_INFLATED) -> bytes:
    """The records of a compressed batch, inflated to at most ``limit`` bytes (InflateLimit
    beyond: 8 KiB of zstd can inflate to 256 MiB); snappy may be raw (librdkafka) or
    xerial-framed (Java). Data that does not inflate is a CorruptBatch."""
    if codec == NONE:
        return bytes(data)
    if not data:  # Python's gzip reads nothing as nothing; Java's does not
        raise CorruptBatch(f"no compressed records (codec {codec})")
    if codec == SNAPPY:
        if bytes(data[:8]) == XERIAL_MAGIC:
            return _xerial_decompress(data, limit)
        return _snappy_block(data, limit)
    stream = _STREAMS.get(codec)
    if stream is None:
        raise InvalidBatch(f"unknown compression codec {codec}")
    size = min(limit, first_buffer(data))
    while True:
        out = bytearray(size)
        try:
            n = stream.decompress_into(data, out)
        except cramjam.DecompressionError as exc:
            if str(exc) != _BUFFER_FULL:
                raise CorruptBatch(f"records do not inflate: {exc}") from None
            if size >= limit:
                raise InflateLimit(f"records inflate to more than {limit} bytes") from None
            del out  # before the next, larger buffer
            size = min(limit, size * 8)
            continue
        return bytes(memoryview(out)[:n])


def first_buffer(data: bytes | memoryview) -> int:
    """How far compressed ``data`` is inflated at first: cheap, and enough for most batches."""
    return max(FIRST_BUFFER, FIRST_RATIO * len(data))


def _snappy_block(data: bytes | memoryview, limit: int) -> bytes:
    """A raw snappy block, its length (the preamble) checked against ``limit`` first."""
    try:
        size = cramjam.snappy.decompress_raw_len(data)
        if size > limit:
            raise InflateLimit(f"snappy records claim {size} bytes, more than {limit}")
        return bytes(cramjam.snappy.decompress_raw(data))
    except cramjam.DecompressionError as exc:
        raise CorruptBatch(f"records do not inflate: {exc}") from None


def _xerial_decompress(data: bytes | memoryview, limit: int) -> bytes:
    """Xerial snappy-java framing: 16-byte header, then (int32 length, raw snappy block)*."""
    out = []
    pos, n, total = 16, len(data), 0
    while pos + 4 <= n:
        (size,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if size < 0 or pos + size > n:
            raise CorruptBatch("truncated xerial snappy block")
        block = _snappy_block(data[pos : pos + size], limit - total)
        total += len(block)
        out.append(block)
        pos += size
    return b"".join(out)


def compress(codec: int, data: bytes) -> bytes:
    if codec == NONE:
        return data
    if codec == GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == SNAPPY:
        return bytes(cramjam.snappy.compress_raw(data))
    if codec == LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(f"unknown compression codec {codec}")


def records_bytes(batch: bytes | memoryview, info: BatchInfo, limit: int = DEFAULT_MAX_INFLATED) -> bytes:
    """The records section of the batch at ``info.start``, decompressed (at most ``limit`` bytes)."""
    body = memoryview(batch)[info.start + HEADER_SIZE : info.start + info.size]
    return decompress(info.compression, body, limit)


# ---- records -------------------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    offset_delta: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint (Kafka's signed varint/varlong)."""
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptBatch("varint too long")


def _bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    n, pos = _varint(buf, pos)
    if n < 0:
        return None, pos
    if pos + n > len(buf):
        raise CorruptBatch("record field runs past the batch")
    return buf[pos : pos + n], pos + n


def iter_records(records: bytes, count: int, base_timestamp: int) -> Iterator[Record]:
    """Parse ``count`` records from an (uncompressed) records section."""
    pos = 0
    try:
        for _ in range(count):
            length, pos = _varint(records, pos)
            end = pos + length
            pos += 1  # attributes
            ts_delta, pos = _varint(records, pos)
            offset_delta, pos = _varint(records, pos)
            key, pos = _bytes(records, pos)
            value, pos = _bytes(records, pos)
            n_headers, pos = _varint(records, pos)
            headers: list[tuple[str, bytes | None]] = []
            for _ in range(n_headers):
                hk, pos = _bytes(records, pos)
                hv, pos = _bytes(records, pos)
                headers.append(((hk or b"").decode("utf-8", "replace"), hv))
            if pos != end:
                raise CorruptBatch("record length does not match its fields")
            yield Record(offset_delta, base_timestamp + ts_delta, key, value, headers)
    except IndexError:
        raise CorruptBatch("records end early") from None


def _put_varint(out: bytearray, value: int) -> None:
    v = (value << 1) ^ (value >> 63)
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _put_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        out.append(1)  # zig-zag -1
        return
    _put_varint(out, len(value))
    out += value


def encode_record(
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
) -> bytes:
    body = bytearray(b"\0")  # attributes
    _put_varint(body, timestamp_delta)
    _put_varint(body, offset_delta)
    _put_bytes(body, key)
    _put_bytes(body, value)
    _put_varint(body, len(headers))
    for hk, hv in headers:
        _put_bytes(body, hk.encode())
        _put_bytes(body, hv)
    out = bytearray()
    _put_varint(out, len(body))
    return bytes(out + body)


#: (offset delta, timestamp, key, value, headers)
RecordTuple = tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]


def build_batch(
    base_offset: int,
    records: list[RecordTuple],
    *,
    codec: int = NONE,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    leader_epoch: int = 0,
    attributes: int = 0,
    last_offset_delta: int | None = None,
) -> bytes:
    """A batch of (offset delta, timestamp, key, value, headers) records, CRC computed;
    ``attributes`` adds flags (TRANSACTIONAL, CONTROL) to the codec. ``last_offset_delta``
    (default: the last record's) keeps a compacted batch's span, as Kafka's cleaner does."""
    if not records:
        raise ValueError("a batch needs at least one record")
    base_ts = min(r[1] for r in records)
    max_ts = max(r[1] for r in records)
    body = b"".join(encode_record(d, ts - base_ts, k, v, h) for d, ts, k, v, h in records)
    body = compress(codec, body)
    last_delta = records[-1][0] if last_offset_delta is None else last_offset_delta
    after_crc = struct.pack(
        ">hiqqqhii",
        codec | attributes,
        last_delta,
        base_ts,
        max_ts,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    crc = crc32c.crc32c(body, crc32c.crc32c(after_crc))
    length = HEADER_SIZE - 12 + len(body)
    return struct.pack(">qiibI", base_offset, length, leader_epoch, 2, crc) + after_crc + body
