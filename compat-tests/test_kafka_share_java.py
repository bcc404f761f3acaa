"""Share groups (KIP-932, Kafka's queues) with the unmodified Java KafkaShareConsumer against
``ferrymq serve``, in one JVM run (kafka-clients of the kafka-4 line; share groups became generally
available in Kafka 4.2, whose protocol ferrymq serves: ShareGroupHeartbeat v1, ShareFetch and
ShareAcknowledge v1-2, ShareGroupDescribe v1).

What a user checks: two share consumers of one group split a topic's records, none lost or doubled;
the Admin client describes the group; a released record comes back with delivery count 2; a record a
consumer never acknowledges reaches another consumer after the lock; a rejected record is never
redelivered (it is in the group's dead-letter topic, as a RocketMQ POP consumer's would be).
"""

from __future__ import annotations

from collections import Counter

import httpx
import kafka_java_support as kj
import pytest
from kafka_support import create_topic

from ferrymq.cli.testing import FerryServer

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

#: the shortest lock Kafka allows, so the lock scenario waits 1 s; groups start at the earliest record
FERRYMQ_CONF = "kafkaShareRecordLockDurationMs=1000\nkafkaShareAutoOffsetReset=earliest\n"
COUNT = 20
PREFIX = "share-java"


def test_java_share_consumers_split_release_lock_and_reject(server: FerryServer) -> None:
    reason = kj.skip_reason()
    if reason is not None:
        pytest.skip(reason)
    kj.build("kafka-4")
    for scenario in ("split", "release", "lock", "reject"):
        create_topic(server, f"{PREFIX}-{scenario}", 1)
    run = kj.run_kafka_java("kafka-4", "share", server.kafka_bootstrap, PREFIX, str(COUNT), timeout=90)
    records = kj.of_type(run.results, "record")

    def of(scenario: str) -> list[tuple[str, int, int]]:
        return [(r["consumer"], r["offset"], r["delivery"]) for r in records if r["scenario"] == scenario]

    split = Counter(offset for _, offset, _ in of("split"))
    assert sorted(split) == list(range(COUNT)), "every record read"
    assert max(split.values()) == 1, f"none read twice: {[o for o, n in split.items() if n > 1]}"
    (described,) = kj.of_type(run.results, "described")
    assert described["members"] == 2 and described["state"].lower() == "stable"

    assert of("release") == [("r", 0, 1), ("r", 0, 2)], "the released record is redelivered, count 2"
    assert of("lock") == [("x", 0, 1), ("y", 0, 2)], "the unacknowledged record comes back after the lock"
    assert of("reject") == [("j", 0, 1), ("j", 1, 1), ("j", 1, 2)], "the rejected record never comes back"
    dlq = httpx.get(
        f"{server.admin_url}/api/topics/%25DLQ%25{PREFIX}-g-reject/queues/0/messages?offset=0", timeout=10
    )
    assert dlq.status_code == 200 and len(dlq.json()["messages"]) == 1, dlq.text
