"""``make bench``: every benchmark, figures printed (never asserted).

Sections (``--only NAME`` to run one): ``start`` (start time and idle RSS of the embedded broker
the pytest fixture runs, of ``ferrymq serve``, and of Apache Kafka and RocketMQ from the jars),
``store`` (in-process append/read), ``client`` (end-to-end
sends and pulls through ferrymq's Python client), ``push`` (push-consumer throughput and latency),
``rocketmq`` (Apache RocketMQ's own benchmark
Producer/Consumer against ferrymq and, where Java and Maven are present, against Apache RocketMQ
started from Maven Central jars on the same machine, with ferrymq/RocketMQ ratios), ``kafka``
(confluent-kafka and Kafka's ProducerPerformance / ConsumerPerformance against ferrymq's Kafka port
and, where Java and Maven are present, Apache Kafka from Maven Central jars, with ferrymq/Kafka
ratios and produce latency at a fixed rate; ``python -m bench.kafka_bench --help`` for its options),
``replication`` (broker groups of a master and one slave: send TPS / latency with ASYNC_MASTER and
SYNC_MASTER against Apache RocketMQ 5.3.3 master+slave, Kafka acks=all with two replicas against a
two-broker Apache Kafka cluster with replication factor 2, and failover time from a master's kill -9
to the first stored send in controller mode against Apache RocketMQ's controller mode, same heartbeat
settings; about 6 minutes; ``python -m bench.replication_bench --help`` for its parts and options),
``fetch-sessions`` (broker CPU and bytes per Kafka fetch of 1,000 quiet partitions, sessionless against
an incremental KIP-227 session), ``tls`` (produce and consume MB/s over plaintext and TLS in the same
run: Kafka PLAINTEXT vs SSL listeners with confluent-kafka, remoting plaintext vs TLS with the Python
client), ``compaction`` (one Kafka partition's log clean in-process: records per second, bytes before
and after), ``quotas`` (a kafka-python producer of 2 MB under a 100 KB/s quota at Kafka's default
windows, and a bystander's produce latency beside an unthrottled and a throttled flooder),
``grpc`` (send and receive TPS of the RocketMQ 5.x Java client over gRPC against ferrymq's listener
and against Apache RocketMQ's proxy in local mode from Maven Central jars, in the same run).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ferrymq.cli.testing import FerryServer


def _table(rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  " + "  ".join(c.rjust(widths[c]) for c in cols))
    for r in rows:
        print("  " + "  ".join(str(r.get(c, "")).rjust(widths[c]) for c in cols))


def section_store(args: argparse.Namespace) -> None:
    from bench import store_bench

    print("store (in-process, no network):")
    _table(store_bench.run(count=args.store_count))
    print("SQL92-filtered pulls of one queue against the unfiltered pull (in-process):")
    _table(store_bench.run_filtered(count=min(args.store_count, 100_000)))


def section_client(args: argparse.Namespace) -> None:
    try:
        from bench import client_bench
    except ImportError as exc:
        print(f"client: skipped ({exc})")
        return
    print("Python client end to end (ferrymq serve):")
    with tempfile.TemporaryDirectory() as tmp, FerryServer(Path(tmp)) as server:
        _table(client_bench.run(server.namesrv_addr, seconds=args.seconds))


def section_rocketmq(args: argparse.Namespace) -> None:
    if not (shutil.which("java") and shutil.which("mvn")):
        print("rocketmq: SKIPPED — Java and Maven are needed for Apache RocketMQ's benchmark tools")
        return
    from bench import rocketmq_ref as ref

    print(f"Apache RocketMQ benchmark.Producer, {args.threads} threads, {args.size} B, {args.seconds:.0f} s:")
    rows: list[dict[str, object]] = []
    results = {}
    with tempfile.TemporaryDirectory() as tmp, FerryServer(Path(tmp)) as server:
        prod, cons = ref.run_benchmark(
            server.namesrv_addr, duration_s=args.seconds, threads=args.threads, size=args.size
        )
        results["ferrymq"] = (prod, cons)
    try:
        with ref.rocketmq() as rmq:
            prod, cons = ref.run_benchmark(
                rmq.namesrv_addr, duration_s=args.seconds, threads=args.threads, size=args.size
            )
            results["RocketMQ 5.3.3"] = (prod, cons)
    except ref.RocketMQRefError as exc:
        print(f"  Apache RocketMQ could not be started: {exc}")
    for name, (prod, cons) in results.items():
        rows.append(
            {
                "server": name,
                "send TPS": round(prod.tps),
                "avg RT ms": round(prod.avg_rt_ms, 3),
                "max RT ms": prod.max_rt_ms,
                "failed": prod.failed,
                "consume TPS": round(cons.tps) if cons else "",
                "avg born-to-consumed ms": round(cons.avg_b2c_ms, 1) if cons else "",
            }
        )
    _table(rows)
    if len(results) == 2:
        (fp, fc), (rp, rc) = results["ferrymq"], results["RocketMQ 5.3.3"]
        print(
            f"  ferrymq/RocketMQ: send TPS {fp.tps / max(rp.tps, 1):.2f}x, "
            f"avg RT {fp.avg_rt_ms / max(rp.avg_rt_ms, 1e-9):.2f}x"
            + (f", consume TPS {fc.tps / max(rc.tps, 1):.2f}x" if fc and rc else "")
        )


def section_push(args: argparse.Namespace) -> None:
    from bench import push_bench

    push_args = argparse.Namespace(
        rate=2000, seconds=min(args.seconds, 10.0), size=args.size, preload=50_000, threads=20
    )
    print("push consumer: drain throughput and born-to-consumed latency at a fixed send rate:")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, FerryServer(Path(tmp)) as server:
        rows += [{"server": "ferrymq", **r} for r in push_bench.run(server.namesrv_addr, push_args)]
    if shutil.which("java") and shutil.which("mvn"):
        from bench import rocketmq_ref as ref

        try:
            with ref.rocketmq() as rmq:
                rows += [
                    {"server": "RocketMQ 5.3.3", **r} for r in push_bench.run(rmq.namesrv_addr, push_args)
                ]
        except ref.RocketMQRefError as exc:
            print(f"  Apache RocketMQ could not be started: {exc}")
    _table(rows)


def section_kafka(args: argparse.Namespace) -> None:
    from bench import kafka_bench

    kafka_bench.main([])  # its own defaults: 1 KiB records (--size here is the RocketMQ sections')


def section_replication(args: argparse.Namespace) -> None:
    from bench import replication_bench

    # its own defaults: 15 s runs (--seconds here is the other sections' 20 s)
    replication_bench.main(["--threads", str(args.threads), "--size", str(args.size)])


def section_fetch_sessions(args: argparse.Namespace) -> None:
    from bench import fetch_sessions_bench

    print("Kafka fetch of 1,000 quiet partitions: sessionless full fetches against one incremental session:")
    _table(fetch_sessions_bench.main([]))


def section_tls(args: argparse.Namespace) -> None:
    from bench import tls_bench

    print(f"plaintext against TLS and SASL_SSL, ferrymq and Apache Kafka, {max(args.size, 1024)} B messages:")
    _table(tls_bench.run(seconds=min(args.seconds, 10.0), size=max(args.size, 1024)))


def section_compaction(args: argparse.Namespace) -> None:
    from bench import compaction_bench

    print("log compaction of one partition (in-process, 100-record batches):")
    _table(compaction_bench.run())


def section_quotas(args: argparse.Namespace) -> None:
    from bench import quota_bench

    print("client quotas at Kafka's default windows: a throttled producer, then a bystander's latency:")
    _table(quota_bench.main())


def section_grpc(args: argparse.Namespace) -> None:
    if not (shutil.which("java") and shutil.which("mvn")):
        print("grpc: SKIPPED — Java and Maven are needed for the RocketMQ 5.x Java client")
        return
    from bench import grpc_bench

    print(
        f"RocketMQ 5.x Java client over gRPC, {args.threads} threads, {args.size} B, "
        f"{args.seconds:.0f} s of sync sends, then a SimpleConsumer receiving and acking them:"
    )
    _table(grpc_bench.run(args.seconds, args.threads, args.size))


def section_start(args: argparse.Namespace) -> None:
    from bench import start_bench

    print(f"start time and idle footprint (RSS after {start_bench.IDLE_S:.0f} s idle):")
    _table(start_bench.run())


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "start": section_start,
    "store": section_store,
    "client": section_client,
    "rocketmq": section_rocketmq,
    "push": section_push,
    "kafka": section_kafka,
    "tls": section_tls,
    "replication": section_replication,
    "fetch-sessions": section_fetch_sessions,
    "compaction": section_compaction,
    "quotas": section_quotas,
    "grpc": section_grpc,
}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--only", choices=sorted(SECTIONS), action="append")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--store-count", type=int, default=200_000)
    args = ap.parse_args()
    for name in args.only or list(SECTIONS):
        started = time.monotonic()
        SECTIONS[name](args)
        print(f"  ({name}: {time.monotonic() - started:.0f} s)\n", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
