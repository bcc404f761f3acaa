"""Kafka client quotas with unmodified clients: confluent-kafka producers against an embedded broker, the
quota set on the broker's loop (the admin API and AlterClientQuotas are tested in their own modules). A
producer over its producer_byte_rate is slowed to about its quota and reports the broker's throttle time
(librdkafka's statistics); a bystander producing beside a throttled flooder keeps its latency. Windows are
2 x 1 s (quotaWindowNum=2) and the rate 1 MB/s, so the module runs in seconds; every bound is a generous
ratio, never an exact time.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from bench.quota_bench import VALUE, flood
from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.core.auth.quotas import entity

RATE = 1_000_000  # bytes/s
TOPIC = "quota-flood"


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    conf = {"quotaWindowNum": 2, "quotaWindowSizeSeconds": 1}
    with EmbeddedBroker(conf=conf) as b:

        async def set_quota() -> None:
            store = b._require().broker.security.quota_store
            store.alter([(entity(client_id="flooder"), {"producer_byte_rate": float(RATE)})])

        b._call(set_quota(), 10)
        yield b


class Throttles:
    """The largest broker throttle time librdkafka's statistics reported (ms)."""

    def __init__(self) -> None:
        self.max = 0

    def __call__(self, stats_json: str) -> None:
        for b in json.loads(stats_json).get("brokers", {}).values():
            self.max = max(self.max, b.get("throttle", {}).get("max", 0))


def producer(broker: EmbeddedBroker, client_id: str, throttles: Throttles | None = None) -> Producer:
    conf: dict[str, Any] = {
        "bootstrap.servers": broker.kafka_bootstrap,
        "client.id": client_id,
        "linger.ms": 0,
        "queue.buffering.max.kbytes": 2048,  # what waits in the client stays small
    }
    if throttles is not None:
        conf |= {"statistics.interval.ms": 100, "stats_cb": throttles}
    return Producer(conf)


def test_a_producer_over_its_quota_is_slowed_and_told(broker: EmbeddedBroker) -> None:
    throttles = Throttles()
    p = producer(broker, "flooder", throttles)
    n = 300  # 3 MB: Kafka's rate divides by at least one window, so about 3 MB / 1 MB/s - 1 s = 2 s
    started = time.monotonic()
    for _ in range(n):
        while True:
            try:
                p.produce(TOPIC, VALUE)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(30) == 0
    took = time.monotonic() - started
    sent = n * len(VALUE)
    assert took >= 0.5 * (sent / RATE - 1), took
    deadline = time.monotonic() + 5
    while throttles.max == 0 and time.monotonic() < deadline:
        p.poll(0.1)  # the next statistics
    assert throttles.max > 0


def _latencies(p: Producer, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.monotonic()
        p.produce(TOPIC, b"small")
        assert p.flush(10) == 0
        out.append(time.monotonic() - started)
    return out


def test_a_bystander_keeps_its_latency_while_a_throttled_flooder_floods(broker: EmbeddedBroker) -> None:
    bystander = producer(broker, "bystander")
    _latencies(bystander, 5)  # connected and warm
    baseline = statistics.median(_latencies(bystander, 20))
    throttles = Throttles()
    flooder = producer(broker, "flooder", throttles)
    stop = threading.Event()
    thread = threading.Thread(target=flood, args=(flooder, TOPIC, stop), daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # let the flood build up before measuring (a load, not an event to await)
        during = statistics.median(_latencies(bystander, 20))
    finally:
        stop.set()
        thread.join(15)
    # unthrottled, this flood takes the bystander's median from about 0.3 ms to over 30 ms on a laptop
    assert during <= max(10 * baseline, 0.01), (during, baseline)
    deadline = time.monotonic() + 5
    while throttles.max == 0 and time.monotonic() < deadline:
        flooder.poll(0.1)  # the next statistics
    assert throttles.max > 0  # the flooder was told to back off
