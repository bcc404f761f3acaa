"""Orderly push consumers against a real ``ferrymq serve``: per-key order holds while a member
joins and another leaves (queue locks move with the queues), and an orderly listener that keeps
suspending a message sends it to the dead-letter topic after max_reconsume_times."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.client import (
    ConsumeOrderlyStatus,
    Message,
    MessageExt,
    MessageQueue,
    Producer,
    PushConsumer,
    SelectMessageQueueByHash,
)
from tests.test_consumer_push import FAST
from tests.test_consumer_support import broker_conn, create_topic, wait_messages, wait_until

ORDERLY = {**FAST, "lock_interval": 1.0, "suspend_current_queue_time": 0.1}


def test_per_key_order_holds_while_members_join_and_leave(tmp_path: Path) -> None:
    keys = [f"key{i}" for i in range(8)]
    per_key = 50
    with FerryServer(tmp_path) as server:
        create_topic(server, "OrderT", 4, order=True)
        lock = threading.Lock()
        seen: dict[str, list[int]] = defaultdict(list)
        by_member: dict[str, int] = defaultdict(int)

        def listener(name: str):  # type: ignore[no-untyped-def]
            def consume(msgs: list[MessageExt]) -> ConsumeOrderlyStatus:
                for m in msgs:
                    key, _, seq = m.body.decode().partition(":")
                    with lock:
                        seen[key].append(int(seq))
                        by_member[name] += 1
                time.sleep(0.001)
                return ConsumeOrderlyStatus.SUCCESS

            return consume

        def member(name: str) -> PushConsumer:
            c = PushConsumer(server.namesrv_addr, "orderly-group", consume_from="FIRST_OFFSET", **ORDERLY)
            c.subscribe("OrderT")
            c.register_orderly_listener(listener(name))
            return c.start()

        a, b = member("a"), member("b")
        members = [a, b]
        sent = threading.Event()

        def produce() -> None:
            with Producer(server.namesrv_addr, group="orderly-producer") as producer:
                for seq in range(per_key):
                    for key in keys:
                        msg = Message("OrderT", f"{key}:{seq}".encode(), keys=key)
                        assert producer.send_orderly(msg, SelectMessageQueueByHash(), key).ok
                    time.sleep(0.04)
            sent.set()

        try:
            all_queues = {MessageQueue("OrderT", "broker-a", q) for q in range(4)}
            assert wait_until(lambda: set().union(*(m.assignment() for m in members)) >= all_queues, 10)
            producer = threading.Thread(target=produce)
            producer.start()
            assert wait_until(lambda: sum(by_member.values()) > 60, 10)
            members.append(member("c"))  # a member joins mid-stream
            assert wait_until(lambda: by_member["c"] > 0 and sum(by_member.values()) > 200, 15)
            a.shutdown()  # and one leaves
            members.remove(a)
            producer.join(30)
            assert sent.is_set()
            total = len(keys) * per_key
            assert wait_until(lambda: sum(len(v) for v in seen.values()) >= total, 20)
            time.sleep(0.5)  # let anything delivered twice show up before checking
        finally:
            for m in members:
                m.shutdown()
        for key in keys:
            assert seen[key] == list(range(per_key)), f"{key}: {seen[key]}"
        assert by_member["a"] and by_member["b"] and by_member["c"]


def test_orderly_suspends_then_dead_letters_and_keeps_order(tmp_path: Path) -> None:
    with FerryServer(tmp_path) as server:
        create_topic(server, "OrderDLQ", 1, order=True)
        got: list[tuple[str, int]] = []

        def consume(msgs: list[MessageExt]) -> ConsumeOrderlyStatus:
            m = msgs[0]
            got.append((m.body.decode(), m.reconsume_times))
            if m.body == b"bad":
                return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
            return ConsumeOrderlyStatus.SUCCESS

        c = PushConsumer(
            server.namesrv_addr, "orderly-dlq", consume_from="FIRST_OFFSET", max_reconsume_times=2, **ORDERLY
        )
        c.subscribe("OrderDLQ")
        c.register_orderly_listener(consume)
        with Producer(server.namesrv_addr, group="orderly-dlq-producer") as producer:
            for body in (b"first", b"bad", b"after"):
                assert producer.send(Message("OrderDLQ", body)).ok
        c.start()
        try:
            assert wait_until(lambda: ("after", 0) in got, 10), got
        finally:
            c.shutdown()
        # the bad message blocks its queue while retried (0, 1, 2), then gives way, in order
        assert got == [("first", 0), ("bad", 0), ("bad", 1), ("bad", 2), ("after", 0)]

        async def dead() -> list[MessageExt]:
            conn = await broker_conn(server)
            try:
                return await wait_messages(conn, "%DLQ%orderly-dlq", 1, timeout=5)
            finally:
                conn.close()

        [dlq] = asyncio.run(dead())
        assert dlq.body == b"bad" and dlq.properties["RETRY_TOPIC"] == "OrderDLQ"
