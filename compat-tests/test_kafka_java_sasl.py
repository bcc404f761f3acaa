"""Apache Kafka's Java client (kafka-clients 4.x, unmodified) with SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
over SASL_PLAINTEXT and SASL_SSL, an authorizer on.

One JVM run does all six cases (the machine is small; SaslMatrix.java): per case the default, idempotent
producer logs in as ``alice`` (PlainLoginModule or ScramLoginModule), is allowed WRITE (and so
IDEMPOTENT_WRITE) and READ by a prefixed topic ACL, sends one record and reads it back by assignment;
SASL_SSL trusts the test CA as a PEM truststore. The Python side then reads all six back as a super user.
"""

from __future__ import annotations

from pathlib import Path

import kafka_java_support as kj
import pytest
from kafka import KafkaConsumer, TopicPartition

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.core.auth.acl import AclBinding, Operation, PatternType, Permission, ResourceType
from ferrymq.core.auth.scram import MECHANISMS, make_credential
from tests.tls_certs import make_certs

SKIP_REASON = kj.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(120),
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

PREFIX = "java-sasl"
PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def topic_of(mechanism: str, protocol: str) -> str:
    """As SaslMatrix.java names a case's topic."""
    return f"{PREFIX}-{mechanism}-{protocol}".lower().replace("_", "-")


def test_java_client_sasl_matrix(tmp_path: Path) -> None:
    kj.build("kafka-4")
    certs = make_certs(tmp_path / "tls")
    conf = {
        "kafkaListeners": "SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "kafkaSslCertPath": certs.cert,
        "kafkaSslKeyPath": certs.key,
        "kafkaAuthorizerEnable": "true",
        "superUsers": "User:admin",
    }
    with EmbeddedBroker(tmp_path / "data", conf=conf) as broker:
        process = broker._require()
        security = process.broker.security
        for user in ("alice", "admin"):
            for mechanism in MECHANISMS:
                security.scram.upsert(user, mechanism, make_credential(mechanism, f"{user}-pw"))
        security.acls.create(
            [
                AclBinding(
                    ResourceType.TOPIC, PREFIX, PatternType.PREFIXED, "User:alice", "*", op, Permission.ALLOW
                )
                for op in (Operation.WRITE, Operation.READ)
            ]
        )
        topics = [topic_of(m, p) for p in PROTOCOLS for m in SASL_MECHANISMS]
        for topic in topics:
            broker.create_topic(topic, 1)
        assert process.kafka is not None
        ports = process.kafka.listener_ports()
        run = kj.run_kafka_java(
            "kafka-4",
            "sasl",
            PREFIX,
            "alice",
            "alice-pw",
            certs.ca,
            *(f"{p}@127.0.0.1:{ports[p]}" for p in PROTOCOLS),
        )
        cases = {(r["mechanism"], r["protocol"]): r for r in kj.of_type(run.results, "sasl")}
        assert sorted(cases) == sorted((m, p) for p in PROTOCOLS for m in SASL_MECHANISMS), run.stderr[-3000:]
        failed = {case: r for case, r in cases.items() if not r["ok"]}
        assert not failed, (failed, run.stderr[-3000:])
        consumer = KafkaConsumer(
            bootstrap_servers=f"127.0.0.1:{ports['SASL_PLAINTEXT']}",
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_plain_username="admin",
            sasl_plain_password="admin-pw",
            consumer_timeout_ms=5000,
            auto_offset_reset="earliest",
        )
        consumer.assign([TopicPartition(t, 0) for t in topics])
        got = {}
        for m in consumer:
            got[m.topic] = m.value
            if len(got) == len(topics):
                break
        consumer.close()
        assert got == {topic_of(m, p): f"java {m} {p}".encode() for p in PROTOCOLS for m in SASL_MECHANISMS}
