"""Unmodified kafka-python consumer groups against a real ``ferrymq serve``.

What a user of a consumer group checks: the partitions are split across the members, and every
partition has exactly one owner again after members join and leave; a consumer restarted in the
same group resumes from its committed offsets (also across a broker restart), and those offsets
are the broker's own (the admin REST API shows them); the admin client lists and describes the
group; and a group held by native RocketMQ consumers refuses Kafka members.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode

kafka = pytest.importorskip("kafka")
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.errors import InconsistentGroupProtocolError  # noqa: E402

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

PARTITIONS = 6
#: short enough that rebalances take a fraction of a second (the broker's minimum session is 6 s)
GROUP_CONFIG: dict[str, Any] = {
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 200,
    "max_poll_interval_ms": 10_000,
    "request_timeout_ms": 15_000,
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerryServer]:
    s = FerryServer(tmp_path_factory.mktemp("kafka-groups"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def create_topic(server: FerryServer, name: str, queues: int = PARTITIONS) -> None:
    r = httpx.post(f"{server.admin_url}/api/topics", json={"name": name, "queues": queues}, timeout=10)
    assert r.status_code == 201, r.text


class Member(threading.Thread):
    """One kafka-python consumer in its own thread (JoinGroup blocks until the others rejoin)."""

    def __init__(
        self,
        server: FerryServer,
        group: str,
        topic: str,
        name: str,
        changed: threading.Condition,
        instance: str | None = None,
    ):
        super().__init__(name=name, daemon=True)
        self.server, self.group, self.topic, self.changed = server, group, topic, changed
        self.instance = instance
        self.assigned: frozenset[int] = frozenset()
        self.revocations = 0
        self.records = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def _set(self, partitions: Iterator[Any] | Any) -> None:
        with self.changed:
            self.assigned = frozenset(tp.partition for tp in partitions)
            self.changed.notify_all()

    def run(self) -> None:
        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                member.revocations += 1
                member._set(())

            def on_partitions_assigned(self, assigned: Any) -> None:
                member._set(assigned)

        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.server.kafka_bootstrap,
                group_id=self.group,
                client_id=self.name,
                group_instance_id=self.instance,
                **GROUP_CONFIG,
            )
            consumer.subscribe([self.topic], listener=Listener())
            try:
                while not self._halt.is_set():
                    for records in consumer.poll(timeout_ms=100).values():
                        self.records += len(records)
            finally:
                consumer.close()  # LeaveGroup (not for a static member): the others rebalance at once
        except BaseException as exc:
            self.error = exc
            with self.changed:
                self.changed.notify_all()
        self._set(())

    def leave(self) -> None:
        self._halt.set()
        self.join(30)
        assert not self.is_alive()


def wait_for(
    changed: threading.Condition, members: list[Member], check: Callable[[], bool], what: str
) -> None:
    with changed:
        ok = changed.wait_for(lambda: check() or any(m.error for m in members), timeout=45)
    errors = [m.error for m in members if m.error]
    assert not errors, f"{what}: consumer failed: {errors[0]!r}"
    assert ok, f"{what}: assignments {[sorted(m.assigned) for m in members]}"


def one_owner_each(members: list[Member]) -> bool:
    """Every partition owned by exactly one member, and every member owns some."""
    owned = [p for m in members for p in m.assigned]
    return sorted(owned) == list(range(PARTITIONS)) and all(m.assigned for m in members)


def test_group_of_three_splits_partitions_and_rebalances_as_members_come_and_go(server: FerryServer) -> None:
    topic, group = "kp-split", "kp-split-group"
    create_topic(server, topic)
    changed = threading.Condition()
    members: list[Member] = []
    try:
        first = Member(server, group, topic, "member-1", changed)
        members.append(first)
        first.start()
        wait_for(changed, members, lambda: one_owner_each(members), "one member owns every partition")

        for n in (2, 3):
            m = Member(server, group, topic, f"member-{n}", changed)
            members.append(m)
            m.start()
        wait_for(changed, members, lambda: one_owner_each(members), "three members share the partitions")
        assert sorted(len(m.assigned) for m in members) == [2, 2, 2]

        admin = KafkaAdminClient(bootstrap_servers=server.kafka_bootstrap, request_timeout_ms=15_000)
        try:
            listed = {g["group_id"]: g for g in admin.list_groups()}
            assert listed[group]["protocol_type"] == "consumer"
            described = admin.describe_groups([group])[group]
            assert described["error"] is None
            assert described["group_state"] == "Stable"
            assert described["protocol_type"] == "consumer"
            assert sorted(m["client_id"] for m in described["members"]) == [
                "member-1",
                "member-2",
                "member-3",
            ]
            shown = sorted(
                p
                for m in described["members"]
                for t in m["member_assignment"]["assigned_partitions"]
                for p in t["partitions"]
            )
            assert shown == list(range(PARTITIONS)), "the assignment the admin client sees is the group's"
        finally:
            admin.close()

        members.pop(1).leave()
        wait_for(
            changed, members, lambda: one_owner_each(members), "two members take over the leaver's partitions"
        )
        assert sorted(len(m.assigned) for m in members) == [3, 3]

        m4 = Member(server, group, topic, "member-4", changed)
        members.append(m4)
        m4.start()
        wait_for(changed, members, lambda: one_owner_each(members), "a new member gets a share")
    finally:
        for m in members:
            m.leave()


def test_restarted_static_member_keeps_its_partitions_without_a_rebalance(server: FerryServer) -> None:
    topic, group = "kp-static", "kp-static-group"
    create_topic(server, topic)
    changed = threading.Condition()
    a = Member(server, group, topic, "static-a", changed, instance="instance-a")
    b = Member(server, group, topic, "static-b", changed, instance="instance-b")
    members = [a, b]
    try:
        for m in members:
            m.start()
        wait_for(changed, members, lambda: one_owner_each(members), "two static members share the partitions")
        a_owned, b_owned, a_revoked = a.assigned, b.assigned, a.revocations

        b.leave()  # a static member closes without leaving: its session keeps its place
        b2 = Member(server, group, topic, "static-b-again", changed, instance="instance-b")
        members = [a, b2]
        b2.start()
        wait_for(
            changed, members, lambda: b2.assigned == b_owned, "the restarted member gets its partitions back"
        )
        assert a.assigned == a_owned and a.revocations == a_revoked, "the other member saw no rebalance"
    finally:
        for m in members:
            m.leave()


def consume(server: FerryServer, group: str, topic: str, want: int) -> list[bytes]:
    """Read ``want`` records with a fresh consumer, commit, close; returns their values."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=server.kafka_bootstrap, group_id=group, max_poll_records=5, **GROUP_CONFIG
    )
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < want and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200, max_records=want - len(got)).values():
                got.extend(r.value for r in records)
        consumer.commit()
    finally:
        consumer.close()
    return got


