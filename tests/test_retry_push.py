"""A push consumer's failed messages come back through %RETRY%<group> no earlier than their
delay, with their original topic, and end in %DLQ%<group> after max_reconsume_times -- with the
broker crashing and restarting while a retry is pending."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.client import ConsumeStatus, Message, MessageExt, Producer, PushConsumer
from tests.test_consumer_push import FAST
from tests.test_consumer_support import SMALL_LOG, broker_conn, create_topic, wait_messages, wait_until


def test_retries_back_off_then_dead_letter_across_a_broker_crash(tmp_path: Path) -> None:
    server = FerryServer(tmp_path, "messageDelayLevel=1s 1s 2s\n" + SMALL_LOG).start()
    lock = threading.Lock()
    attempts: list[tuple[float, int, str]] = []  # (time, reconsume_times, topic) of "bad"
    good: list[bytes] = []

    def consume(msgs: list[MessageExt]) -> ConsumeStatus:
        m = msgs[0]
        with lock:
            if m.body == b"bad":
                attempts.append((time.time(), m.reconsume_times, m.topic))
                return ConsumeStatus.RECONSUME_LATER
            good.append(m.body)
        return ConsumeStatus.CONSUME_SUCCESS

    consumer = PushConsumer(
        server.namesrv_addr, "retry-group", consume_from="FIRST_OFFSET", max_reconsume_times=2, **FAST
    )
    try:
        create_topic(server, "RetryPushT", 2)
        consumer.subscribe("RetryPushT")
        consumer.register_listener(consume)
        consumer.start()
        with Producer(server.namesrv_addr, group="retry-producer") as producer:
            for body in (b"ok-1", b"bad", b"ok-2"):
                assert producer.send(Message("RetryPushT", body)).ok
        assert wait_until(lambda: len(attempts) == 1 and len(good) == 2, 10)
        # the first retry (level 3: 2 s) is pending in the schedule queue: crash the broker
        server.kill()
        server.start()
        assert wait_until(lambda: len(attempts) == 3, 20), attempts

        async def dead() -> list[MessageExt]:
            conn = await broker_conn(server)
            try:
                return await wait_messages(conn, "%DLQ%retry-group", 1, timeout=5)
            finally:
                conn.close()

        [dlq] = asyncio.run(dead())  # the third failure went to the DLQ, not to a fourth attempt
        assert dlq.body == b"bad" and dlq.reconsume_times == 3
        assert dlq.properties["RETRY_TOPIC"] == "RetryPushT"
        with lock:
            assert [a[1] for a in attempts] == [0, 1, 2]
            assert all(a[2] == "RetryPushT" for a in attempts)  # the original topic, not %RETRY%
            assert attempts[1][0] - attempts[0][0] >= 2.0  # level 3 + 0
            assert attempts[2][0] - attempts[1][0] >= 2.0  # level 3 + 1, capped to 3
            assert len(attempts) == 3
            assert sorted(good) == [b"ok-1", b"ok-2"]
    finally:
        consumer.shutdown()
        server.stop()
