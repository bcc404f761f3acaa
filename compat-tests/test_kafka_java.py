"""Apache Kafka's own Java client (kafka-clients 3.9.x and 4.x, unmodified) against ``ferrymq serve``.

Each test runs for both client lines the program of compat-tests/kafka-java (through
kafka_java_support): the producer with default settings (idempotent: it asks InitProducerId for a
producer id) and the same producer with each codec (snappy xerial-framed, lz4 frames), a
consumer group that reads, commits with commitSync and is resumed by a second run, offsetsForTimes,
the Admin client (createTopics, describeTopics, listConsumerGroups, describeConsumerGroups,
deleteTopics; the 4.x client tries DescribeTopicPartitions and ConsumerGroupDescribe first and
falls back to Metadata and DescribeGroups), and both cross-protocol directions with the Python
RocketMQ client. Without java or mvn every test is skipped, with the reason in the summary (-ra).
"""

from __future__ import annotations

import re

import httpx
import kafka_java_support as kj
import pytest
from kafka_support import FAST_GROUPS_CONF, create_topic

from ferrymq.cli.testing import FerryServer
from ferrymq.client import LitePullConsumer, Message, MessageQueue, Producer

SKIP_REASON = kj.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(60),
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

TAGS_HEADER = "rocketmq.tags"
FERRYMQ_CONF = FAST_GROUPS_CONF  # broker.conf of this module's shared server


@pytest.fixture(params=kj.LINES)
def line(request: pytest.FixtureRequest) -> str:
    """A client line, built (a no-op after ``make java``)."""
    kj.build(request.param)
    return str(request.param)


def name(line: str, what: str) -> str:
    """A topic or group name per client line (RocketMQ names allow no dots)."""
    return f"java-{line.replace('.', '')}-{what}"


