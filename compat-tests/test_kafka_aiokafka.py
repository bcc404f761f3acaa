"""Unmodified aiokafka against a real ``ferrymq serve``: produce, consume in groups, admin, and the
round trip with RocketMQ clients.

aiokafka never uses flexible versions and picks the highest version it implements inside the
broker's advertised range (Produce v8, Fetch v11, Metadata v5, JoinGroup v5, SyncGroup v3,
InitProducerId v0 only), so this is the old-version path of the frontend.

What a user checks: every acks setting, idempotence and every codec produce records a consumer
reads back with keys, values and headers at the offsets the producer was told (and a compressed
batch is stored compressed); a group of three splits the partitions and every partition has one
owner again as members leave and join; a restarted consumer resumes from its commits; seeking by
timestamp; the admin client creates, describes and deletes topics and lists and describes
groups; a RocketMQ message is fetched at the same offset with its key, properties and tag, and
the reverse.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from kafka_support import (
    FAST_GROUPS_CONF,
    GROUP_CONFIG,
    PARTITIONS,
    VALUE,
    commit_log_offset,
    create_topic,
    one_owner_each,
)

from ferrymq.cli.testing import FerryServer
from ferrymq.client import LitePullConsumer, Message, MessageQueue, Producer

pytest.importorskip("aiokafka")
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TAGS_HEADER = "rocketmq.tags"
FERRYMQ_CONF = FAST_GROUPS_CONF  # broker.conf of this module's shared server


async def read(server: FerryServer, topic: str, partition: int, offset: int, count: int) -> list[Any]:
    """``count`` records from ``offset`` with assign + seek (no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=server.kafka_bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        out: list[Any] = []
        async with asyncio.timeout(15):
            while len(out) < count:
                for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                    out.extend(records)
        return out[:count]
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("acks", "idempotent", "codec"),
    [
        (0, False, None),
        (1, False, None),
        ("all", False, None),
        ("all", True, None),
        ("all", True, "gzip"),
        ("all", True, "snappy"),
        ("all", True, "lz4"),
        ("all", True, "zstd"),
    ],
)
def test_produce_with_each_acks_idempotence_and_codec_then_read_back(
    server: FerryServer, acks: Any, idempotent: bool, codec: str | None
) -> None:
    topic = f"aio-{acks}-{idempotent}-{codec}"

    async def scenario() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=server.kafka_bootstrap,
            acks=acks,
            enable_idempotence=idempotent,
            compression_type=codec,
            linger_ms=50,  # one batch, compressed as a whole
        )
        await producer.start()
        try:
            futures = [
                await producer.send(
                    topic, VALUE + b"%d" % i, key=b"key-%d" % i, partition=1, headers=[("n", b"%d" % i)]
                )
                for i in range(20)
            ]
            await producer.flush()
            results = [await f for f in futures]
            marker = await producer.send_and_wait(topic, b"marker", partition=1)
        finally:
            await producer.stop()
        if acks != 0:  # acks=0 has no response to learn offsets from (aiokafka gives None)
            assert [r.offset for r in results] == list(range(20)) and marker.offset == 20
        records = await read(server, topic, 1, 5, 16)
        assert [r.offset for r in records] == list(range(5, 21))
        assert [r.key for r in records[:15]] == [b"key-%d" % i for i in range(5, 20)]
        assert records[0].value == VALUE + b"5" and list(records[0].headers) == [("n", b"5")]
        assert records[-1].value == b"marker"

    asyncio.run(scenario())
    stored = commit_log_offset(server, topic, 1, 20) - commit_log_offset(server, topic, 1, 0)
    if codec is None:
        assert stored > 20 * len(VALUE)
    else:
        assert stored < 20 * len(VALUE) // 4, f"{codec}: the batch is stored compressed ({stored} bytes)"


class Member:
    """One aiokafka group member: a consume loop and the partitions its listener was given."""

    def __init__(self, server: FerryServer, group: str, topic: str, name: str, changed: asyncio.Condition):
        self.name, self.changed = name, changed
        self.assigned: frozenset[int] = frozenset()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=server.kafka_bootstrap, group_id=group, client_id=name, **GROUP_CONFIG
        )
        self.topic = topic
        self.task: asyncio.Task[None] | None = None

    async def _set(self, partitions: Any) -> None:
        async with self.changed:
            self.assigned = frozenset(tp.partition for tp in partitions)
            self.changed.notify_all()

    async def start(self) -> None:
        member = self

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await member._set(())

            async def on_partitions_assigned(self, assigned: Any) -> None:
                await member._set(assigned)

        await self.consumer.start()
        self.consumer.subscribe([self.topic], listener=Listener())
        self.task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await self.consumer.getmany(timeout_ms=100)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.consumer.stop()  # LeaveGroup: the others rebalance at once
        await self._set(())


