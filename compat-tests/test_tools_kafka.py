"""Kafka's own command-line tools (org.apache.kafka:kafka-tools and kafka_2.13 4.3.1, unmodified)
against ``ferrymq serve``'s Kafka listener: kafka-topics, kafka-configs, kafka-consumer-groups,
kafka-console-producer / -consumer (keys and headers), kafka-get-offsets, kafka-log-dirs,
kafka-delete-records,
each output read as an operator reads it.

One JVM for the module (tools_support.ToolSession): the driver calls each tool's main with
Kafka's ``Exit`` procedure turned into an exit status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import java_support as js
import pytest
import tools_support as ts

from ferrymq.cli.testing import FerryServer
from tests.test_consumer_support import wait_until

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

TOPICS = "org.apache.kafka.tools.TopicCommand"
CONFIGS = "kafka.admin.ConfigCommand"
GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
GET_OFFSETS = "org.apache.kafka.tools.GetOffsetShell"
DELETE_RECORDS = "org.apache.kafka.tools.DeleteRecordsCommand"
LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand"

TOPIC = "ops-kafka"
GROUP = "ops-kafka-group"
RECORDS = [("k1", "h1:v1", "one"), ("k2", "h2:v2", "two"), ("k3", "h1:v3", "three"), ("k4", "h1:v4", "four")]


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ts.ToolSession]:
    with ts.ToolSession(tmp_path_factory.mktemp("kafka-tools")) as session:
        yield session


def kafka(tools: ts.ToolSession, server: FerryServer, main: str, *args: str, stdin: str | None = None) -> str:
    run = tools.run(main, "--bootstrap-server", server.kafka_bootstrap, *args, stdin=stdin)
    assert run.status == 0 and "Exception" not in run.text, run.text
    return run.text


@pytest.fixture(scope="module")
def topic(tools: ts.ToolSession, server: FerryServer) -> str:
    out = kafka(
        tools, server, TOPICS, "--create", "--topic", TOPIC, "--partitions", "1", "--replication-factor", "1"
    )
    assert f"Created topic {TOPIC}." in out, out
    return TOPIC


@pytest.fixture(scope="module")
def produced(tools: ts.ToolSession, server: FerryServer, topic: str) -> str:
    """RECORDS written by kafka-console-producer as ``headers;key;value`` lines."""
    props = ["parse.key=true", "parse.headers=true", "key.separator=;", "headers.delimiter=;"]
    args = [a for p in props for a in ("--reader-property", p)]
    kafka(
        tools,
        server,
        PRODUCER,
        "--topic",
        topic,
        *args,
        stdin="".join(f"{h};{k};{v}\n" for k, h, v in RECORDS),
    )
    return topic


def test_topics_create_describe_alter_delete(tools: ts.ToolSession, server: FerryServer) -> None:
    name = "ops-kafka-temp"
    out = kafka(
        tools, server, TOPICS, "--create", "--topic", name, "--partitions", "2", "--replication-factor", "1"
    )
    assert f"Created topic {name}." in out, out
    out = kafka(tools, server, TOPICS, "--describe", "--topic", name)
    assert re.search(rf"Topic: {name}\s+TopicId: \S+\s+PartitionCount: 2\s+ReplicationFactor: 1", out), out
    assert "TopicId: AAAAAAAAAAAAAAAAAAAAAA" not in out, out  # a real topic id (DescribeTopicPartitions)
    assert len(re.findall(rf"Topic: {name}\s+Partition: \d+\s+Leader: \d+", out)) == 2, out
    kafka(tools, server, TOPICS, "--alter", "--topic", name, "--partitions", "3")
    out = kafka(tools, server, TOPICS, "--describe", "--topic", name)
    assert "PartitionCount: 3" in out, out
    assert name in kafka(tools, server, TOPICS, "--list").split()
    kafka(tools, server, TOPICS, "--delete", "--topic", name)
    assert wait_until(lambda: name not in kafka(tools, server, TOPICS, "--list").split(), 15)


def test_configs_describe_and_alter(tools: ts.ToolSession, server: FerryServer, topic: str) -> None:
    base = ["--entity-type", "topics", "--entity-name", topic]
    out = kafka(tools, server, CONFIGS, "--alter", *base, "--add-config", "retention.ms=3600000")
    assert f"Completed updating config for topic {topic}." in out, out
    out = kafka(tools, server, CONFIGS, "--describe", *base)
    assert "retention.ms=3600000" in out, out
    kafka(tools, server, CONFIGS, "--alter", *base, "--delete-config", "retention.ms")
    out = kafka(tools, server, CONFIGS, "--describe", *base)
    assert "retention.ms=3600000" not in out, out


def console_consume(tools: ts.ToolSession, server: FerryServer, topic: str, group: str, *extra: str) -> str:
    """kafka-console-consumer from the beginning in ``group``, printing headers|key|value."""
    props = ["print.key=true", "print.headers=true", "key.separator=|", "headers.separator=,"]
    args = [a for p in props for a in ("--formatter-property", p)]
    limits = ["--max-messages", str(len(RECORDS)), "--timeout-ms", "20000"]
    return kafka(
        tools,
        server,
        CONSUMER,
        "--topic",
        topic,
        "--from-beginning",
        *limits,
        "--group",
        group,
        *args,
        *extra,
    )


def test_console_producer_and_consumer_with_keys_and_headers(
    tools: ts.ToolSession, server: FerryServer, produced: str
) -> None:
    out = console_consume(tools, server, produced, "ops-console")
    rows = [line for line in out.splitlines() if line.count("|") == 2]
    assert rows == [f"{h}|{k}|{v}" for k, h, v in RECORDS], out
    assert f"Processed a total of {len(RECORDS)} messages" in out, out


def test_get_offsets(tools: ts.ToolSession, server: FerryServer, produced: str) -> None:
    out = kafka(tools, server, GET_OFFSETS, "--topic", produced)
    assert f"{produced}:0:{len(RECORDS)}" in out.split(), out
    out = kafka(tools, server, GET_OFFSETS, "--topic", produced, "--time", "-2")
    assert f"{produced}:0:0" in out.split(), out


def test_consumer_groups_list_describe_reset_delete(
    tools: ts.ToolSession, server: FerryServer, produced: str
) -> None:
    console_consume(tools, server, produced, GROUP)
    assert GROUP in kafka(tools, server, GROUPS, "--list").split()
    out = kafka(tools, server, GROUPS, "--describe", "--group", GROUP)
    row = next(line.split() for line in out.splitlines() if line.startswith(GROUP))
    # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
    assert row[1:6] == [produced, "0", str(len(RECORDS)), str(len(RECORDS)), "0"], out
    out = kafka(
        tools,
        server,
        GROUPS,
        "--reset-offsets",
        "--group",
        GROUP,
        "--topic",
        produced,
        "--to-earliest",
        "--execute",
    )
    assert re.search(rf"{GROUP}\s+{produced}\s+0\s+0", out), out
    out = kafka(tools, server, GROUPS, "--describe", "--group", GROUP)
    row = next(line.split() for line in out.splitlines() if line.startswith(GROUP))
    assert row[3:6] == ["0", str(len(RECORDS)), str(len(RECORDS))], out
    out = kafka(tools, server, GROUPS, "--delete", "--group", GROUP)
    assert f"Deletion of requested consumer groups ('{GROUP}') was successful." in out, out
    assert GROUP not in kafka(tools, server, GROUPS, "--list").split()


def test_consumer_groups_of_the_consumer_protocol(
    tools: ts.ToolSession, server: FerryServer, produced: str
) -> None:
    """A KIP-848 group (group.protocol=consumer): listed with its type, described with its offsets."""
    group = "ops-kip848"
    console_consume(tools, server, produced, group, "--consumer-property", "group.protocol=consumer")
    out = kafka(tools, server, GROUPS, "--list", "--type")
    assert re.search(rf"^{group}\s+Consumer\s*$", out, re.M), out
    out = kafka(tools, server, GROUPS, "--describe", "--group", group)
    row = next(line.split() for line in out.splitlines() if line.startswith(group))
    assert row[1:6] == [produced, "0", str(len(RECORDS)), str(len(RECORDS)), "0"], out


def test_log_dirs_name_the_store_and_each_partitions_size(
    tools: ts.ToolSession, server: FerryServer, produced: str
) -> None:
    out = kafka(tools, server, LOG_DIRS, "--describe", "--topic-list", produced)
    report = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    (broker,) = report["brokers"]
    (log_dir,) = broker["logDirs"]
    assert log_dir["error"] is None and log_dir["logDir"].endswith("store"), out
    (partition,) = log_dir["partitions"]
    assert partition["partition"] == f"{produced}-0" and partition["size"] > 0, out


def test_delete_records(tools: ts.ToolSession, server: FerryServer, produced: str) -> None:
    spec = tools.cwd / "delete-records.json"
    spec.write_text(
        json.dumps({"version": 1, "partitions": [{"topic": produced, "partition": 0, "offset": 2}]})
    )
    out = kafka(tools, server, DELETE_RECORDS, "--offset-json-file", str(spec))
    assert re.search(rf"partition: {produced}-0\s+low_watermark: 2", out), out
    out = kafka(tools, server, GET_OFFSETS, "--topic", produced, "--time", "-2")
    assert f"{produced}:0:2" in out.split(), out


def test_configs_client_quotas(tools: ts.ToolSession, server: FerryServer) -> None:
    """kafka-configs on users and client ids: AlterClientQuotas and DescribeClientQuotas underneath."""
    base = ["--entity-type", "users", "--entity-name", "ops-alice", "--entity-type", "clients"]
    out = kafka(tools, server, CONFIGS, "--alter", *base, "--entity-name", "ops-app",
                "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152")  # fmt: skip
    assert "Completed updating config" in out, out
    out = kafka(tools, server, CONFIGS, "--describe", *base, "--entity-name", "ops-app")
    assert "producer_byte_rate=1048576.0" in out and "consumer_byte_rate=2097152.0" in out, out
    kafka(tools, server, CONFIGS, "--alter", *base, "--entity-name", "ops-app", "--delete-config",
          "producer_byte_rate,consumer_byte_rate")  # fmt: skip
    out = kafka(tools, server, CONFIGS, "--describe", *base, "--entity-name", "ops-app")
    assert "producer_byte_rate" not in out, out
