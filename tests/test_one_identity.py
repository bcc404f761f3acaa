"""One identity across protocols (issue 12): a user's Kafka ACLs govern what it does over RocketMQ too.

``alice`` is a Kafka SCRAM user and a RocketMQ access key. Her only grants are Kafka ACLs (made with
confluent-kafka's AdminClient, as kafka-acls.sh does); her plain_acl.yml account grants nothing. She
produces with Kafka SASL and reads the same records with a signed RocketMQ consumer, and the other way
round; ``bob``, a RocketMQ account with no ACL, is refused on the same topic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.cli.main import main as ferrymq_main
from ferrymq.client import BrokerError, LitePullConsumer, Message, Producer
from ferrymq.core.remoting.codes import ResponseCode

TOPIC = "shared"
PLAIN_ACL = """
accounts:
  - accessKey: root
    secretKey: root-secret
    admin: true
  - accessKey: alice
    secretKey: alice-rmq-secret
  - accessKey: bob
    secretKey: bob-secret
"""


def sasl(port: int, user: str, password: str) -> dict[str, object]:
    return {
        "bootstrap_servers": f"127.0.0.1:{port}",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedBroker, int]]:
    data: Path = tmp_path_factory.mktemp("identity")
    for user, password in (("admin", "admin-secret"), ("alice", "alice-kafka-secret")):
        with pytest.raises(SystemExit) as done:
            ferrymq_main(["kafka-user", "--store", str(data / "store"), user, "--password", password])
        assert done.value.code == 0
    acl_file = data / "plain_acl.yml"
    acl_file.write_text(PLAIN_ACL)
    conf = {
        "kafkaListeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "kafkaAuthorizerEnable": "true",
        "superUsers": "User:admin",
        "aclEnable": "true",
        "aclFile": str(acl_file),
        "accessKey": "root",
        "secretKey": "root-secret",
    }
    with EmbeddedBroker(data, conf=conf) as b:
        kafka = b._require().kafka
        assert kafka is not None
        b.create_topic(TOPIC, 1)
        port = kafka.listener_ports()["SASL_PLAINTEXT"]
        admin = AdminClient(
            {
                "bootstrap.servers": f"127.0.0.1:{port}",
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-256",
                "sasl.username": "admin",
                "sasl.password": "admin-secret",
            }
        )
        grants = [
            AclBinding(rt, name, pt, "User:alice", "*", op, AclPermissionType.ALLOW)
            for rt, name, pt, op in (
                (ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, AclOperation.WRITE),
                (ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, AclOperation.READ),
                (ResourceType.GROUP, "shared-", ResourcePatternType.PREFIXED, AclOperation.READ),
            )
        ]
        for fut in admin.create_acls(grants).values():
            fut.result(10)
        yield b, port


def test_kafka_produce_then_rocketmq_consume_under_one_set_of_acls(
    broker: tuple[EmbeddedBroker, int],
) -> None:
    b, port = broker
    producer = KafkaProducer(**sasl(port, "alice", "alice-kafka-secret"))  # type: ignore[arg-type]
    producer.send(TOPIC, b"from-kafka", partition=0).get(timeout=10)
    producer.close()
    consumer = LitePullConsumer(
        b.namesrv_addr,
        group="shared-rmq",
        consume_from="FIRST_OFFSET",
        access_key="alice",
        secret_key="alice-rmq-secret",
    )
    consumer.subscribe(TOPIC)
    consumer.start()
    try:
        got: list[bytes] = []
        for _ in range(30):
            got += [m.body for m in consumer.poll(timeout=1.0)]
            if b"from-kafka" in got:
                break
        assert b"from-kafka" in got
    finally:
        consumer.shutdown()


def test_rocketmq_send_then_kafka_consume_and_a_stranger_is_refused(
    broker: tuple[EmbeddedBroker, int],
) -> None:
    b, port = broker
    with Producer(b.namesrv_addr, group="shared-p", access_key="alice", secret_key="alice-rmq-secret") as p:
        assert p.send(Message(TOPIC, b"from-rocketmq")).ok
    with Producer(
        b.namesrv_addr, group="shared-b", retry_times=0, access_key="bob", secret_key="bob-secret"
    ) as p:
        with pytest.raises(BrokerError) as refused:
            p.send(Message(TOPIC, b"bob"))
        assert refused.value.code == ResponseCode.NO_PERMISSION
    consumer = KafkaConsumer(
        group_id="shared-k", consumer_timeout_ms=5000, **sasl(port, "alice", "alice-kafka-secret")
    )  # type: ignore[arg-type]
    consumer.assign([TopicPartition(TOPIC, 0)])
    consumer.seek_to_beginning()
    try:
        values = [r.value for r in consumer]
    finally:
        consumer.close()
    assert b"from-rocketmq" in values and b"bob" not in values
