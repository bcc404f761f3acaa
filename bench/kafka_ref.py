"""Apache Kafka, run from Maven Central jars, as the reference for ferrymq's Kafka frontend.

* ``start_kafka()`` formats a temporary log dir and starts one combined broker+controller (KRaft,
  static single-voter quorum) on free loopback ports with a small heap, and waits until it serves.
* ``start_kafka_cluster()`` starts a KRaft cluster of several nodes the same way (node 1 the
  controller and a broker, the others brokers), for replicated topics.
* ``run_producer_perf()`` / ``run_consumer_perf()`` run Kafka's own
  ``org.apache.kafka.tools.ProducerPerformance`` / ``ConsumerPerformance`` against any bootstrap
  address (Apache Kafka or ``ferrymq serve --kafka-port``) and parse their summary lines.

The jars (kafka_2.13 + kafka-tools + a Log4j 2 binding) are resolved by bench/kafka-java. Never
part of ``make test``. From the repository root::

    .venv/bin/python -m bench.kafka_ref                # start Kafka, run the perf tools once, stop
    .venv/bin/python -m bench.kafka_ref --keep-home    # and keep its log dir and server.log
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_JAVA = REPO_ROOT / "bench" / "kafka-java"
CP_FILE = KAFKA_JAVA / "target" / "classpath.txt"
MVN_ARGS = [
    "-q",
    "-B",
    "-f",
    str(KAFKA_JAVA / "pom.xml"),
    "dependency:build-classpath",
    "-Dmdep.outputFile=target/classpath.txt",
]
HOST = "127.0.0.1"
KAFKA_MAIN = "kafka.Kafka"
STORAGE_MAIN = "kafka.tools.StorageTool"
PRODUCER_PERF = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERF = "org.apache.kafka.tools.ConsumerPerformance"
#: logged by KafkaRaftServer once the broker has caught up with the metadata log and serves
READY_MARKER = "Kafka Server started"

# "200000 records sent, 51466.8 records/sec (50.26 MB/sec), 280.79 ms avg latency, 602.00 ms max
# latency, 271 ms 50th, 526 ms 95th, 582 ms 99th, 600 ms 99.9th."
PRODUCER_SUMMARY = re.compile(
    r"(?P<n>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99.9th"
)
#: ConsumerPerformance prints a CSV header then one line of figures (these columns, in order)
CONSUMER_COLUMNS = (
    "start.time",
    "end.time",
    "data.consumed.in.MB",
    "MB.sec",
    "data.consumed.in.nMsg",
    "nMsg.sec",
    "rebalance.time.ms",
    "fetch.time.ms",
    "fetch.MB.sec",
    "fetch.nMsg.sec",
)


class KafkaRefError(RuntimeError):
    """The reference broker or a tool could not be built, started or run; the message says why."""


# ---------------------------------------------------------------------------------------------
# Tools, classpath, ports
# ---------------------------------------------------------------------------------------------


def available() -> str | None:
    """None when Java and Maven are present, else why the Kafka reference cannot run."""
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "java not found (install a JDK 17+)"
    if not shutil.which("mvn") and not CP_FILE.exists():
        return "mvn not found (install Maven 3)"
    return None


def find_java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaRefError("java not found (install a JDK 17+)")
    return java


def classpath(*, force: bool = False, timeout: float = 900.0) -> str:
    """The broker + tools classpath, resolving bench/kafka-java with Maven when not yet done."""
    if force or not CP_FILE.exists():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaRefError("mvn not found (install Maven 3)")
        try:
            proc = subprocess.run(
                [mvn, *MVN_ARGS],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            raise KafkaRefError(f"mvn -f bench/kafka-java/pom.xml timed out after {timeout:.0f}s") from e
        if proc.returncode != 0 or not CP_FILE.exists():
            raise KafkaRefError(
                f"mvn -f bench/kafka-java/pom.xml failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
    return CP_FILE.read_text().strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (Kafka's controlled shutdown runs), then SIGKILL; the process leads its own group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------------------------------------
# The broker
# ---------------------------------------------------------------------------------------------

#: Log4j 2 for the broker and the tools: the broker's log to a file, the tools' warnings to stderr
_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = {appender}
"""


