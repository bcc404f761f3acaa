"""KIP-848 consumer groups (``group.protocol=consumer``) with unmodified clients against
``ferrymq serve``: the Java 4.x consumer (one JVM run) and librdkafka (confluent-kafka).

What a user checks: two consumers of the new protocol share a topic, one leaves, its partitions
move to the other, and every record is read exactly once (commits after each poll carry the member
epoch); the Admin client describes the group as a "consumer" group (ConsumerGroupDescribe); a
rolling upgrade of a group of two classic consumers, one restarted with the new protocol at a
time (the group holds members of both protocols in between), reads every record once; ListGroups
shows the group type; and the rolling change back (Java and librdkafka): the consumer-protocol
member leaves, the group turns classic, and the classic member owns every partition from the
committed offsets, every record read once; the broker's rack reaches the clients.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import kafka_java_support as kj
import pytest
from kafka_support import FAST_GROUPS_CONF, create_topic

from ferrymq.cli.testing import FerryServer

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

#: heartbeats every 300 ms, so reconciliation takes a fraction of a second
FERRYMQ_CONF = FAST_GROUPS_CONF + "groupConsumerHeartbeatIntervalMs=300\nbrokerRack=rack-a\n"
PARTITIONS = 4
COUNT = 120


def test_java_consumer_protocol_share_leave_and_upgrade(server: FerryServer) -> None:
    reason = kj.skip_reason()
    if reason is not None:
        pytest.skip(reason)
    kj.build("kafka-4")
    topic = "kip848-java"
    create_topic(server, topic, PARTITIONS)
    run = kj.run_kafka_java(
        "kafka-4",
        "kip848",
        server.kafka_bootstrap,
        topic,
        str(PARTITIONS),
        str(COUNT),
        "kip848-g",
        "kip848-g2",
    )
    records = kj.of_type(run.results, "record")
    for phase in ("share", "upgrade", "downgrade"):
        seen = Counter((r["partition"], r["offset"]) for r in records if r["phase"] == phase)
        assert len(seen) == COUNT, f"{phase}: every record read"
        assert max(seen.values()) == 1, (
            f"{phase}: no record read twice: {[k for k, n in seen.items() if n > 1]}"
        )
    (assigned,) = kj.of_type(run.results, "assigned")
    assert sorted(assigned["c1"] + assigned["c2"]) == list(range(PARTITIONS))
    assert assigned["c1"] and assigned["c2"], "both members hold partitions"
    (after,) = kj.of_type(run.results, "after-leave")
    assert after["c2"] == list(range(PARTITIONS)), "the leaver's partitions moved"
    by = Counter(r["consumer"] for r in records if r["phase"] == "share")
    assert by["c1"] and by["c2"]
    (mixed,) = kj.of_type(run.results, "mixed")  # a consumer-protocol and a classic member
    assert mixed["k1n"] and mixed["k2"] and sorted(mixed["k1n"] + mixed["k2"]) == list(range(PARTITIONS))
    (upgraded,) = kj.of_type(run.results, "upgraded")
    assert sorted(upgraded["k1n"] + upgraded["k2n"]) == list(range(PARTITIONS))
    described, after_downgrade = kj.of_type(run.results, "described")
    assert (described["groupType"].lower(), described["members"], described["assignor"]) == (
        "consumer",
        2,
        "uniform",
    )
    # the way back: the consumer-protocol member leaves, the classic one owns every partition
    (before,) = kj.of_type(run.results, "before-downgrade")
    assert before["d1"] and before["d2"]
    (downgraded,) = kj.of_type(run.results, "downgraded")
    assert downgraded["d2"] == list(range(PARTITIONS))
    assert (after_downgrade["groupType"].lower(), after_downgrade["members"]) == ("classic", 1)


confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402


def _poll(consumer: Any, name: str, seen: Counter[tuple[int, int]], who: Counter[str], n: int = 10) -> None:
    """Up to ``n`` records, then a synchronous commit (rebalances are served inside consume)."""
    for msg in consumer.consume(n, timeout=0.1):
        assert msg.error() is None, msg.error()
        seen[(msg.partition(), msg.offset())] += 1
        who[name] += 1
    if who[name]:
        try:
            consumer.commit(asynchronous=False)
        except confluent_kafka.KafkaException as e:  # nothing new to commit
            assert e.args[0].code() == confluent_kafka.KafkaError._NO_OFFSET


def _topic_with_records(server: FerryServer, topic: str, group: str) -> dict[str, Any]:
    """COUNT records spread over the topic's partitions; the consumer config of ``group``."""
    create_topic(server, topic, PARTITIONS)
    producer = Producer({"bootstrap.servers": server.kafka_bootstrap})
    for i in range(COUNT):
        producer.produce(topic, value=f"v{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(10) == 0
    return {
        "bootstrap.servers": server.kafka_bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }


def test_librdkafka_consumer_protocol_share_and_leave(server: FerryServer) -> None:
    topic, group = "kip848-rdk", "kip848-rdk-g"
    conf = {**_topic_with_records(server, topic, group), "group.protocol": "consumer"}
    seen: Counter[tuple[int, int]] = Counter()
    who: Counter[str] = Counter()
    c1, c2 = Consumer(conf), Consumer(conf)
    try:
        c1.subscribe([topic])
        deadline = time.monotonic() + 30
        while sum(seen.values()) < COUNT // 4 and time.monotonic() < deadline:
            _poll(c1, "c1", seen, who)
        c2.subscribe([topic])
        while not (c1.assignment() and c2.assignment()) and time.monotonic() < deadline:
            _poll(c1, "c1", seen, who, 1)  # slowly: c2 must find records left to read
            _poll(c2, "c2", seen, who)
        assert len(c1.assignment()) + len(c2.assignment()) == PARTITIONS
        admin = AdminClient({"bootstrap.servers": server.kafka_bootstrap})
        listed = admin.list_consumer_groups().result(10)
        types = {g.group_id: str(getattr(g, "type", "")) for g in listed.valid}
        assert "CONSUMER" in types[group].upper()
        c1.close()
        while (
            sum(seen.values()) < COUNT or len(c2.assignment()) < PARTITIONS
        ) and time.monotonic() < deadline:
            _poll(c2, "c2", seen, who)
    finally:
        c2.close()
    assert len(seen) == COUNT and max(seen.values()) == 1
    assert who["c1"] and who["c2"]


def test_librdkafka_downgrade_classic_member_carries_on(server: FerryServer) -> None:
    """The rolling change back: a consumer-protocol member and a classic one (both librdkafka)
    share a group; the consumer-protocol one leaves, the group turns classic again, and the classic
    member owns every partition and reads on from the committed offsets: every record once."""
    topic, group = "kip848-down", "kip848-down-g"
    conf = {**_topic_with_records(server, topic, group), "client.rack": "rack-a"}
    seen: Counter[tuple[int, int]] = Counter()
    who: Counter[str] = Counter()
    new = Consumer({**conf, "group.protocol": "consumer"})
    classic = Consumer({**conf, "partition.assignment.strategy": "range", "heartbeat.interval.ms": 200})
    admin = AdminClient({"bootstrap.servers": server.kafka_bootstrap})

    def group_type() -> str:
        listed = admin.list_consumer_groups().result(10)
        return {g.group_id: str(getattr(g, "type", "")).upper() for g in listed.valid}.get(group, "")

    # the broker's rack (brokerRack) as the client's rack-aware assignors see it
    assert [n.rack for n in admin.describe_cluster().result(10).nodes] == ["rack-a"]
    try:
        new.subscribe([topic])
        deadline = time.monotonic() + 40
        while sum(seen.values()) < COUNT // 4 and time.monotonic() < deadline:
            _poll(new, "new", seen, who)
        classic.subscribe([topic])
        while not (new.assignment() and classic.assignment()) and time.monotonic() < deadline:
            _poll(new, "new", seen, who, 1)  # slowly: the classic member must find records left
            _poll(classic, "classic", seen, who, 1)
        assert len(new.assignment()) + len(classic.assignment()) == PARTITIONS
        assert "CONSUMER" in group_type()
        new.close()
        while (
            sum(seen.values()) < COUNT or len(classic.assignment()) < PARTITIONS
        ) and time.monotonic() < deadline:
            _poll(classic, "classic", seen, who)
        assert len(classic.assignment()) == PARTITIONS
        assert "CLASSIC" in group_type()
    finally:
        classic.close()
    assert len(seen) == COUNT and max(seen.values()) == 1
    assert who["new"] and who["classic"]
