"""The Admin calls a Kafka 4.x client makes of a Kafka 3.8-4.x broker, by the unmodified Java 4.x client.

One JVM run (compat-tests/kafka-java AdminApis): describeTopics by name (DescribeTopicPartitions) and by
topic id, describeLogDirs (the store directory, each partition's bytes), describeProducers (the idempotent
producer that wrote), electLeaders (ELECTION_NOT_NEEDED: the leader is its group's master) and
listPartitionReassignments (none). Before: the 4.x client found DescribeLogDirs, DescribeProducers,
ElectLeaders and ListPartitionReassignments missing (UnsupportedVersionException).
"""

from __future__ import annotations

import kafka_java_support as kj
import pytest

from ferrymq.cli.testing import FerryServer

SKIP_REASON = kj.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(90),
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

LINE = "kafka-4"


def test_admin_describes_topics_by_id_log_dirs_producers_and_elects_nothing(server: FerryServer) -> None:
    topic = "java-admin-apis"
    run = kj.run_kafka_java(LINE, "apis", server.kafka_bootstrap, topic)
    (described,) = kj.of_type(run.results, "topic")
    assert (
        described["partitions"] == 2 and described["byIdName"] == topic and described["byIdPartitions"] == 2
    )
    assert described["id"] != "AAAAAAAAAAAAAAAAAAAAAA"
    dirs = {d["partition"]: d for d in kj.of_type(run.results, "logdir")}
    assert set(dirs) == {0, 1} and dirs[0]["size"] > 0 and dirs[1]["size"] == 0
    (producer,) = kj.of_type(run.results, "producer")
    assert producer["epoch"] == 0 and producer["lastSequence"] == 0 and producer["id"] >= 0
    assert kj.of_type(run.results, "elect") == [{"type": "elect", "error": "ElectionNotNeededException"}]
    assert kj.of_type(run.results, "reassignments")[0]["count"] == 0