def server_properties(home: Path, port: int, controller_port: int, extra: dict[str, object]) -> str:
    """Combined mode as Kafka's config/server.properties has it, with benchmark-sized files."""
    props: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": home / "logs",
        "num.partitions": 1,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        # as Kafka's own config/server.properties: a single-node dev broker does not wait for members
        "group.initial.rebalance.delay.ms": 0,
        # smaller segments than the 1 GiB default: kinder to a shared machine's disk
        "log.segment.bytes": 128 * 1024 * 1024,
    }
    props.update(extra)
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _jvm(heap: str, log4j: Path) -> list[str]:
    """The JVM options of Kafka's kafka-run-class.sh (G1, short pauses), with a fixed small heap."""
    return [
        find_java(),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-server",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
    ]


@dataclass
class KafkaRef:
    """A running Apache Kafka broker; stop() (or the with block) ends it and removes its home."""

    home: Path
    port: int
    controller_port: int
    owns_home: bool
    proc: subprocess.Popen[bytes] | None = None
    keep_home: bool = False
    version: str = ""

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is not None:
            _stop_process(self.proc, timeout)
            self.proc = None
        if self.owns_home and not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> KafkaRef:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def kafka_version(cp: str) -> str:
    """The kafka_2.13 version on the classpath (from its jar name)."""
    m = re.search(r"kafka_2\.13-([\w.\-]+?)\.jar", cp)
    return m.group(1) if m else "?"


def start_kafka(
    home: Path | None = None,
    *,
    heap: str = "512m",
    extra_props: dict[str, object] | Callable[[int, int], dict[str, object]] | None = None,
    timeout: float = 120.0,
    keep_home: bool = False,
) -> KafkaRef:
    """Format a KRaft log dir and start a single-node Kafka on loopback; returns once it serves.
    ``extra_props`` may be a function of the broker's (port, controller port), e.g. to add listeners.

    ``home`` (default: a new temp dir, removed by stop() unless keep_home) holds server.properties,
    the log dirs and server.log (the broker's Log4j output and its stdout).
    """
    cp = classpath()
    owns_home = home is None
    home = Path(tempfile.mkdtemp(prefix="kafka-ref-")) if home is None else Path(home)
    home.mkdir(parents=True, exist_ok=True)
    ref = KafkaRef(home, free_port(), free_port(), owns_home, keep_home=keep_home, version=kafka_version(cp))
    extra = extra_props(ref.port, ref.controller_port) if callable(extra_props) else extra_props or {}
    _format(ref, cp, server_properties(home, ref.port, ref.controller_port, extra), None, timeout)
    _launch(ref, cp, heap, timeout)
    return ref


