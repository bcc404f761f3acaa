"""The Kafka frontend's sans-IO parts: framing, record batches as real clients build them (every
codec, xerial and raw snappy), the Kafka <-> RocketMQ mapping, and idempotent producer state."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from kafka.codec import snappy_encode
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kio.index import load_response_schema
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

from ferrymq.core.remoting.message import decode_stored_messages, tags_code
from ferrymq.core.store import StoredEntry, read_entry
from ferrymq.core.store.entry import BATCH_FORMAT_KAFKA_V2, encode_batch_entry
from ferrymq.gateway.kafka import mapping
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.apis.api18_api_versions import build_response
from ferrymq.gateway.kafka.framing import (
    FrameDecoder,
    FrameTooLarge,
    decode_response,
    encode_request,
    encode_response,
    parse_header,
    peek_header,
)
from ferrymq.gateway.kafka.producer_state import Check, ProducerStates
from ferrymq.gateway.kafka.release import SHARE_GROUP_VERSIONS


def client_batch(
    codec: int = 0,
    n: int = 3,
    headers: list[tuple[str, bytes]] | None = None,
    pid: int = -1,
    seq: int = -1,
    ts: int = 1_700_000_000_000,
) -> bytes:
    """A batch as kafka-python's producer builds it."""
    b = DefaultRecordBatchBuilder(2, codec, False, pid, 0 if pid >= 0 else -1, seq, 1 << 20)
    for i in range(n):
        b.append(i, ts + i, f"k{i}".encode(), f"value-{i}".encode() * 20, headers or [])
    return bytes(b.build())


# ---- framing ---------------------------------------------------------------------------------


def test_frames_split_and_joined_anywhere_come_out_whole() -> None:
    topic = MetadataRequestTopic(topic_id=None, name="t")
    req = MetadataRequest(
        topics=(topic,), allow_auto_topic_creation=True, include_topic_authorized_operations=False
    )
    wire = encode_request(req, 7, "cid") * 3
    dec = FrameDecoder()
    frames = []
    for i in range(0, len(wire), 5):  # 5-byte pieces: size prefixes split too
        frames += dec.feed(wire[i : i + 5])
    assert len(frames) == 3 and dec.buffered == 0
    assert peek_header(frames[0]) == (3, 12, 7)
    header = parse_header(frames[0], flexible=True)
    assert header.client_id == "cid"
    assert frames[0][header.body_offset :].startswith(b"\x02\x00")  # one topic, null... compact array


def test_oversized_and_negative_size_prefixes_are_refused() -> None:
    with pytest.raises(FrameTooLarge):
        FrameDecoder(max_size=1000).feed(struct.pack(">i", 1001))
    with pytest.raises(FrameTooLarge):
        FrameDecoder().feed(struct.pack(">i", -5))


def test_api_versions_response_uses_header_v0_even_when_flexible() -> None:
    v3 = build_response(3)
    frame = b"".join(encode_response(42, v3, header_v0=True))
    size, corr = struct.unpack_from(">ii", frame)
    assert size == len(frame) - 4 and corr == 42
    # the body starts right after the correlation id: no tagged-field byte in the header
    body = frame[8:]
    assert body[:2] == b"\x00\x00"  # error code 0
    resp_type = load_response_schema(18, 3)
    _, decoded = decode_response(frame[4:], resp_type)
    keys = {k.api_key: (k.min_version, k.max_version) for k in decoded.api_keys}
    assert keys[0] == (0, 12) and keys[1] == (0, 17) and keys[18] == (0, 4)  # Kafka 4.0's (release.py)
    # advertised from 0 (reference §0), but the share group keys from 1 as Kafka 4.2 does (release.py)
    assert all(lo == 0 for k, (lo, _) in keys.items() if k not in SHARE_GROUP_VERSIONS)


# ---- record batches --------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [rb.NONE, rb.GZIP, rb.SNAPPY, rb.LZ4, rb.ZSTD])
def test_client_batches_of_every_codec_are_accepted_and_readable(codec: int) -> None:
    data = client_batch(codec, n=5, headers=[("h", b"v")])
    (info,) = rb.split_batches(data)
    assert (info.count, info.compression, info.size) == (5, codec, len(data))
    records = list(rb.iter_records(rb.records_bytes(data, info), info.count, info.base_timestamp))
    assert [r.key for r in records] == [f"k{i}".encode() for i in range(5)]
    assert records[3].value == b"value-3" * 20 and records[3].headers == [("h", b"v")]
    assert records[4].timestamp == 1_700_000_000_004