async def wait_for(changed: asyncio.Condition, members: list[Member], what: str) -> None:
    """Until every partition has exactly one owner and every member owns some."""

    try:
        async with asyncio.timeout(30), changed:
            await changed.wait_for(lambda: one_owner_each(members))
    except TimeoutError:
        pytest.fail(f"{what}: assignments {[sorted(m.assigned) for m in members]}")


def test_group_of_three_splits_partitions_and_rebalances_as_members_come_and_go(server: FerryServer) -> None:
    topic, group = "aio-split", "aio-split-group"
    create_topic(server, topic)

    async def scenario() -> None:
        changed = asyncio.Condition()
        members = [Member(server, group, topic, f"aio-member-{n}", changed) for n in (1, 2, 3)]
        started: list[Member] = []
        try:
            await members[0].start()
            started.append(members[0])
            await wait_for(changed, started, "one member owns every partition")
            for m in members[1:]:
                await m.start()
                started.append(m)
            await wait_for(changed, started, "three members share the partitions")
            assert sorted(len(m.assigned) for m in started) == [2, 2, 2]

            admin = AIOKafkaAdminClient(bootstrap_servers=server.kafka_bootstrap)
            await admin.start()
            try:
                listed = {g[0]: g[1] for g in await admin.list_consumer_groups()}
                assert listed[group] == "consumer"
                (response,) = await admin.describe_consumer_groups([group])
                (described,) = response.groups
                assert described[0] == 0 and described[1] == group  # error code, group id
                assert described[2] == "Stable" and described[3] == "consumer"
                clients = sorted(m[1] for m in described[5])  # member id, client id, host, ...
                assert clients == ["aio-member-1", "aio-member-2", "aio-member-3"]
            finally:
                await admin.close()

            leaver = started.pop(1)
            await leaver.stop()
            await wait_for(changed, started, "two members take over the leaver's partitions")
            assert sorted(len(m.assigned) for m in started) == [3, 3]

            newcomer = Member(server, group, topic, "aio-member-4", changed)
            await newcomer.start()
            started.append(newcomer)
            await wait_for(changed, started, "a new member gets a share")
        finally:
            for m in started:
                await m.stop()

    asyncio.run(scenario())


def test_restarted_consumer_resumes_from_committed_offsets(server: FerryServer) -> None:
    topic, group = "aio-resume", "aio-resume-group"
    create_topic(server, topic)
    values = [b"m%d" % i for i in range(24)]

    async def consume(want: int) -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=server.kafka_bootstrap, group_id=group, **GROUP_CONFIG
        )
        await consumer.start()
        got: list[bytes] = []
        try:
            async with asyncio.timeout(30):
                while len(got) < want:
                    batches = await consumer.getmany(timeout_ms=200, max_records=want - len(got))
                    got.extend(r.value for records in batches.values() for r in records)
            await consumer.commit()
        finally:
            await consumer.stop()
        return got

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=server.kafka_bootstrap)
        await producer.start()
        try:
            for i, v in enumerate(values):
                await producer.send(topic, v, partition=i % PARTITIONS)
            await producer.flush()
        finally:
            await producer.stop()

        before = await consume(10)
        admin = AIOKafkaAdminClient(bootstrap_servers=server.kafka_bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        committed = {tp.partition: om.offset for tp, om in offsets.items() if om.offset >= 0}
        assert sum(committed.values()) == 10
        # the broker's own view of the group: the same offsets and the lag
        detail = httpx.get(f"{server.admin_url}/api/groups/{group}", timeout=10).json()
        rest = {q["queue_id"]: q["committed_offset"] for q in detail["queues"] if q["committed_offset"]}
        assert rest == {p: o for p, o in committed.items() if o}
        assert detail["total_lag"] == len(values) - 10

        after = await consume(len(values) - 10)
        assert not set(before) & set(after), "nothing committed is read again"
        assert sorted(before + after) == sorted(values), "nothing is skipped"

    asyncio.run(scenario())


def test_offsets_for_times_finds_the_first_record_at_or_after(server: FerryServer) -> None:
    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=server.kafka_bootstrap)
        await producer.start()
        try:
            for i in range(6):
                await producer.send("aio-times", b"t%d" % i, partition=0, timestamp_ms=1_000_000 + 1000 * i)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=server.kafka_bootstrap)
        await consumer.start()
        try:
            tp = TopicPartition("aio-times", 0)
            found = (await consumer.offsets_for_times({tp: 1_002_500}))[tp]
            assert found is not None and (found.offset, found.timestamp) == (3, 1_003_000)
            assert (await consumer.offsets_for_times({tp: 2_000_000}))[tp] is None
            assert (await consumer.beginning_offsets([tp]))[tp] == 0
            assert (await consumer.end_offsets([tp]))[tp] == 6
            consumer.assign([tp])
            consumer.seek(tp, found.offset)
            records = (await consumer.getmany(tp, timeout_ms=5000))[tp]
            assert records[0].value == b"t3"
        finally:
            await consumer.stop()

    asyncio.run(scenario())


