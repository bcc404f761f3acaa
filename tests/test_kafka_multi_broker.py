"""The Kafka frontend with two broker groups on one name server.

``ferrymq serve`` gives the name server and broker-a; broker-b is a ``ferrymq broker`` process
with its own Kafka listener. A topic with queues on both is one partition range to Kafka clients
(broker-a's queues first), each partition led by the broker that owns its queue.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kio.schema.delete_groups.v2.request import DeleteGroupsRequest
from kio.schema.describe_groups.v5.request import DescribeGroupsRequest
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v0.request import FindCoordinatorRequest as FindCoordinatorV0
from kio.schema.heartbeat.v4.request import HeartbeatRequest
from kio.schema.leave_group.v3.request import LeaveGroupRequest, MemberIdentity
from kio.schema.offset_commit.v8.request import OffsetCommitRequest as CommitV8
from kio.schema.offset_commit.v8.request import OffsetCommitRequestPartition as CommitPartV8
from kio.schema.offset_commit.v8.request import OffsetCommitRequestTopic as CommitTopicV8
from kio.schema.offset_delete.v0.request import (
    OffsetDeleteRequest,
    OffsetDeleteRequestPartition,
    OffsetDeleteRequestTopic,
)
from kio.schema.offset_fetch.v8.request import OffsetFetchRequest as FetchV8
from kio.schema.offset_fetch.v8.request import OffsetFetchRequestGroup as FetchGroupV8
from kio.schema.sync_group.v3.request import SyncGroupRequest

from ferrymq.cli.testing import FerryBroker, FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.gateway.kafka.cluster import node_id_of
from tests import cluster_helpers
from tests.test_kafka_frontend import Wire, batch, fetch, produced
from tests.test_kafka_group_wire import Wire as GroupWire
from tests.test_kafka_group_wire import join_v5

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


# ---- group coordinators across broker groups ----------------------------------------------------


def group_coordinated_by(
    names_now: list[str], want: str, names_later: list[str] | None = None, later: str | None = None
) -> str:
    """A fresh group id whose coordinator is ``want`` among ``names_now`` (and ``later`` among
    ``names_later``), by the cluster's hash of the group id over the sorted broker names."""
    while True:
        group = f"kg-{uuid.uuid4().hex[:8]}"
        h = zlib.crc32(group.encode())
        if sorted(names_now)[h % len(names_now)] != want:
            continue
        if names_later is None or sorted(names_later)[h % len(names_later)] == later:
            return group


def port_of(bootstrap: str | None) -> int:
    assert bootstrap is not None
    return int(bootstrap.rsplit(":", 1)[1])


async def coordinator_named(port: int, group: str) -> int:
    wire = await GroupWire.open(port)
    try:
        r = await wire.call(FindCoordinatorV0(key=group))
        assert r.error_code == ErrorCode.none
        return int(r.node_id)
    finally:
        wire.close()


def test_only_the_coordinator_serves_a_group(two_groups: tuple[FerryServer, FerryBroker, str]) -> None:
    server, broker_b, topic = two_groups
    group = group_coordinated_by(["broker-a", "broker-b"], "broker-b")

    commit = CommitV8(
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        topics=(
            CommitTopicV8(
                name=topic,
                partitions=(CommitPartV8(partition_index=0, committed_offset=1, committed_metadata=None),),
            ),
        ),
    )
    fetch_v8 = FetchV8(groups=(FetchGroupV8(group_id=group, topics=None),), require_stable=False)

    async def body() -> None:
        a, b = port_of(server.kafka_bootstrap), port_of(broker_b.kafka_bootstrap)
        assert await coordinator_named(a, group) == node_id_of("broker-b")
        wire = await GroupWire.open(a)
        try:
            not_coordinator = ErrorCode.not_coordinator
            assert (await wire.call(join_v5(group=group, session=10_000))).error_code == not_coordinator
            hb = HeartbeatRequest(group_id=group, generation_id=1, member_id="m", group_instance_id=None)
            assert (await wire.call(hb)).error_code == not_coordinator
            sync = SyncGroupRequest(
                group_id=group, generation_id=1, member_id="m", group_instance_id=None, assignments=()
            )
            assert (await wire.call(sync)).error_code == not_coordinator
            leave = LeaveGroupRequest(
                group_id=group, members=(MemberIdentity(member_id="m", group_instance_id=None),)
            )
            assert (await wire.call(leave)).error_code == not_coordinator
            committed = await wire.call(commit)
            assert committed.topics[0].partitions[0].error_code == not_coordinator
            assert (await wire.call(fetch_v8)).groups[0].error_code == not_coordinator
            desc = DescribeGroupsRequest(groups=(group,), include_authorized_operations=False)
            assert (await wire.call(desc)).groups[0].error_code == not_coordinator
            deleted = await wire.call(DeleteGroupsRequest(groups_names=(group,)))
            assert deleted.results[0].error_code == not_coordinator
            od = OffsetDeleteRequest(
                group_id=group,
                topics=(
                    OffsetDeleteRequestTopic(
                        name=topic, partitions=(OffsetDeleteRequestPartition(partition_index=0),)
                    ),
                ),
            )
            assert (await wire.call(od)).error_code == not_coordinator
        finally:
            wire.close()
        wire = await GroupWire.open(b)  # the coordinator serves it
        try:
            committed = await wire.call(commit)
            assert committed.topics[0].partitions[0].error_code == ErrorCode.none
            fetched = (await wire.call(fetch_v8)).groups[0]
            assert fetched.error_code == ErrorCode.none
            assert [(p.partition_index, p.committed_offset) for p in fetched.topics[0].partitions] == [(0, 1)]
            desc = DescribeGroupsRequest(groups=(group,), include_authorized_operations=False)
            assert (await wire.call(desc)).groups[0].group_state == "Empty"  # its offset is on broker-a
        finally:
            wire.close()

    asyncio.run(body())
    # partition 0 is broker-a's queue 0: its offset is kept there, where RocketMQ consumers read it
    assert query_offset(server.broker_addr, group, topic, 0) == 1

    def at_coordinator(request: Any) -> Any:
        async def call() -> Any:
            wire = await GroupWire.open(port_of(broker_b.kafka_bootstrap))
            try:
                return await wire.call(request)
            finally:
                wire.close()

        return asyncio.run(call())

    # deleting the offset, or the group, deletes it at the owner
    od = OffsetDeleteRequest(
        group_id=group,
        topics=(
            OffsetDeleteRequestTopic(
                name=topic, partitions=(OffsetDeleteRequestPartition(partition_index=0),)
            ),
        ),
    )
    deleted = at_coordinator(od)
    assert (deleted.error_code, deleted.topics[0].partitions[0].error_code) == (
        ErrorCode.none,
        ErrorCode.none,
    )
    assert query_offset(server.broker_addr, group, topic, 0) is None
    assert at_coordinator(DeleteGroupsRequest(groups_names=(group,))).results[0].error_code == (
        ErrorCode.group_id_not_found  # no offset left anywhere
    )
    assert at_coordinator(commit).topics[0].partitions[0].error_code == ErrorCode.none
    assert query_offset(server.broker_addr, group, topic, 0) == 1
    assert at_coordinator(DeleteGroupsRequest(groups_names=(group,))).results[0].error_code == ErrorCode.none
    assert query_offset(server.broker_addr, group, topic, 0) is None
    assert at_coordinator(DeleteGroupsRequest(groups_names=(group,))).results[0].error_code == (
        ErrorCode.group_id_not_found
    )


