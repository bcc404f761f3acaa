"""Kafka-protocol benchmark: ferrymq's Kafka frontend against Apache Kafka, same machine, same run.

Workloads (1 KiB records, a fresh topic of ``--partitions`` partitions each, created by the admin
client on both servers), each run against ferrymq then against Kafka, back to back, so the load
other processes put on the machine hits both alike:

* **confluent produce / consume** -- librdkafka through confluent-kafka with its default batching
  (linger.ms 5, acks all): ``--records`` records produced as fast as the client goes, then read
  back from the start three times (the best read counts) by a consumer with the partitions
  assigned and fetch.queue.backoff.ms 10 (librdkafka's 1 s pause when its queue is full would
  otherwise set the rate); records/s and MB/s.
* **ProducerPerformance / ConsumerPerformance** -- Kafka's own tools (kafka-tools), with the
  reference's producer settings (acks=1 linger.ms=5 batch.size=131072), then a fresh group reading
  every record back; ConsumerPerformance's fetch-only rate (group join excluded) is reported.
* **latency at a fixed rate** -- ProducerPerformance ``--throughput --rate`` for ``--latency-seconds``:
  send-to-acknowledgement p50 / p99 (ms, as the tool prints them).

Each workload also reports the server's CPU time (all threads, from /proc) per MB moved: on a
shared 2-core machine throughput moves with the neighbours' load, CPU per MB much less.
MB means MiB, as Kafka's tools count. Figures are printed, never asserted. Apache Kafka comes from
Maven Central jars (bench/kafka_ref.py); without Java and Maven only ferrymq is measured.
``--profile DIR`` also records ferrymq's server with py-spy during its confluent produce and
consume runs and prints the frames with the most self and total time::

    .venv/bin/python -m bench.kafka_bench --records 200000 --profile /tmp/kprof
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import kafka_ref as ref
from ferrymq.cli.testing import FerryServer

MIB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parent.parent
PY_SPY = REPO_ROOT / ".venv" / "bin" / "py-spy"
#: ferrymq as Kafka's config/server.properties sets Kafka up: no initial rebalance delay
FERRY_CONF = "groupInitialRebalanceDelayMs=0\n"


@dataclass
class Rate:
    records: int
    seconds: float
    size: int

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.records * self.size / MIB / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# confluent-kafka drivers
# ---------------------------------------------------------------------------------------------


def create_topic(
    bootstrap: str, topic: str, partitions: int, replicas: int = 1, config: dict[str, str] | None = None
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, partitions, replicas, config=config or {})
    futures = admin.create_topics([new], operation_timeout=30)
    futures[topic].result(60)
    # wait until the metadata shows every partition with a leader (Kafka creates them async)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=10).topics.get(topic)
        leaders = [p.leader for p in md.partitions.values()] if md and md.error is None else []
        if len(leaders) == partitions and min(leaders) >= 0:
            return
        time.sleep(0.1)  # polling another process's metadata, not test synchronisation
    raise RuntimeError(f"topic {topic} has no leaders after 60 s")


def confluent_produce(bootstrap: str, topic: str, records: int, size: int) -> Rate:
    """Produce ``records`` values of ``size`` bytes with librdkafka's default batching."""
    from confluent_kafka import KafkaException, Producer

    failed: list[str] = []

    def on_error(err: Any, msg: Any = None) -> None:
        failed.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "delivery.report.only.error": True,  # no per-record callback: the client's fast path
            "on_delivery": on_error,
            "error_cb": on_error,
        }
    )
    value = os.urandom(size)
    produce, poll = producer.produce, producer.poll
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                produce(topic, value)
                break
            except BufferError:  # the client's queue is full: let it send, then retry
                poll(0.005)
        if i & 1023 == 0:
            poll(0)
    left = producer.flush(120)
    elapsed = time.perf_counter() - started
    if left or failed:
        raise KafkaException(f"{left} records not delivered; errors: {failed[:3]}")
    return Rate(records, elapsed, size)


def confluent_consume(bootstrap: str, topic: str, partitions: int, records: int, size: int) -> Rate:
    """Read ``records`` from the start of every partition (assigned, no group rebalance)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            # librdkafka stops fetching for fetch.queue.backoff.ms (1 s) once it holds 64 MiB the
            # application has not taken yet: with a server faster than this Python loop, that
            # timer, not the server, would set the rate
            "fetch.queue.backoff.ms": 10,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = 0
        started = 0.0
        deadline = time.monotonic() + 300
        while got < records and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=1.0)
            if batch and not started:
                started = time.perf_counter()
            for msg in batch:
                if msg.error() is not None:
                    raise KafkaException(msg.error())
            got += len(batch)
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
    if got < records:
        raise RuntimeError(f"consumed {got} of {records} records")
    return Rate(got, elapsed, size)


# ---------------------------------------------------------------------------------------------
# Profiling ferrymq with py-spy
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def py_spy(pid: int, out: Path, seconds: int = 60) -> Iterator[None]:
    """Sample ``pid`` (py-spy raw, i.e. collapsed stacks) while the block runs."""
    proc = subprocess.Popen(
        [str(PY_SPY), "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if not out.exists():
            print(f"  py-spy wrote nothing: {err.decode(errors='replace')[-500:]}", file=sys.stderr)


#: leaf frames of threads that are waiting, which py-spy still samples (a pool worker in queue.get)
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py:81)",)
#: what the event loop's own frame stands for: uvloop is C, so its time is self time of Runner.run
LOOP_FRAME = "Runner.run (asyncio/runners.py)"


def _frame(raw: str) -> str:
    """'f (/abs/path/ferrymq/gateway/kafka/x.py:12)' -> 'f (kafka/x.py)': per function, not line."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})" if path else name