def test_xerial_framed_and_raw_snappy_both_decompress() -> None:
    payload = b"abc" * 50_000  # more than one 32 KiB xerial block
    assert rb.decompress(rb.SNAPPY, snappy_encode(payload, xerial_compatible=True)) == payload
    assert rb.decompress(rb.SNAPPY, snappy_encode(payload, xerial_compatible=False)) == payload


def test_patching_base_offset_keeps_the_crc_valid() -> None:
    data = bytearray(client_batch())
    rb.patch_base(data, 12345)
    (info,) = rb.split_batches(bytes(data))  # CRC checked again
    batch = DefaultRecordBatch(bytes(data))
    assert batch.base_offset == 12345 and batch.leader_epoch == 0
    assert [r.offset for r in batch] == [12345, 12346, 12347]
    assert info.count == 3


def test_corrupt_and_invalid_batches_are_told_apart() -> None:
    good = client_batch()
    flipped = bytearray(good)
    flipped[-1] ^= 0xFF
    with pytest.raises(rb.CorruptBatch, match="CRC"):
        rb.split_batches(bytes(flipped))
    with pytest.raises(rb.CorruptBatch):
        rb.split_batches(good[:-3])  # batch length runs past the data
    with pytest.raises(rb.CorruptBatch):
        rb.split_batches(b"")
    old_magic = bytearray(good)
    old_magic[16] = 1
    with pytest.raises(rb.InvalidBatch):
        rb.split_batches(bytes(old_magic))


def test_two_batches_in_one_produce_are_both_checked() -> None:
    infos = rb.split_batches(client_batch(n=2) + client_batch(n=4))
    assert [(i.start > 0, i.count) for i in infos] == [(False, 2), (True, 4)]


def test_built_batches_read_back_with_kafka_python() -> None:
    for codec in (rb.NONE, rb.LZ4):
        data = rb.build_batch(10, [(0, 5, b"k", b"v", [("x", b"1")]), (1, 9, None, b"w", [])], codec=codec)
        (info,) = rb.split_batches(data)  # our own CRC
        records = list(DefaultRecordBatch(data))
        assert [(r.offset, r.timestamp, r.key, r.value) for r in records] == [
            (10, 5, b"k", b"v"),
            (11, 9, None, b"w"),
        ]
        assert records[0].headers == [("x", b"1")] and info.count == 2


# ---- mapping ---------------------------------------------------------------------------------


def test_tag_codes_only_for_batches_carrying_the_tag_header() -> None:
    plain = client_batch(headers=[("other", b"x")])
    assert mapping.batch_tag_codes(plain, rb.split_batches(plain)[0]) is None
    for codec in (rb.NONE, rb.ZSTD):
        tagged = client_batch(codec, n=2, headers=[(mapping.TAGS_HEADER, b"TagA")])
        assert mapping.batch_tag_codes(tagged, rb.split_batches(tagged)[0]) == [tags_code("TagA")] * 2


def stored_batch(payload: bytes, *, queue_id: int, base: int, count: int, phys: int = 0) -> StoredEntry:
    """Kafka batches as the store hands a batch entry of topic "t" to its converter."""
    entry = encode_batch_entry(
        topic=b"t",
        queue_id=queue_id,
        base_queue_offset=base,
        physical_offset=phys,
        store_timestamp=1,
        count=count,
        fmt=BATCH_FORMAT_KAFKA_V2,
        payload=payload,
    )
    return read_entry(entry)