def query_offset(broker_addr: str, group: str, topic: str, queue: int) -> int | None:
    """QUERY_CONSUMER_OFFSET as a RocketMQ consumer of ``group`` asks the queue's owner."""
    resp = cluster_helpers.call(
        broker_addr,
        RequestCode.QUERY_CONSUMER_OFFSET,
        {"consumerGroup": group, "topic": topic, "queueId": str(queue), "setZeroIfNotFound": "false"},
    )
    if resp.code == ResponseCode.QUERY_NOT_FOUND:
        return None
    assert resp.code == ResponseCode.SUCCESS, resp.remark
    return int(resp.ext_fields["offset"])


def consume(bootstrap: str | None, topic: str, group: str, n: int, *, commit: bool) -> list[tuple[int, int]]:
    """A group member reading ``n`` records (committing them if ``commit``): (partition, offset)s."""
    member = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10000,
    )
    got: list[tuple[int, int]] = []
    try:
        for record in member:
            got.append((record.partition, record.offset))
            if len(got) == n:
                break
        if commit:
            member.commit()
    finally:
        member.close()
    return sorted(got)


def test_committed_offsets_survive_a_coordinator_move(
    two_groups: tuple[FerryServer, FerryBroker, str], tmp_path: Path
) -> None:
    server, broker_b, topic = two_groups
    partitions = range(2 * QUEUES)
    # coordinated by broker-a or -b now, by broker-c once it joins
    group = group_coordinated_by(
        ["broker-a", "broker-b"], "broker-a", ["broker-a", "broker-b", "broker-c"], "broker-c"
    )
    producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap, acks=1, linger_ms=0)

    def produce(counts: list[int]) -> None:
        for p, n in zip(partitions, counts, strict=True):
            for i in range(n):
                producer.send(topic, f"p{p}-{i}".encode(), partition=p)
        producer.flush(15)

    try:
        produce([1, 2, 3, 4])  # partition p holds p + 1 records
        assert consume(server.kafka_bootstrap, topic, group, 10, commit=True) == [
            (p, i) for p in partitions for i in range(p + 1)
        ]
        # the offsets are one table: a RocketMQ consumer of the group finds each queue's at its owner
        assert [query_offset(server.broker_addr, group, topic, q) for q in range(QUEUES)] == [1, 2]
        assert [query_offset(broker_b.addr, group, topic, q) for q in range(QUEUES)] == [3, 4]
        produce([1, 1, 1, 1])
        uncommitted = consume(server.kafka_bootstrap, topic, group, 4, commit=False)
        assert uncommitted == [(p, p + 1) for p in partitions]

        broker_c = FerryBroker(tmp_path / "broker-c", server.namesrv_addr, "broker-c", kafka=True)
        try:
            ports = [
                port_of(b)
                for b in (server.kafka_bootstrap, broker_b.kafka_bootstrap, broker_c.kafka_bootstrap)
            ]

            async def named() -> list[int]:
                async with asyncio.timeout(5):
                    return await asyncio.gather(*(coordinator_named(p, group) for p in ports))

            def moved() -> bool:
                return asyncio.run(named()) == [node_id_of("broker-c")] * 3

            cluster_helpers.eventually(moved, 15.0, "broker-c coordinating the group")
            produce([1, 1, 1, 1])
            # resumed at the committed offsets: the uncommitted records again, then the new ones
            resumed = consume(broker_c.kafka_bootstrap, topic, group, 8, commit=True)
            assert resumed == sorted([*uncommitted, *((p, p + 2) for p in partitions)])
            assert [query_offset(broker_b.addr, group, topic, q) for q in range(QUEUES)] == [5, 6]
        finally:
            broker_c.stop()
    finally:
        producer.close(5)
