"""The Kafka frontend over real sockets: a broker and its frontend in this process, requests encoded
with kio as a client would, record batches built as kafka-python builds them.

What a client sees: offsets assigned by patching stored batches, the batch holding a fetch offset
served whole, fetches parked until data arrives, response order, idempotent producers across a
restart, ListOffsets by time, auto-creation, topic configs enforced, DeleteRecords kept across a
restart, and both directions of the cross-protocol mapping with tags.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import ssl
import struct
import time
from pathlib import Path
from typing import Any

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kio.index import load_response_from_request
from kio.schema.create_topics.v5.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from kio.schema.delete_records.v2.request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v4.request import FetchPartition as FetchPartitionV4
from kio.schema.fetch.v4.request import FetchRequest as FetchV4
from kio.schema.fetch.v4.request import FetchTopic as FetchTopicV4
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.incremental_alter_configs.v1.request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.metadata.v1.request import MetadataRequest as MetadataV1
from kio.schema.metadata.v1.request import MetadataRequestTopic as MetadataTopicV1
from kio.schema.metadata.v9.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v3.request import PartitionProduceData as PartitionV3
from kio.schema.produce.v3.request import ProduceRequest as ProduceV3
from kio.schema.produce.v3.request import TopicProduceData as TopicV3
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from ferrymq.core.broker.broker import Broker
from ferrymq.core.remoting.message import PROPERTY_KEYS, PROPERTY_TAGS, decode_stored_messages
from ferrymq.core.remoting.transport import connect
from ferrymq.gateway.kafka.framing import decode_response, encode_request
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.mapping import TAGS_HEADER
from tests.inprocess import Body, run_kafka_broker
from tests.remoting_helpers import pull, send_v2

TOPIC = "kt"


def ms(n: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=n)


class Wire:
    """One Kafka client connection: kio requests out, kio responses back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.corr = itertools.count(1)

    @classmethod
    async def open(cls, port: int, tls: ssl.SSLContext | None = None) -> Wire:
        return cls(*await asyncio.open_connection("127.0.0.1", port, ssl=tls))

    def send(self, request: Any) -> int:
        corr = next(self.corr)
        self.writer.write(encode_request(request, corr, "wire-test"))
        return corr

    async def receive(self, request_type: type[Any]) -> tuple[int, Any]:
        (size,) = struct.unpack(">i", await self.reader.readexactly(4))
        return decode_response(await self.reader.readexactly(size), load_response_from_request(request_type))

    async def call(self, request: Any) -> Any:
        corr = self.send(request)
        got, response = await self.receive(type(request))
        assert got == corr
        return response

    def close(self) -> None:
        self.writer.close()


def run(tmp_path: Path, body: Body, **config: Any) -> None:
    """A broker (no name server) and its Kafka frontend on free ports, with ``body`` against them."""
    run_kafka_broker(tmp_path, body, TOPIC, 2, timeout=30, **config)


def batch(
    n: int,
    *,
    first: int = 0,
    ts: int = 1_700_000_000_000,
    headers: list[tuple[str, bytes]] | None = None,
    pid: int = -1,
    epoch: int = -1,
    seq: int = -1,
    value_size: int = 10,
) -> bytes:
    b = DefaultRecordBatchBuilder(2, 0, False, pid, epoch, seq, 1 << 20)
    for i in range(n):
        b.append(
            i,
            ts + i,
            f"k{first + i}".encode(),
            f"v{first + i}".encode().ljust(value_size, b"."),
            headers or [],
        )
    return bytes(b.build())


def produce(records: bytes, acks: int = 1, topic: str = TOPIC, partition: int = 0) -> Any:
    return ProduceRequest(
        transactional_id=None,
        acks=acks,
        timeout=ms(5000),
        topic_data=(
            TopicProduceData(
                name=topic, partition_data=(PartitionProduceData(index=partition, records=records),)
            ),
        ),
    )


async def produced(wire: Wire, records: bytes, **kw: Any) -> tuple[ErrorCode, int]:
    r = await wire.call(produce(records, **kw))
    p = r.responses[0].partition_responses[0]
    return ErrorCode(p.error_code), int(p.base_offset)


def fetch(offset: int, wait_ms: int = 0, topic: str = TOPIC, partition: int = 0, min_bytes: int = 1) -> Any:
    part = FetchPartition(partition=partition, fetch_offset=offset, partition_max_bytes=1 << 20)
    return FetchRequest(
        max_wait=ms(wait_ms),
        min_bytes=min_bytes,
        topics=(FetchTopic(topic=topic, partitions=(part,)),),
        forgotten_topics_data=(),
    )


