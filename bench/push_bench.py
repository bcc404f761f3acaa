"""Push-consumer benchmark: drain throughput and born-to-consumed latency at a fixed send rate.

Two workloads, both with ferrymq's Python PushConsumer (concurrent listener that only counts):

* **drain** -- ``--preload`` messages are stored first, then a consumer group starts from the
  first offset; figure: messages consumed per second until all are in.
* **fixed rate** -- a producer in a separate process sends ``--rate`` messages/s for
  ``--seconds`` while the consumer runs; figures: consumed/s and the latency from the producer's
  born timestamp to the listener call, p50 / p99 / max.

The same workload runs against ``ferrymq serve`` and, with ``--rocketmq`` and Java + Maven
present, against Apache RocketMQ 5.3.3 started from Maven jars (bench/rocketmq_ref.py), so the
broker is the only difference. Figures are printed, never asserted::

    .venv/bin/python -m bench.push_bench --rate 2000 --seconds 10 --preload 50000 --rocketmq
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ferrymq.cli.testing import FerryServer
from ferrymq.client import ConsumeStatus, Message, MessageExt, Producer, PushConsumer

TOPIC = "PushBench"


def _produce(namesrv: str, topic: str, rate: int, seconds: float, size: int, preload: int) -> None:
    """In its own process: ``preload`` messages in batches, or ``rate``/s for ``seconds``."""
    body = b"x" * size
    with Producer(namesrv, group="push-bench-producer", compress_over=-1) as producer:
        if preload:
            batch = [Message(topic, body) for _ in range(32)]
            for _ in range(preload // 32):
                producer.send_batch(batch)
            return
        tick = 0.01
        per_tick = max(1, round(rate * tick))
        start = time.perf_counter()
        n = 0
        pending = []
        while time.perf_counter() - start < seconds:
            for _ in range(per_tick):
                pending.append(producer.send_async(Message(topic, body)))
                n += 1
            ahead = n / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
            if len(pending) > 2000:
                for fut in pending:
                    fut.result()
                pending.clear()
        for fut in pending:
            fut.result()


def _run_producer(namesrv: str, rate: int, seconds: float, size: int, preload: int = 0) -> None:
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_produce, args=(namesrv, TOPIC, rate, seconds, size, preload))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"producer process exited {proc.exitcode}")


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.latencies: list[float] = []
        self.first = 0.0
        self.last = 0.0

    def listener(self, msgs: list[MessageExt]) -> ConsumeStatus:
        now = time.time()
        with self.lock:
            if not self.count:
                self.first = time.perf_counter()
            self.count += len(msgs)
            self.last = time.perf_counter()
            for m in msgs:
                self.latencies.append(now * 1000 - m.born_timestamp)
        return ConsumeStatus.CONSUME_SUCCESS

    def wait(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.count >= count:
                    return True
            time.sleep(0.05)  # a benchmark polling its own counter, not test synchronisation
        return False


def _consumer(namesrv: str, group: str, counter: _Counter, threads: int) -> PushConsumer:
    c = PushConsumer(
        namesrv,
        group,
        consume_from="FIRST_OFFSET",
        consume_thread_max=threads,
        consume_message_batch_max_size=1,
        pull_batch_size=32,
    )
    c.subscribe(TOPIC)
    c.register_listener(counter.listener)
    return c.start()


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def run(namesrv: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    # warm the route: the first send creates the topic (8 queues from TBW102)
    with Producer(namesrv, group="push-bench-warm", default_topic_queue_nums=8) as producer:
        producer.send(Message(TOPIC, b"warm"))
    base = 1
    if args.preload:
        _run_producer(namesrv, 0, 0, args.size, preload=args.preload)
        total = base + args.preload // 32 * 32
        counter = _Counter()
        c = _consumer(namesrv, "push-bench-drain", counter, args.threads)
        try:
            done = counter.wait(total, 300)
        finally:
            c.shutdown()
        elapsed = counter.last - counter.first
        rows.append(
            {
                "workload": f"drain {total} stored",
                "consumed/s": round(counter.count / elapsed) if elapsed > 0 else "",
                "p50 ms": "",
                "p99 ms": "",
                "max ms": "",
                "complete": done,
            }
        )
        base = total
    counter = _Counter()
    c = _consumer(namesrv, "push-bench-live", counter, args.threads)
    try:
        counter.wait(base, 300)  # the live group starts from the first offset: catch up first
        with counter.lock:
            counter.count = 0
            counter.latencies.clear()
        expected = int(args.rate * args.seconds)
        _run_producer(namesrv, args.rate, args.seconds, args.size)
        done = counter.wait(expected, 60)
    finally:
        c.shutdown()
    lat = counter.latencies
    elapsed = counter.last - counter.first
    rows.append(
        {
            "workload": f"{args.rate}/s for {args.seconds:.0f} s",
            "consumed/s": round(counter.count / elapsed) if elapsed > 0 else "",
            "p50 ms": round(_pct(lat, 0.5), 1),
            "p99 ms": round(_pct(lat, 0.99), 1),
            "max ms": round(max(lat), 1) if lat else "",
            "complete": done,
        }
    )
    return rows


def _print(name: str, rows: list[dict[str, Any]]) -> None:
    print(f"{name}:")
    cols = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in cols}
    print("  " + "  ".join(k.rjust(widths[k]) for k in cols))
    for r in rows:
        print("  " + "  ".join(str(r[k]).rjust(widths[k]) for k in cols))


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.push_bench", description=__doc__)
    ap.add_argument("--rate", type=int, default=2000, help="messages per second in the fixed-rate run")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--preload", type=int, default=50_000, help="messages for the drain run (0: skip)")
    ap.add_argument("--threads", type=int, default=20, help="consume_thread_max")
    ap.add_argument("--rocketmq", action="store_true", help="also run against Apache RocketMQ 5.3.3")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FerryServer(Path(tmp)) as server:
        _print("ferrymq serve", run(server.namesrv_addr, args))
    if args.rocketmq:
        from bench import rocketmq_ref as ref

        try:
            with ref.rocketmq() as rmq:
                _print("Apache RocketMQ 5.3.3", run(rmq.namesrv_addr, args))
        except ref.RocketMQRefError as exc:
            print(f"Apache RocketMQ could not be started: {exc}")


if __name__ == "__main__":
    main()
