"""Soak: minutes of mixed native and Kafka load on a real ``ferrymq serve``, with consumers joining
and leaving and a broker restart a quarter of the way in; fails if the server's anonymous RSS
grows more than 10 % after warm-up, or if any acknowledged message cannot be read back.

    make soak                      # SOAK_SECONDS=300 by default
    .venv/bin/python -m bench.soak --seconds 120

RSS here is the server's anonymous RSS (RssAnon, the heap): its VmRSS also counts the pages of
the mmapped store segments it has written (RssFile), which grows with the data and is page cache.

Load: one native producer (ferrymq.client, sync sends with keys) and one Kafka producer
(kafka-python, acks=all) on their own topics; native lite-pull consumers and Kafka group
consumers that join and leave every few seconds. RSS of the server process (VmRSS) is sampled
every second and printed every ``--report`` seconds; the baseline is the median of the samples in
the 20 % of the run after warm-up (after the restart, since a restart starts a new process), the
verdict compares the last 10 % with it. At the end every acknowledged message is looked for: the
native ones by queue offset, the Kafka ones by partition offset, both read from the beginning.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ferrymq.cli.testing import FerryServer

NATIVE_TOPIC = "SoakNative"
BROKER = "soak-broker"
KAFKA_TOPIC = "soak-kafka"


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon and RssFile of a process (MiB). The verdict uses RssAnon: the store's
    mmapped segments show in RssFile as they are written (page cache the kernel reclaims), so
    VmRSS grows with the data, while a leak grows the heap."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) / 1024
    return out


class Acked:
    """What the producers were told was stored, by (queue or partition, offset)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.native: dict[tuple[int, int], bytes] = {}
        self.kafka: dict[tuple[int, int], bytes] = {}


def native_producer(server: FerryServer, acked: Acked, stop: threading.Event, errors: list[str]) -> None:
    from ferrymq.client import Message, Producer

    i = 0
    while not stop.is_set():
        try:
            with Producer(namesrv_addr=server.namesrv_addr, group="soak-pg") as producer:
                while not stop.is_set():
                    body = f"native-{i}-{random.random()}".encode()
                    r = producer.send(Message(NATIVE_TOPIC, body, keys=[f"k{i}"]))
                    if r.ok:
                        with acked.lock:
                            acked.native[(r.queue.queue_id, r.queue_offset)] = body
                    i += 1
        except Exception as exc:  # the restart: reconnect and go on
            errors.append(f"native producer: {exc!r}")
            time.sleep(0.5)


def kafka_producer(server: FerryServer, acked: Acked, stop: threading.Event, errors: list[str]) -> None:
    from kafka import KafkaProducer

    i = 0
    while not stop.is_set():
        try:
            producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap, acks="all", linger_ms=5)
            try:
                while not stop.is_set():
                    body = f"kafka-{i}-{random.random()}".encode()
                    md = producer.send(KAFKA_TOPIC, body).get(timeout=30)
                    with acked.lock:
                        acked.kafka[(md.partition, md.offset)] = body
                    i += 1
            finally:
                producer.close(timeout=5)
        except Exception as exc:
            errors.append(f"kafka producer: {exc!r}")
            time.sleep(0.5)


def churning_consumers(server: FerryServer, stop: threading.Event, errors: list[str]) -> None:
    """Native and Kafka group members that join, read for a few seconds, and leave."""
    from kafka import KafkaConsumer

    from ferrymq.client import LitePullConsumer

    n = 0
    while not stop.is_set():
        n += 1
        try:
            native = LitePullConsumer(namesrv_addr=server.namesrv_addr, group=f"soak-cg-{n % 3}")
            native.subscribe(NATIVE_TOPIC, "*")
            native.start()
            kafka = KafkaConsumer(
                KAFKA_TOPIC,
                bootstrap_servers=server.kafka_bootstrap,
                group_id=f"soak-kg-{n % 3}",
                auto_offset_reset="earliest",
                consumer_timeout_ms=500,
            )
            try:
                end = time.monotonic() + random.uniform(2, 6)
                while time.monotonic() < end and not stop.is_set():
                    native.poll(timeout=0.5)
                    for _ in kafka:
                        pass
            finally:
                kafka.close()
                native.shutdown()
        except Exception as exc:
            errors.append(f"consumers: {exc!r}")
            time.sleep(0.5)


