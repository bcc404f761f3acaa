"""Compressed bodies in the Python client: LZ4 and ZSTD bodies (RocketMQ 5's compression bits,
sysFlag bits 8-10: 1 LZ4 frame, 2 ZSTD frame, 3 or 0 zlib) are inflated before delivery, and the
producer compresses with the codec the user picks, flagged so any RocketMQ 5 consumer inflates it."""

from __future__ import annotations

import time
import zlib

import lz4.frame
import pytest
import zstandard

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.client import LitePullConsumer, Message, Producer, ValidationError, compression
from ferrymq.client._pull import inflate
from ferrymq.core.remoting.message import SYSFLAG_COMPRESSED, MessageExt

BODY = b"ferrymq " * 2000  # 16 000 bytes, over the 4 KiB compression threshold


def _zstd_decompress(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


CODECS = {
    "LZ4": (1, lz4.frame.compress, lz4.frame.decompress),
    "ZSTD": (
        2,
        zstandard.ZstdCompressor().compress,
        lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
    ),
    "ZLIB": (3, zlib.compress, zlib.decompress),
}


def _stored(body: bytes, sys_flag: int) -> MessageExt:
    return MessageExt(
        topic="T",
        body=body,
        properties={},
        queue_id=0,
        queue_offset=0,
        commit_log_offset=0,
        sys_flag=sys_flag,
        born_timestamp=0,
        born_host="127.0.0.1:1",
        store_timestamp=0,
        store_host="127.0.0.1:2",
        reconsume_times=0,
        flag=0,
        body_crc=0,
        offset_msg_id="X",
        store_size=0,
    )


@pytest.mark.parametrize("codec", list(CODECS))
def test_inflates_every_rocketmq_codec(codec: str) -> None:
    kind, compress, _ = CODECS[codec]
    m = _stored(compress(BODY), SYSFLAG_COMPRESSED | kind << 8)
    inflate(m)
    assert m.body == BODY


def test_legacy_zlib_flag_without_codec_bits() -> None:
    m = _stored(zlib.compress(BODY), SYSFLAG_COMPRESSED)
    inflate(m)
    assert m.body == BODY


def test_a_body_that_does_not_inflate_is_delivered_as_stored() -> None:
    m = _stored(b"not lz4 at all", SYSFLAG_COMPRESSED | 1 << 8)
    inflate(m)
    assert m.body == b"not lz4 at all"


def test_lz4_frames_have_independent_blocks() -> None:
    """Java's LZ4FrameInputStream (what RocketMQ's consumer inflates with) refuses a frame of
    linked blocks: the frame descriptor's FLG byte must have B.Indep (bit 5) set."""
    body, flag = compression.compress(BODY, "LZ4", 5)
    assert body[:4] == bytes.fromhex("04224d18") and body[4] & 0x20
    assert flag == SYSFLAG_COMPRESSED | 1 << 8


def test_unknown_codec_is_refused() -> None:
    with pytest.raises(ValidationError):
        Producer(namesrv_addr="127.0.0.1:1", compress_type="SNAPPY")


@pytest.mark.parametrize("codec", list(CODECS))
def test_producer_compresses_with_the_chosen_codec(ferrymq_broker: EmbeddedBroker, codec: str) -> None:
    kind, _, decompress = CODECS[codec]
    topic = f"compressed-{codec.lower()}"
    ferrymq_broker.create_topic(topic, queues=1)
    producer = Producer(namesrv_addr=ferrymq_broker.namesrv_addr, group="cp", compress_type=codec)
    producer.start()
    try:
        producer.send(Message(topic, BODY))
        producer.send(Message(topic, b"small"))  # under compress_over: as is
    finally:
        producer.shutdown()
    stored = ferrymq_broker.messages(topic)
    assert stored[0].sys_flag & SYSFLAG_COMPRESSED and (stored[0].sys_flag >> 8) & 0x7 == kind
    assert decompress(stored[0].body) == BODY  # the codec's own library reads it
    assert not stored[1].sys_flag & SYSFLAG_COMPRESSED and stored[1].body == b"small"

    consumer = LitePullConsumer(ferrymq_broker.namesrv_addr, f"cc-{codec}", consume_from="FIRST_OFFSET")
    consumer.subscribe(topic)
    consumer.start()
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline:
            got += [m.body for m in consumer.poll(timeout=1.0)]
    finally:
        consumer.shutdown()
    assert got == [BODY, b"small"]
