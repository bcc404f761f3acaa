"""Apache Kafka's Java client (kafka-clients 4.x, unmodified) over SASL/SCRAM-SHA-256 with an authorizer on.

One JVM run (the machine is small): the default, idempotent producer logs in as ``alice`` through the
SASL_PLAINTEXT listener (ScramLoginModule), is allowed WRITE on its topic and IDEMPOTENT_WRITE by that ACL,
and its records land; the Python side reads them back over the same listener as a super user.
"""

from __future__ import annotations

from pathlib import Path

import kafka_java_support as kj
import pytest
from kafka import KafkaConsumer, TopicPartition

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.core.auth.acl import AclBinding, Operation, PatternType, Permission, ResourceType
from ferrymq.core.auth.scram import make_credential

SKIP_REASON = kj.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(120),
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

TOPIC = "java-sasl"


def test_java_producer_with_scram(tmp_path: Path) -> None:
    kj.build("kafka-4")
    conf = {
        "kafkaListeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "kafkaAuthorizerEnable": "true",
        "superUsers": "User:admin",
    }
    with EmbeddedBroker(tmp_path, conf=conf) as broker:
        process = broker._require()
        security = process.broker.security
        for user in ("alice", "admin"):
            security.scram.upsert(user, "SCRAM-SHA-256", make_credential("SCRAM-SHA-256", f"{user}-pw"))
        security.acls.create(
            [
                AclBinding(
                    ResourceType.TOPIC,
                    TOPIC,
                    PatternType.LITERAL,
                    "User:alice",
                    "*",
                    Operation.WRITE,
                    Permission.ALLOW,
                )
            ]
        )
        broker.create_topic(TOPIC, 2)
        assert process.kafka is not None
        port = process.kafka.listener_ports()["SASL_PLAINTEXT"]
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required"
            ' username="alice" password="alice-pw";'
        )
        run = kj.run_kafka_java(
            "kafka-4",
            "produce",
            f"127.0.0.1:{port}",
            TOPIC,
            "6",
            "2",
            "security.protocol=SASL_PLAINTEXT",
            "sasl.mechanism=SCRAM-SHA-256",
            f"sasl.jaas.config={jaas}",
        )
        assert len(kj.of_type(run.results, "send")) == 6
        consumer = KafkaConsumer(
            bootstrap_servers=f"127.0.0.1:{port}",
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_plain_username="admin",
            sasl_plain_password="admin-pw",
            consumer_timeout_ms=5000,
            auto_offset_reset="earliest",
        )
        consumer.assign([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])
        got = []
        for m in consumer:
            got.append(m)
            if len(got) == 6:
                break
        consumer.close()
        assert len(got) == 6
