"""Decompression bombs: compressed Kafka batches inflate only up to a cap.

A produced batch is inflated (to look for the ``rocketmq.tags`` header) and a stored one is
inflated for RocketMQ consumers, ListOffsets by timestamp and the admin's view. 8 KiB of zstd
inflates to 256 MiB; each codec's bomb is refused (MESSAGE_TOO_LARGE, logged with the peer)
after inflating at most ``kafkaMaxInflatedBatchBytes`` (default 32 MiB), the broker's memory
high-water mark stays within a stated bound, and a bystander client keeps working.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import cramjam
import crc32c
import lz4.frame
import pytest
import zstandard
from kio.schema.errors import ErrorCode

from ferrymq.cli.testing import FerryServer
from ferrymq.core.broker.broker import Broker
from ferrymq.core.remoting.message import decode_stored_messages, tags_code
from ferrymq.gateway.kafka import mapping
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.test_kafka_codec import stored_batch
from tests.test_kafka_frontend import (
    TOPIC,
    ProduceRequest,
    Wire,
    batch,
    create_topic,
    fetch,
    produce,
    produced,
    records_of,
    run,
)

MIB = 1 << 20
CHUNK = b"\0" * MIB


def _varint(value: int) -> bytes:
    out = bytearray()
    v = (value << 1) ^ (value >> 63)
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _record_parts(value_size: int) -> tuple[bytes, bytes]:
    """The bytes before and after a record's ``value_size`` zero bytes of value."""
    head = b"\0" + _varint(0) + _varint(0) + _varint(-1) + _varint(value_size)
    tail = _varint(0)
    length = len(head) + value_size + len(tail)
    return _varint(length) + head, tail


