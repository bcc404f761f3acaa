"""Unmodified kafka-python (which uses KIP-227 fetch sessions by default) against a real ``ferrymq serve``.

What a user of many partitions checks: the consumer runs in an incremental fetch session (its own
session handler holds the broker's session id and a moving epoch), and every record of every partition
arrives exactly once and in order while producers keep writing. With a one-slot session cache, two
consumers take the slot from each other or go without, and both still read everything.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from ferrymq.cli.testing import FerryServer

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka_support import create_topic  # noqa: E402

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

PARTITIONS = 24


def produce_round(server: FerryServer, topic: str, first: int) -> None:
    producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap, linger_ms=5)
    try:
        for p in range(PARTITIONS):
            producer.send(topic, value=f"{first}-{p}".encode(), partition=p)
        producer.flush()
    finally:
        producer.close()


def consumer_of(server: FerryServer, topic: str) -> KafkaConsumer:
    consumer = KafkaConsumer(bootstrap_servers=server.kafka_bootstrap, fetch_max_wait_ms=100)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    return consumer


def read(consumer: KafkaConsumer, got: dict[int, list[bytes]], want: int) -> None:
    """Poll until ``got`` holds ``want`` records per partition (or the test's timeout)."""
    while any(len(got[p]) < want for p in range(PARTITIONS)):
        for tp, records in consumer.poll(timeout_ms=500).items():
            got[tp.partition].extend(r.value for r in records)


def session_of(consumer: KafkaConsumer) -> tuple[int, int]:
    """(session id, next epoch) of the client's fetch session with the one broker."""
    handlers: dict[Any, Any] = consumer._fetcher._session_handlers
    (handler,) = handlers.values()
    return handler.next_metadata.session_id, handler.next_metadata.epoch


def test_kafka_python_reads_many_partitions_in_an_incremental_session(ferrymq_server: FerryServer) -> None:
    topic = "fetch-sessions"
    create_topic(ferrymq_server, topic, PARTITIONS)
    consumer = consumer_of(ferrymq_server, topic)
    got: dict[int, list[bytes]] = defaultdict(list)
    try:
        for round_no in range(3):
            produce_round(ferrymq_server, topic, round_no)
            read(consumer, got, round_no + 1)
        session_id, epoch = session_of(consumer)
        assert session_id != 0 and epoch > 1  # the broker gave a session and the client used it
        assert {p: got[p] for p in range(PARTITIONS)} == {
            p: [f"{r}-{p}".encode() for r in range(3)] for p in range(PARTITIONS)
        }
    finally:
        consumer.close()


def test_two_consumers_share_a_one_slot_cache_and_both_read_everything(tmp_path: Any) -> None:
    with FerryServer(tmp_path / "ferrymq", "kafkaFetchSessionCacheSlots=1\n") as server:
        topic = "one-slot"
        create_topic(server, topic, PARTITIONS)
        a, b = consumer_of(server, topic), consumer_of(server, topic)
        got_a: dict[int, list[bytes]] = defaultdict(list)
        got_b: dict[int, list[bytes]] = defaultdict(list)
        try:
            for round_no in range(3):
                produce_round(server, topic, round_no)
                read(a, got_a, round_no + 1)
                read(b, got_b, round_no + 1)
            want = {p: [f"{r}-{p}".encode() for r in range(3)] for p in range(PARTITIONS)}
            assert dict(got_a) == want and dict(got_b) == want
        finally:
            a.close()
            b.close()
