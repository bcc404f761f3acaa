"""The details Kafka 3.8-4.x clients check, each with unmodified confluent-kafka (librdkafka) against a real
``ferrymq serve``: the broker configs tools read, ListOffsets by max timestamp naming the record that holds
it, and an IncrementalAlterConfigs SUBTRACT that empties cleanup.policy (Kafka 4.2 accepts it).
"""

from __future__ import annotations

import pytest

from ferrymq.cli.testing import FerryServer

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def admin(shared_server: FerryServer) -> AdminClient:
    return AdminClient({"bootstrap.servers": shared_server.kafka_bootstrap})


def test_broker_configs_are_the_ones_tools_read(admin: AdminClient, shared_server: FerryServer) -> None:
    (broker_id,) = admin.list_topics(timeout=10).brokers
    resource = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    for name in (
        "advertised.listeners",
        "listeners",
        "log.dirs",
        "num.partitions",
        "default.replication.factor",
        "min.insync.replicas",
        "message.max.bytes",
        "auto.create.topics.enable",
        "group.min.session.timeout.ms",
        "group.max.session.timeout.ms",
    ):
        assert name in configs, name
    assert configs["advertised.listeners"].value == f"PLAINTEXT://{shared_server.kafka_bootstrap}"
    assert configs["inter.broker.listener.name"].value == "PLAINTEXT"  # the first listener by default
    assert configs["log.dirs"].value.startswith(str(shared_server.data_dir))
    assert configs["group.min.session.timeout.ms"].value == "6000"
    assert configs["group.min.session.timeout.ms"].source == ConfigSource.DEFAULT_CONFIG.value


def test_list_offsets_max_timestamp_names_the_record(admin: AdminClient, shared_server: FerryServer) -> None:
    topic = "max-ts"
    admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=10)
    producer = Producer({"bootstrap.servers": shared_server.kafka_bootstrap, "linger.ms": 50})
    for ts in (5000, 9000, 6000):  # one batch: the largest timestamp at offset 1
        producer.produce(topic, b"v", partition=0, timestamp=ts)
    producer.flush(10)
    tp = TopicPartition(topic, 0)
    found = admin.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(timeout=10)
    assert (found.offset, found.timestamp) == (1, 9000)


def test_subtracting_the_last_cleanup_policy_is_accepted(admin: AdminClient) -> None:
    topic = "no-cleanup"
    admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=10)
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(timeout=10)
    described = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([described])[described].result(timeout=10)
    assert configs["cleanup.policy"].value == ""
