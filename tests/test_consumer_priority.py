"""Priority for push consumers (ferrymq.client.priority) against a real ``ferrymq serve``: the
high-priority topic, or queue set, is drained before the normal one."""

from __future__ import annotations

import threading
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.client import (
    ConsumeStatus,
    Message,
    MessageExt,
    MessageQueue,
    Producer,
    PushConsumer,
    by_queue_set,
    by_topic,
)
from tests.test_consumer_push import FAST
from tests.test_consumer_support import create_topic, wait_until


def _consume_all(server: FerryServer, group: str, topics: list[str], priority, total: int) -> list[bytes]:  # type: ignore[no-untyped-def]
    order: list[bytes] = []
    lock = threading.Lock()

    def consume(msgs: list[MessageExt]) -> ConsumeStatus:
        with lock:
            order.extend(m.body for m in msgs)
        return ConsumeStatus.CONSUME_SUCCESS

    c = PushConsumer(
        server.namesrv_addr,
        group,
        consume_from="FIRST_OFFSET",
        consume_thread_max=1,
        priority=priority,
        **FAST,
    )
    for topic in topics:
        c.subscribe(topic)
    c.register_listener(consume)
    c.start()
    try:
        assert wait_until(lambda: len(order) >= total, 15), len(order)
    finally:
        c.shutdown()
    return order


def test_high_priority_topic_is_drained_first(tmp_path: Path) -> None:
    with FerryServer(tmp_path) as server:
        create_topic(server, "Urgent", 2)
        create_topic(server, "Normal", 2)
        with Producer(server.namesrv_addr, group="prio-producer") as producer:
            for i in range(40):  # the normal backlog is older
                assert producer.send(Message("Normal", f"normal-{i}".encode())).ok
            for i in range(40):
                assert producer.send(Message("Urgent", f"urgent-{i}".encode())).ok
        order = _consume_all(server, "prio-topics", ["Normal", "Urgent"], by_topic("Urgent", "Normal"), 80)
        assert all(b.startswith(b"urgent") for b in order[:40]), order[:45]
        assert sorted(order[40:]) == sorted(f"normal-{i}".encode() for i in range(40))


def test_high_priority_queue_set_is_drained_first(tmp_path: Path) -> None:
    with FerryServer(tmp_path) as server:
        create_topic(server, "Mixed", 4)

        def queue(qid: int):  # type: ignore[no-untyped-def]
            return lambda queues, msg, arg: MessageQueue("Mixed", "broker-a", qid)

        with Producer(server.namesrv_addr, group="prio-producer") as producer:
            for i in range(30):
                assert producer.send_orderly(Message("Mixed", f"normal-{i}".encode()), queue(i % 2)).ok
            for i in range(30):
                assert producer.send_orderly(Message("Mixed", f"urgent-{i}".encode()), queue(2 + i % 2)).ok
        order = _consume_all(server, "prio-queues", ["Mixed"], by_queue_set("Mixed", {2, 3}), 60)
        assert all(b.startswith(b"urgent") for b in order[:30]), order[:35]
