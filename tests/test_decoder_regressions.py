"""Inputs the fuzzers (fuzz/, tests/fuzz/) found that escaped a decoder's documented error, each
reduced to its cause: the decoder now answers it with the error its callers map to the protocol's
answer (CorruptRecord for a bad stored entry, CorruptBatch for CORRUPT_MESSAGE, FrameError for a
closed connection)."""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
import zlib

import crc32c
import pytest

from ferrymq.core.remoting.message import encode_stored_message, read_stored_fields
from ferrymq.core.store.entry import (
    BATCH_FORMAT_KAFKA_V2,
    CorruptRecord,
    encode_batch_entry,
    entry_of,
    read_entry,
)
from ferrymq.gateway.kafka import mapping
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.framing import FrameError, parse_header


def _message(topic: bytes = b"T") -> bytes:
    return encode_stored_message(
        topic=topic,
        body=b"body",
        properties=b"",
        queue_id=0,
        queue_offset=0,
        physical_offset=0,
        born_timestamp=1,
        born_host=b"\x7f\0\0\1",
        born_port=1,
        store_timestamp=2,
        store_host=b"\x7f\0\0\1",
        store_port=2,
    )


def test_a_stored_message_whose_body_fills_the_record_is_corrupt_not_an_index_error() -> None:
    """TOTALSIZE ends right after the body: no room for TOPICLEN (was IndexError from buf[p])."""
    msg = bytearray(_message())
    end_of_body = 84 + 4 + 4
    torn = msg[:end_of_body]
    struct.pack_into(">i", torn, 0, end_of_body)
    with pytest.raises(ValueError, match="body length"):
        read_stored_fields(bytes(torn))
    with pytest.raises(CorruptRecord):
        entry_of(memoryview(bytes(torn)))


def test_an_entry_topic_that_is_not_utf8_is_a_corrupt_record() -> None:
    batch = rb.build_batch(0, [(0, 1, None, b"v", [])])
    raw = encode_batch_entry(
        topic=b"t\xff",
        queue_id=0,
        base_queue_offset=0,
        physical_offset=0,
        store_timestamp=0,
        count=1,
        fmt=BATCH_FORMAT_KAFKA_V2,
        payload=batch,
    )
    entry = read_entry(raw)
    with pytest.raises(CorruptRecord, match="not UTF-8"):
        _ = entry.topic  # was UnicodeDecodeError


def test_a_message_entry_with_a_bad_property_string_is_a_corrupt_record() -> None:
    msg = bytearray(_message())
    msg[-2:] = b"\x00\x01\xff"  # PROPLEN 1, one byte that is not UTF-8
    struct.pack_into(">i", msg, 0, len(msg))
    with pytest.raises(CorruptRecord):
        read_entry(bytes(msg)).message()  # was UnicodeDecodeError


def test_a_request_header_whose_tagged_fields_end_early_is_a_frame_error() -> None:
    frame = struct.pack(">hhih", 3, 12, 1, -1) + b"\x01"  # one tagged field, then nothing
    with pytest.raises(FrameError, match="tagged fields"):
        parse_header(frame, flexible=True)  # was kio's BufferUnderflow


def _recompressed(codec: int, records: bytes) -> bytes:
    """A batch with a valid CRC whose attributes claim ``codec`` over ``records``."""
    b = bytearray(rb.build_batch(0, [(0, 1, b"k", b"v", [])]))
    b[rb.HEADER_SIZE :] = records
    struct.pack_into(">i", b, 8, len(b) - 12)
    struct.pack_into(">h", b, 21, codec)
    struct.pack_into(">I", b, 17, crc32c.crc32c(bytes(b[rb.CRC_START :])))
    return bytes(b)


@pytest.mark.parametrize("codec", [rb.GZIP, rb.SNAPPY, rb.LZ4, rb.ZSTD])
@pytest.mark.parametrize("records", [b"a`\x00garbage", b"", rb.compress(rb.GZIP, b"x" * 100)[:-6]])
def test_records_that_do_not_decompress_are_a_corrupt_batch(codec: int, records: bytes) -> None:
    """What Produce does (split, then the tag scan that decompresses): CorruptBatch, answered
    CORRUPT_MESSAGE (gzip raised BadGzipFile/EOFError, cramjam DecompressionError)."""
    data = _recompressed(codec, records)
    with pytest.raises(rb.CorruptBatch):
        for info in rb.split_batches(data):
            mapping.batch_tag_codes(data, info)


def test_a_forged_array_length_is_refused_before_kio_allocates_for_it() -> None:
    """ListGroups v5 whose states_filter claims 2^32-2 elements in a 30-byte request. kio's native
    reader reserved room for them first, and the failed allocation aborted the whole process (run
    in a child so that the old behaviour fails this test instead of killing the test run)."""
    code = """
import struct
from ferrymq.gateway.kafka import apis
from ferrymq.gateway.kafka.framing import FrameError, parse_header
frame = struct.pack('>hhih', 16, 5, 7, 4) + b'fuzz' + b'\\x00' + b'\\xff\\xff\\xff\\xff\\x0f' + b'\\x01\\x00'
spec = apis.API_HANDLERS[16]
header = parse_header(frame, spec.flexible(5))
try:
    spec.reader(5)(frame, header.body_offset)
except FrameError as exc:
    print('refused:', exc)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused: array states_filter of 4294967294 elements" in proc.stdout


_BOMB = 150 * 1024 * 1024  # zeros: past the default 32 MiB cap (DEFAULT_MAX_INFLATED)
#: the output buffer grows eightfold up to the cap; an earlier one is freed before the next
_CAPPED = rb.DEFAULT_MAX_INFLATED + (rb.DEFAULT_MAX_INFLATED >> 3) + (8 << 20)


@pytest.mark.parametrize(
    "codec, records, peak_limit",
    [
        # inflated into growing buffers up to the cap, never past it
        pytest.param(rb.GZIP, lambda: zlib_gzip(b"\0" * _BOMB), _CAPPED, id="gzip"),
        pytest.param(rb.ZSTD, lambda: rb.compress(rb.ZSTD, b"\0" * _BOMB), _CAPPED, id="zstd"),
        pytest.param(rb.LZ4, lambda: rb.compress(rb.LZ4, b"\0" * _BOMB), _CAPPED, id="lz4"),
        pytest.param(rb.SNAPPY, lambda: b"\xff\xff\xff\xff\x0f\x00\x00", 8 << 20, id="snappy-states-4GiB"),
    ],
)
def test_a_compression_bomb_is_refused_before_it_is_inflated(
    codec: int, records: object, peak_limit: int
) -> None:
    """Records that decompress past the cap are MESSAGE_TOO_LARGE (InflateLimit), refused once the
    cap is reached (a snappy block from its stated length, before anything is allocated): the
    produce path used to inflate all 150 MiB (and a snappy header's 4 GiB)."""
    data = _recompressed(codec, records())  # type: ignore[operator]
    tracemalloc.start()
    try:
        with pytest.raises(rb.InflateLimit, match=r"more than"):
            for info in rb.split_batches(data):
                mapping.batch_tag_codes(data, info)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < peak_limit + 2 * len(data), f"peak {peak >> 20} MiB while refusing"


def test_gzip_inflates_at_most_its_limit() -> None:
    bomb = zlib_gzip(b"\0" * (16 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(rb.InflateLimit):
            rb.decompress(rb.GZIP, bomb, limit=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak >> 20} MiB for a 1 MiB limit"


def zlib_gzip(raw: bytes) -> bytes:
    """gzip at level 1 (fast to build in a test)."""
    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    return c.compress(raw) + c.flush()