def profile_summary(raw: Path, top: int = 18) -> list[dict[str, object]]:
    """Per function: share of busy samples spent in it (self) and under it (total)."""
    self_t: Counter[str] = Counter()
    total_t: Counter[str] = Counter()
    busy = idle = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        raw_frames = stack.split(";")
        if raw_frames[-1].endswith(IDLE_LEAVES):
            idle += n
            continue
        frames = [_frame(f) for f in raw_frames]
        busy += n
        self_t[frames[-1]] += n
        for f in set(frames):
            total_t[f] += n
    rows: list[dict[str, object]] = []
    for frame, n in self_t.most_common(top):
        label = "event loop: uvloop C code (socket reads/writes)" if frame == LOOP_FRAME else frame
        rows.append(
            {
                "self %": round(100 * n / max(busy, 1), 1),
                "total %": round(100 * total_t[frame] / max(busy, 1), 1),
                "function": label[:90],
            }
        )
    rows.append({"self %": "", "total %": "", "function": f"({busy} busy samples, {idle} idle)"})
    return rows


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    bootstrap: str
    pid: int | None


@dataclass
class Figures:
    """One workload against one server: throughput, and the server's CPU per MB moved."""

    mb_per_s: float
    records_per_s: float
    server_cpu_ms_per_mb: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process, all its threads (Linux /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(t: Target, fn: Callable[[Target], tuple[Figures, float]]) -> Figures:
    """Run ``fn`` (returning its figures and the MB it moved) and add the server's CPU per MB."""
    before = process_cpu_s(t.pid)
    figures, mb = fn(t)
    after = process_cpu_s(t.pid)
    if before is not None and after is not None and mb > 0:
        figures.server_cpu_ms_per_mb = 1000 * (after - before) / mb
    return figures


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else ""


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    """Every workload against ferrymq and (when it starts) Apache Kafka; one row per figure."""
    results: dict[str, dict[str, Figures | None]] = defaultdict(dict)
    size, parts = args.size, args.partitions
    n, jn = args.records, args.java_records
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kafka-bench-")))
        server = stack.enter_context(FerryServer(tmp / "ferrymq", FERRY_CONF))
        assert server.proc is not None
        targets = [Target("ferrymq", server.kafka_bootstrap, server.proc.pid)]
        why_not = ref.available()
        kafka_name = "Kafka"
        if why_not is None and not args.no_kafka:
            try:
                kref = stack.enter_context(ref.kafka(heap=args.kafka_heap))
                kafka_name = f"Kafka {kref.version}"
                targets.append(Target(kafka_name, kref.bootstrap, kref.pid))
            except ref.KafkaRefError as exc:
                print(f"  Apache Kafka could not be started: {exc}", file=sys.stderr)
        else:
            print(f"  Apache Kafka: SKIPPED ({why_not or '--no-kafka'})")
        profile = Path(args.profile) if args.profile else None
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)

        def spied(t: Target, name: str) -> contextlib.AbstractContextManager[None]:
            if profile is None or t.name != "ferrymq" or t.pid is None:
                return contextlib.nullcontext()
            return py_spy(t.pid, profile / f"{name}.txt")

        def warm(t: Target) -> tuple[Figures, float]:
            """Untimed: the JVM compiles its hot paths, ferrymq maps its first segment."""
            create_topic(t.bootstrap, "bench-warmup", parts)
            r = confluent_produce(t.bootstrap, "bench-warmup", args.warmup, size)
            return Figures(r.mb_per_s, r.records_per_s), r.records * size / MIB

        def cprod(t: Target) -> tuple[Figures, float]:
            create_topic(t.bootstrap, "bench-confluent", parts)
            with spied(t, "produce"):
                r = confluent_produce(t.bootstrap, "bench-confluent", n, size)
            return Figures(r.mb_per_s, r.records_per_s), r.records * size / MIB

        def ccons(t: Target) -> tuple[Figures, float]:
            # best of three reads: the machine is shared
            with spied(t, "fetch"):
                runs = [confluent_consume(t.bootstrap, "bench-confluent", parts, n, size) for _ in range(3)]
            best = max(runs, key=lambda r: r.mb_per_s)
            return Figures(best.mb_per_s, best.records_per_s), sum(r.records for r in runs) * size / MIB

        def jprod(t: Target) -> tuple[Figures, float]:
            create_topic(t.bootstrap, "bench-java", parts)
            with spied(t, "produce-java"):
                r = ref.run_producer_perf(t.bootstrap, "bench-java", jn, record_size=size)
            return Figures(r.mb_per_s, r.records_per_s), r.records * size / MIB

        def jcons(t: Target) -> tuple[Figures, float]:
            with spied(t, "fetch-java"):
                r = ref.run_consumer_perf(t.bootstrap, "bench-java", jn)
            return Figures(r.fetch_mb_per_s, r.fetch_records_per_s), r.mb

        def latency(t: Target) -> tuple[Figures, float]:
            create_topic(t.bootstrap, "bench-latency", parts)
            count = int(args.rate * args.latency_seconds)
            r = ref.run_producer_perf(
                t.bootstrap, "bench-latency", count, record_size=size, throughput=args.rate
            )
            return Figures(
                r.mb_per_s, r.records_per_s, p50_ms=r.p50_ms, p99_ms=r.p99_ms
            ), r.records * size / MIB

        steps: list[tuple[str, Callable[[Target], tuple[Figures, float]]]] = [
            ("warmup", warm),
            ("cprod", cprod),
            ("ccons", ccons),
        ]
        if why_not is None:  # Kafka's tools need Java too
            steps += [("jprod", jprod), ("jcons", jcons), ("latency", latency)]
        if args.workloads:
            wanted = {"warmup", *args.workloads.split(",")}
            steps = [(what, fn) for what, fn in steps if what in wanted]
        for what, fn in steps:
            started = time.monotonic()
            for t in targets:  # back to back, so the machine's other load hits both alike
                try:
                    results[what][t.name] = _measure(t, fn)
                except Exception as exc:  # a failed measurement is reported, the others still run
                    results[what][t.name] = None
                    print(f"  {what} against {t.name} failed: {exc}", file=sys.stderr, flush=True)
            print(f"  [{what}: {time.monotonic() - started:.0f} s]", flush=True)
        if profile is not None:
            for name in ("produce", "fetch", "produce-java", "fetch-java"):
                raw = profile / f"{name}.txt"
                if raw.exists():
                    print(f"ferrymq profile during {name} ({raw}), by self time:")
                    _print_table(profile_summary(raw))
    return _rows(results, "ferrymq", kafka_name, args)


