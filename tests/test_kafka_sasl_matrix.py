"""Issue 12's client matrix: kafka-python, aiokafka and confluent-kafka, each with SASL PLAIN, SCRAM-SHA-256
and SCRAM-SHA-512, over SASL_PLAINTEXT and SASL_SSL: one produce and one read back per case.

One broker (module fixture) serves both listeners; the user has credentials of both SCRAM mechanisms (PLAIN
checks the password against them). No authorizer: ACLs are test_kafka_sasl_clients.py's subject. Each case
reads its own one-partition topic by assignment (no group join), so a case costs a login, a produce and a
fetch. The Java client's six cases are compat-tests/test_kafka_java_sasl.py's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.core.auth.scram import MECHANISMS, make_credential
from tests.tls_certs import TlsCerts, make_certs

USER, PASSWORD = "matrix", "matrix-pw"
CLIENTS = ("kafka-python", "aiokafka", "confluent-kafka")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
WAIT = 10.0  # generous: a healthy case takes well under a second


@dataclass(frozen=True)
class Matrix:
    ports: dict[str, int]  # listener (security protocol) -> port
    certs: TlsCerts


def topic_of(client: str, mechanism: str, protocol: str) -> str:
    return f"{client}-{mechanism}-{protocol}".lower().replace("_", "-")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    certs = make_certs(tmp_path_factory.mktemp("sasl-matrix-tls"))
    conf = {
        "kafkaListeners": "SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "kafkaSslCertPath": certs.cert,
        "kafkaSslKeyPath": certs.key,
        "autoCreateTopicEnable": "false",
    }
    with EmbeddedBroker(tmp_path_factory.mktemp("sasl-matrix"), conf=conf) as broker:
        process = broker._require()
        for mechanism in MECHANISMS:
            process.broker.security.scram.upsert(USER, mechanism, make_credential(mechanism, PASSWORD))
        for client in CLIENTS:
            for mechanism in SASL_MECHANISMS:
                for protocol in PROTOCOLS:
                    broker.create_topic(topic_of(client, mechanism, protocol), 1)
        assert process.kafka is not None
        yield Matrix(process.kafka.listener_ports(), certs)


def python_conf(m: Matrix, mechanism: str, protocol: str) -> dict[str, object]:
    """kafka-python's and aiokafka's common settings (they spell them alike)."""
    return {
        "bootstrap_servers": f"127.0.0.1:{m.ports[protocol]}",
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": USER,
        "sasl_plain_password": PASSWORD,
    }


def kafka_python(m: Matrix, mechanism: str, protocol: str, topic: str, value: bytes) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    conf = python_conf(m, mechanism, protocol)
    if protocol == "SASL_SSL":
        conf["ssl_cafile"] = m.certs.ca
    producer = KafkaProducer(**conf)  # type: ignore[arg-type]
    producer.send(topic, value).get(WAIT)
    producer.close()
    consumer = KafkaConsumer(auto_offset_reset="earliest", consumer_timeout_ms=int(WAIT * 1000), **conf)  # type: ignore[arg-type]
    consumer.assign([TopicPartition(topic, 0)])
    got = [next(consumer).value]  # StopIteration after WAIT if nothing came
    consumer.close()
    return got


def aiokafka(m: Matrix, mechanism: str, protocol: str, topic: str, value: bytes) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.helpers import create_ssl_context

    conf = python_conf(m, mechanism, protocol)
    if protocol == "SASL_SSL":
        conf["ssl_context"] = create_ssl_context(cafile=m.certs.ca)

    async def main() -> list[bytes]:
        async with asyncio.timeout(WAIT):
            producer = AIOKafkaProducer(**conf)
            await producer.start()
            try:
                await producer.send_and_wait(topic, value)
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer(auto_offset_reset="earliest", **conf)
            await consumer.start()
            try:
                consumer.assign([TopicPartition(topic, 0)])
                return [(await consumer.getone()).value]
            finally:
                await consumer.stop()

    return asyncio.run(main())


def confluent_kafka(m: Matrix, mechanism: str, protocol: str, topic: str, value: bytes) -> list[bytes]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

    conf: dict[str, object] = {
        "bootstrap.servers": f"127.0.0.1:{m.ports[protocol]}",
        "security.protocol": protocol,
        "sasl.mechanisms": mechanism,
        "sasl.username": USER,
        "sasl.password": PASSWORD,
    }
    if protocol == "SASL_SSL":
        conf["ssl.ca.location"] = m.certs.ca
    errors: list[KafkaError] = []
    producer = Producer({**conf, "message.timeout.ms": int(WAIT * 1000), "error_cb": errors.append})
    outcomes: list[KafkaError | None] = []
    producer.produce(topic, value, on_delivery=lambda err, _msg: outcomes.append(err))
    producer.flush(WAIT)
    assert outcomes == [None], (outcomes, errors)
    consumer = Consumer({**conf, "group.id": topic, "enable.auto.commit": False, "error_cb": errors.append})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got: list[bytes] = []
    deadline = time.monotonic() + WAIT
    while not got and time.monotonic() < deadline:
        msg = consumer.poll(0.1)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.close()
    assert got, errors
    return got


ROUND_TRIPS = {"kafka-python": kafka_python, "aiokafka": aiokafka, "confluent-kafka": confluent_kafka}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mechanism", SASL_MECHANISMS)
@pytest.mark.parametrize("client", CLIENTS)
def test_round_trip(matrix: Matrix, client: str, mechanism: str, protocol: str) -> None:
    topic = topic_of(client, mechanism, protocol)
    value = f"{client} {mechanism} {protocol}".encode()
    assert ROUND_TRIPS[client](matrix, mechanism, protocol, topic, value) == [value]
