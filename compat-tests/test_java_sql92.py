"""SQL92 filters with the unmodified Java consumers (rocketmq-client 5.3.3): a DefaultMQPushConsumer
and a DefaultLitePullConsumer subscribed with ``MessageSelector.bySql`` receive exactly the
messages whose properties match (native messages from the Python producer, and on the lite-pull
topic Kafka records too, their headers as properties); a push consumer with a malformed
expression fails in ``start()``. One JVM (compat-tests/java SqlConsume) runs the three scenarios.
"""

from __future__ import annotations

import java_support as js
import pytest
from kafka import KafkaProducer

from ferrymq.cli.testing import FerryServer
from ferrymq.client import Message, Producer
from ferrymq.core.remoting.codes import ResponseCode
from tests.test_consumer_support import create_topic

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

# "b IS NULL OR": without it a message lacking b would not match (b = TRUE is null, NOT null is null)
SQL = "a BETWEEN 3 AND 7 AND (color IS NULL OR color <> 'green') AND (b IS NULL OR NOT (b = TRUE))"


def matches(props: dict[str, str]) -> bool:
    a = props.get("a", "")
    return a.isdigit() and 3 <= int(a) <= 7 and props.get("color") != "green" and props.get("b") != "true"


def mixed(i: int) -> dict[str, str]:
    props = {"a": str(i % 10)}
    if i % 4 == 1:
        props["color"] = ("red", "green")[i % 8 // 4]
    if i % 5 == 2:
        props["b"] = "true"
    if i % 11 == 10:
        props = {"a": "3.5"}  # not an Integer: not delivered
    return props


def send_native(server: FerryServer, topic: str, start: int, count: int) -> list[str]:
    wanted = []
    with Producer(server.namesrv_addr, group="sql-java-producer") as producer:
        for i in range(start, start + count):
            props = mixed(i)
            assert producer.send(Message(topic, b"n%d" % i, properties=props)).ok
            if matches(props):
                wanted.append(f"n{i}")
    return wanted


def send_last(server: FerryServer, topic: str) -> None:
    with Producer(server.namesrv_addr, group="sql-java-producer") as producer:
        assert producer.send(Message(topic, b"last", properties={"a": "5"})).ok


def send_kafka(server: FerryServer, topic: str, count: int) -> list[str]:
    wanted = []
    producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap, acks=1, linger_ms=50)
    try:
        for i in range(count):
            props = mixed(i)
            headers = [(k, v.encode()) for k, v in props.items()]
            producer.send(topic, value=b"k%d" % i, headers=headers, partition=0)
            if matches(props):
                wanted.append(f"k{i}")
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    return wanted


def bodies(results: list[dict[str, object]], scenario: str) -> list[str]:
    msgs = [r for r in js.of_type(results, "msg") if r["scenario"] == scenario]
    return [bytes.fromhex(str(r["body"])).decode() for r in msgs]


def test_java_consumers_with_message_selector_by_sql(shared_server: FerryServer) -> None:
    server = shared_server
    for topic in ("JSqlPush", "JSqlLite", "JSqlBad"):
        create_topic(server, topic, 1)
    push_wanted = [*send_native(server, "JSqlPush", 0, 60), "last"]
    send_last(server, "JSqlPush")
    lite_wanted = send_native(server, "JSqlLite", 0, 30) + send_kafka(server, "JSqlLite", 30)
    send_last(server, "JSqlLite")
    lite_wanted.append("last")

    results = js.run_java(
        "SqlConsume", server.namesrv_addr, "JSqlPush", "JSqlLite", "JSqlBad", SQL, "--timeout-ms", "30000",
        timeout=240,
    )  # fmt: skip
    assert bodies(results, "push") == push_wanted
    assert bodies(results, "lite") == lite_wanted
    failed = js.of_type(results, "startFailed")
    assert len(failed) == 1, results[-3:]
    assert failed[0]["code"] == ResponseCode.SUBSCRIPTION_PARSE_FAILED