def _rows(
    results: dict[str, dict[str, Figures | None]], ferry: str, kafka: str, args: argparse.Namespace
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    workloads = {
        "cprod": "confluent produce",
        "ccons": "confluent consume",
        "jprod": "ProducerPerformance",
        "jcons": "ConsumerPerformance",
        "latency": f"latency @ {args.rate}/s",
    }
    figures = {
        "MB/s": "mb_per_s",
        "records/s": "records_per_s",
        "p50 ms": "p50_ms",
        "p99 ms": "p99_ms",
        "server CPU ms/MB": "server_cpu_ms_per_mb",
    }
    for what, label in workloads.items():
        for unit, attr in figures.items():
            if what == "latency" and unit == "MB/s":  # its records/s is the fixed rate achieved
                continue
            got = [results[what].get(who) for who in (ferry, kafka)]
            f, k = (None if r is None else getattr(r, attr) for r in got)
            if f is None and k is None:
                continue
            digits = 0 if unit in ("records/s", "p50 ms", "p99 ms") else 1 if unit == "MB/s" else 2
            rows.append(
                {
                    "workload": label,
                    "figure": unit,
                    "ferrymq": "" if f is None else round(f, digits),
                    kafka: "" if k is None else round(k, digits),
                    "ferrymq/Kafka": _ratio(f, k),
                }
            )
    return rows


def _print_table(rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  " + "  ".join(c.rjust(widths[c]) for c in cols))
    for r in rows:
        print("  " + "  ".join(str(r.get(c, "")).rjust(widths[c]) for c in cols), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.kafka_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--records", type=int, default=500_000, help="confluent produce/consume records")
    ap.add_argument("--java-records", type=int, default=500_000, help="ProducerPerformance records")
    ap.add_argument("--warmup", type=int, default=100_000, help="records produced first, untimed")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rate", type=int, default=5000, help="records/s of the latency run")
    ap.add_argument("--latency-seconds", type=float, default=15.0)
    ap.add_argument("--kafka-heap", default="512m")
    ap.add_argument("--no-kafka", action="store_true", help="measure ferrymq alone (Kafka's tools still run)")
    ap.add_argument(
        "--workloads",
        help="comma-separated subset of cprod,ccons,jprod,jcons,latency (the warm-up always runs)",
    )
    ap.add_argument("--profile", help="record ferrymq with py-spy into this directory")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"Kafka protocol, {args.size} B records, {args.partitions} partitions "
        f"(confluent {args.records}, ProducerPerformance {args.java_records}):",
        flush=True,
    )
    _print_table(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
