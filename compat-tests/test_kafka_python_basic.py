"""Unmodified kafka-python against a real ``ferrymq serve``: produce, consume, admin, and the
round trip with RocketMQ clients.

What a Kafka user checks: every acks setting and every codec (gzip, snappy, lz4, zstd) produces
records a consumer reads back with their keys, values and headers at the offsets the producer
was told; seeking by timestamp; creating, describing, altering and deleting topics. What a user
of both protocols checks: a message sent by a RocketMQ client is fetched by kafka-python at the
same offset with its keys, properties and tag, and a Kafka record is pulled by a RocketMQ
consumer at the same offset.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.client import LitePullConsumer, Message, MessageQueue, Producer

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic  # noqa: E402
from kafka.errors import InvalidConfigurationError  # noqa: E402

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TAGS_HEADER = "rocketmq.tags"


def consume(server: FerryServer, topic: str, partition: int, offset: int, count: int) -> list[Any]:
    """``count`` records from ``offset`` with assign + seek (no group)."""
    consumer = KafkaConsumer(bootstrap_servers=server.kafka_bootstrap, consumer_timeout_ms=5000)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        out = []
        for record in consumer:
            out.append(record)
            if len(out) == count:
                break
        return out
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("acks", "codec"),
    [
        (0, None),
        (1, None),
        ("all", None),
        ("all", "gzip"),
        ("all", "snappy"),
        ("all", "lz4"),
        ("all", "zstd"),
    ],
)
def test_produce_with_each_acks_and_codec_then_read_back(
    server: FerryServer, acks: Any, codec: str | None
) -> None:
    topic = f"basic-{acks}-{codec}"
    producer = KafkaProducer(
        bootstrap_servers=server.kafka_bootstrap,
        acks=acks,
        compression_type=codec,
        enable_idempotence=acks == "all",  # kafka-python's default; it needs acks=all
        linger_ms=50,  # several records per batch, so batches are compressed as a whole
    )
    try:
        futures = []
        for i in range(20):
            key, value, headers = f"key-{i}".encode(), f"value-{i}".encode() * 30, [("n", str(i).encode())]
            futures.append(producer.send(topic, key=key, value=value, partition=1, headers=headers))
        producer.flush()
        offsets = [f.get(timeout=10).offset for f in futures]
    finally:
        producer.close()
    if acks != 0:  # acks=0 has no response to learn offsets from
        assert offsets == list(range(20))
    records = consume(server, topic, 1, 5, 15)
    assert [r.offset for r in records] == list(range(5, 20))
    assert [r.key for r in records] == [f"key-{i}".encode() for i in range(5, 20)]
    assert records[0].value == b"value-5" * 30 and records[0].headers == [("n", b"5")]


def test_offsets_for_times_finds_the_first_record_at_or_after(server: FerryServer) -> None:
    producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap)
    try:
        for i in range(6):
            producer.send("times", value=b"t%d" % i, partition=0, timestamp_ms=1_000_000 + 1000 * i)
        producer.flush()
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=server.kafka_bootstrap)
    try:
        tp = TopicPartition("times", 0)
        found = consumer.offsets_for_times({tp: 1_002_500})[tp]
        assert (found.offset, found.timestamp) == (3, 1_003_000)
        assert consumer.offsets_for_times({tp: 2_000_000})[tp] is None
        assert consumer.beginning_offsets([tp])[tp] == 0 and consumer.end_offsets([tp])[tp] == 6
    finally:
        consumer.close()


def test_admin_creates_describes_alters_and_deletes_topics(server: FerryServer) -> None:
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic("admin-t", 3, 1, topic_configs={"retention.ms": "3600000"})])
        assert "admin-t" in admin.list_topics()
        (described,) = admin.describe_topics(["admin-t"])
        assert [p["partition_index"] for p in described["partitions"]] == [0, 1, 2]
        admin.create_partitions({"admin-t": NewPartitions(5)})
        (described,) = admin.describe_topics(["admin-t"])
        assert len(described["partitions"]) == 5
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "admin-t")])
        assert configs["topic"]["admin-t"]["retention.ms"]["value"] == "3600000"
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "admin-t", configs={"max.message.bytes": "2048"})]
        )
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "admin-t", ["max.message.bytes"])]
        )
        assert configs["topic"]["admin-t"]["max.message.bytes"]["value"] == "2048"
        # the topic is a RocketMQ topic: the admin REST API shows it with 5 queues
        topic = httpx.get(f"{server.admin_url}/api/topics/admin-t", timeout=10).json()
        assert topic["write_queues"] == 5 and topic["read_queues"] == 5
        admin.delete_topics(["admin-t"])
        assert "admin-t" not in admin.list_topics()
        assert httpx.get(f"{server.admin_url}/api/topics/admin-t", timeout=10).status_code == 404
    finally:
        admin.close()


def test_admin_topic_configs_that_are_not_served_are_refused(server: FerryServer) -> None:
    """compression.type=zstd, LogAppendTime: refused with INVALID_CONFIG by CreateTopics and
    AlterConfigs, not accepted and ignored. (min.insync.replicas is served since broker groups
    replicate: acks=all enforces it, see tests/test_kafka_acks_all.py; cleanup.policy=compact since
    log compaction, tests/test_kafka_compaction.py.)"""
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_bootstrap)
    refused = {
        "compression.type": "zstd",
        "message.timestamp.type": "LogAppendTime",
    }
    try:
        for name, value in refused.items():
            with pytest.raises(InvalidConfigurationError, match=name):
                admin.create_topics([NewTopic("cfg-t", 1, 1, topic_configs={name: value})])
        assert "cfg-t" not in admin.list_topics()
        admin.create_topics([NewTopic("cfg-t", 1, 1, topic_configs={"min.insync.replicas": "2"})])
        for name, value in refused.items():
            resource = ConfigResource(ConfigResourceType.TOPIC, "cfg-t", configs={name: value})
            result = admin.alter_configs([resource])["topic"]["cfg-t"]
            assert "InvalidConfigurationError" in result and name in result, result
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "cfg-t", configs={"retention.bytes": "1048576"})]
        )
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cfg-t")])
        assert configs["topic"]["cfg-t"]["retention.bytes"]["value"] == "1048576"
        admin.delete_topics(["cfg-t"])
    finally:
        admin.close()


def test_a_rocketmq_message_is_fetched_by_kafka_python_at_the_same_offset(server: FerryServer) -> None:
    KafkaAdminClient(bootstrap_servers=server.kafka_bootstrap).create_topics([NewTopic("cross-in", 2, 1)])
    with Producer(server.namesrv_addr, group="cross-producer") as producer:
        msg = Message(
            "cross-in", b"from rocketmq", tags="TagR", keys="order-42", properties={"shop": "north"}
        )
        sent = producer.send(msg)
    (record,) = consume(server, "cross-in", sent.queue.queue_id, sent.queue_offset, 1)
    assert (record.offset, record.key, record.value) == (sent.queue_offset, b"order-42", b"from rocketmq")
    assert dict(record.headers) == {"shop": b"north", TAGS_HEADER: b"TagR"}


def test_a_kafka_record_is_pulled_by_a_rocketmq_consumer_at_the_same_offset(server: FerryServer) -> None:
    producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap)
    try:
        producer.send("cross-out", value=b"warm-up", partition=1).get(timeout=10)
        headers = [("color", b"red"), (TAGS_HEADER, b"TagK")]
        sent = producer.send("cross-out", key=b"order-7", value=b"from kafka", partition=1, headers=headers)
        meta = sent.get(timeout=10)
    finally:
        producer.close()
    consumer = LitePullConsumer(server.namesrv_addr, group="cross-consumer")
    try:
        queue = MessageQueue("cross-out", "broker-a", 1)
        consumer.assign([queue])
        consumer.start()
        consumer.seek(queue, meta.offset)
        messages = consumer.poll(timeout=5.0)
    finally:
        consumer.shutdown()
    got = [(m.queue_offset, m.body, m.keys, m.tags) for m in messages]
    assert got == [(1, b"from kafka", "order-7", "TagK")]
    assert messages[0].properties["color"] == "red" and meta.offset == 1
    # the admin console shows the stored batches record by record, the same way
    url = f"{server.admin_url}/api/topics/cross-out/queues/1/messages?offset=0"
    shown = httpx.get(url, timeout=10).json()["messages"]
    assert [(m["queue_offset"], m["body"], m["tags"], m["keys"]) for m in shown] == [
        (0, "warm-up", None, []),
        (1, "from kafka", "TagK", ["order-7"]),
    ]