def records_of(data: bytes) -> list[Any]:
    """Every record of the batches in ``data`` (kafka-python's reader)."""
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from(">i", data, pos + 8)
        out.extend(DefaultRecordBatch(data[pos : pos + 12 + length]))
        pos += 12 + length
    return out


def produce_v3(records: bytes) -> Any:
    part = PartitionV3(index=0, records=records)
    return ProduceV3(
        transactional_id=None,
        acks=1,
        timeout=ms(1000),
        topic_data=(TopicV3(name=TOPIC, partition_data=(part,)),),
    )


def fetch_v4(offset: int) -> Any:
    part = FetchPartitionV4(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)
    return FetchV4(max_wait=ms(0), min_bytes=1, topics=(FetchTopicV4(topic=TOPIC, partitions=(part,)),))


def init_producer(pid: int = -1, epoch: int = -1) -> Any:
    return InitProducerIdRequest(
        transactional_id=None, transaction_timeout=ms(60_000), producer_id=pid, producer_epoch=epoch
    )


def create_topic(name: str, partitions: int, **configs: str) -> Any:
    cfg = tuple(CreatableTopicConfig(name=k.replace("_", "."), value=v) for k, v in configs.items())
    topic = CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=1, assignments=(), configs=cfg
    )
    return CreateTopicsRequest(topics=(topic,), timeout=ms(1000), validate_only=False)


def alter_topic(name: str, config: str, value: str) -> Any:
    change = AlterableConfig(name=config, config_operation=0, value=value)
    resource = AlterConfigsResource(resource_type=2, resource_name=name, configs=(change,))
    return IncrementalAlterConfigsRequest(resources=(resource,), validate_only=False)


def delete_records(offset: int) -> Any:
    part = DeleteRecordsPartition(partition_index=0, offset=offset)
    return DeleteRecordsRequest(
        topics=(DeleteRecordsTopic(name=TOPIC, partitions=(part,)),), timeout=ms(1000)
    )


def metadata(*names: str, auto: bool = True) -> Any:
    """Metadata v9 (flexible) for ``names``, or every topic when none are given."""
    return MetadataRequest(
        topics=tuple(MetadataRequestTopic(name=n) for n in names) if names else None,
        allow_auto_topic_creation=auto,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )


def list_offsets(*timestamps: int, topic: str = TOPIC) -> Any:
    parts = tuple(ListOffsetsPartition(partition_index=0, timestamp=t) for t in timestamps)
    return ListOffsetsRequest(
        replica_id=-1, isolation_level=0, topics=(ListOffsetsTopic(name=topic, partitions=parts),)
    )


# ---- produce and fetch -----------------------------------------------------------------------


def test_stored_batches_get_offsets_and_the_batch_holding_the_fetch_offset_is_served_whole(
    tmp_path: Path,
) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        assert await produced(w, batch(3)) == (ErrorCode.none, 0)
        r = await w.call(produce_v3(batch(2, first=3)))
        assert r.responses[0].partition_responses[0].base_offset == 3
        mid = (await w.call(fetch(4))).responses[0].partitions[0]
        assert mid.error_code == ErrorCode.none and mid.high_watermark == 5
        assert [(r.offset, r.key) for r in records_of(mid.records)] == [(3, b"k3"), (4, b"k4")]
        everything = (await w.call(fetch_v4(0))).responses[0].partitions[0].records
        assert [r.offset for r in records_of(everything)] == [0, 1, 2, 3, 4]
        beyond = (await w.call(fetch(9))).responses[0].partitions[0]
        assert beyond.error_code == ErrorCode.offset_out_of_range
        w.close()

    run(tmp_path, body)


