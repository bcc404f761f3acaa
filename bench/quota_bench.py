"""Client quotas at Kafka's defaults (11 x 1 s windows): the full-size scenario the tests run scaled down.

An embedded broker; kafka-python produces 2 MB under a 100 KB/s producer_byte_rate on its client id (it
should take about 2 MB / 100 KB/s - 10 s = 10.5 s, Kafka's rate dividing by at least ten windows) and
reports the broker's throttle; then a confluent-kafka bystander's median produce latency alone, beside an
unthrottled flooder, and beside a throttled one. Figures are printed, never asserted::

    .venv/bin/python -m bench.quota_bench
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from confluent_kafka import Producer
from kafka import KafkaProducer

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.core.auth.quotas import entity

TOPIC = "quota-bench"
RATE = 100 * 1024
VALUE = b"q" * 10_000


def _set(broker: EmbeddedBroker, client_id: str, rate: float | None) -> None:
    async def go() -> None:
        store = broker._require().broker.security.quota_store
        store.alter([(entity(client_id=client_id), {"producer_byte_rate": rate})])

    broker._call(go(), 10)


def throttled_producer(broker: EmbeddedBroker) -> dict[str, object]:
    _set(broker, "kp-throttled", RATE)
    p = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap, client_id="kp-throttled", linger_ms=0)
    n = 2 * 1024 * 1024 // len(VALUE)
    started = time.monotonic()
    for _ in range(n):
        p.send(TOPIC, VALUE)
    p.flush(60)
    took = time.monotonic() - started
    metrics: dict[str, Any] = p.metrics()
    throttle = max((v for g in metrics.values() for k, v in g.items() if k == "throttle-time-max"), default=0)
    p.close()
    return {
        "bytes": n * len(VALUE),
        "seconds": round(took, 1),
        "B/s": round(n * len(VALUE) / took),
        "quota B/s": RATE,
        "throttle max ms": round(throttle or 0),
    }


def flood(producer: Producer, topic: str, stop: threading.Event) -> None:
    """Produce VALUE as fast as the client lets until ``stop``; then drop what is still queued."""
    while not stop.is_set():
        try:
            producer.produce(topic, VALUE)
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    producer.purge()  # what the quota held back in the client
    producer.flush(5)


def _latency(p: Producer, n: int) -> float:
    out = []
    for _ in range(n):
        started = time.monotonic()
        p.produce(TOPIC, b"small")
        p.flush(10)
        out.append(time.monotonic() - started)
    return statistics.median(out) * 1000


def bystander(broker: EmbeddedBroker, flooder_rate: float | None) -> dict[str, object]:
    _set(broker, "flooder", flooder_rate)
    conf = {"bootstrap.servers": broker.kafka_bootstrap, "linger.ms": 0, "queue.buffering.max.kbytes": 4096}
    by = Producer({**conf, "client.id": "bystander"})
    _latency(by, 5)
    alone = _latency(by, 50)
    fl = Producer({**conf, "client.id": "flooder"})
    stop = threading.Event()
    t = threading.Thread(target=flood, args=(fl, TOPIC, stop))
    t.start()
    time.sleep(1)
    during = _latency(by, 50)
    stop.set()
    t.join()
    label = "none" if flooder_rate is None else f"{flooder_rate:.0f} B/s"
    return {"flooder quota": label, "alone ms": round(alone, 2), "beside flooder ms": round(during, 2)}


def main() -> list[dict[str, object]]:
    with EmbeddedBroker() as broker:
        print(throttled_producer(broker))
        return [bystander(broker, None), bystander(broker, float(RATE))]


if __name__ == "__main__":
    for row in main():
        print(row)
