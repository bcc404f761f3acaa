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
from ferrymq.core.broker.topic_config import SCHEDULE_TOPIC
from tests import cluster_helpers
from tests.test_consumer_push import FAST
from tests.test_consumer_support import SMALL_LOG, broker_conn, create_topic, wait_messages, wait_until


def dead_letters(server: FerryServer, group: str) -> list[MessageExt]:
    """The one message expected in ``%DLQ%<group>``, read over a fresh connection."""

    async def read() -> list[MessageExt]:
        conn = await broker_conn(server)
        try:
            return await wait_messages(conn, f"%DLQ%{group}", 1, timeout=5)
        finally:
            conn.close()

    return asyncio.run(read())


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
        # the first retry (level 3: 2 s) is pending in the schedule queue: crash the broker. The
        # listener returns before the send-back is stored; a crash before then is the next test's case
        assert wait_until(lambda: cluster_helpers.max_offset(server.broker_addr, SCHEDULE_TOPIC, 2) == 1, 10)
        server.kill()
        server.start()
        assert wait_until(lambda: len(attempts) == 3, 20), attempts
        # the third failure went to the DLQ, not to a fourth attempt
        [dlq] = dead_letters(server, "retry-group")
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


def test_a_send_back_lost_to_a_crash_is_consumed_again_then_counted_by_the_broker(tmp_path: Path) -> None:
    """The server dies before a failed message's send-back reaches it (the name server too: no
    retry-topic fallback either). As Java's consumer does, the message is consumed again locally
    with reconsume_times 1; the send-back after that one succeeds and the broker counts from the
    stored message (reconsume_times 0), as Java's broker does, so the retry it delivers has
    reconsume_times 1 again. Nothing is lost and the message still ends in the DLQ."""
    server = FerryServer(tmp_path, "messageDelayLevel=1s 1s 1s\n" + SMALL_LOG).start()
    sent, reconsuming, restarted = (threading.Event() for _ in range(3))
    attempts: list[int] = []

    def consume(msgs: list[MessageExt]) -> ConsumeStatus:
        assert sent.wait(10)
        if not attempts:
            server.kill()  # before the listener returns: the send-back cannot reach the broker
        else:
            reconsuming.set()  # only after the send-back and the fallback failed
            assert restarted.wait(30)
        attempts.append(msgs[0].reconsume_times)
        return ConsumeStatus.RECONSUME_LATER

    consumer = PushConsumer(
        server.namesrv_addr,
        "lost-back-group",
        consume_from="FIRST_OFFSET",
        max_reconsume_times=2,
        send_back_retry_delay=0.2,
        **FAST,
    )
    try:
        create_topic(server, "LostBackT", 1)
        consumer.subscribe("LostBackT")
        consumer.register_listener(consume)
        consumer.start()
        with Producer(server.namesrv_addr, group="lost-back-producer") as producer:
            assert producer.send(Message("LostBackT", b"bad")).ok
        sent.set()
        assert reconsuming.wait(20)
        server.start()
        restarted.set()
        assert wait_until(lambda: len(attempts) == 4, 20), attempts
        [dlq] = dead_letters(server, "lost-back-group")
        assert dlq.body == b"bad" and dlq.reconsume_times == 3
        assert attempts == [0, 1, 1, 2]
    finally:
        restarted.set()
        consumer.shutdown()
        server.stop()