def test_a_parked_fetch_is_woken_by_a_produce_and_an_idle_one_waits_out_max_wait(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        consumer, producer = await Wire.open(f.port), await Wire.open(f.port)
        started = time.monotonic()
        idle = (await consumer.call(fetch(0, wait_ms=300))).responses[0].partitions[0]
        assert time.monotonic() - started >= 0.29
        assert idle.records == b"" and idle.error_code == ErrorCode.none  # empty, not null
        started = time.monotonic()
        parked = asyncio.ensure_future(consumer.call(fetch(0, wait_ms=20_000)))
        await asyncio.sleep(0.1)
        assert not parked.done()
        await produced(producer, batch(1))
        woken = (await parked).responses[0].partitions[0]
        assert time.monotonic() - started < 5
        assert [r.key for r in records_of(woken.records)] == [b"k0"]

    run(tmp_path, body)


def test_acks_zero_gets_no_response_and_responses_keep_request_order(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        w.send(produce(batch(2), acks=0))
        slow = w.send(fetch(2, wait_ms=300))  # parked: answered after the metadata below is ready
        quick = w.send(metadata(auto=False))
        assert (await w.receive(FetchRequest))[0] == slow
        assert (await w.receive(MetadataRequest))[0] == quick
        assert broker.store.max_offset(TOPIC, 0) == 2  # the acks=0 batch was stored

    run(tmp_path, body)


# ---- idempotence -----------------------------------------------------------------------------


def test_idempotent_producer_duplicates_gaps_and_epochs_also_after_a_restart(tmp_path: Path) -> None:
    ids: dict[str, int] = {}

    async def first(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        init = await w.call(init_producer())
        assert init.error_code == ErrorCode.none and init.producer_epoch == 0
        pid = ids["pid"] = init.producer_id
        assert await produced(w, batch(3, pid=pid, epoch=0, seq=0)) == (ErrorCode.none, 0)
        assert await produced(w, batch(2, pid=pid, epoch=0, seq=3)) == (ErrorCode.none, 3)
        assert await produced(w, batch(3, pid=pid, epoch=0, seq=0)) == (ErrorCode.none, 0)  # a retry
        assert broker.store.max_offset(TOPIC, 0) == 5  # not written twice
        assert (await produced(w, batch(1, pid=pid, epoch=0, seq=9)))[
            0
        ] == ErrorCode.out_of_order_sequence_number
        bumped = await w.call(init_producer(pid, 0))
        assert (bumped.producer_id, bumped.producer_epoch) == (pid, 1)

    async def after_restart(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        pid = ids["pid"]
        assert await produced(w, batch(2, pid=pid, epoch=0, seq=3)) == (
            ErrorCode.none,
            3,
        )  # still a duplicate
        assert await produced(w, batch(1, pid=pid, epoch=0, seq=5)) == (ErrorCode.none, 5)
        assert await produced(w, batch(1, pid=pid, epoch=1, seq=0)) == (ErrorCode.none, 6)
        assert (await produced(w, batch(1, pid=pid, epoch=0, seq=6)))[0] == ErrorCode.invalid_producer_epoch
        fresh = await w.call(init_producer())
        assert fresh.producer_id != pid

    run(tmp_path, first)
    run(tmp_path, after_restart)


# ---- offsets, topics, configs ----------------------------------------------------------------


def test_list_offsets_by_timestamp_earliest_latest_and_max(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await produced(w, batch(3, ts=1000))  # offsets 0-2, timestamps 1000-1002
        await produced(w, batch(3, ts=2000, first=3))  # offsets 3-5, timestamps 2000-2002
        r = await w.call(list_offsets(1001, 1500, 2002, 9999, -2, -1, -3))
        got = [(p.offset, p.timestamp) for p in r.topics[0].partitions]
        assert got == [(1, 1001), (3, 2000), (5, 2002), (-1, -1), (0, -1), (6, -1), (5, 2002)]

    run(tmp_path, body)


def test_list_offsets_max_timestamp_names_the_record_not_its_batch_end(tmp_path: Path) -> None:
    """Kafka 3.8+ (KAFKA-16310): the offset of the record holding the largest timestamp, the earliest
    such record when several hold it. Before: the last offset of the batch holding it."""

    def stamped(*timestamps: int) -> bytes:
        b = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 1 << 20)
        for i, ts in enumerate(timestamps):
            b.append(i, ts, None, b"v", [])
        return bytes(b.build())

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await produced(w, stamped(5000, 9000, 6000))  # offsets 0-2: the largest at offset 1
        await produced(w, stamped(7000, 9000))  # offsets 3-4: as large, but later
        r = await w.call(list_offsets(-3))
        got = [(p.offset, p.timestamp) for p in r.topics[0].partitions]
        assert got == [(1, 9000)]

    run(tmp_path, body)


def test_metadata_auto_creates_valid_names_only_when_allowed(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        r = await w.call(metadata("new.topic-1"))
        t = r.topics[0]
        assert t.error_code == ErrorCode.none and len(t.partitions) == broker.config.default_topic_queue_nums
        assert [p.leader_id for p in t.partitions] == [f.cluster.node_id] * len(t.partitions)
        assert broker.topics.get("new.topic-1") is not None
        r = await w.call(metadata("not there"))
        assert r.topics[0].error_code == ErrorCode.invalid_topic_exception
        r = await w.call(metadata("later", auto=False))
        assert (
            r.topics[0].error_code == ErrorCode.unknown_topic_or_partition
            and broker.topics.get("later") is None
        )
        everything = await w.call(MetadataV1(topics=None))
        assert sorted(t.name for t in everything.topics) == [TOPIC, "new.topic-1"]  # no system topics
        one = await w.call(MetadataV1(topics=(MetadataTopicV1(name="TBW102"),)))
        assert one.topics[0].is_internal

    run(tmp_path, body)


def test_auto_creation_can_be_switched_off(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        r = await w.call(metadata("nope"))
        assert r.topics[0].error_code == ErrorCode.unknown_topic_or_partition

    run(tmp_path, body, auto_create_topic_enable=False)


def test_max_message_bytes_and_retention_ms_are_enforced(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        r = await w.call(create_topic("small", 1, max_message_bytes="400"))
        assert r.topics[0].error_code == ErrorCode.none and r.topics[0].num_partitions == 1
        assert (await produced(w, batch(1, value_size=1000), topic="small"))[0] == ErrorCode.message_too_large
        assert await produced(w, batch(1), topic="small") == (ErrorCode.none, 0)
        assert await produced(w, batch(4), topic="small") == (ErrorCode.none, 1)
        # retention.ms=0 drops what was stored before "now": let the clock leave the last store's ms
        stored_ms = broker.store.queue_store_timestamp("small", 0, 4)
        assert stored_ms is not None
        while int(time.time() * 1000) <= stored_ms:
            await asyncio.sleep(0.001)
        assert (await w.call(alter_topic("small", "retention.ms", "0"))).responses[
            0
        ].error_code == ErrorCode.none
        earliest = (await w.call(list_offsets(-2, topic="small"))).topics[0].partitions[0].offset
        assert earliest == 5  # everything stored before "now - 0 ms" is gone
        assert (await w.call(alter_topic("small", "retention.ms", "soon"))).responses[
            0
        ].error_code == ErrorCode.invalid_config

    run(tmp_path, body)


def test_delete_records_moves_the_log_start_for_both_protocols_and_survives_a_restart(tmp_path: Path) -> None:
    async def first(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await produced(w, batch(5))
        assert (await w.call(delete_records(3))).topics[0].partitions[0].low_watermark == 3
        assert (await w.call(fetch(1))).responses[0].partitions[0].error_code == ErrorCode.offset_out_of_range

    async def after_restart(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        assert (await w.call(list_offsets(-2))).topics[0].partitions[0].offset == 3
        native = await connect("127.0.0.1", broker.port)
        resp = await native.invoke(pull(TOPIC, 0, 0), timeout=5)
        assert int(resp.ext_fields["minOffset"]) == 3  # RocketMQ consumers see the same start
        native.close()

    run(tmp_path, first)
    run(tmp_path, after_restart)


# ---- cross protocol --------------------------------------------------------------------------


def test_kafka_records_pulled_natively_with_offsets_keys_headers_and_tag_filters(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await produced(w, batch(2))  # offsets 0-1, untagged
        await produced(w, batch(2, first=2, headers=[(TAGS_HEADER, b"TagA"), ("color", b"red")]))  # 2-3
        await produced(w, batch(1, first=4, headers=[(TAGS_HEADER, b"TagB")]))  # 4
        native = await connect("127.0.0.1", broker.port)
        resp = await native.invoke(pull(TOPIC, 0, 1), timeout=5)
        msgs = decode_stored_messages(resp.body)
        assert [(m.queue_offset, m.keys) for m in msgs] == [(1, "k1"), (2, "k2"), (3, "k3"), (4, "k4")]
        assert (
            msgs[1].tags == "TagA" and msgs[1].properties["color"] == "red" and msgs[1].body.startswith(b"v2")
        )
        tagged = decode_stored_messages(
            (await native.invoke(pull(TOPIC, 0, 0, expression="TagA"), timeout=5)).body
        )
        assert [m.queue_offset for m in tagged] == [2, 3]
        assert all(m.tags == "TagA" for m in tagged)
        native.close()

    run(tmp_path, body)


def test_native_messages_fetched_as_kafka_records_with_the_same_offsets(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        native = await connect("127.0.0.1", broker.port)
        w = await Wire.open(f.port)
        await produced(w, batch(1))  # offset 0 from Kafka
        props = {PROPERTY_TAGS: "TagN", PROPERTY_KEYS: "order-7", "shop": "north"}
        for body_ in (b"native-1", b"native-2"):
            r = await native.invoke(send_v2(TOPIC, body_, 0, props), timeout=5)
            assert r.code == 0
        got = records_of((await w.call(fetch(0))).responses[0].partitions[0].records)
        expected = [(0, b"k0", b"v0......"), (1, b"order-7", b"native-1"), (2, b"order-7", b"native-2")]
        assert [(r.offset, r.key, r.value[:8]) for r in got] == expected
        assert dict(got[1].headers) == {"shop": b"north", TAGS_HEADER: b"TagN"}
        native.close()

    run(tmp_path, body)


def test_acks_all_under_sync_flush_answers_once_durable(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        assert await produced(w, batch(2), acks=-1) == (ErrorCode.none, 0)
        assert broker.store.flushed_offset >= broker.store.commit_log.write_offset  # on disk before the reply

    run(tmp_path, body, flush_disk_type="SYNC_FLUSH")
