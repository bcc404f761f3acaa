"""The Kafka frontend with two broker groups on one name server.

``ferrymq serve`` gives the name server and broker-a; broker-b is a ``ferrymq broker`` process
with its own Kafka listener. A topic with queues on both is one partition range to Kafka clients
(broker-a's queues first), each partition led by the broker that owns its queue.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kio.schema.errors import ErrorCode

from ferrymq.cli.testing import FerryBroker, FerryServer
from ferrymq.gateway.kafka.cluster import node_id_of
from tests import cluster_helpers
from tests.test_kafka_frontend import Wire, batch, fetch, produced

pytestmark = pytest.mark.timeout(60)

QUEUES = 2  # on each broker group: partitions 0-1 are broker-a's, 2-3 broker-b's


def create_topic(broker_addr: str, topic: str) -> None:
    cluster_helpers.create_topic(broker_addr, topic, QUEUES)


def kafka_routed(namesrv_addr: str, topic: str) -> bool:
    """Both groups carry the topic and their Kafka listener in the name server's route."""
    route = cluster_helpers.routed(namesrv_addr, topic)
    if route is None:
        return False
    names = {qd.broker_name for qd in route.queue_datas}
    with_kafka = {bd.broker_name for bd in route.broker_datas if bd.kafka_addrs.get(0)}
    return names == with_kafka == {"broker-a", "broker-b"}


@pytest.fixture
def two_groups(ferrymq_server: FerryServer, tmp_path: Path) -> Iterator[tuple[FerryServer, FerryBroker, str]]:
    broker_b = FerryBroker(tmp_path / "broker-b", ferrymq_server.namesrv_addr, "broker-b", kafka=True)
    try:
        topic = f"KafkaTwo-{uuid.uuid4().hex[:8]}"
        create_topic(ferrymq_server.broker_addr, topic)
        create_topic(broker_b.addr, topic)
        cluster_helpers.eventually(
            lambda: kafka_routed(ferrymq_server.namesrv_addr, topic), 15.0, "both groups routed"
        )
        yield ferrymq_server, broker_b, topic
    finally:
        broker_b.stop()


def test_partitions_span_both_groups_and_land_on_their_owner(
    two_groups: tuple[FerryServer, FerryBroker, str],
) -> None:
    server, broker_b, topic = two_groups
    partitions = range(2 * QUEUES)
    producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap, acks=1, linger_ms=0)
    try:
        assert producer.partitions_for(topic) == set(partitions)
        cluster = producer._metadata  # what the client learned from Metadata
        leaders = [cluster.leader_for_partition(TopicPartition(topic, p)) for p in partitions]
        a, b = node_id_of("broker-a"), node_id_of("broker-b")
        assert leaders == [a] * QUEUES + [b] * QUEUES
        assert cluster.broker_metadata(b).port == int(broker_b.kafka_bootstrap.rsplit(":", 1)[1])
        futures = [
            producer.send(topic, f"p{p}-{i}".encode(), partition=p) for p in partitions for i in range(3)
        ]
        producer.flush(15)
        sent = [f.get(timeout=15) for f in futures]
    finally:
        producer.close(5)
    assert [(m.partition, m.offset) for m in sent] == [(p, i) for p in partitions for i in range(3)]
    # each partition landed in its owner's queue, as RocketMQ clients see it
    for q in range(QUEUES):
        assert cluster_helpers.max_offset(server.broker_addr, topic, q) == 3
        assert cluster_helpers.max_offset(broker_b.addr, topic, q) == 3

    consumer = KafkaConsumer(
        bootstrap_servers=broker_b.kafka_bootstrap,  # either broker serves the whole cluster's metadata
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
    )
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        got: dict[int, list[tuple[int, bytes]]] = {}
        for record in consumer:
            got.setdefault(record.partition, []).append((record.offset, record.value))
            if sum(len(v) for v in got.values()) == 3 * len(partitions):
                break
    finally:
        consumer.close()
    assert got == {p: [(i, f"p{p}-{i}".encode()) for i in range(3)] for p in partitions}

    # a partition is served by its owner only: broker-b turns away broker-a's partition 0
    async def not_owner() -> None:
        wire = await Wire.open(int(broker_b.kafka_bootstrap.rsplit(":", 1)[1]))
        try:
            assert await produced(wire, batch(1), topic=topic, partition=0) == (
                ErrorCode.not_leader_or_follower,
                -1,
            )
            r = await wire.call(fetch(0, topic=topic, partition=0))
            assert r.responses[0].partitions[0].error_code == ErrorCode.not_leader_or_follower
            assert await produced(wire, batch(1), topic=topic, partition=QUEUES) == (ErrorCode.none, 3)
        finally:
            wire.close()

    asyncio.run(not_owner())
    assert cluster_helpers.max_offset(server.broker_addr, topic, 0) == 3
    assert cluster_helpers.max_offset(broker_b.addr, topic, 0) == 4

    # a group: both brokers name the same coordinator, which keeps every partition's offset
    group = f"kg-{uuid.uuid4().hex[:8]}"
    tps = [TopicPartition(topic, p) for p in partitions]
    member = KafkaConsumer(
        topic,
        bootstrap_servers=server.kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
    )
    try:
        seen = 0
        for _ in member:
            seen += 1
            if seen == 3 * len(partitions) + 1:
                break
        assert seen == 3 * len(partitions) + 1
        member.commit()
        coordinator = member._coordinator.coordinator_id
    finally:
        member.close()
    other = KafkaConsumer(
        bootstrap_servers=broker_b.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        assert [other.committed(tp) for tp in tps] == [3, 3, 4, 3]
        assert other._coordinator.coordinator_id == coordinator
    finally:
        other.close()


def test_numbering_is_by_broker_name_and_other_owners_are_not_local() -> None:
    from ferrymq.gateway.kafka.cluster import NO_LEADER, place

    on_b = place({"broker-b": 3, "broker-a": 2, "broker-c": 0}, "broker-b")
    assert [(o.broker_name, o.first, o.count) for o in on_b.owners] == [
        ("broker-a", 0, 2),
        ("broker-b", 2, 3),
    ]
    assert [on_b.queue_of(p) for p in range(6)] == [None, None, 0, 1, 2, -1]
    assert on_b.partition_of(1) == 3
    assert on_b.leader(1, {"broker-a": True}) == node_id_of("broker-a")
    assert on_b.leader(4, {"broker-a": True}) == NO_LEADER  # broker-b without a Kafka address
    alone = place({"broker-a": 4}, "broker-a")
    assert [alone.queue_of(p) for p in (0, 3, 4)] == [0, 3, 4]  # the caller's checks judge 4
    elsewhere = place({"broker-a": 4}, "broker-b")
    assert elsewhere.queue_of(0) is None