def produce(server: FerryServer, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap, acks="all")
    try:
        for i, v in enumerate(values):
            producer.send(topic, v, partition=i % PARTITIONS)
        producer.flush(30)
    finally:
        producer.close()


def test_restarted_consumer_resumes_from_committed_offsets(server: FerryServer, tmp_path: Path) -> None:
    topic, group = "kp-resume", "kp-resume-group"
    create_topic(server, topic)
    first_batch = [f"m{i}".encode() for i in range(24)]
    produce(server, topic, first_batch)

    before = consume(server, group, topic, 10)
    assert len(before) == 10

    admin = KafkaAdminClient(bootstrap_servers=server.kafka_bootstrap, request_timeout_ms=15_000)
    try:
        offsets = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    committed = {tp.partition: om.offset for tp, om in offsets.items()}
    assert sum(committed.values()) == 10, "offsets are counts of records read per partition"
    # the broker's own view of the group: the same offsets, with lag
    detail = httpx.get(f"{server.admin_url}/api/groups/{group}", timeout=10).json()
    rest = {
        q["queue_id"]: q["committed_offset"] for q in detail["queues"] if q["committed_offset"] is not None
    }
    assert rest == committed
    assert detail["total_lag"] == len(first_batch) - 10
    assert detail["protocol"] == "kafka", "the coordinator is the admin API's provider of Kafka groups"

    server.restart()  # offsets are persisted by the broker, not held by the coordinator
    second_batch = [f"n{i}".encode() for i in range(6)]
    produce(server, topic, second_batch)

    after = consume(server, group, topic, len(first_batch) + len(second_batch) - 10)
    assert not set(before) & set(after), "nothing committed is read again"
    assert sorted(before + after) == sorted(first_batch + second_batch), "nothing is skipped"


def test_kafka_member_cannot_join_a_group_native_consumers_hold(server: FerryServer) -> None:
    import asyncio
    import json

    from ferrymq.core.remoting.command import RemotingCommand
    from ferrymq.core.remoting.transport import connect

    topic, group = "kp-native", "kp-native-group"
    create_topic(server, topic)
    heartbeat = {
        "clientID": "native-client",
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": group,
                "consumeType": "CONSUME_PASSIVELY",
                "messageModel": "CLUSTERING",
                "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                "subscriptionDataSet": [{"topic": topic, "subString": "*", "subVersion": 1}],
            }
        ],
    }

    async def scenario() -> None:
        host, port = server.broker_addr.split(":")
        native = await connect(host, int(port))
        try:
            ok = await native.invoke(
                RemotingCommand(code=RequestCode.HEART_BEAT, body=json.dumps(heartbeat).encode())
            )
            assert ok.code == ResponseCode.SUCCESS
            consumer = KafkaConsumer(
                topic, bootstrap_servers=server.kafka_bootstrap, group_id=group, **GROUP_CONFIG
            )
            try:
                with pytest.raises(InconsistentGroupProtocolError):
                    await asyncio.to_thread(consumer.poll, timeout_ms=10_000)
            finally:
                consumer.close()
        finally:
            native.close()

    asyncio.run(scenario())
