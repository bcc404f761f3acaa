"""ferrymq.client with two broker groups on one name server: queue selection and retries across
groups when one dies, and a consumer group sharing the queues of both.

``ferrymq serve`` gives the name server and broker-a; broker-b is a ``ferrymq broker`` process
registering with the same name server (port 0, read from its ready line).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.cli.testing import FerryBroker, FerryServer
from ferrymq.client import LitePullConsumer, Message, MessageExt, MessageQueue, Producer, SendStatus
from tests.cluster_helpers import create_topic, eventually, routed


def route_brokers(namesrv_addr: str, topic: str) -> set[str]:
    route = routed(namesrv_addr, topic)
    return set() if route is None else {qd.broker_name for qd in route.queue_datas}


def drain(consumer: LitePullConsumer, want: int, timeout: float = 15.0) -> list[MessageExt]:
    got: list[MessageExt] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += consumer.poll(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
    return got


@pytest.fixture
def two_brokers(
    ferrymq_server: FerryServer, tmp_path: Path
) -> Iterator[tuple[FerryServer, FerryBroker, str]]:
    """broker-a (ferrymq serve) and broker-b, and a topic with 4 queues on each."""
    broker_b = FerryBroker(tmp_path / "broker-b", ferrymq_server.namesrv_addr, "broker-b")
    try:
        topic = f"TwoBrokers-{uuid.uuid4().hex[:8]}"
        create_topic(ferrymq_server.broker_addr, topic)
        create_topic(broker_b.addr, topic)
        eventually(
            lambda: route_brokers(ferrymq_server.namesrv_addr, topic) == {"broker-a", "broker-b"},
            what="topic routed to both broker groups",
        )
        yield ferrymq_server, broker_b, topic
    finally:
        broker_b.stop()


def test_sends_use_both_groups_and_retry_on_the_live_one(
    two_brokers: tuple[FerryServer, FerryBroker, str],
) -> None:
    server, broker_b, topic = two_brokers
    with Producer(server.namesrv_addr, group="pg-two", send_timeout=5.0) as producer:
        queues = producer.fetch_publish_queues(topic)
        assert {q.broker_name for q in queues} == {"broker-a", "broker-b"} and len(queues) == 8
        first = [producer.send(Message(topic, f"m{i}".encode())) for i in range(8)]
        assert {r.queue for r in first} == set(queues)  # round-robin over all eight queues
        broker_b.kill()  # the name server still lists broker-b for a while
        after = [producer.send(Message(topic, f"n{i}".encode())) for i in range(8)]
        assert all(r.status is SendStatus.SEND_OK for r in after)
        assert {r.queue.broker_name for r in after} == {"broker-a"}


def test_group_members_share_the_queues_of_both_groups(
    two_brokers: tuple[FerryServer, FerryBroker, str],
) -> None:
    server, _, topic = two_brokers
    ns = server.namesrv_addr
    with Producer(ns, group="pg-two-share") as producer:
        sent = [producer.send(Message(topic, f"m{i}".encode())) for i in range(32)]
    assert {r.queue.broker_name for r in sent} == {"broker-a", "broker-b"}
    group = f"cg-two-{uuid.uuid4().hex[:8]}"
    a = LitePullConsumer(ns, group=group, consume_from="FIRST_OFFSET")
    b = LitePullConsumer(ns, group=group, consume_from="FIRST_OFFSET")
    a.subscribe(topic)
    b.subscribe(topic)
    a.start()
    try:
        b.start()
        try:
            eventually(lambda: len(a.assignment()) == len(b.assignment()) == 4, what="4 queues each")
            everything = {MessageQueue(topic, name, i) for name in ("broker-a", "broker-b") for i in range(4)}
            assert a.assignment() | b.assignment() == everything
            got = drain(a, 16) + drain(b, 16)
            keys = {(m.broker_name, m.queue_id, m.queue_offset) for m in got}
            assert keys == {(r.queue.broker_name, r.queue.queue_id, r.queue_offset) for r in sent}
        finally:
            b.shutdown()
    finally:
        a.shutdown()