def test_admin_creates_describes_and_deletes_topics(server: FerryServer) -> None:
    async def scenario() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=server.kafka_bootstrap)
        await admin.start()
        try:
            response = await admin.create_topics([NewTopic("aio-admin", 3, 1)])
            assert [(t[0], t[1]) for t in response.topic_errors] == [("aio-admin", 0)]
            assert "aio-admin" in await admin.list_topics()
            (described,) = await admin.describe_topics(["aio-admin"])
            assert described["error_code"] == 0
            assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2]
            # the topic is a RocketMQ topic with 3 queues
            topic = httpx.get(f"{server.admin_url}/api/topics/aio-admin", timeout=10).json()
            assert topic["write_queues"] == 3
            response = await admin.delete_topics(["aio-admin"])
            assert [(t[0], t[1]) for t in response.topic_error_codes] == [("aio-admin", 0)]
            assert httpx.get(f"{server.admin_url}/api/topics/aio-admin", timeout=10).status_code == 404
            assert "aio-admin" not in await admin.list_topics()
        finally:
            await admin.close()

    asyncio.run(scenario())


def test_a_rocketmq_message_is_fetched_by_aiokafka_at_the_same_offset(server: FerryServer) -> None:
    create_topic(server, "aio-cross-in", 2)
    with Producer(server.namesrv_addr, group="aio-cross-producer") as producer:
        producer.send(Message("aio-cross-in", b"warm-up"))
        msg = Message(
            "aio-cross-in", b"from rocketmq", tags="TagR", keys="order-42", properties={"shop": "north"}
        )
        sent = producer.send(msg)
    (record,) = asyncio.run(read(server, "aio-cross-in", sent.queue.queue_id, sent.queue_offset, 1))
    assert (record.offset, record.key, record.value) == (sent.queue_offset, b"order-42", b"from rocketmq")
    assert dict(record.headers) == {"shop": b"north", TAGS_HEADER: b"TagR"}


def test_an_aiokafka_record_is_pulled_by_a_rocketmq_consumer_at_the_same_offset(server: FerryServer) -> None:
    async def send() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=server.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("aio-cross-out", b"warm-up", partition=1)
            headers = [("color", b"red"), (TAGS_HEADER, b"TagK")]
            meta = await producer.send_and_wait(
                "aio-cross-out", b"from kafka", key=b"order-7", partition=1, headers=headers
            )
            return int(meta.offset)
        finally:
            await producer.stop()

    offset = asyncio.run(send())
    assert offset == 1
    consumer = LitePullConsumer(server.namesrv_addr, group="aio-cross-consumer")
    try:
        queue = MessageQueue("aio-cross-out", "broker-a", 1)
        consumer.assign([queue])
        consumer.start()
        consumer.seek(queue, offset)
        messages = consumer.poll(timeout=5.0)
    finally:
        consumer.shutdown()
    assert [(m.queue_offset, m.body, m.keys, m.tags) for m in messages] == [
        (1, b"from kafka", "order-7", "TagK")
    ]
    assert messages[0].properties["color"] == "red"
