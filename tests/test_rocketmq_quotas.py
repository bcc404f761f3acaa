"""Client quotas on the remoting port: a RocketMQ producer of a throttled principal (a plain_acl.yml access
key, User:<accessKey>) is slowed to its producer_byte_rate while another is not; a consumer over its
consumer_byte_rate is not read from for the throttle time. Windows of 2 x 1 s (quotaWindowNum=2), sizes kept
small: each case runs in about a second. Bounds are generous ratios, never exact times."""

from __future__ import annotations

import time
from pathlib import Path

from ferrymq.core.auth.quotas import entity
from ferrymq.core.broker.broker import Broker
from ferrymq.core.remoting.acl_sign import sign
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.transport import RemotingConnection, connect
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.acl_support import PLAIN_ACL
from tests.remoting_helpers import heartbeat, pull, send_v2
from tests.test_kafka_frontend import run

WINDOWS = {"quota_window_num": 2, "quota_window_size_seconds": 1}
RATE = 100_000.0
BODY = b"x" * 10_000


async def send_many(conn: RemotingConnection, n: int, key: str | None, topic: str) -> float:
    """Seconds ``n`` synchronous sends of BODY took (signed as ``key`` when given)."""
    started = time.monotonic()
    for _ in range(n):
        cmd = send_v2(topic, BODY, 0, queue_nums=2)
        if key is not None:
            sign(cmd, key, f"{key}-secret")
        response = await conn.invoke(cmd, timeout=10)
        assert response.code == ResponseCode.SUCCESS, response.remark
    return time.monotonic() - started


def test_a_throttled_access_key_is_slowed_to_its_rate(tmp_path: Path) -> None:
    acl = tmp_path / "plain_acl.yml"
    acl.write_text(PLAIN_ACL)

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        broker.topics.create_if_absent("AclT", 2)
        broker.security.quota_store.alter([(entity(user="writer"), {"producer_byte_rate": RATE})])
        slow = await connect("127.0.0.1", broker.port)
        fast = await connect("127.0.0.1", broker.port)
        try:
            n = 20  # 200 kB: about 1 s at 100 kB/s
            throttled = await send_many(slow, n, "writer", "AclT")
            free = await send_many(fast, n, "root", "AclT")  # root has no quota
        finally:
            slow.close()
            fast.close()
        # Kafka's rate divides by at least (num-1) windows: B bytes take about B / RATE - 1 s
        sent = n * len(BODY)
        assert throttled >= 0.5 * (sent / RATE - 1.0), throttled
        assert free < throttled / 2, (free, throttled)

    run(tmp_path, body, acl_enable=True, acl_file=acl, **WINDOWS)


def test_a_consumer_over_its_rate_is_muted(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        conn = await connect("127.0.0.1", broker.port)
        try:
            for _ in range(15):
                assert (await conn.invoke(send_v2("kt", BODY, 0, queue_nums=2))).code == ResponseCode.SUCCESS
            assert (await conn.invoke(heartbeat("reader-1", "g", "kt"))).code == ResponseCode.SUCCESS
            broker.security.quota_store.alter([(entity(client_id="reader-1"), {"consumer_byte_rate": RATE})])
            got = await conn.invoke(pull("kt", 0, 0), timeout=10)
            answered = time.monotonic()
            assert got.code == ResponseCode.SUCCESS and len(got.body) > 150_000
            throttle = (len(got.body) - RATE) / RATE  # seconds: over a 1 s window
            # the next request is read only once the throttle time is over
            await conn.invoke(heartbeat("reader-1", "g", "kt"), timeout=10)
            assert time.monotonic() - answered >= 0.9 * throttle
        finally:
            conn.close()

    run(tmp_path, body, **WINDOWS)
