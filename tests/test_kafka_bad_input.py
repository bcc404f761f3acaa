"""Bad input to the Kafka port, over raw sockets: malformed frames, unknown keys, unsupported
versions, oversized requests, corrupt batches, unknown topics and partitions, illegal names.

Each gets what Apache Kafka gives (an error code, or a closed connection for what cannot be
parsed), is logged with the peer, and leaves other connections and stored data alone: a
bystander connection opened first keeps working and the stored records stay readable.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

import crc32c
import pytest
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsV0Response
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode

from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.framing import decode_response
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.test_kafka_frontend import (
    TOPIC,
    Wire,
    batch,
    create_topic,
    fetch,
    list_offsets,
    metadata,
    produce,
    produced,
    records_of,
    run,
)


async def closed(wire: Wire, timeout: float = 5.0) -> bool:
    """True once the server has closed the connection (EOF)."""
    try:
        return await asyncio.wait_for(wire.reader.read(1 << 16), timeout) == b""
    except ConnectionResetError:
        return True


def raw_request(api_key: int, version: int, body: bytes = b"", corr: int = 1) -> bytes:
    """A request frame with header v1 (client id "raw") and ``body`` as it is."""
    frame = struct.pack(">hhih", api_key, version, corr, 3) + b"raw" + body
    return struct.pack(">i", len(frame)) + frame


async def healthy(f: KafkaFrontend, bystander: Wire) -> None:
    """The bystander connection still works and the stored records are intact."""
    part = (await bystander.call(fetch(0))).responses[0].partitions[0]
    assert [r.key for r in records_of(part.records)] == [b"k0", b"k1", b"k2"]
    assert (await bystander.call(metadata(TOPIC))).topics[0].error_code == ErrorCode.none


def scenario(tmp_path: Path, attack: object) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        bystander = await Wire.open(f.port)
        assert await produced(bystander, batch(3)) == (ErrorCode.none, 0)
        await attack(f)  # type: ignore[operator]
        await healthy(f, bystander)
        assert broker.store.max_offset(TOPIC, 0) == 3

    run(tmp_path, body)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(struct.pack(">i", 3) + b"abc", id="shorter-than-a-header"),
        pytest.param(raw_request(3, 12, b"\xff" * 40), id="garbage-body"),
        pytest.param(raw_request(0, 9, b"\x00"), id="truncated-body"),
        pytest.param(raw_request(999, 0), id="unknown-api-key"),
        pytest.param(raw_request(3, 99), id="unsupported-metadata-version"),
        pytest.param(raw_request(0, 2, b"\x00\x01"), id="truncated-produce-v2"),
        pytest.param(struct.pack(">i", -1), id="negative-size"),
        # ListGroups v5, states_filter claiming 2^32-2 elements: kio would reserve 32 GiB (abort)
        pytest.param(raw_request(16, 5, b"\x00\xff\xff\xff\xff\x0f\x01\x00"), id="forged-array-length"),
        pytest.param(struct.pack(">i", 200 * 1024 * 1024), id="oversized-request"),
    ],
)
def test_unparseable_requests_close_only_their_own_connection(
    tmp_path: Path, frame: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def attack(f: KafkaFrontend) -> None:
        bad = await Wire.open(f.port)
        bad.writer.write(frame)  # an oversized request is refused from its size prefix alone
        assert await closed(bad)
        port = bad.writer.get_extra_info("sockname")[1]
        assert any(f":{port}" in r.getMessage() for r in caplog.records if r.name == "ferrymq.kafka")

    caplog.set_level(logging.WARNING, logger="ferrymq.kafka")
    scenario(tmp_path, attack)


def test_unsupported_api_versions_version_gets_error_35_and_the_key_18_range(tmp_path: Path) -> None:
    async def attack(f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        w.writer.write(raw_request(18, 99, corr=5))
        (size,) = struct.unpack(">i", await w.reader.readexactly(4))
        corr, resp = decode_response(await w.reader.readexactly(size), ApiVersionsV0Response)
        assert corr == 5 and resp.error_code == ErrorCode.unsupported_version
        assert [(k.api_key, k.min_version, k.max_version) for k in resp.api_keys] == [(18, 0, 4)]
        ok = await w.call(ApiVersionsRequest(client_software_name="raw", client_software_version="1"))
        assert ok.error_code == ErrorCode.none and len(ok.api_keys) > 10  # the connection stays usable

    scenario(tmp_path, attack)


def test_corrupt_and_invalid_batches_are_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    async def attack(f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        flipped = bytearray(batch(2))
        flipped[-2] ^= 0x40  # a record byte: the CRC-32C no longer matches
        assert (await produced(w, bytes(flipped)))[0] == ErrorCode.corrupt_message
        assert (await produced(w, batch(2)[:-5]))[0] == ErrorCode.corrupt_message  # batch length too long
        assert (await produced(w, b""))[0] == ErrorCode.corrupt_message
        gzip_garbage = bytearray(batch(2))  # attributes say gzip, the records are not: CRC made valid
        gzip_garbage[22] |= 1
        struct.pack_into(">I", gzip_garbage, 17, crc32c.crc32c(bytes(gzip_garbage[21:])))
        assert (await produced(w, bytes(gzip_garbage)))[0] == ErrorCode.corrupt_message
        old_magic = bytearray(batch(1))
        old_magic[16] = 1
        assert (await produced(w, bytes(old_magic)))[0] == ErrorCode.invalid_record
        assert (await produced(w, batch(1), acks=2))[0] == ErrorCode.invalid_required_acks

    scenario(tmp_path, attack)


def test_unknown_topics_partitions_and_illegal_names_get_kafka_error_codes(tmp_path: Path) -> None:
    async def attack(f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        unknown = ErrorCode.unknown_topic_or_partition
        assert (await produced(w, batch(1), topic="missing"))[0] == unknown
        assert (await produced(w, batch(1), partition=7))[0] == unknown
        assert (await w.call(fetch(0, topic="missing"))).responses[0].partitions[0].error_code == unknown
        assert (await w.call(fetch(0, partition=-1))).responses[0].partitions[0].error_code == unknown
        assert (await w.call(list_offsets(-1, topic="missing"))).topics[0].partitions[0].error_code == unknown
        illegal = ErrorCode.invalid_topic_exception
        for name in ("has space", "a" * 250, "..", "x/y"):
            assert (await w.call(metadata(name))).topics[0].error_code == illegal
            assert (await w.call(create_topic(name, 1))).topics[0].error_code == illegal
        assert (await w.call(create_topic(TOPIC, 1))).topics[0].error_code == ErrorCode.topic_already_exists
        assert (await w.call(create_topic("zero", 0))).topics[0].error_code == ErrorCode.invalid_partitions
        r = await w.call(produce(batch(1), topic="has space"))
        assert r.responses[0].partition_responses[0].error_code == unknown
        assert f.broker.topics.get("has space") is None and f.broker.topics.get("missing") is None

    scenario(tmp_path, attack)


def test_produce_v0_to_v2_get_unsupported_version_per_partition(tmp_path: Path) -> None:
    """Advertised from v0 (for librdkafka's feature gating) but not served: error 35, as Kafka 4.0."""

    async def attack(f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        for version in (0, 1, 2):
            topic = TOPIC.encode()
            body = struct.pack(">hii", 1, 1000, 1) + struct.pack(">h", len(topic)) + topic
            body += struct.pack(">iii", 1, 2, 0)  # one partition, index 2, empty records
            w.writer.write(raw_request(0, version, body, corr=40 + version))
            (size,) = struct.unpack(">i", await w.reader.readexactly(4))
            data = await w.reader.readexactly(size)
            corr, n_topics, name_len = struct.unpack_from(">iih", data)
            assert (corr, n_topics, data[10 : 10 + name_len]) == (40 + version, 1, topic)
            pos = 10 + name_len
            n_parts, index, error, base = struct.unpack_from(">iihq", data, pos)
            assert (n_parts, index, error, base) == (1, 2, ErrorCode.unsupported_version, -1)
            tail = 4 if version >= 1 else 0
            assert len(data) == pos + 18 + (8 if version == 2 else 0) + tail
        # the connection stays usable
        ok = await w.call(ApiVersionsRequest(client_software_name="raw", client_software_version="1"))
        assert ok.error_code == ErrorCode.none

    scenario(tmp_path, attack)
