"""Kafka SASL and ACLs with unmodified clients: kafka-python, aiokafka and confluent-kafka over a
SASL_PLAINTEXT listener beside PLAINTEXT, an authorizer on, ``admin`` a super user.

Users are bootstrapped offline (``ferrymq kafka-user``) or managed online (AlterUserScramCredentials through
confluent-kafka's AdminClient); ACLs are made, listed and deleted through AdminClient as kafka-acls.sh does.
An allowed principal produces and consumes; one without ACLs is refused per topic and per group; a wrong
password, an unknown mechanism and a missing handshake each get Kafka's error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from kafka import KafkaConsumer, KafkaProducer
from kafka import errors as kerrors

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.cli.main import main as ferrymq_main

PASSWORD = "alice-secret"
ADMIN_PASSWORD = "admin-secret"
OK_TOPIC, NO_TOPIC = "orders", "payroll"
OK_GROUP, NO_GROUP = "order-readers", "payroll-readers"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedBroker, int]]:
    data = tmp_path_factory.mktemp("sasl")
    for user, password in (("admin", ADMIN_PASSWORD), ("alice", PASSWORD)):
        with pytest.raises(SystemExit) as done:
            ferrymq_main(["kafka-user", "--store", str(data / "store"), user, "--password", password])
        assert done.value.code == 0
    conf = {
        "kafkaListeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "kafkaAuthorizerEnable": "true",
        "superUsers": "User:admin",
        "autoCreateTopicEnable": "false",
    }
    with EmbeddedBroker(data, conf=conf) as broker:
        kafka = broker._require().kafka
        assert kafka is not None
        for topic in (OK_TOPIC, NO_TOPIC):
            broker.create_topic(topic, 1)
        port = kafka.listener_ports()["SASL_PLAINTEXT"]
        admin = admin_client(port)
        grant = [
            AclBinding(
                ResourceType.TOPIC,
                OK_TOPIC,
                ResourcePatternType.LITERAL,
                "User:alice",
                "*",
                op,
                AclPermissionType.ALLOW,
            )
            for op in (AclOperation.WRITE, AclOperation.READ)
        ] + [
            AclBinding(
                ResourceType.GROUP,
                "order-",
                ResourcePatternType.PREFIXED,
                "User:alice",
                "*",
                AclOperation.READ,
                AclPermissionType.ALLOW,
            ),
        ]
        for fut in admin.create_acls(grant).values():
            fut.result(10)
        yield broker, port


def admin_client_conf(port: int) -> dict[str, str]:
    return {
        "bootstrap.servers": f"127.0.0.1:{port}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": "admin",
        "sasl.password": ADMIN_PASSWORD,
    }


def admin_client(port: int) -> AdminClient:
    return AdminClient(admin_client_conf(port))


def until(client: Producer, errors: list[KafkaError], timeout: float = 10.0) -> None:
    """Serve the client's callbacks until its error_cb has reported something (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not errors and time.monotonic() < deadline:
        client.poll(0.05)


def kp_conf(port: int, mechanism: str, password: str = PASSWORD) -> dict[str, object]:
    return {
        "bootstrap_servers": f"127.0.0.1:{port}",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "alice",
        "sasl_plain_password": password,
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_python_allowed_and_refused(secured: tuple[EmbeddedBroker, int], mechanism: str) -> None:
    _, port = secured
    value = f"{mechanism}-{uuid.uuid4()}".encode()
    producer = KafkaProducer(**kp_conf(port, mechanism))
    producer.send(OK_TOPIC, value).get(10)
    with pytest.raises(kerrors.TopicAuthorizationFailedError):
        producer.send(NO_TOPIC, b"x").get(10)
    producer.close()
    consumer = KafkaConsumer(
        OK_TOPIC,
        group_id=OK_GROUP,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        **kp_conf(port, mechanism),
    )
    assert any(m.value == value for m in consumer)  # stops at the value
    consumer.close()
    refused = KafkaConsumer(OK_TOPIC, group_id=NO_GROUP, consumer_timeout_ms=3000, **kp_conf(port, mechanism))
    with pytest.raises(kerrors.GroupAuthorizationFailedError):
        list(refused)
    refused.close()


def test_wrong_password_with_confluent(secured: tuple[EmbeddedBroker, int]) -> None:
    _, port = secured
    errors: list[KafkaError] = []
    producer = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{port}",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-256",
            "sasl.username": "alice",
            "sasl.password": "wrong",
            "error_cb": errors.append,
        }
    )
    until(producer, errors)
    assert errors[0].code() == KafkaError._AUTHENTICATION
    assert "Authentication failed" in errors[0].str()


def test_missing_handshake_and_unknown_mechanism_with_confluent(secured: tuple[EmbeddedBroker, int]) -> None:
    _, port = secured
    base = {"bootstrap.servers": f"127.0.0.1:{port}", "socket.timeout.ms": 3000, "message.timeout.ms": 3000}
    errors: list[KafkaError] = []
    plaintext = Producer({**base, "error_cb": errors.append})  # no SASL at all on the SASL listener
    plaintext.produce(OK_TOPIC, b"x")
    until(plaintext, errors)
    assert errors  # the broker closes the connection: transport errors, nothing stored
    errors.clear()
    wrong_mech = Producer(
        {
            **base,
            "error_cb": errors.append,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER",
            "sasl.oauthbearer.config": "principal=alice",
            "enable.sasl.oauthbearer.unsecure.jwt": True,
        }
    )
    wrong_mech.produce(OK_TOPIC, b"x")
    until(wrong_mech, errors)
    assert any("OAUTHBEARER" in e.str() and "PLAIN" in e.str() for e in errors), [e.str() for e in errors]


