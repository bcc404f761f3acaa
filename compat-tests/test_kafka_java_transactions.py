"""Apache Kafka's Java client (3.9.x and 4.x, unmodified): the exactly-once consume-transform-produce
loop against ``ferrymq serve``, one JVM per client line (compat-tests/kafka-java ``ctp``).

A read_committed consumer in a group reads the input; each poll becomes one transaction of a
transactional producer that writes the transformed records and commits the consumer's offsets with
sendOffsetsToTransaction (TxnOffsetCommit with the group's generation and member, KIP-447). The
first transaction is aborted and redone. Afterwards the output holds each input once (read_committed)
and the group's committed offsets are at the end of the input. It needs the partition side of
issue 11 (transactional Produce, markers, read_committed Fetch): a strict expected failure until then.
"""

from __future__ import annotations

import time

import kafka_java_support as kj
import pytest
from kafka_support import FAST_GROUPS_CONF, create_topic

from ferrymq.cli.testing import FerryServer

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from confluent_kafka import Producer as KafkaProducer  # noqa: E402

SKIP_REASON = kj.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(120),
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

FERRYMQ_CONF = FAST_GROUPS_CONF
COUNT = 20


@pytest.fixture(params=kj.LINES)
def line(request: pytest.FixtureRequest) -> str:
    kj.build(request.param)
    return str(request.param)


def committed_values(server: FerryServer, topic: str, count: int) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": server.kafka_bootstrap,
            "group.id": "checker",
            "isolation.level": "read_committed",
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        out: list[str] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(out) < count + 1:
            for msg in consumer.consume(count + 1 - len(out), timeout=0.5):
                assert msg.error() is None, msg.error()
                out.append(msg.value().decode())
            if len(out) == count and not consumer.consume(1, timeout=1.0):
                break  # nothing beyond: no duplicates from the aborted transaction
        return out
    finally:
        consumer.close()


def test_java_consume_transform_produce_with_send_offsets_to_transaction(
    server: FerryServer, line: str
) -> None:
    tag = line.replace(".", "")
    source, sink, group = f"ctp-in-{tag}", f"ctp-out-{tag}", f"ctp-g-{tag}"
    create_topic(server, source, 1)
    create_topic(server, sink, 1)
    producer = KafkaProducer({"bootstrap.servers": server.kafka_bootstrap})
    for i in range(COUNT):
        producer.produce(source, f"v{i}".encode(), partition=0)
    assert producer.flush(15) == 0
    producer.close()
    run = kj.run_kafka_java(line, "ctp", server.kafka_bootstrap, source, sink, group, f"tx-{tag}", str(COUNT))
    assert kj.of_type(run.results, "aborted"), "the first transaction is aborted"
    assert sum(t["records"] for t in kj.of_type(run.results, "txn")) == COUNT
    assert kj.of_type(run.results, "committed") == [{"type": "committed", "partition": 0, "offset": COUNT}]
    assert committed_values(server, sink, COUNT) == [f"t-v{i}" for i in range(COUNT)]
