"""End-to-end through ferrymq's Python client: single sync sends, batches of 32, lite-pull reads."""

from __future__ import annotations

import time

from ferrymq.client import LitePullConsumer, Message, Producer


def run(namesrv_addr: str, seconds: float = 10.0, size: int = 128) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    body = b"x" * size
    topic = "ClientBench"
    sent = 0
    with Producer(namesrv_addr=namesrv_addr, group="bench-producer") as producer:
        producer.send(Message(topic, body))  # creates the topic and warms routes
        sent += 1
        lat: list[float] = []
        end = time.perf_counter() + seconds / 2
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() < end:
            t = time.perf_counter()
            producer.send(Message(topic, body, tags="TagA"))
            lat.append(time.perf_counter() - t)
            n += 1
        elapsed = time.perf_counter() - t0
        sent += n
        lat.sort()
        rows.append(
            {
                "case": "sync send, 1 at a time",
                "msg/s": round(n / elapsed),
                "MB/s": round(n * size / elapsed / 1e6, 2),
                "p50 ms": round(lat[len(lat) // 2] * 1000, 3),
                "p99 ms": round(lat[int(len(lat) * 0.99)] * 1000, 3),
            }
        )
        batch = [Message(topic, body, tags="TagA") for _ in range(32)]
        lat = []
        end = time.perf_counter() + seconds / 2
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() < end:
            t = time.perf_counter()
            producer.send_batch(batch)
            lat.append(time.perf_counter() - t)
            n += len(batch)
        elapsed = time.perf_counter() - t0
        sent += n
        lat.sort()
        rows.append(
            {
                "case": "batch send, 32 per call",
                "msg/s": round(n / elapsed),
                "MB/s": round(n * size / elapsed / 1e6, 2),
                "p50 ms": round(lat[len(lat) // 2] * 1000, 3),
                "p99 ms": round(lat[int(len(lat) * 0.99)] * 1000, 3),
            }
        )
    consumer = LitePullConsumer(namesrv_addr=namesrv_addr, group="bench-reader", consume_from="FIRST_OFFSET")
    consumer.subscribe(topic, "*")
    consumer.start()
    try:
        got = 0
        t0 = time.perf_counter()
        deadline = t0 + 120
        while got < sent and time.perf_counter() < deadline:
            got += len(consumer.poll(timeout=1.0))
        elapsed = time.perf_counter() - t0
    finally:
        consumer.shutdown()
    rows.append(
        {
            "case": f"lite-pull read of {sent} messages",
            "msg/s": round(got / elapsed),
            "MB/s": round(got * size / elapsed / 1e6, 2),
            "p50 ms": "",
            "p99 ms": "",
        }
    )
    return rows