def missing_native(server: FerryServer, acked: Acked) -> list[tuple[int, int]]:
    from ferrymq.client import LitePullConsumer, MessageQueue

    consumer = LitePullConsumer(namesrv_addr=server.namesrv_addr, group="soak-check")
    want = dict(acked.native)
    queues = {q for q, _ in want}
    consumer.assign([MessageQueue(NATIVE_TOPIC, BROKER, q) for q in sorted(queues)])
    consumer.start()
    try:
        for q in queues:
            consumer.seek(MessageQueue(NATIVE_TOPIC, BROKER, q), 0)
        seen: dict[tuple[int, int], bytes] = {}
        deadline = time.monotonic() + 120
        while len(seen) < len(want) and time.monotonic() < deadline:
            for m in consumer.poll(timeout=1.0):
                seen[(m.queue_id, m.queue_offset)] = bytes(m.body)
        return sorted(k for k, body in want.items() if seen.get(k) != body)
    finally:
        consumer.shutdown()


def missing_kafka(server: FerryServer, acked: Acked) -> list[tuple[int, int]]:
    from kafka import KafkaConsumer, TopicPartition

    want = dict(acked.kafka)
    consumer = KafkaConsumer(bootstrap_servers=server.kafka_bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(KAFKA_TOPIC, p) for p in sorted({p for p, _ in want})]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        seen: dict[tuple[int, int], bytes] = {}
        deadline = time.monotonic() + 120
        while len(seen) < len(want) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    seen[(r.partition, r.offset)] = r.value
        return sorted(k for k, body in want.items() if seen.get(k) != body)
    finally:
        consumer.close()


def soak(seconds: float, report: float, data_dir: Path, echo: Callable[[str], None] = print) -> int:
    acked = Acked()
    errors: list[str] = []
    stop = threading.Event()
    samples: list[tuple[float, float]] = []  # (seconds since start, MiB) of the process after the restart
    with FerryServer(data_dir, f"defaultTopicQueueNums=4\nbrokerName={BROKER}\n") as server:
        workers = [
            threading.Thread(target=f, args=args, daemon=True)
            for f, args in (
                (native_producer, (server, acked, stop, errors)),
                (kafka_producer, (server, acked, stop, errors)),
                (churning_consumers, (server, stop, errors)),
            )
        ]
        for w in workers:
            w.start()
        start = time.monotonic()
        restarted = False
        next_report = report
        while (now := time.monotonic() - start) < seconds:
            if not restarted and now >= seconds * 0.25:
                echo(f"[{now:6.0f}s] restarting the broker")
                server.restart()
                restarted = True
            pid = server.proc.pid if server.proc is not None else None
            mem = memory_mb(pid) if pid is not None else {}
            if restarted and mem:
                samples.append((now, mem["RssAnon"]))
            if now >= next_report:
                with acked.lock:
                    counts = (len(acked.native), len(acked.kafka))
                echo(
                    f"[{now:6.0f}s] RSS {mem.get('VmRSS', 0):6.1f} MiB (anon {mem.get('RssAnon', 0):6.1f}, "
                    f"file {mem.get('RssFile', 0):6.1f})  acked native {counts[0]:>7}  kafka {counts[1]:>7}"
                )
                next_report += report
            time.sleep(1.0)
        stop.set()
        for w in workers:
            w.join(timeout=60)
        lost_native = missing_native(server, acked)
        lost_kafka = missing_kafka(server, acked)
    warm = [mb for t, mb in samples if seconds * 0.35 <= t < seconds * 0.55]
    last = [mb for t, mb in samples if t >= seconds * 0.9]
    verdict = 0
    if warm and last:
        base, end = statistics.median(warm), statistics.median(last)
        growth = (end - base) / base * 100
        echo(f"anonymous RSS after warm-up {base:.1f} MiB, at the end {end:.1f} MiB: {growth:+.1f} %")
        if growth > 10:
            echo("FAIL: anonymous RSS grew more than 10 % after warm-up")
            verdict = 1
    else:
        echo("FAIL: too few RSS samples (run longer)")
        verdict = 1
    echo(f"acknowledged: native {len(acked.native)}, kafka {len(acked.kafka)}; client errors: {len(errors)}")
    if lost_native or lost_kafka:
        echo(f"FAIL: missing native {len(lost_native)} {lost_native[:5]}")
        echo(f"FAIL: missing kafka {len(lost_kafka)} {lost_kafka[:5]}")
        verdict = 1
    else:
        echo("every acknowledged message was read back")
    return verdict


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    p.add_argument("--report", type=float, default=10.0, help="seconds between progress lines")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ferrymq-soak-") as d:
        return soak(args.seconds, args.report, Path(d))


if __name__ == "__main__":
    sys.exit(main())