def _format(ref: KafkaRef, cp: str, properties: str, cluster_id: str | None, timeout: float) -> str:
    """Write the node's server.properties and Log4j config, format its log dir; the cluster id."""
    props = ref.home / "server.properties"
    props.write_text(properties)
    log4j = ref.home / "log4j2.properties"
    log4j.write_text(_LOG4J2.format(log=ref.log, level="INFO", appender="file"))
    jvm = _jvm("256m", log4j)
    try:
        if cluster_id is None:
            cluster_id = subprocess.run(
                [*jvm, "-cp", cp, STORAGE_MAIN, "random-uuid"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=True,
                stdin=subprocess.DEVNULL,
            ).stdout.split()[-1]
        subprocess.run(
            [*jvm, "-cp", cp, STORAGE_MAIN, "format", "-t", cluster_id, "-c", str(props)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as e:
        ref.stop()
        raise KafkaRefError(f"kafka-storage failed:\n{e.stdout[-2000:]}\n{e.stderr[-2000:]}") from e
    except subprocess.TimeoutExpired as e:
        ref.stop()
        raise KafkaRefError("kafka-storage timed out") from e
    return cluster_id


def _launch(ref: KafkaRef, cp: str, heap: str, timeout: float) -> None:
    """Start the formatted node and wait for its ready line (a failed start keeps its home)."""
    home = ref.home
    try:
        with open(home / "server.out", "ab") as out:
            ref.proc = subprocess.Popen(
                [
                    *_jvm(heap, home / "log4j2.properties"),
                    "-cp",
                    cp,
                    KAFKA_MAIN,
                    str(home / "server.properties"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=home,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if ref.proc.poll() is not None:
                stdout = _tail(home / "server.out")
                raise KafkaRefError(f"Kafka exited with {ref.proc.returncode}:\n{_tail(ref.log)}\n{stdout}")
            with contextlib.suppress(OSError):
                if READY_MARKER in ref.log.read_text(errors="replace"):
                    break
            if time.monotonic() > deadline:
                raise KafkaRefError(f"Kafka did not start in {timeout:.0f}s:\n{_tail(ref.log)}")
            time.sleep(0.25)
    except BaseException:
        keep = ref.keep_home
        ref.keep_home = True  # keep a failed start's logs for the error message's reader
        ref.stop()
        ref.keep_home = keep
        raise


@dataclass
class KafkaCluster:
    """Several Kafka nodes of one KRaft cluster; ``nodes[0]`` is the controller (and a broker)."""

    nodes: list[KafkaRef]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def version(self) -> str:
        return self.nodes[0].version if self.nodes else "?"

    def stop(self, timeout: float = 30.0) -> None:
        for node in reversed(self.nodes):  # brokers first: the controller sees them leave
            node.stop(timeout)

    def __enter__(self) -> KafkaCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_kafka_cluster(
    nodes: int = 2,
    *,
    heap: str = "512m",
    extra_props: dict[str, object] | None = None,
    timeout: float = 120.0,
) -> KafkaCluster:
    """A KRaft cluster on loopback: node 1 combined controller+broker (the single voter), nodes 2..n
    brokers only, all formatted with one cluster id; returns once every node serves."""
    cp = classpath()
    cluster = KafkaCluster([])
    try:
        cluster_id: str | None = None
        voter_port = 0
        for node_id in range(1, nodes + 1):
            home = Path(tempfile.mkdtemp(prefix=f"kafka-ref-n{node_id}-"))
            ref = KafkaRef(home, free_port(), free_port(), True, version=kafka_version(cp))
            voter_port = voter_port or ref.controller_port
            extra: dict[str, object] = {
                "node.id": node_id,
                "controller.quorum.voters": f"1@{HOST}:{voter_port}",
            }
            if node_id > 1:
                extra.update({"process.roles": "broker", "listeners": f"PLAINTEXT://{HOST}:{ref.port}"})
            props = server_properties(home, ref.port, voter_port, {**extra, **(extra_props or {})})
            cluster.nodes.append(ref)
            cluster_id = _format(ref, cp, props, cluster_id, timeout)
            _launch(ref, cp, heap, timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def kafka(**kwargs: Any) -> Iterator[KafkaRef]:
    ref = start_kafka(**kwargs)
    try:
        yield ref
    finally:
        ref.stop()


# ---------------------------------------------------------------------------------------------
# Kafka's perf tools (against any bootstrap address)
# ---------------------------------------------------------------------------------------------


@dataclass
class ProducerPerf:
    records: int
    records_per_s: float
    mb_per_s: float
    avg_ms: float
    max_ms: float
    p50_ms: int
    p95_ms: int
    p99_ms: int
    p999_ms: int


@dataclass
class ConsumerPerf:
    records: int
    mb: float
    mb_per_s: float  # over the whole run, group join included
    records_per_s: float
    rebalance_ms: int
    fetch_mb_per_s: float  # over the fetching only
    fetch_records_per_s: float


def _run_tool(main: str, args: Sequence[str], *, heap: str, timeout: float) -> str:
    """Run a tool JVM to completion; its output (the figures on stdout, then its warnings)."""
    with tempfile.TemporaryDirectory(prefix="kafka-tool-") as tmp:
        log4j = Path(tmp) / "log4j2.properties"
        log4j.write_text(_LOG4J2.format(log="/dev/null", level="WARN", appender="err"))
        cmd = [*_jvm(heap, log4j), "-cp", classpath(), main, *args]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=tmp
            )
        except subprocess.TimeoutExpired as e:
            raise KafkaRefError(f"{main.rsplit('.', 1)[-1]} timed out after {timeout:.0f}s") from e
    if proc.returncode != 0:
        raise KafkaRefError(
            f"{main.rsplit('.', 1)[-1]} exited with {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return proc.stdout + proc.stderr


def parse_producer_perf(text: str) -> ProducerPerf:
    found = list(PRODUCER_SUMMARY.finditer(text))
    if not found:
        raise KafkaRefError(f"no ProducerPerformance summary in:\n{text[-2000:]}")
    m = found[-1]  # the last line is the whole run; earlier ones are 5 s windows
    return ProducerPerf(
        int(m["n"]),
        float(m["rps"]),
        float(m["mbps"]),
        float(m["avg"]),
        float(m["max"]),
        int(m["p50"]),
        int(m["p95"]),
        int(m["p99"]),
        int(m["p999"]),
    )


def parse_consumer_perf(text: str) -> ConsumerPerf:
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) == len(CONSUMER_COLUMNS) and cells[0] != "start.time":
            row = dict(zip(CONSUMER_COLUMNS, cells, strict=True))
            return ConsumerPerf(
                int(row["data.consumed.in.nMsg"]),
                float(row["data.consumed.in.MB"]),
                float(row["MB.sec"]),
                float(row["nMsg.sec"]),
                int(row["rebalance.time.ms"]),
                float(row["fetch.MB.sec"]),
                float(row["fetch.nMsg.sec"]),
            )
    raise KafkaRefError(f"no ConsumerPerformance figures in:\n{text[-2000:]}")


def run_producer_perf(
    bootstrap: str,
    topic: str,
    records: int,
    *,
    record_size: int = 1024,
    throughput: int = -1,
    props: Sequence[str] = ("acks=1", "linger.ms=5", "batch.size=131072"),
    heap: str = "256m",
    timeout: float = 300.0,
) -> ProducerPerf:
    """ProducerPerformance as in the reference (§6.1): ``throughput`` -1 = as fast as it goes."""
    args = ["--topic", topic, "--num-records", str(records), "--record-size", str(record_size)]
    args += ["--throughput", str(throughput), "--producer-props", f"bootstrap.servers={bootstrap}", *props]
    return parse_producer_perf(_run_tool(PRODUCER_PERF, args, heap=heap, timeout=timeout))


def run_consumer_perf(
    bootstrap: str, topic: str, records: int, *, heap: str = "256m", timeout: float = 300.0
) -> ConsumerPerf:
    """ConsumerPerformance: a fresh group reads ``records`` from the start of ``topic``."""
    args = ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records)]
    args += ["--group", f"perf-consumer-{os.getpid()}-{time.monotonic_ns()}", "--timeout", "60000"]
    out = _run_tool(CONSUMER_PERF, args, heap=heap, timeout=timeout)
    result = parse_consumer_perf(out)
    if result.records < records:
        raise KafkaRefError(f"ConsumerPerformance read {result.records} of {records} records:\n{out[-2000:]}")
    return result


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", help="run the tools against this server instead of starting Kafka")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--heap", default="512m")
    parser.add_argument("--keep-home", action="store_true", help="keep Kafka's temp dir (logs, data)")
    args = parser.parse_args(argv)
    ref: KafkaRef | None = None
    try:
        if args.bootstrap:
            bootstrap = args.bootstrap
        else:
            started = time.monotonic()
            ref = start_kafka(heap=args.heap, keep_home=args.keep_home)
            bootstrap = ref.bootstrap
            print(f"Apache Kafka {ref.version} up in {time.monotonic() - started:.1f}s at {bootstrap}")
            print(f"  home {ref.home}", flush=True)
        print(run_producer_perf(bootstrap, "perf", args.records), flush=True)
        print(run_consumer_perf(bootstrap, "perf", args.records), flush=True)
    except KafkaRefError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        if ref is not None:
            ref.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
