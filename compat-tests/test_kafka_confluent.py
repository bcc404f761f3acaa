"""Unmodified confluent-kafka (librdkafka) against a real ``ferrymq serve``: produce, consume in
groups, admin, and the round trip with RocketMQ clients.

librdkafka uses flexible versions where the broker offers them (Produce v9-10, Fetch v12+,
Metadata v9+, OffsetCommit v8+, ...) and, before v2.11.1, switched features on only when the
advertised ranges contained particular old versions (reference §1.3): a broker that advertises
Produce from v3 makes those clients send gzip and snappy batches uncompressed. The installed
librdkafka is newer, so that trap is checked on the wire (ApiVersions v0) and by what
librdkafka itself says it enables.

What a user checks: every acks setting, idempotence and every codec produce records a consumer
reads back with keys, values and headers at the offsets the delivery reports gave (and a
compressed batch is stored compressed); a group of three splits the partitions and every
partition has one owner again as members leave and join; a restarted consumer resumes from its
commits; seeking by timestamp; the admin client creates, describes and deletes topics and lists
and describes groups; a RocketMQ message is fetched at the same offset with its key, properties
and tag, and the reverse.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from kafka_support import (
    FAST_GROUPS_CONF,
    PARTITIONS,
    VALUE,
    ThreadMember,
    commit_log_offset,
    create_topic,
    one_owner_each,
    wait_for,
)

from ferrymq.cli.testing import FerryServer
from ferrymq.client import LitePullConsumer, Message, MessageQueue, Producer
from ferrymq.gateway.kafka.topic_ids import topic_id

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicCollection, TopicPartition  # noqa: E402
from confluent_kafka import Producer as KafkaProducer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

MASK64 = (1 << 64) - 1

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TAGS_HEADER = "rocketmq.tags"
#: rebalances in a fraction of a second (the broker's minimum session is 6 s)
GROUP_CONFIG: dict[str, Any] = {
    "session.timeout.ms": 6_000,
    "heartbeat.interval.ms": 200,
    "max.poll.interval.ms": 10_000,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
}
FERRYMQ_CONF = FAST_GROUPS_CONF  # broker.conf of this module's shared server


def read(server: FerryServer, topic: str, partition: int, offset: int, count: int) -> list[Any]:
    """``count`` records from ``offset`` with assign (no group)."""
    consumer = Consumer({"bootstrap.servers": server.kafka_bootstrap, "group.id": "reader"})
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        out: list[Any] = []
        deadline = time.monotonic() + 15
        while len(out) < count and time.monotonic() < deadline:
            for msg in consumer.consume(count - len(out), timeout=0.5):
                assert msg.error() is None, msg.error()
                out.append(msg)
        return out
    finally:
        consumer.close()


def test_api_versions_advertise_the_old_versions_older_librdkafka_gates_features_on(
    server: FerryServer,
) -> None:
    """librdkafka < 2.11.1 enables a feature only if an advertised range contains a version."""
    host, port = server.kafka_bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        client = b"librdkafka-gates"
        body = struct.pack(">hhih", 18, 0, 7, len(client)) + client  # ApiVersions v0
        sock.sendall(struct.pack(">i", len(body)) + body)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk, "the broker closed the connection"
            data += chunk
    correlation, error, count = struct.unpack(">ihi", data[4:14])
    assert (correlation, error) == (7, 0)
    ranges = {k: (lo, hi) for k, lo, hi in struct.iter_unpack(">hhh", data[14 : 14 + 6 * count])}
    gates = {  # feature: (api key, version the range must contain), from rdkafka_feature.c
        "gzip/snappy compression": (0, 0),
        "MsgVer2 (produce)": (0, 3),
        "ZSTD (produce)": (0, 7),
        "MsgVer2 (fetch)": (1, 4),
        "ZSTD (fetch)": (1, 10),
        "OffsetTime": (2, 1),
        "OffsetCommit": (8, 2),
        "OffsetFetch": (9, 1),
        "BrokerGroupCoordinator, LZ4": (10, 0),
        "JoinGroup (and GSSAPI)": (11, 0),
        "Heartbeat": (12, 0),
        "LeaveGroup": (13, 0),
        "SyncGroup": (14, 0),
        "ApiVersion": (18, 0),
        "IdempotentProducer": (22, 0),
    }
    missing = [
        f for f, (key, v) in gates.items() if not (key in ranges and ranges[key][0] <= v <= ranges[key][1])
    ]
    assert not missing, f"features older librdkafka would switch off: {missing} (ranges {ranges})"
    # every key from 0, but the share group keys 76-79 from 1 as Kafka 4.2 advertises them
    assert all(lo == 0 for key, (lo, _) in ranges.items() if key not in (76, 77, 78, 79)), ranges


def test_librdkafka_enables_the_features_it_needs(server: FerryServer) -> None:
    """What librdkafka logs with debug=feature: compression, idempotence, groups, offsets by time."""
    enabled: set[str] = set()
    lock = threading.Lock()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            m = re.search(r"Enabling feature (\w+)", record.getMessage())
            if m:
                with lock:
                    enabled.add(m.group(1))

    log = logging.getLogger("ferrymq.test.librdkafka")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    handler = Collect()
    log.addHandler(handler)
    try:
        producer = KafkaProducer(
            {"bootstrap.servers": server.kafka_bootstrap, "debug": "feature", "logger": log}
        )
        producer.produce("ck-features", b"x")
        assert producer.flush(15) == 0
        producer.poll(0)  # serve the queued log lines
    finally:
        log.removeHandler(handler)
    wanted = {"MsgVer2", "IdempotentProducer", "ZSTD", "LZ4", "BrokerGroupCoordinator", "OffsetTime"}
    assert wanted <= enabled, f"not enabled: {wanted - enabled}"


@pytest.mark.parametrize(
    ("acks", "idempotent", "codec"),
    [
        ("0", False, "none"),
        ("1", False, "none"),
        ("all", False, "none"),
        ("all", True, "none"),
        ("all", True, "gzip"),
        ("all", True, "snappy"),
        ("all", True, "lz4"),
        ("all", True, "zstd"),
    ],
)
def test_produce_with_each_acks_idempotence_and_codec_then_read_back(
    server: FerryServer, acks: str, idempotent: bool, codec: str
) -> None:
    topic = f"ck-{acks}-{idempotent}-{codec}"
    create_topic(server, topic, 2)
    producer = KafkaProducer(
        {
            "bootstrap.servers": server.kafka_bootstrap,
            "acks": acks,
            "enable.idempotence": idempotent,
            "compression.type": codec,
            "linger.ms": 50,  # one batch, compressed as a whole
        }
    )
    reports: list[tuple[Any, int]] = []

    def delivered(err: Any, msg: Any) -> None:
        reports.append((err, msg.offset()))

    for i in range(20):
        producer.produce(
            topic,
            VALUE + b"%d" % i,
            key=b"key-%d" % i,
            partition=1,
            headers=[("n", b"%d" % i)],
            on_delivery=delivered,
        )
    assert producer.flush(15) == 0
    producer.produce(topic, b"marker", partition=1, on_delivery=delivered)
    assert producer.flush(15) == 0
    assert [err for err, _ in reports] == [None] * 21
    if acks != "0":  # acks=0 has no response to learn offsets from
        assert [offset for _, offset in reports] == list(range(21))

    records = read(server, topic, 1, 5, 16)
    assert [r.offset() for r in records] == list(range(5, 21))
    assert [r.key() for r in records[:15]] == [b"key-%d" % i for i in range(5, 20)]
    assert records[0].value() == VALUE + b"5" and records[0].headers() == [("n", b"5")]
    assert records[-1].value() == b"marker"
    stored = commit_log_offset(server, topic, 1, 20) - commit_log_offset(server, topic, 1, 0)
    if codec == "none":
        assert stored > 20 * len(VALUE)
    else:
        assert stored < 20 * len(VALUE) // 4, f"{codec}: the batch is stored compressed ({stored} bytes)"


class Member(ThreadMember):
    """One librdkafka consumer polling in its own thread; its rebalance callbacks record its share."""

    def run(self) -> None:
        try:
            consumer = Consumer(
                {
                    "bootstrap.servers": self.server.kafka_bootstrap,
                    "group.id": self.group,
                    "client.id": self.name,
                    **GROUP_CONFIG,
                }
            )
            consumer.subscribe(
                [self.topic],
                on_assign=lambda c, parts: self._set(parts),
                on_revoke=lambda c, parts: self._set(()),
            )
            try:
                while not self._halt.is_set():
                    msg = consumer.poll(0.1)
                    if msg is not None and msg.error() is not None:
                        raise RuntimeError(str(msg.error()))
            finally:
                consumer.close()  # LeaveGroup: the others rebalance at once
        except BaseException as exc:
            self.error = exc
        self._set(())


def test_group_of_three_splits_partitions_and_rebalances_as_members_come_and_go(server: FerryServer) -> None:
    topic, group = "ck-split", "ck-split-group"
    create_topic(server, topic)
    changed = threading.Condition()
    members: list[Member] = []
    admin = AdminClient({"bootstrap.servers": server.kafka_bootstrap})
    try:
        members.append(Member(server, group, topic, "ck-member-1", changed))
        members[0].start()
        wait_for(changed, members, lambda: one_owner_each(members), "one member owns every partition")
        for n in (2, 3):
            m = Member(server, group, topic, f"ck-member-{n}", changed)
            members.append(m)
            m.start()
        wait_for(changed, members, lambda: one_owner_each(members), "three members share the partitions")
        assert sorted(len(m.assigned) for m in members) == [2, 2, 2]

        listed = admin.list_consumer_groups(request_timeout=15).result()
        assert group in {g.group_id for g in listed.valid}
        described = admin.describe_consumer_groups([group], request_timeout=15)[group].result()
        assert described.state.name == "STABLE" and not described.is_simple_consumer_group
        assert sorted(m.client_id for m in described.members) == ["ck-member-1", "ck-member-2", "ck-member-3"]
        shown = sorted(tp.partition for m in described.members for tp in m.assignment.topic_partitions)
        assert shown == list(range(PARTITIONS)), "the assignment the admin client sees is the group's"

        members.pop(1).leave()
        wait_for(
            changed, members, lambda: one_owner_each(members), "two members take over the leaver's partitions"
        )
        assert sorted(len(m.assigned) for m in members) == [3, 3]

        m4 = Member(server, group, topic, "ck-member-4", changed)
        members.append(m4)
        m4.start()
        wait_for(changed, members, lambda: one_owner_each(members), "a new member gets a share")
    finally:
        for m in members:
            m.leave()


def test_restarted_consumer_resumes_from_committed_offsets(server: FerryServer) -> None:
    topic, group = "ck-resume", "ck-resume-group"
    create_topic(server, topic)
    values = [b"m%d" % i for i in range(24)]
    producer = KafkaProducer({"bootstrap.servers": server.kafka_bootstrap})
    for i, v in enumerate(values):
        producer.produce(topic, v, partition=i % PARTITIONS)
    assert producer.flush(15) == 0

    def consume(want: int) -> list[bytes]:
        consumer = Consumer({"bootstrap.servers": server.kafka_bootstrap, "group.id": group, **GROUP_CONFIG})
        consumer.subscribe([topic])
        got: list[bytes] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < want and time.monotonic() < deadline:
                for msg in consumer.consume(want - len(got), timeout=0.2):
                    assert msg.error() is None, msg.error()
                    got.append(msg.value())
            consumer.commit(asynchronous=False)
        finally:
            consumer.close()
        return got

    before = consume(10)
    assert len(before) == 10
    admin = AdminClient({"bootstrap.servers": server.kafka_bootstrap})
    request = [ConsumerGroupTopicPartitions(group)]
    offsets = admin.list_consumer_group_offsets(request, request_timeout=15)[group].result()
    committed = {tp.partition: tp.offset for tp in offsets.topic_partitions if tp.offset >= 0}
    assert sum(committed.values()) == 10
    # the broker's own view of the group: the same offsets and the lag
    detail = httpx.get(f"{server.admin_url}/api/groups/{group}", timeout=10).json()
    rest = {q["queue_id"]: q["committed_offset"] for q in detail["queues"] if q["committed_offset"]}
    assert rest == {p: o for p, o in committed.items() if o}
    assert detail["total_lag"] == len(values) - 10

    after = consume(len(values) - 10)
    assert not set(before) & set(after), "nothing committed is read again"
    assert sorted(before + after) == sorted(values), "nothing is skipped"


def test_offsets_for_times_finds_the_first_record_at_or_after(server: FerryServer) -> None:
    producer = KafkaProducer({"bootstrap.servers": server.kafka_bootstrap})
    for i in range(6):
        producer.produce("ck-times", b"t%d" % i, partition=0, timestamp=1_000_000 + 1000 * i)
    assert producer.flush(15) == 0
    consumer = Consumer({"bootstrap.servers": server.kafka_bootstrap, "group.id": "ck-times-reader"})
    try:
        (found,) = consumer.offsets_for_times([TopicPartition("ck-times", 0, 1_002_500)], timeout=10)
        assert found.error is None and found.offset == 3
        (after_all,) = consumer.offsets_for_times([TopicPartition("ck-times", 0, 2_000_000)], timeout=10)
        assert after_all.offset == -1  # OFFSET_END: nothing that late
        assert consumer.get_watermark_offsets(TopicPartition("ck-times", 0), timeout=10) == (0, 6)
        consumer.assign([found])
        msg = consumer.poll(10)
        assert msg is not None and msg.error() is None
        assert (msg.offset(), msg.value(), msg.timestamp()[1]) == (3, b"t3", 1_003_000)
    finally:
        consumer.close()


def test_admin_creates_describes_and_deletes_topics(server: FerryServer) -> None:
    admin = AdminClient({"bootstrap.servers": server.kafka_bootstrap})
    (created,) = admin.create_topics([NewTopic("ck-admin", 3, 1)], request_timeout=15).values()
    assert created.result() is None
    described = admin.describe_topics(TopicCollection(["ck-admin"]), request_timeout=15)["ck-admin"].result()
    assert described.name == "ck-admin" and not described.is_internal
    # the stable topic id every broker of the cluster derives (gateway/kafka/topic_ids.py), read by librdkafka
    msb, lsb = described.topic_id.get_most_significant_bits(), described.topic_id.get_least_significant_bits()
    assert uuid.UUID(int=((msb & MASK64) << 64) | (lsb & MASK64)) == topic_id("DefaultCluster", "ck-admin")
    assert [p.id for p in described.partitions] == [0, 1, 2]
    assert all(
        p.leader is not None and p.leader.id == described.partitions[0].leader.id
        for p in described.partitions
    )
    # the topic is a RocketMQ topic with 3 queues
    topic = httpx.get(f"{server.admin_url}/api/topics/ck-admin", timeout=10).json()
    assert topic["write_queues"] == 3
    (deleted,) = admin.delete_topics(["ck-admin"], request_timeout=15).values()
    assert deleted.result() is None
    assert httpx.get(f"{server.admin_url}/api/topics/ck-admin", timeout=10).status_code == 404
    assert "ck-admin" not in admin.list_topics(timeout=10).topics


def test_a_rocketmq_message_is_fetched_by_librdkafka_at_the_same_offset(server: FerryServer) -> None:
    create_topic(server, "ck-cross-in", 2)
    with Producer(server.namesrv_addr, group="ck-cross-producer") as producer:
        producer.send(Message("ck-cross-in", b"warm-up"))
        msg = Message(
            "ck-cross-in", b"from rocketmq", tags="TagR", keys="order-42", properties={"shop": "north"}
        )
        sent = producer.send(msg)
    (record,) = read(server, "ck-cross-in", sent.queue.queue_id, sent.queue_offset, 1)
    assert (record.offset(), record.key(), record.value()) == (
        sent.queue_offset,
        b"order-42",
        b"from rocketmq",
    )
    assert dict(record.headers()) == {"shop": b"north", TAGS_HEADER: b"TagR"}


def test_a_librdkafka_record_is_pulled_by_a_rocketmq_consumer_at_the_same_offset(server: FerryServer) -> None:
    producer = KafkaProducer({"bootstrap.servers": server.kafka_bootstrap})
    offsets: list[int] = []
    producer.produce("ck-cross-out", b"warm-up", partition=1)
    headers = [("color", b"red"), (TAGS_HEADER, b"TagK")]
    producer.produce(
        "ck-cross-out",
        b"from kafka",
        key=b"order-7",
        partition=1,
        headers=headers,
        on_delivery=lambda err, msg: offsets.append(msg.offset()),
    )
    assert producer.flush(15) == 0
    assert offsets == [1]
    consumer = LitePullConsumer(server.namesrv_addr, group="ck-cross-consumer")
    try:
        queue = MessageQueue("ck-cross-out", "broker-a", 1)
        consumer.assign([queue])
        consumer.start()
        consumer.seek(queue, 1)
        messages = consumer.poll(timeout=5.0)
    finally:
        consumer.shutdown()
    assert [(m.queue_offset, m.body, m.keys, m.tags) for m in messages] == [
        (1, b"from kafka", "order-7", "TagK")
    ]
    assert messages[0].properties["color"] == "red"


def test_native_rocketmq_groups_are_visible_to_kafka_admin_tools(server: FerryServer) -> None:
    """A group held by RocketMQ consumers is listed and described by librdkafka's admin client
    (protocol type "", as Kafka's simple groups), with its committed offsets readable."""
    topic, group = "ck-native-group", "ck-native-group-consumers"
    create_topic(server, topic)
    with Producer(server.namesrv_addr, group="ck-native-producer") as producer:
        for i in range(6):
            producer.send(Message(topic, b"n%d" % i))
    consumer = LitePullConsumer(server.namesrv_addr, group=group, consume_from="FIRST_OFFSET")
    consumer.subscribe(topic, "*")
    consumer.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(got) < 6 and time.monotonic() < deadline:
            got += [m.body for m in consumer.poll(timeout=0.5)]
        assert len(got) == 6
        consumer.commit()
        admin = AdminClient({"bootstrap.servers": server.kafka_bootstrap})
        listed = admin.list_consumer_groups(request_timeout=15).result()
        assert group in {g.group_id for g in listed.valid}, "librdkafka drops groups of unknown protocol type"
        described = admin.describe_consumer_groups([group], request_timeout=15)[group].result()
        assert described.group_id == group
        assert len(described.members) == 1, "the live RocketMQ consumer"
        request = [ConsumerGroupTopicPartitions(group)]
        offsets = admin.list_consumer_group_offsets(request, request_timeout=15)[group].result()
        assert sum(tp.offset for tp in offsets.topic_partitions if tp.offset > 0) == 6
    finally:
        consumer.shutdown()