def test_confluent_scram_and_acl_admin(secured: tuple[EmbeddedBroker, int]) -> None:
    _, port = secured
    admin = admin_client(port)
    # kafka-configs.sh --alter --add-config SCRAM-SHA-512=[password=...]: a new user, online
    upsert = UserScramCredentialUpsertion(
        "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"carol-pw"
    )
    for fut in admin.alter_user_scram_credentials([upsert]).values():
        fut.result(10)
    described = admin.describe_user_scram_credentials(["carol"])["carol"].result(10)
    assert [i.iterations for i in described.scram_credential_infos] == [8192]
    # kafka-acls.sh --add / --list / --remove
    binding = AclBinding(
        ResourceType.TOPIC,
        "carol-",
        ResourcePatternType.PREFIXED,
        "User:carol",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    for fut in admin.create_acls([binding]).values():
        fut.result(10)
    flt = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        "User:carol",
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    assert admin.describe_acls(flt).result(10) == [binding]
    carol = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{port}",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "carol",
            "sasl.password": "carol-pw",
            "message.timeout.ms": 5000,
        }
    )
    outcomes: list[KafkaError | None] = []
    carol.produce(OK_TOPIC, b"c", on_delivery=lambda err, _m: outcomes.append(err))
    carol.flush(10)
    assert (
        outcomes and outcomes[0] is not None and outcomes[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    )
    deleted = [fut.result(10) for fut in admin.delete_acls([flt]).values()]
    assert deleted == [[binding]]
    assert admin.describe_acls(flt).result(10) == []
    # not an admin: CLUSTER_AUTHORIZATION_FAILED (librdkafka drops DescribeAcls' top-level error; kafka-python
    # raises it)
    from kafka.admin import ACLFilter, ACLResourcePatternType, KafkaAdminClient, ResourcePatternFilter
    from kafka.admin import ACLOperation as KOp
    from kafka.admin import ACLPermissionType as KPerm
    from kafka.admin import ResourceType as KType

    alice = KafkaAdminClient(**kp_conf(port, "PLAIN"))
    any_acl = ACLFilter(
        None, "*", KOp.ANY, KPerm.ANY, ResourcePatternFilter(KType.ANY, None, ACLResourcePatternType.ANY)
    )
    with pytest.raises(kerrors.ClusterAuthorizationFailedError):
        alice.describe_acls(any_acl)
    alice.close()


def test_confluent_admin_calls_are_refused_without_their_acls(secured: tuple[EmbeddedBroker, int]) -> None:
    """alice may read and write OK_TOPIC and read order-* groups, nothing more: the admin APIs that once let
    anyone through (configs, partitions, records, group deletion) refuse her as Kafka does; admin passes."""
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import ConfigResource, NewPartitions

    _, port = secured
    conf = {**admin_client_conf(port), "sasl.username": "alice", "sasl.password": PASSWORD}
    alice, admin = AdminClient(conf), admin_client(port)

    def refused(fut: object) -> int:
        with pytest.raises(KafkaException) as caught:
            fut.result(10)  # type: ignore[attr-defined]
        return int(caught.value.args[0].code())

    topic_configs = ConfigResource(ConfigResource.Type.TOPIC, OK_TOPIC)
    (fut,) = alice.describe_configs([topic_configs]).values()
    assert refused(fut) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    (fut,) = alice.create_partitions([NewPartitions(OK_TOPIC, 2)], validate_only=True).values()
    assert refused(fut) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    (fut,) = alice.delete_records([TopicPartition(OK_TOPIC, 0, 0)]).values()
    assert refused(fut) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    (fut,) = alice.delete_consumer_groups([OK_GROUP]).values()
    assert refused(fut) == KafkaError.GROUP_AUTHORIZATION_FAILED
    # the super user is served
    (fut,) = admin.describe_configs([topic_configs]).values()
    assert "retention.ms" in fut.result(10)


def test_aiokafka_scram(secured: tuple[EmbeddedBroker, int]) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import TopicAuthorizationFailedError

    _, port = secured
    conf = {
        "bootstrap_servers": f"127.0.0.1:{port}",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
    }

    async def main() -> None:
        producer = AIOKafkaProducer(**conf)
        await producer.start()
        try:
            await producer.send_and_wait(OK_TOPIC, b"aio")
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(NO_TOPIC, b"aio")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            OK_TOPIC, group_id=OK_GROUP + "-aio", auto_offset_reset="earliest", **conf
        )
        await consumer.start()
        try:
            async with asyncio.timeout(15):
                while True:
                    msg = await consumer.getone()
                    if msg.value == b"aio":
                        break
        finally:
            await consumer.stop()

    asyncio.run(main())


def test_acls_survive_a_restart(tmp_path: Path) -> None:
    conf = {"kafkaAuthorizerEnable": "true", "superUsers": "User:ANONYMOUS"}
    binding = AclBinding(
        ResourceType.GROUP,
        "g",
        ResourcePatternType.LITERAL,
        "User:x",
        "*",
        AclOperation.READ,
        AclPermissionType.DENY,
    )
    with EmbeddedBroker(tmp_path, conf=conf) as broker:
        admin = AdminClient({"bootstrap.servers": broker.kafka_bootstrap})
        for fut in admin.create_acls([binding]).values():
            fut.result(10)
    with EmbeddedBroker(tmp_path, conf=conf) as broker:
        admin = AdminClient({"bootstrap.servers": broker.kafka_bootstrap})
        assert admin.describe_acls(
            AclBindingFilter(
                ResourceType.ANY,
                None,
                ResourcePatternType.ANY,
                None,
                None,
                AclOperation.ANY,
                AclPermissionType.ANY,
            )
        ).result(10) == [binding]
