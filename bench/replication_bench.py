"""Broker groups (issue 9 §5): ferrymq against Apache RocketMQ 5.3.3 and Apache Kafka, same machine.

Three parts, each run against ferrymq then the Apache reference, back to back:

* **send** -- groups of two (master + one slave) with ``ASYNC_MASTER`` then ``SYNC_MASTER``: Apache
  RocketMQ's benchmark.Producer for ``--seconds`` (send TPS, average and max RT over its last ~10 s;
  the tool prints no percentile), then ferrymq's Python client sending one message at a time for
  ``--latency-seconds`` (p50 / p99 / max of each send: the percentile the Java tool lacks, measured
  through the same client on both servers).
* **kafka** -- produce with acks=all to a topic with two replicas and min.insync.replicas=2: a
  ferrymq SYNC_MASTER + slave (Kafka port on the master) against an Apache Kafka KRaft cluster of
  two brokers with replication factor 2. Kafka's ProducerPerformance as fast as it goes
  (``--kafka-records``; records/s, p99) and at ``--kafka-rate`` records/s for ``--seconds`` (p99).
* **failover** -- controller mode, one controller in the name server, two brokers of one group
  with the same heartbeat settings on both sides (``controllerHeartBeatTimeoutMills``,
  ``brokerHeartbeatInterval``, ``syncBrokerMetadataPeriod``, a 1 s dead-broker scan): kill -9 of
  the master, then ferrymq's Python client (route poll every 0.5 s) retries a send until one is
  stored: the seconds from the kill to that answer (SEND_OK, or SLAVE_NOT_AVAILABLE from a
  SYNC_MASTER left without a slave, which also means stored), and to the controller's election.

Figures are printed, never asserted. The Apache servers come from Maven Central jars
(bench/rocketmq_ref.py, bench/kafka_ref.py); without Java and Maven only ferrymq is measured::

    .venv/bin/python -m bench.replication_bench --parts send,failover --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench import kafka_bench, kafka_ref
from bench import rocketmq_ref as rref
from ferrymq.cli.testing import FerryBroker, FerryNameServer, free_port
from ferrymq.client import Message, MQError, Producer, SendStatus
from ferrymq.client._remote import request
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import connect, split_addr

TOPIC = "ReplicationBench"
QUEUES = 4
GROUP = "broker-rb"
#: the heartbeat settings both controller-mode groups get (tests/test_controller_failover.py's)
HB_TIMEOUT_MS = 2000
CONTROLLER_CONF = {
    "controllerHeartBeatTimeoutMills": HB_TIMEOUT_MS,
    "brokerHeartbeatInterval": 200,
    "syncBrokerMetadataPeriod": 200,
}
STORED = (SendStatus.SEND_OK, SendStatus.SLAVE_NOT_AVAILABLE)
G = TypeVar("G")


class BenchError(RuntimeError):
    """A server group could not be brought to the state a measurement needs."""


# ---------------------------------------------------------------------------------------------
# Small remoting helpers
# ---------------------------------------------------------------------------------------------


def _call(addr: str, code: int, ext: dict[str, str]) -> RemotingCommand:
    async def go() -> RemotingCommand:
        conn = await connect(*split_addr(addr))
        try:
            async with asyncio.timeout(5):
                return await conn.invoke(request(code, ext))
        finally:
            conn.close()

    return asyncio.run(go())


def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Re-check a condition of other processes (nothing announces it) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, TimeoutError, MQError, KeyError, ValueError):
            if pred():
                return
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


def create_topic(broker_addr: str, topic: str = TOPIC) -> None:
    """UPDATE_AND_CREATE_TOPIC on a master, as mqadmin updateTopic sends it."""
    ext = {"topic": topic, "defaultTopic": "TBW102", "readQueueNums": str(QUEUES)}
    ext |= {"writeQueueNums": str(QUEUES), "perm": "6", "topicFilterType": "SINGLE_TAG"}
    resp = _call(broker_addr, RequestCode.UPDATE_AND_CREATE_TOPIC, {**ext, "topicSysFlag": "0"})
    if resp.code != ResponseCode.SUCCESS:
        raise BenchError(f"creating {topic} on {broker_addr}: {resp.code} {resp.remark}")


def queue_total(broker_addr: str, topic: str = TOPIC) -> int:
    """The messages a broker's queues of ``topic`` hold (GET_MAX_OFFSET summed)."""
    total = 0
    for q in range(QUEUES):
        resp = _call(broker_addr, RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": str(q)})
        total += int(resp.ext_fields["offset"]) if resp.code == ResponseCode.SUCCESS else 0
    return total


def replicating(namesrv: str, master: str, slave: str) -> None:
    """Wait until a send is acknowledged and the slave holds all the master holds."""
    with Producer(namesrv, group="rb-probe", send_timeout=3.0, poll_namesrv_interval=0.5) as producer:

        def sent() -> bool:
            return producer.send(Message(TOPIC, b"probe")).status == SendStatus.SEND_OK

        _until(sent, 90, "a send acknowledged by the group")
    _until(lambda: queue_total(slave) == queue_total(master) > 0, 90, "the slave replicating")


# ---------------------------------------------------------------------------------------------
# Part 1: RocketMQ sends to groups of two
# ---------------------------------------------------------------------------------------------


@dataclass
class Group:
    namesrv: str
    master: str
    slave: str
    kafka_bootstrap: str | None = None  # the master's Kafka port (ferrymq with kafka=True)


@contextlib.contextmanager
def ferry_group(tmp: Path, role: str, *, kafka: bool = False) -> Iterator[Group]:
    ns = FerryNameServer(tmp / "ns")
    brokers: list[FerryBroker] = []
    try:
        brokers.append(FerryBroker(tmp / "m", ns.addr, GROUP, kafka=kafka, conf={"brokerRole": role}))
        slave_conf = {"brokerRole": "SLAVE", "brokerId": "1"}
        brokers.append(FerryBroker(tmp / "s", ns.addr, GROUP, conf=slave_conf))
        yield Group(ns.addr, brokers[0].addr, brokers[1].addr, brokers[0].kafka_bootstrap)
    finally:
        for b in reversed(brokers):
            b.stop()
        ns.stop()


@contextlib.contextmanager
def apache_group(tmp: Path, role: str) -> Iterator[Group]:
    ref = rref.start_rocketmq(tmp / "apache", extra_broker_conf={"brokerRole": role})
    slave: rref.ApacheBroker | None = None
    try:
        conf = {"brokerId": 1, "brokerRole": "SLAVE"}
        slave = rref.start_apache_broker(tmp / "apache-slave", ref.namesrv_addr, conf)
        yield Group(ref.namesrv_addr, ref.broker_addr, slave.addr)
    finally:
        if slave is not None:
            slave.stop()
        ref.stop()


def send_latency(namesrv: str, seconds: float, size: int) -> dict[str, float]:
    """One send at a time through the Python client: p50 / p99 / max in ms."""
    body = b"x" * size
    lat: list[float] = []
    with Producer(namesrv, group="rb-latency", send_timeout=5.0) as producer:
        producer.send(Message(TOPIC, body))  # routes warm
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            producer.send(Message(TOPIC, body))
            lat.append(time.perf_counter() - t)
    lat.sort()
    return {
        "p50": lat[len(lat) // 2] * 1000,
        "p99": lat[int(len(lat) * 0.99)] * 1000,
        "max": lat[-1] * 1000,
    }


def measure_sends(group: Group, args: argparse.Namespace) -> dict[str, object]:
    create_topic(group.master)
    replicating(group.namesrv, group.master, group.slave)
    row: dict[str, object] = {}
    if args.java:
        prod = rref.run_benchmark_producer(
            group.namesrv, duration_s=args.seconds, threads=args.threads, size=args.size, topic=TOPIC
        )
        if prod.samples:
            row |= {"send TPS": round(prod.tps), "avg RT ms": round(prod.avg_rt_ms, 3)}
            row |= {"max RT ms": prod.max_rt_ms, "failed": prod.failed}
        else:  # it reports once it has 10 one-second snapshots: a slow JVM start leaves none
            row["send TPS"] = "no report"
            print(f"  benchmark.Producer printed no figures:\n{prod.output_tail}", file=sys.stderr)
    lat = send_latency(group.namesrv, args.latency_seconds, args.size)
    return row | {
        "1-by-1 p50 ms": round(lat["p50"], 2),
        "1-by-1 p99 ms": round(lat["p99"], 2),
        "1-by-1 max ms": round(lat["max"], 1),
    }


def part_send(args: argparse.Namespace) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for role in ("ASYNC_MASTER", "SYNC_MASTER"):
        servers: list[tuple[str, Callable[[Path], contextlib.AbstractContextManager[Group]]]] = [
            ("ferrymq", functools.partial(ferry_group, role=role))
        ]
        if args.apache:
            servers.append(("RocketMQ 5.3.3", functools.partial(apache_group, role=role)))
        for name, start in servers:
            row: dict[str, object] = {"group": f"{role} + SLAVE", "server": name}
            rows.append(_measured(row, f"{role} against {name}", start, lambda g: measure_sends(g, args)))
    return rows


def _measured(
    row: dict[str, object],
    what: str,
    start: Callable[[Path], contextlib.AbstractContextManager[G]],
    measure: Callable[[G], dict[str, object]],
) -> dict[str, object]:
    """``row`` with the figures ``measure`` takes of a server group ``start`` brings up in a temp
    dir, or an error column (and the reason on stderr) when it fails."""
    try:
        with tempfile.TemporaryDirectory(prefix="repl-bench-") as tmp, start(Path(tmp)) as group:
            row |= measure(group)
    except (BenchError, rref.RocketMQRefError, RuntimeError, MQError) as exc:
        print(f"  {what} failed: {exc}", file=sys.stderr, flush=True)
        row["error"] = type(exc).__name__
    print(f"  [{what} done]", flush=True)
    return row


# ---------------------------------------------------------------------------------------------
# Part 2: Kafka acks=all with two replicas
# ---------------------------------------------------------------------------------------------

KAFKA_PROPS = ("acks=all", "linger.ms=5", "batch.size=131072")


def measure_kafka(bootstrap: str, replicas: int, args: argparse.Namespace) -> dict[str, object]:
    config = {"min.insync.replicas": "2"}
    kafka_bench.create_topic(bootstrap, "repl-warm", QUEUES, replicas, config)
    kafka_ref.run_producer_perf(bootstrap, "repl-warm", args.kafka_records // 5, props=KAFKA_PROPS)
    kafka_bench.create_topic(bootstrap, "repl-full", QUEUES, replicas, config)
    full = kafka_ref.run_producer_perf(bootstrap, "repl-full", args.kafka_records, props=KAFKA_PROPS)
    kafka_bench.create_topic(bootstrap, "repl-rate", QUEUES, replicas, config)
    count = int(args.kafka_rate * args.seconds)
    rate = kafka_ref.run_producer_perf(
        bootstrap, "repl-rate", count, throughput=args.kafka_rate, props=KAFKA_PROPS
    )
    return {
        "full records/s": round(full.records_per_s),
        "full MB/s": round(full.mb_per_s, 1),
        "full p99 ms": full.p99_ms,
        f"@{args.kafka_rate}/s p50 ms": rate.p50_ms,
        f"@{args.kafka_rate}/s p99 ms": rate.p99_ms,
        f"@{args.kafka_rate}/s max ms": round(rate.max_ms),
    }


def part_kafka(args: argparse.Namespace) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    if not args.java:
        print("  kafka: SKIPPED (Kafka's ProducerPerformance needs Java and Maven)")
        return rows
    row: dict[str, object] = {"server": "ferrymq SYNC_MASTER + SLAVE"}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="repl-bench-") as tmp,
            ferry_group(Path(tmp), "SYNC_MASTER", kafka=True) as group,
        ):
            create_topic(group.master)
            replicating(group.namesrv, group.master, group.slave)
            assert group.kafka_bootstrap is not None
            row |= measure_kafka(group.kafka_bootstrap, 1, args)
    except (BenchError, kafka_ref.KafkaRefError, RuntimeError, MQError) as exc:
        print(f"  kafka against ferrymq failed: {exc}", file=sys.stderr, flush=True)
    rows.append(row)
    if not args.apache:
        return rows
    row = {"server": "Kafka, 2 brokers, RF 2"}
    try:
        with kafka_ref.start_kafka_cluster(2, heap=args.kafka_heap) as cluster:
            row["server"] = f"Kafka {cluster.version}, 2 brokers, RF 2"
            row |= measure_kafka(cluster.bootstrap, 2, args)
    except (kafka_ref.KafkaRefError, RuntimeError) as exc:
        print(f"  kafka against Apache Kafka failed: {exc}", file=sys.stderr, flush=True)
    rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Part 3: failover time in controller mode
# ---------------------------------------------------------------------------------------------


@dataclass
class FailoverGroup:
    namesrv: str
    controller: str  # where CONTROLLER_GET_REPLICA_INFO is asked
    brokers: dict[str, Callable[[], None]]  # address -> kill -9


def replica_info(controller: str) -> tuple[str | None, set[int]]:
    """The controller's master address and in-sync set of the group."""
    resp = _call(controller, RequestCode.CONTROLLER_GET_REPLICA_INFO, {"brokerName": GROUP})
    if resp.code != ResponseCode.SUCCESS:
        return None, set()
    return resp.ext_fields.get("masterAddress") or None, set(json.loads(bytes(resp.body))["syncStateSet"])


@contextlib.contextmanager
def ferry_controller_group(tmp: Path) -> Iterator[FailoverGroup]:
    ns = FerryNameServer(tmp / "ns", controller=True)
    brokers: list[FerryBroker] = []
    try:
        for ident in (1, 2):
            conf = {"enableControllerMode": "true", "controllerAddr": ns.addr, "brokerId": str(ident)}
            conf |= {"brokerRole": "SYNC_MASTER", "defaultTopicQueueNums": str(QUEUES)}
            conf |= {k: str(v) for k, v in CONTROLLER_CONF.items()}
            brokers.append(FerryBroker(tmp / f"b{ident}", ns.addr, GROUP, conf=conf))
            if ident == 1:
                _until(lambda: replica_info(ns.addr)[0] == brokers[0].addr, 60, "broker 1 elected")
        yield FailoverGroup(ns.addr, ns.addr, {b.addr: b.kill for b in brokers})
    finally:
        for b in brokers:
            b.stop()
        ns.stop()


@contextlib.contextmanager
def apache_controller_group(tmp: Path) -> Iterator[FailoverGroup]:
    """A name server with enableControllerInNamesrv (a one-node DLedger controller) and two brokers
    with enableControllerMode, as distribution/conf/controller/quick-start has them."""
    server_cp, _ = rref.build_classpaths()
    home = tmp / "apache"
    home.mkdir(parents=True)
    (home / "userhome").mkdir()
    ns_port, ctl_port = free_port(), free_port()
    conf = {
        "listenPort": ns_port,
        "bindAddress": rref.HOST,
        "enableControllerInNamesrv": "true",
        "controllerDLegerGroup": "rbgroup",
        "controllerDLegerPeers": f"n0-{rref.HOST}:{ctl_port}",
        "controllerDLegerSelfId": "n0",
        "controllerStorePath": home / "controller",
        "scanNotActiveBrokerInterval": 1000,  # ferrymq's controller scans every second
        "scanInactiveMasterInterval": 1000,
    }
    (home / "namesrv.conf").write_text("".join(f"{k}={v}\n" for k, v in conf.items()))
    log = home / "namesrv.out"
    cmd = [
        *rref._jvm_base(home, "256m"),
        "-cp",
        server_cp,
        rref.NAMESRV_MAIN,
        "-c",
        str(home / "namesrv.conf"),
    ]
    namesrv = rref._spawn(cmd, log, home)
    brokers: list[rref.ApacheBroker] = []
    try:
        if not rref._wait_ready(namesrv, log, rref.NAMESRV_READY, ns_port, 120):
            raise BenchError(f"Apache name server + controller did not start:\n{rref._tail(log)}")
        controller = f"{rref.HOST}:{ctl_port}"
        ns_addr = f"{rref.HOST}:{ns_port}"
        for n in (1, 2):
            bconf: dict[str, object] = {
                "brokerName": GROUP,
                "brokerId": -1,
                "brokerRole": "SLAVE",
                "enableControllerMode": "true",
                "controllerAddr": controller,
                "allAckInSyncStateSet": "true",
                **CONTROLLER_CONF,
            }
            brokers.append(rref.start_apache_broker(home / f"b{n}", ns_addr, bconf))
            if n == 1:
                _until(lambda: replica_info(controller)[0] == brokers[0].addr, 90, "Apache broker 1 elected")
        yield FailoverGroup(ns_addr, controller, {b.addr: b.kill for b in brokers})
    finally:
        for b in brokers:
            b.stop()
        rref._stop_process(namesrv, 30)


def measure_failover(group: FailoverGroup, args: argparse.Namespace) -> dict[str, object]:
    _until(lambda: len(replica_info(group.controller)[1]) == 2, 90, "both brokers in the in-sync set")
    master, _ = replica_info(group.controller)
    if master not in group.brokers:
        raise BenchError(f"the controller names {master}, not one of {sorted(group.brokers)}")
    producer = Producer(group.namesrv, group="rb-failover", send_timeout=2.0, poll_namesrv_interval=0.5)
    producer.start()
    try:
        create_topic(master)
        _until(lambda: producer.send(Message(TOPIC, b"before")).status == SendStatus.SEND_OK, 60, "SEND_OK")
        for i in range(200):  # some load, replicated, before the kill
            producer.send(Message(TOPIC, f"before-{i}".encode()))
        t0 = time.monotonic()
        group.brokers[master]()
        elected: float | None = None
        status: SendStatus | None = None
        deadline = t0 + args.failover_timeout
        while status not in STORED:
            if time.monotonic() > deadline:
                raise BenchError(f"no send stored within {args.failover_timeout:.0f} s of the kill")
            if elected is None:
                with contextlib.suppress(OSError, TimeoutError):
                    new, _ = replica_info(group.controller)
                    if new is not None and new != master:
                        elected = time.monotonic() - t0
            try:
                status = producer.send(Message(TOPIC, b"after")).status
            except MQError:
                status = None
                time.sleep(0.05)
        stored = time.monotonic() - t0
    finally:
        producer.shutdown()
    return {
        "kill -> elected s": "" if elected is None else round(elected, 2),
        "kill -> first stored send s": round(stored, 2),
        "answer": status.name if status is not None else "",
    }


def part_failover(args: argparse.Namespace) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    servers: list[tuple[str, Callable[[Path], contextlib.AbstractContextManager[FailoverGroup]]]] = [
        ("ferrymq", ferry_controller_group)
    ]
    if args.apache:
        servers.append(("RocketMQ 5.3.3", apache_controller_group))
    for name, start in servers:
        rows.append(
            _measured({"server": name}, f"failover of {name}", start, lambda g: measure_failover(g, args))
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

PARTS: dict[str, tuple[str, Callable[[argparse.Namespace], list[dict[str, object]]]]] = {
    "send": ("sends to a group of two (benchmark.Producer; Python client one at a time)", part_send),
    "kafka": (
        "Kafka produce, acks=all, two replicas, min.insync.replicas=2 (ProducerPerformance)",
        part_kafka,
    ),
    "failover": (
        f"controller mode, kill -9 of the master (heartbeat timeout {HB_TIMEOUT_MS} ms on both)",
        part_failover,
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.replication_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of send,kafka,failover")
    ap.add_argument(
        "--seconds", type=float, default=15.0, help="benchmark.Producer / fixed-rate run time (>= 13)"
    )
    ap.add_argument("--latency-seconds", type=float, default=3.0, help="one-at-a-time send run time")
    ap.add_argument("--threads", type=int, default=16, help="benchmark.Producer threads")
    ap.add_argument("--size", type=int, default=128, help="RocketMQ message size")
    ap.add_argument(
        "--kafka-records", type=int, default=100_000, help="ProducerPerformance full-speed records"
    )
    ap.add_argument("--kafka-rate", type=int, default=2000, help="records/s of the fixed-rate run")
    ap.add_argument("--kafka-heap", default="512m")
    ap.add_argument("--failover-timeout", type=float, default=90.0)
    ap.add_argument("--no-apache", action="store_true", help="measure ferrymq alone (Java tools still run)")
    return ap.parse_args(argv)


def _print_table(rows: list[dict[str, object]]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    if not cols:
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  " + "  ".join(c.rjust(widths[c]) for c in cols))
    for r in rows:
        print("  " + "  ".join(str(r.get(c, "")).rjust(widths[c]) for c in cols), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.java = bool(shutil.which("java") and shutil.which("mvn"))
    args.apache = args.java and not args.no_apache
    if not args.apache:
        why = "no Java and Maven: no benchmark.Producer, no Kafka" if not args.java else "--no-apache"
        print(f"  Apache RocketMQ / Kafka: SKIPPED ({why})")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the servers on a SIGTERM too
    for part in args.parts.split(","):
        title, run = PARTS[part]
        started = time.monotonic()
        print(f"replication, {title}:", flush=True)
        _print_table(run(args))
        print(f"  [{part}: {time.monotonic() - started:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