def test_default_producer_is_idempotent_and_a_group_resumes_from_its_commits(
    server: FerryServer, line: str
) -> None:
    topic, group = name(line, "group"), name(line, "group-g")
    create_topic(server, topic, 3)
    run = kj.run_kafka_java(line, "produce", server.kafka_bootstrap, topic, "12", "3", "TagJ")
    sends = kj.of_type(run.results, "send")
    assert [(s["partition"], s["offset"]) for s in sends] == [(i % 3, i // 3) for i in range(12)]
    assert re.search(r"ProducerId set to \d+ with epoch 0", run.stderr), "the default producer is idempotent"
    assert kj.of_type(run.results, "done")[0]["client"].startswith(line.removeprefix("kafka-") + ".")

    def consume(count: int) -> list[dict[str, object]]:
        run = kj.run_kafka_java(line, "consume", server.kafka_bootstrap, topic, group, str(count))
        committed = {c["partition"]: c["offset"] for c in kj.of_type(run.results, "committed")}
        records = kj.of_type(run.results, "record")
        for r in records:  # commitSync stored the offset after the last record read per partition
            assert committed[r["partition"]] >= r["offset"] + 1
        return records

    first = consume(5)
    second = consume(7)
    assert len(first) == 5 and len(second) == 7
    seen = [(r["partition"], r["offset"]) for r in first + second]
    assert sorted(seen) == sorted((s["partition"], s["offset"]) for s in sends), (
        "each record once, none skipped"
    )
    by_position = {(s["partition"], s["offset"]): s["index"] for s in sends}
    for r in first + second:
        i = by_position[(r["partition"], r["offset"])]
        assert (r["key"], r["value"]) == (f"key-{i}", f"value-{i}")
        assert r["headers"] == {"n": str(i), TAGS_HEADER: "TagJ"}
    # the broker's own view of the group: everything committed, no lag
    detail = httpx.get(f"{server.admin_url}/api/groups/{group}", timeout=10).json()
    assert {q["queue_id"]: q["committed_offset"] for q in detail["queues"]} == {0: 4, 1: 4, 2: 4}
    assert detail["total_lag"] == 0

    # seek by timestamp: the first record of partition 1 stamped at or after record 7's time
    stamp = sends[7]["timestamp"]
    want = min(s["offset"] for s in sends if s["partition"] == 1 and s["timestamp"] >= stamp)
    run = kj.run_kafka_java(line, "times", server.kafka_bootstrap, topic, "1", str(stamp))
    (found,) = kj.of_type(run.results, "found")
    (record,) = kj.of_type(run.results, "record")
    assert found["offset"] == record["offset"] == want and record["timestamp"] >= stamp


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_each_codec_round_trips_with_its_headers(server: FerryServer, line: str, codec: str) -> None:
    """Java's snappy is xerial-framed, its lz4 the frame format: stored verbatim, served back."""
    topic = name(line, f"codec-{codec}")
    create_topic(server, topic, 1)
    args = (server.kafka_bootstrap, topic, "20", "1", "TagZ", f"compression.type={codec}", "linger.ms=100")
    run = kj.run_kafka_java(line, "produce", *args)
    assert [s["offset"] for s in kj.of_type(run.results, "send")] == list(range(20))
    records = kj.of_type(
        kj.run_kafka_java(line, "read", server.kafka_bootstrap, topic, "0", "3", "17").results, "record"
    )
    assert [(r["offset"], r["key"], r["value"]) for r in records] == [
        (i, f"key-{i}", f"value-{i}") for i in range(3, 20)
    ]
    assert records[0]["headers"] == {"n": "3", TAGS_HEADER: "TagZ"}
    # ferrymq finds the tag header inside the compressed batch (what native tag filters use)
    url = f"{server.admin_url}/api/topics/{topic}/queues/0/messages?offset=0"
    shown = httpx.get(url, timeout=10).json()["messages"]
    assert [m["tags"] for m in shown[:20]] == ["TagZ"] * 20


def test_admin_creates_describes_and_deletes_topics_and_lists_and_describes_groups(
    server: FerryServer, line: str
) -> None:
    topic, group = name(line, "admin"), name(line, "admin-g")
    results = kj.run_kafka_java(line, "admin", server.kafka_bootstrap, topic, group).results
    assert kj.of_type(results, "created") == [{"type": "created", "topic": topic}]
    (described,) = kj.of_type(results, "described")
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    assert (
        len({p["leader"] for p in described["partitions"]}) == 1 and described["partitions"][0]["leader"] >= 0
    )
    (groups,) = kj.of_type(results, "groups")
    assert {"group": group, "simple": False} in groups["groups"]
    (described_group,) = kj.of_type(results, "group")
    assert described_group["state"].lower() == "stable" and not described_group["simple"]
    (member,) = described_group["members"]
    assert member["client"] == f"{group}-member" and sorted(member["partitions"]) == [0, 1, 2]
    (deleted,) = kj.of_type(results, "deleted")
    assert deleted["listed"] is False
    assert httpx.get(f"{server.admin_url}/api/topics/{topic}", timeout=10).status_code == 404


def test_a_rocketmq_message_is_read_by_the_java_client_at_the_same_offset(
    server: FerryServer, line: str
) -> None:
    topic = name(line, "cross-in")
    create_topic(server, topic, 2)
    with Producer(server.namesrv_addr, group=name(line, "cross-producer")) as producer:
        producer.send(Message(topic, b"warm-up"))
        msg = Message(topic, b"from rocketmq", tags="TagR", keys="order-42", properties={"shop": "north"})
        sent = producer.send(msg)
    args = (topic, str(sent.queue.queue_id), str(sent.queue_offset), "1")
    (record,) = kj.of_type(kj.run_kafka_java(line, "read", server.kafka_bootstrap, *args).results, "record")
    assert (record["offset"], record["key"], record["value"]) == (
        sent.queue_offset,
        "order-42",
        "from rocketmq",
    )
    assert record["headers"] == {"shop": "north", TAGS_HEADER: "TagR"}


def test_a_java_record_is_pulled_by_a_rocketmq_consumer_at_the_same_offset(
    server: FerryServer, line: str
) -> None:
    topic = name(line, "cross-out")
    create_topic(server, topic, 1)
    run = kj.run_kafka_java(line, "produce", server.kafka_bootstrap, topic, "2", "1", "TagJ")
    assert [s["offset"] for s in kj.of_type(run.results, "send")] == [0, 1]
    consumer = LitePullConsumer(server.namesrv_addr, group=name(line, "cross-consumer"))
    try:
        queue = MessageQueue(topic, "broker-a", 0)
        consumer.assign([queue])
        consumer.start()
        consumer.seek(queue, 1)
        messages = consumer.poll(timeout=5.0)
    finally:
        consumer.shutdown()
    assert [(m.queue_offset, m.body, m.keys, m.tags) for m in messages] == [(1, b"value-1", "key-1", "TagJ")]
    assert messages[0].properties["n"] == "1"
