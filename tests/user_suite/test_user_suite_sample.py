"""A user's test file: only the ferrymq fixtures and off-the-shelf clients, nothing of this
repository's conftest. tests/test_wheel_user_suite.py runs it in a fresh virtualenv where only
the built wheel (``ferrymq[testing]``) and the clients from PyPI are installed; the main test run
collects it too."""

import asyncio
import threading

import aiokafka
import confluent_kafka
import kafka

import ferrymq
from ferrymq.client import Message, Producer, PushConsumer


def test_kafka_python_roundtrip(ferrymq_broker):
    ferrymq_broker.create_topic("orders", queues=2)
    producer = kafka.KafkaProducer(bootstrap_servers=ferrymq_broker.kafka_bootstrap)
    producer.send("orders", b"one", key=b"k").get(timeout=10)
    producer.close()
    consumer = kafka.KafkaConsumer(
        "orders", bootstrap_servers=ferrymq_broker.kafka_bootstrap, group_id="g", auto_offset_reset="earliest"
    )
    got = []
    for _ in range(30):  # polls of up to 1 s each
        got += [r.value for batch in consumer.poll(timeout_ms=1000).values() for r in batch]
        if got:
            break
    consumer.close()
    assert got == [b"one"]
    assert ferrymq_broker.bodies("orders") == [b"one"]


def test_confluent_kafka_produce(ferrymq_broker):
    producer = confluent_kafka.Producer({"bootstrap.servers": ferrymq_broker.kafka_bootstrap})
    producer.produce("events", b"hello", key=b"k1", headers=[("h", b"v")])
    assert producer.flush(15) == 0
    [message] = ferrymq_broker.messages("events")
    assert (message.body, message.keys, message.properties.get("h")) == (b"hello", "k1", "v")


def test_aiokafka_roundtrip(ferrymq_broker):
    ferrymq_broker.create_topic("async-topic", queues=1)

    async def main():
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=ferrymq_broker.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("async-topic", b"from aiokafka")
        finally:
            await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer(
            "async-topic", bootstrap_servers=ferrymq_broker.kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 15)
        finally:
            await consumer.stop()
        return record.value

    assert asyncio.run(main()) == b"from aiokafka"


def test_native_client_push_consumer(ferrymq_broker_session):
    broker = ferrymq_broker_session
    broker.create_topic("native", queues=2)
    producer = Producer(namesrv_addr=broker.namesrv_addr, group="user-p")
    producer.start()
    for i in range(3):
        producer.send(Message("native", f"m{i}".encode()))
    producer.shutdown()
    got = []
    done = threading.Event()

    def listener(msgs):  # returning normally is success
        got.extend(m.body for m in msgs)
        if len(got) >= 3:
            done.set()

    consumer = PushConsumer(broker.namesrv_addr, "user-g", consume_from="FIRST_OFFSET")
    consumer.subscribe("native")
    consumer.register_listener(listener)
    consumer.start()
    try:
        assert done.wait(30)
    finally:
        consumer.shutdown()
    assert sorted(got) == [b"m0", b"m1", b"m2"]


def test_embedded_context_manager():
    with ferrymq.embedded() as broker:
        broker.create_topic("plain")
        assert broker.messages("plain") == []
