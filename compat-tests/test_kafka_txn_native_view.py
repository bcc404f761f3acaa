"""Kafka transactions with unmodified clients against a real ``ferrymq serve``: an aiokafka
transactional producer aborts one transaction and commits the next; a read_committed aiokafka
consumer and a RocketMQ (ferrymq.client) consumer of the same partition see only the committed
records (no markers, nothing aborted).
"""

from __future__ import annotations

import asyncio

import pytest
from kafka_support import create_topic

from ferrymq.cli.testing import FerryServer
from ferrymq.client import LitePullConsumer, MessageQueue

pytest.importorskip("aiokafka")
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(60),
]

TOPIC = "ktxn-e2e"


async def _produce(server: FerryServer) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=server.kafka_bootstrap, transactional_id="ktxn-e2e-tx")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(TOPIC, b"committed-before", partition=0)
        await producer.begin_transaction()
        await producer.send_and_wait(TOPIC, b"aborted", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(TOPIC, b"committed-after", partition=0)
    finally:
        await producer.stop()


async def _read_committed(server: FerryServer) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=server.kafka_bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        out: list[bytes] = []
        async with asyncio.timeout(15):
            while len(out) < 2:
                for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                    out.extend(r.value for r in records)
        return out
    finally:
        await consumer.stop()


def test_read_committed_consumers_of_both_protocols_skip_the_aborted_transaction(server: FerryServer) -> None:
    create_topic(server, TOPIC, 1)
    asyncio.run(_produce(server))
    assert asyncio.run(_read_committed(server)) == [b"committed-before", b"committed-after"]
    consumer = LitePullConsumer(server.namesrv_addr, group="ktxn-e2e-native")
    try:
        queue = MessageQueue(TOPIC, "broker-a", 0)
        consumer.assign([queue])
        consumer.start()
        consumer.seek(queue, 0)
        bodies: list[bytes] = []
        for _ in range(10):
            bodies.extend(m.body for m in consumer.poll(timeout=1.0))
            if len(bodies) >= 2:
                break
    finally:
        consumer.shutdown()
    assert bodies == [b"committed-before", b"committed-after"]
