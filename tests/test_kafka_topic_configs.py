"""Kafka topic configs are enforced or refused, never accepted and then ignored.

compression.type other than "producer", LogAppendTime and min.insync.replicas below 1 are refused
with INVALID_CONFIG naming the config, by CreateTopics, AlterConfigs and IncrementalAlterConfigs
alike; their defaults and min.insync.replicas of 1 and more (enforced by acks=all,
test_kafka_acks_all.py) are accepted. retention.bytes is enforced: a partition keeps its newest
entries within it. cleanup.policy=compact is served: test_kafka_compaction.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kio.schema.alter_configs.v2.request import AlterableConfig, AlterConfigsRequest, AlterConfigsResource
from kio.schema.errors import ErrorCode
from kio.schema.incremental_alter_configs.v1 import request as incremental

from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.test_kafka_frontend import TOPIC, Wire, alter_topic, batch, create_topic, produced, run

REFUSED = [
    ("compression.type", "zstd"),
    ("compression.type", "uncompressed"),
    ("message.timestamp.type", "LogAppendTime"),
    ("min.insync.replicas", "0"),
]
ACCEPTED = [
    ("cleanup.policy", "delete"),
    ("cleanup.policy", "delete,compact"),  # log compaction: test_kafka_compaction.py
    ("compression.type", "producer"),
    ("message.timestamp.type", "CreateTime"),
    ("min.insync.replicas", "1"),
    ("min.insync.replicas", "2"),
    ("retention.bytes", "1048576"),
]


def alter_configs(name: str, config: str, value: str) -> Any:
    resource = AlterConfigsResource(
        resource_type=2, resource_name=name, configs=(AlterableConfig(name=config, value=value),)
    )
    return AlterConfigsRequest(resources=(resource,), validate_only=False)


async def _errors(wire: Wire, name: str, config: str, value: str) -> list[tuple[int, str | None]]:
    """(error, message) of CreateTopics, AlterConfigs and IncrementalAlterConfigs setting ``config``."""
    created = (await wire.call(create_topic(name, 1, **{config.replace(".", "_"): value}))).topics[0]
    out = [(created.error_code, created.error_message)]
    for request in (alter_configs(TOPIC, config, value), alter_topic(TOPIC, config, value)):
        r = (await wire.call(request)).responses[0]
        out.append((r.error_code, r.error_message))
    return out


@pytest.mark.parametrize(("config", "value"), REFUSED)
def test_configs_that_are_not_served_are_refused_naming_them(tmp_path: Path, config: str, value: str) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        wire = await Wire.open(f.port)
        for error, message in await _errors(wire, "t-new", config, value):
            assert error == ErrorCode.invalid_config
            assert message is not None and config in message
        assert broker.topics.get("t-new") is None
        assert config not in broker.topics.get(TOPIC).attributes

    run(tmp_path, body)


@pytest.mark.parametrize(("config", "value"), ACCEPTED)
def test_configs_that_are_served_are_accepted(tmp_path: Path, config: str, value: str) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        wire = await Wire.open(f.port)
        assert [e for e, _ in await _errors(wire, "t-new", config, value)] == [ErrorCode.none] * 3
        assert broker.topics.get("t-new").attributes[config] == value
        assert broker.topics.get(TOPIC).attributes[config] == value

    run(tmp_path, body)


def test_retention_bytes_keeps_the_newest_entries_within_it(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        wire = await Wire.open(f.port)
        for i in range(10):  # ten batches of about 10 KB
            assert (await produced(wire, batch(10, first=10 * i, value_size=1000)))[0] == ErrorCode.none
        store = broker.store
        entry = store.consume_queue(TOPIC, 0).unit(90)[1]  # a stored entry of keys k90..k99
        r = (await wire.call(alter_topic(TOPIC, "retention.bytes", str(3 * entry + 100)))).responses[0]
        assert r.error_code == ErrorCode.none
        f.apply_retention()
        assert store.queue_bounds(TOPIC, 0) == (70, 100)  # the newest three batches
        for i in range(10, 12):
            assert (await produced(wire, batch(10, first=10 * i, value_size=1000)))[0] == ErrorCode.none
        f.apply_retention()
        assert store.queue_bounds(TOPIC, 0) == (90, 120)
        assert store.queue_bounds(TOPIC, 1) == (0, 0)  # an empty partition is left alone

    run(tmp_path, body)


def test_subtracting_the_last_cleanup_policy_keeps_everything_as_kafka_4_does(tmp_path: Path) -> None:
    """Kafka 4.2+ accepts an empty cleanup.policy (infinite retention). Before: INVALID_CONFIG."""

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        wire = await Wire.open(f.port)
        for i in range(4):
            assert (await produced(wire, batch(10, first=10 * i, value_size=1000)))[0] == ErrorCode.none
        subtract = incremental.AlterableConfig(name="cleanup.policy", config_operation=3, value="delete")
        resource = incremental.AlterConfigsResource(resource_type=2, resource_name=TOPIC, configs=(subtract,))
        request = incremental.IncrementalAlterConfigsRequest(resources=(resource,), validate_only=False)
        r = (await wire.call(request)).responses[0]
        assert (r.error_code, r.error_message) == (ErrorCode.none, None)
        assert broker.topics.get(TOPIC).attributes["cleanup.policy"] == ""
        assert (await wire.call(alter_topic(TOPIC, "retention.bytes", "100"))).responses[0].error_code == 0
        f.apply_retention()
        assert broker.store.queue_bounds(TOPIC, 0) == (0, 40)  # retention.bytes=100 deletes nothing now

    run(tmp_path, body)