def streamed(feed: Callable[[bytes], bytes], finish: Callable[[], bytes], inflated: int) -> bytes:
    """One record of ``inflated`` zero bytes, compressed a MiB at a time (never held whole)."""
    head, tail = _record_parts(inflated)
    out = [feed(head)]
    for _ in range(inflated // MIB):
        out.append(feed(CHUNK))
    out += [feed(tail), finish()]
    return b"".join(out)


def zstd_bomb(inflated: int) -> bytes:
    c = zstandard.ZstdCompressor(level=19).compressobj()
    return streamed(c.compress, c.flush, inflated)


def gzip_bomb(inflated: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return streamed(c.compress, c.flush, inflated)


def lz4_bomb(inflated: int) -> bytes:
    c = lz4.frame.LZ4FrameCompressor(compression_level=16)
    first = c.begin()
    return first + streamed(c.compress, c.flush, inflated)


def snappy_raw_liar(inflated: int) -> bytes:
    """Raw snappy whose preamble claims ``inflated`` bytes (the allocation a decoder trusts)."""
    out = bytearray()
    v = inflated
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out) + bytes(cramjam.snappy.compress_raw(b"\0" * 100))[1:]


def snappy_xerial_bomb(inflated: int) -> bytes:
    """Xerial framing of real 64 KiB zero blocks (about 21:1 each)."""
    block = bytes(cramjam.snappy.compress_raw(b"\0" * 65536))
    framed = struct.pack(">i", len(block)) + block
    return b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + framed * (inflated // 65536)


def bomb_batch(codec: int, body: bytes) -> bytes:
    """A well-formed one-record batch (CRC right) with ``body`` as its compressed records."""
    after_crc = struct.pack(">hiqqqhii", codec, 0, 1_700_000_000_000, 1_700_000_000_000, -1, -1, -1, 1)
    crc = crc32c.crc32c(body, crc32c.crc32c(after_crc))
    length = rb.HEADER_SIZE - 12 + len(body)
    return struct.pack(">qiibI", 0, length, 0, 2, crc) + after_crc + body


BOMBS = {
    "zstd": (rb.ZSTD, lambda: zstd_bomb(256 * MIB)),
    "gzip": (rb.GZIP, lambda: gzip_bomb(256 * MIB)),
    "lz4": (rb.LZ4, lambda: lz4_bomb(128 * MIB)),
    "snappy-raw-preamble": (rb.SNAPPY, lambda: snappy_raw_liar(256 * MIB)),
}


# ---- the codec layer ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*BOMBS, "snappy-xerial"])
def test_every_codec_stops_inflating_at_the_cap(name: str) -> None:
    if name == "snappy-xerial":
        codec, body = rb.SNAPPY, snappy_xerial_bomb(8 * MIB)
    else:
        codec, make = BOMBS[name]
        body = make()
    if name == "zstd":
        assert len(body) < 16 * 1024  # the bomb of the issue: a few KiB to 256 MiB
    started = time.perf_counter()
    with pytest.raises(rb.InflateLimit):
        rb.decompress(codec, body, 4 * MIB)
    assert time.perf_counter() - started < 5  # generous: stops at the cap, never inflates it all


@pytest.mark.parametrize("codec", [rb.GZIP, rb.SNAPPY, rb.LZ4, rb.ZSTD])
def test_under_the_cap_every_codec_still_inflates(codec: int) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    assert rb.decompress(codec, rb.compress(codec, data), MIB) == data
    with pytest.raises(rb.InflateLimit):
        rb.decompress(codec, rb.compress(codec, data), MIB - 1)


def test_a_corrupt_compressed_body_is_corrupt_not_too_large() -> None:
    body = bytearray(rb.compress(rb.ZSTD, b"x" * 100_000))
    body[len(body) // 2 :] = b"\xff" * (len(body) - len(body) // 2)
    with pytest.raises(rb.CorruptBatch):
        rb.decompress(rb.ZSTD, bytes(body), MIB)


def test_a_rocketmq_pull_skips_an_over_cap_batch_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    small = bomb_batch(rb.NONE, _record_parts(5)[0] + b"hello" + _record_parts(5)[1])
    big = bomb_batch(rb.ZSTD, zstd_bomb(64 * MIB))
    payload = bytearray(big + small)
    rb.patch_base(memoryview(payload)[len(big) :], 1)  # type: ignore[arg-type]
    entry = stored_batch(bytes(payload), queue_id=0, base=0, count=2)
    with caplog.at_level(logging.WARNING, "ferrymq.kafka"):
        body = mapping.to_stored_messages(entry, 0, None, b"\x7f\0\0\1", 1, 4 * MIB)
    assert [(m.queue_offset, m.body) for m in decode_stored_messages(body)] == [(1, b"hello")]
    assert "skipped" in caplog.text


# ---- produce, in-process -------------------------------------------------------------------------


def test_produced_bombs_are_refused_and_the_partition_stays_writable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        wire = await Wire.open(f.port)
        for codec, body in ((rb.ZSTD, zstd_bomb(64 * MIB)), (rb.SNAPPY, snappy_xerial_bomb(8 * MIB))):
            assert (await produced(wire, bomb_batch(codec, body)))[0] == ErrorCode.message_too_large
        assert broker.store.max_offset(TOPIC, 0) == 0
        assert await produced(wire, batch(2)) == (ErrorCode.none, 0)

    with caplog.at_level(logging.WARNING, "ferrymq.kafka"):
        run(tmp_path, body, kafka_max_inflated_batch_bytes=4 * MIB)
    assert "inflate" in caplog.text and "127.0.0.1" in caplog.text


# ---- produce, against a ferrymq process ----------------------------------------------------------


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


#: how far the broker's peak RSS (VmHWM) may rise over the bombs: the 32 MiB cap, the buffer of
#: the attempt before it and the requests themselves, with room to spare. Inflating one bomb
#: whole (256 MiB and its copy) would take it past 500 MiB.
HWM_GROWTH_LIMIT_KIB = 128 * 1024


#: the slowest bystander produce while bombs are refused (inflating is off the event loop; one
#: bomb inflated on it takes about 0.1 s, a volley of twelve over a second)
BYSTANDER_LIMIT_S = 0.5


async def _answers(wire: Wire, n: int) -> list[ErrorCode]:
    out = []
    for _ in range(n):
        _, response = await wire.receive(ProduceRequest)
        out.append(ErrorCode(response.responses[0].partition_responses[0].error_code))
    return out


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/<pid>/status")
def test_bombs_against_a_live_broker_are_refused_within_a_memory_bound(ferrymq_server: FerryServer) -> None:
    bombs = {name: bomb_batch(codec, make()) for name, (codec, make) in BOMBS.items()}
    assert ferrymq_server.proc is not None
    pid = ferrymq_server.proc.pid

    async def main() -> None:
        port = ferrymq_server.kafka_port
        bystander = await Wire.open(port)
        assert (await bystander.call(create_topic(TOPIC, 1))).topics[0].error_code == ErrorCode.none
        assert await produced(bystander, batch(1)) == (ErrorCode.none, 0)
        hwm_before = _status_kib(pid, "VmHWM")
        attacker = await Wire.open(port)
        for name, records in bombs.items():
            error, _ = await produced(attacker, records)
            assert error == ErrorCode.message_too_large, name
            # the bystander's produce and fetch work between the bombs
            assert (await produced(bystander, batch(1)))[0] == ErrorCode.none
        growth = _status_kib(pid, "VmHWM") - hwm_before
        assert growth < HWM_GROWTH_LIMIT_KIB, f"VmHWM grew {growth} KiB"
        # a volley of pipelined bombs: the bystander's round trips meanwhile stay short
        volley = [attacker.send(produce(records)) for records in list(bombs.values()) * 3]
        answers = asyncio.ensure_future(_answers(attacker, len(volley)))
        slowest = 0.0
        while not answers.done():
            started = time.perf_counter()
            assert (await produced(bystander, batch(1)))[0] == ErrorCode.none
            slowest = max(slowest, time.perf_counter() - started)
        assert await answers == [ErrorCode.message_too_large] * len(volley)
        assert slowest < BYSTANDER_LIMIT_S, f"a bystander produce took {slowest:.3f} s"
        part = (await bystander.call(fetch(0, min_bytes=1))).responses[0].partitions[0]
        assert len(records_of(part.records)) >= 1 + len(bombs)
        attacker.close()
        bystander.close()

    asyncio.run(main())
    log_text = ferrymq_server.log_path.read_text()
    assert "inflate" in log_text


def test_a_large_inflate_off_the_event_loop_keeps_pipelined_produces_in_order(tmp_path: Path) -> None:
    """A legitimate batch that inflates far beyond its size (inflated in a thread) is stored, tag
    indexed, before the small batches pipelined after it on the same connection."""
    big_value = b"\0" * (4 * MIB)
    tagged = [(0, 1_700_000_000_000, b"k", big_value, [(mapping.TAGS_HEADER, b"TagA")])]
    big = rb.build_batch(0, tagged, codec=rb.ZSTD)
    assert len(big) * rb.FIRST_RATIO < len(big_value)  # too much for the first, inline attempt

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        wire = await Wire.open(f.port)
        sent = [wire.send(produce(big))] + [wire.send(produce(batch(1, first=i))) for i in range(5)]
        answers = []
        for _ in sent:
            _, response = await wire.receive(ProduceRequest)
            p = response.responses[0].partition_responses[0]
            answers.append((ErrorCode(p.error_code), p.base_offset))
        assert answers == [(ErrorCode.none, i) for i in range(6)]
        unit = broker.store.consume_queue(TOPIC, 0).unit(0)
        assert unit is not None and unit[2] == tags_code("TagA")

    run(tmp_path, body)
