"""Kafka listeners side by side (kafkaListeners): PLAINTEXT and SSL on one broker, kafka-python
and confluent-kafka producing and consuming over SSL with PEM files; Metadata sends an SSL client
to the SSL port; a plaintext client on the SSL port gets nowhere; SCRAM over a SASL_SSL listener;
bad listener strings name the entry."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.cli.main import main as ferrymq_main
from ferrymq.cli.testing import FerryServer
from ferrymq.core.config import ConfigError
from ferrymq.gateway.kafka.listeners import KafkaListener, parse_listeners
from tests.tls_certs import TlsCerts, make_certs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    return make_certs(tmp_path_factory.mktemp("kafka-tls"))


@pytest.fixture(scope="module")
def ssl_server(
    tmp_path_factory: pytest.TempPathFactory, certs: TlsCerts
) -> Iterator[tuple[FerryServer, int]]:
    plain, tls = free_port(), free_port()
    conf = (
        f"kafkaListeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{tls}\n"
        f"kafkaSslCertPath={certs.cert}\nkafkaSslKeyPath={certs.key}\n"
    )
    with FerryServer(tmp_path_factory.mktemp("kafka-ssl") / "srv", conf) as srv:
        assert srv.kafka_port == plain and srv.ports["kafka_ssl"] == tls, srv.ports
        yield srv, tls


def test_kafka_python_over_ssl(ssl_server: tuple[FerryServer, int], certs: TlsCerts) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    _, port = ssl_server
    topic = f"ssl-kp-{uuid.uuid4().hex[:6]}"
    opts = {"bootstrap_servers": f"127.0.0.1:{port}", "security_protocol": "SSL", "ssl_cafile": certs.ca}
    producer = KafkaProducer(**opts)
    for i in range(5):
        producer.send(topic, f"m{i}".encode()).get(timeout=15)
    producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10_000, **opts)
    got = [next(consumer).value for _ in range(5)]  # not to the timeout: StopIteration if one is missing
    consumer.close()
    assert sorted(got) == [f"m{i}".encode() for i in range(5)]


def test_confluent_kafka_over_ssl_and_plaintext_side_by_side(
    ssl_server: tuple[FerryServer, int], certs: TlsCerts
) -> None:
    from confluent_kafka import Consumer, Producer

    srv, port = ssl_server
    topic = f"ssl-ck-{uuid.uuid4().hex[:6]}"
    ssl_conf = {
        "bootstrap.servers": f"127.0.0.1:{port}",
        "security.protocol": "SSL",
        "ssl.ca.location": certs.ca,
    }
    producer = Producer(ssl_conf)
    for i in range(5):
        producer.produce(topic, f"c{i}".encode())
    assert producer.flush(15) == 0
    consumer = Consumer(
        {"bootstrap.servers": srv.kafka_bootstrap, "group.id": "g-plain", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])  # the same topic, read over the PLAINTEXT listener
    got: list[bytes] = []
    for _ in range(60):
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
        if len(got) == 5:
            break
    consumer.close()
    assert sorted(got) == [f"c{i}".encode() for i in range(5)]


def test_plaintext_on_the_ssl_listener_gets_nowhere(ssl_server: tuple[FerryServer, int]) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    _, port = ssl_server
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3000, api_version_auto_timeout_ms=3000
        )


def test_scram_over_a_sasl_ssl_listener(tmp_path: Path, certs: TlsCerts) -> None:
    """SASL_SSL: SCRAM-SHA-512 inside TLS with kafka-python; a wrong password is refused."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError

    data = tmp_path / "sasl-ssl"
    with pytest.raises(SystemExit) as done:
        ferrymq_main(["kafka-user", "--store", str(data / "store"), "alice", "--password", "alice-pw"])
    assert done.value.code == 0
    port = free_port()
    conf = (
        f"kafkaListeners=PLAINTEXT://127.0.0.1:{free_port()},SASL_SSL://127.0.0.1:{port}\n"
        f"kafkaSslCertPath={certs.cert}\nkafkaSslKeyPath={certs.key}\n"
    )

    def opts(password: str) -> dict[str, object]:
        return {
            "bootstrap_servers": f"127.0.0.1:{port}",
            "security_protocol": "SASL_SSL",
            "ssl_cafile": certs.ca,
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "alice",
            "sasl_plain_password": password,
        }

    with FerryServer(data, conf):
        producer = KafkaProducer(**opts("alice-pw"))  # type: ignore[arg-type]
        producer.send("sasl-ssl-t", b"over-tls").get(timeout=15)
        producer.close()
        consumer = KafkaConsumer(
            "sasl-ssl-t", auto_offset_reset="earliest", consumer_timeout_ms=10_000, **opts("alice-pw")
        )  # type: ignore[arg-type]
        assert next(consumer).value == b"over-tls"  # not to the timeout: StopIteration if it is missing
        consumer.close()
        with pytest.raises(KafkaError):
            KafkaAdminClient(**opts("wrong"), request_timeout_ms=3000, api_version_auto_timeout_ms=3000)  # type: ignore[arg-type]


def test_listener_strings() -> None:
    assert parse_listeners("PLAINTEXT://127.0.0.1:9092, ssl://[::1]:9093") == [
        KafkaListener("PLAINTEXT", "127.0.0.1", 9092),
        KafkaListener("SSL", "::1", 9093),
    ]
    for bad in ("PLAINTEXT:/x:1", "TLS://h:1", "SSL://h:x", "", "SSL://h:1,SSL://h:1"):
        with pytest.raises(ConfigError):
            parse_listeners(bad)