def test_a_kafka_batch_reads_as_stored_messages_from_the_offset_and_matching_tags() -> None:
    b1 = client_batch(n=2, headers=[(mapping.TAGS_HEADER, b"A"), ("user", b"u1")])
    b2 = client_batch(n=2, headers=[(mapping.TAGS_HEADER, b"B")])
    payload = bytearray(b1 + b2)
    rb.patch_base(payload, 100)
    rb.patch_base(memoryview(payload)[len(b1) :], 102)  # type: ignore[arg-type]
    entry = stored_batch(bytes(payload), queue_id=3, base=100, count=4, phys=4096)
    host = b"\x7f\x00\x00\x01"
    msgs = decode_stored_messages(mapping.to_stored_messages(entry, 101, None, host, 10911))
    assert [(m.queue_offset, m.queue_id, m.topic) for m in msgs] == [
        (101, 3, "t"),
        (102, 3, "t"),
        (103, 3, "t"),
    ]
    m = msgs[0]
    assert (m.keys, m.tags, m.properties["user"], m.body) == ("k1", "A", "u1", b"value-1" * 20)
    assert len({x.msg_id for x in msgs}) == 3  # unique ids per record
    only_b = decode_stored_messages(mapping.to_stored_messages(entry, 0, {tags_code("B")}, host, 1))
    assert [x.queue_offset for x in only_b] == [102, 103]


def test_headers_that_cannot_be_properties_are_left_out() -> None:
    record = rb.Record(
        0, 0, b"key", b"v", [("bad\x01name", b"x"), ("ok", b"bad\x02value"), ("fine", b"\xff")]
    )
    assert mapping.record_properties(record) == {"fine": "\ufffd", "KEYS": "key"}


# ---- idempotent producers --------------------------------------------------------------------


def _info(pid: int, epoch: int, seq: int, n: int) -> rb.BatchInfo:
    return rb.BatchInfo(0, 100, 0, n - 1, 0, 0, pid, epoch, seq, n)


def test_producer_sequences_duplicates_gaps_and_epochs(tmp_path: Path) -> None:
    states = ProducerStates(tmp_path / "ids.json", lambda t, p: iter(()))
    pid = states.new_producer_id()
    assert states.check("t", 0, _info(pid, 0, 0, 3)) == (Check.OK, -1)
    states.appended("t", 0, _info(pid, 0, 0, 3), 50)
    states.appended("t", 0, _info(pid, 0, 3, 2), 53)
    assert states.check("t", 0, _info(pid, 0, 0, 3)) == (Check.DUPLICATE, 50)
    assert states.check("t", 0, _info(pid, 0, 3, 2)) == (Check.DUPLICATE, 53)
    assert states.check("t", 0, _info(pid, 0, 6, 1))[0] == Check.OUT_OF_ORDER  # 5 is missing
    assert states.check("t", 0, _info(pid, 0, 5, 1))[0] == Check.OK
    assert states.check("t", 1, _info(pid, 0, 9, 1))[0] == Check.OK  # unknown here: any sequence
    states.appended("t", 0, _info(pid, 1, 0, 1), 60)  # a new epoch starts at 0
    assert states.check("t", 0, _info(pid, 0, 5, 1))[0] == Check.INVALID_EPOCH
    assert states.check("t", 0, _info(pid, 2, 4, 1))[0] == Check.OUT_OF_ORDER


def test_producer_ids_never_repeat_across_restarts(tmp_path: Path) -> None:
    first = ProducerStates(tmp_path / "ids.json", lambda t, p: iter(()))
    ids = {first.new_producer_id() for _ in range(3)}
    again = ProducerStates(tmp_path / "ids.json", lambda t, p: iter(()))
    assert again.new_producer_id() not in ids


def test_producer_state_is_rebuilt_from_stored_batches(tmp_path: Path) -> None:
    now = 1_700_000_000_000
    # (pid, epoch, first seq, last seq, base offset, stored at); producer 8 wrote too long ago
    stored = [(8, 0, 0, 0, 0, now - 100_000), (7, 0, 0, 4, 1, now), (7, 0, 5, 9, 6, now)]
    states = ProducerStates(
        tmp_path / "ids.json", lambda t, p: iter(stored), expiration_ms=60_000, clock=lambda: now
    )
    assert states.producer_count() == 0  # rebuilt on first use
    assert states.check("t", 0, _info(7, 0, 5, 5)) == (Check.DUPLICATE, 6)
    assert states.producer_count() == 1 and states.check("t", 0, _info(8, 0, 9, 1))[0] == Check.OK
    assert states.check("t", 0, _info(7, 0, 10, 1))[0] == Check.OK
    assert states.check("t", 0, _info(7, 0, 11, 1))[0] == Check.OUT_OF_ORDER
