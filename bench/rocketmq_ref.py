"""Apache RocketMQ, run from Maven Central jars, as the reference for ferrymq.

* ``start_rocketmq()`` starts a real name server and one master broker (DefaultCluster/broker-a) on
  free loopback ports, with a temporary ROCKETMQ_HOME, store and logs, and waits until both are up.
* ``run_benchmark_producer()`` / ``run_benchmark_consumer()`` run the official benchmark tools
  (``org.apache.rocketmq.example.benchmark.Producer`` / ``Consumer`` from ``rocketmq-example``)
  against any name server (Apache RocketMQ or ``ferrymq serve``) for a fixed time and parse their
  periodic "Send TPS | Max RT | Average RT" / "Consume TPS | AVG(B2C) RT ..." lines.

The jars are resolved by bench/java (two Maven modules: server/ and tools/). Never part of
``make test``. From the repository root::

    .venv/bin/python bench/rocketmq_ref.py                    # start RocketMQ, 20 s producer + consumer
    .venv/bin/python bench/rocketmq_ref.py --compat           # also run the Java compat scenarios
    .venv/bin/python bench/rocketmq_ref.py --namesrv 127.0.0.1:9876   # benchmark a running server
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_JAVA = REPO_ROOT / "bench" / "java"
SERVER_CP_FILE = BENCH_JAVA / "server" / "target" / "classpath.txt"
TOOLS_CP_FILE = BENCH_JAVA / "tools" / "target" / "classpath.txt"
MVN_ARGS = [
    "-q",
    "-B",
    "-f",
    str(BENCH_JAVA / "pom.xml"),
    "dependency:build-classpath",
    "-Dmdep.outputFile=target/classpath.txt",
]

HOST = "127.0.0.1"
CLUSTER = "DefaultCluster"
BROKER_NAME = "broker-a"
NAMESRV_MAIN = "org.apache.rocketmq.namesrv.NamesrvStartup"
BROKER_MAIN = "org.apache.rocketmq.broker.BrokerStartup"
PRODUCER_MAIN = "org.apache.rocketmq.example.benchmark.Producer"
CONSUMER_MAIN = "org.apache.rocketmq.example.benchmark.Consumer"
NAMESRV_READY = "The Name Server boot success"
BROKER_READY = "boot success"

# 5.5.0: "Current Time: ... | Send TPS: 1234 | Max RT(ms): 56 | Average RT(ms):   1.234 | Send Failed: 0 |
# Response Failed: 0"; 4.x prints the same figures without the bars.
PRODUCER_LINE = re.compile(
    r"Send TPS:\s*(?P<tps>\d+)\s*\|?\s*Max RT\(ms\):\s*(?P<max>\d+)\s*\|?\s*"
    r"Average RT\(ms\):\s*(?P<avg>[\d.]+)"
    r"\s*\|?\s*Send Failed:\s*(?P<sfail>\d+)\s*\|?\s*Response Failed:\s*(?P<rfail>\d+)"
)
CONSUMER_LINE = re.compile(
    r"Consume TPS:\s*(?P<tps>\d+)\s*\|?\s*AVG\(B2C\) RT\(ms\):\s*(?P<b2c>[\d.]+)\s*\|?\s*"
    r"AVG\(S2C\) RT\(ms\):\s*(?P<s2c>[\d.]+)\s*\|?\s*MAX\(B2C\) RT\(ms\):\s*(?P<mb2c>\d+)\s*\|?\s*"
    r"MAX\(S2C\) RT\(ms\):\s*(?P<ms2c>\d+)(?:\s*\|?\s*Consume Fail:\s*(?P<fail>\d+))?"
)


class RocketMQRefError(RuntimeError):
    """The reference stack could not be built or started; the message has the log tail."""


# ---------------------------------------------------------------------------------------------
# Tools and classpaths
# ---------------------------------------------------------------------------------------------


def find_java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RocketMQRefError("java not found (install a JDK 17+)")
    return java


def build_classpaths(*, force: bool = False, timeout: float = 900.0) -> tuple[str, str]:
    """(server classpath, benchmark tools classpath), resolving bench/java with Maven if needed."""
    if force or not SERVER_CP_FILE.exists() or not TOOLS_CP_FILE.exists():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RocketMQRefError("mvn not found (install Maven 3)")
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
            raise RocketMQRefError(f"mvn -f bench/java/pom.xml timed out after {timeout:.0f}s") from e
        if proc.returncode != 0 or not SERVER_CP_FILE.exists() or not TOOLS_CP_FILE.exists():
            raise RocketMQRefError(
                f"mvn -f bench/java/pom.xml failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
    return SERVER_CP_FILE.read_text().strip(), TOOLS_CP_FILE.read_text().strip()


# ---------------------------------------------------------------------------------------------
# Ports and processes
# ---------------------------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    """Free on the loopback address and on the wildcard (the broker's HA port binds 0.0.0.0)."""
    for host in (HOST, "0.0.0.0"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def free_broker_port(attempts: int = 200) -> int:
    """A port Q with Q-2 (the broker's fast/VIP port), Q and Q+1 (HA) all free."""
    for _ in range(attempts):
        q = free_port()
        if q > 1026 and q < 65534 and all(_port_free(p) for p in (q - 2, q, q + 1)):
            return q
    raise RocketMQRefError("no free port triple for the broker")


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return True
        time.sleep(0.2)
    return False


def _stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (the JVM's shutdown hooks run), then SIGKILL; the process leads its own group."""
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
    """The last lines of a process's output, without logback's start-up status chatter."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    kept = [line for line in text.splitlines() if "|-INFO in" not in line and "|-WARN in" not in line]
    return "\n".join(kept[-lines:])


@dataclass
class RocketMQRef:
    """A running Apache RocketMQ name server + broker; stop() (or the with block) ends both."""

    home: Path
    namesrv_port: int
    broker_port: int
    owns_home: bool
    namesrv: subprocess.Popen[bytes] | None = None
    broker: subprocess.Popen[bytes] | None = None
    keep_home: bool = False

    @property
    def namesrv_addr(self) -> str:
        return f"{HOST}:{self.namesrv_port}"

    @property
    def broker_addr(self) -> str:
        return f"{HOST}:{self.broker_port}"

    @property
    def namesrv_log(self) -> Path:
        return self.home / "namesrv.out"

    @property
    def broker_log(self) -> Path:
        return self.home / "broker.out"

    def stop(self, timeout: float = 30.0) -> None:
        for proc in (self.broker, self.namesrv):
            if proc is not None:
                _stop_process(proc, timeout)
        self.broker = self.namesrv = None
        if self.owns_home and not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> RocketMQRef:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _jvm_base(home: Path, heap: str) -> list[str]:
    return [
        find_java(),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxDirectMemorySize=256m",
        "-XX:-OmitStackTraceInFastThrow",
        f"-Duser.home={home / 'userhome'}",  # logs go to ~/logs/rocketmqlogs, kv config to ~/namesrv
        f"-Drocketmq.log.root={home / 'logs'}",
        "-Drocketmq.home.dir=" + str(home),
        "-Dlogback.statusListenerClass=ch.qos.logback.core.status.NopStatusListener",
    ]


def _spawn(cmd: list[str], log: Path, home: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, ROCKETMQ_HOME=str(home))
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=home,
            env=env,
            start_new_session=True,
        )


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, marker: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError):
            if marker in log.read_text(errors="replace"):
                return _wait_port(port, max(1.0, deadline - time.monotonic()))
        time.sleep(0.25)
    return False


def broker_conf(
    home: Path, namesrv_port: int, broker_port: int, extra: Mapping[str, object] | None = None
) -> str:
    store = home / "store"
    conf: dict[str, object] = {
        "brokerClusterName": CLUSTER,
        "brokerName": BROKER_NAME,
        "brokerId": 0,
        "brokerRole": "ASYNC_MASTER",
        "flushDiskType": "ASYNC_FLUSH",
        "brokerIP1": HOST,
        "brokerIP2": HOST,  # the HA address slaves are told (default: the host's own address)
        "bindAddress": HOST,
        "listenPort": broker_port,
        "haListenPort": broker_port + 1,
        "namesrvAddr": f"{HOST}:{namesrv_port}",
        "autoCreateTopicEnable": "true",
        "autoCreateSubscriptionGroup": "true",
        "storePathRootDir": store,
        "storePathCommitLog": store / "commitlog",
        # Smaller mapped files than the 1 GiB default: kinder to a shared machine's disk and memory.
        "mappedFileSizeCommitLog": 128 * 1024 * 1024,
        "deleteWhen": "04",
        "fileReservedTime": 1,
        "diskMaxUsedSpaceRatio": 95,
    }
    conf.update(extra or {})
    return "".join(f"{k}={v}\n" for k, v in conf.items())


def start_rocketmq(
    home: Path | None = None,
    *,
    namesrv_port: int | None = None,
    broker_port: int | None = None,
    namesrv_heap: str = "256m",
    broker_heap: str = "512m",
    extra_broker_conf: Mapping[str, object] | None = None,
    timeout: float = 120.0,
    keep_home: bool = False,
) -> RocketMQRef:
    """Start an Apache RocketMQ name server and master broker on loopback and wait until both serve.

    ``home`` (default: a new temp dir, removed by stop() unless keep_home) holds ROCKETMQ_HOME, the
    store, the configs, the logs and the processes' stdout (namesrv.out, broker.out).
    """
    server_cp, _ = build_classpaths()
    owns_home = home is None
    home = Path(tempfile.mkdtemp(prefix="rocketmq-ref-")) if home is None else Path(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / "userhome").mkdir(exist_ok=True)
    namesrv_port = namesrv_port or free_port()
    broker_port = broker_port or free_broker_port()
    ref = RocketMQRef(home, namesrv_port, broker_port, owns_home, keep_home=keep_home)
    try:
        (home / "namesrv.conf").write_text(f"listenPort={namesrv_port}\nbindAddress={HOST}\n")
        (home / "broker.conf").write_text(broker_conf(home, namesrv_port, broker_port, extra_broker_conf))
        ref.namesrv = _spawn(
            [
                *_jvm_base(home, namesrv_heap),
                "-cp",
                server_cp,
                NAMESRV_MAIN,
                "-c",
                str(home / "namesrv.conf"),
            ],
            ref.namesrv_log,
            home,
        )
        if not _wait_ready(ref.namesrv, ref.namesrv_log, NAMESRV_READY, namesrv_port, timeout):
            raise RocketMQRefError(f"name server did not start; output:\n{_tail(ref.namesrv_log)}")
        ref.broker = _spawn(
            [
                *_jvm_base(home, broker_heap),
                "-cp",
                server_cp,
                BROKER_MAIN,
                "-c",
                str(home / "broker.conf"),
                "-n",
                ref.namesrv_addr,
            ],
            ref.broker_log,
            home,
        )
        if not _wait_ready(ref.broker, ref.broker_log, BROKER_READY, broker_port, timeout):
            raise RocketMQRefError(f"broker did not start; output:\n{_tail(ref.broker_log)}")
    except BaseException:
        keep = ref.keep_home
        ref.keep_home = True  # keep the logs of a failed start for the error message's reader
        ref.stop()
        ref.keep_home = keep
        raise
    return ref


@dataclass
class ApacheBroker:
    """One Apache RocketMQ broker process (e.g. a slave of a ferrymq master); ``stop()`` ends it."""

    home: Path
    port: int
    proc: subprocess.Popen[bytes] | None

    @property
    def addr(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / "broker.out"

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop_process(proc, timeout)

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_apache_broker(
    home: Path,
    namesrv_addr: str,
    conf: Mapping[str, object],
    *,
    heap: str = "512m",
    timeout: float = 120.0,
) -> ApacheBroker:
    """Start an Apache RocketMQ broker registering with ``namesrv_addr`` (any name server, ferrymq's
    included), with ``conf`` over broker_conf's defaults (say brokerRole=SLAVE, brokerId=1), on a
    free port unless ``conf`` names listenPort; waits until it serves."""
    server_cp, _ = build_classpaths()
    home.mkdir(parents=True, exist_ok=True)
    (home / "userhome").mkdir(exist_ok=True)
    port = int(str(conf.get("listenPort", 0))) or free_broker_port()
    text = broker_conf(home, 0, port, {**conf, "listenPort": port, "namesrvAddr": namesrv_addr})
    (home / "broker.conf").write_text(text)
    broker = ApacheBroker(home, port, None)
    cmd = [*_jvm_base(home, heap), "-cp", server_cp, BROKER_MAIN, "-c", str(home / "broker.conf")]
    broker.proc = _spawn([*cmd, "-n", namesrv_addr], broker.log, home)
    if not _wait_ready(broker.proc, broker.log, BROKER_READY, port, timeout):
        broker.kill()
        raise RocketMQRefError(f"Apache broker did not start; output:\n{_tail(broker.log)}")
    return broker


@contextlib.contextmanager
def rocketmq(**kwargs: Any) -> Iterator[RocketMQRef]:
    ref = start_rocketmq(**kwargs)
    try:
        yield ref
    finally:
        ref.stop()


# ---------------------------------------------------------------------------------------------
# The official benchmark tools
# ---------------------------------------------------------------------------------------------


@dataclass
class ProducerSample:
    tps: int
    max_rt_ms: int
    avg_rt_ms: float
    send_failed: int
    response_failed: int


@dataclass
class ProducerResult:
    duration_s: float
    threads: int
    message_size: int
    samples: list[ProducerSample] = field(default_factory=list)
    output_tail: str = ""

    # benchmark.Producer snapshots its counters every second and keeps the last ten, so each printed
    # TPS / Average RT is the mean over (up to) the preceding ten seconds; Max RT is the maximum
    # since start. The last sample is therefore the steady-state figure of a run of 12 s or more.

    @property
    def tps(self) -> float:
        """Send TPS of the last report (mean over the last ~10 s)."""
        return float(self.samples[-1].tps) if self.samples else 0.0

    @property
    def avg_rt_ms(self) -> float:
        """Average RT of the last report (mean over the last ~10 s)."""
        return self.samples[-1].avg_rt_ms if self.samples else 0.0

    @property
    def mean_tps(self) -> float:
        """Mean of all reports, warm-up included."""
        return sum(x.tps for x in self.samples) / len(self.samples) if self.samples else 0.0

    @property
    def max_rt_ms(self) -> int:
        return max((x.max_rt_ms for x in self.samples), default=0)

    @property
    def failed(self) -> int:
        last = self.samples[-1] if self.samples else None
        return last.send_failed + last.response_failed if last else 0

    def figures(self) -> dict[str, Any]:
        return {
            "tps": round(self.tps, 1),
            "avg_rt_ms": round(self.avg_rt_ms, 3),
            "max_rt_ms": self.max_rt_ms,
            "mean_tps_all_reports": round(self.mean_tps, 1),
            "failed": self.failed,
            "samples": len(self.samples),
            "threads": self.threads,
            "message_size": self.message_size,
            "duration_s": self.duration_s,
        }


@dataclass
class ConsumerSample:
    tps: int
    avg_b2c_ms: float
    avg_s2c_ms: float
    max_b2c_ms: int
    max_s2c_ms: int
    failed: int


@dataclass
class ConsumerResult:
    duration_s: float
    samples: list[ConsumerSample] = field(default_factory=list)
    output_tail: str = ""

    def busy(self) -> list[ConsumerSample]:
        """Reports with traffic (the consumer idles before the producer starts and after it stops)."""
        return [s for s in self.samples if s.tps > 0]

    @property
    def tps(self) -> float:
        """Mean Consume TPS over the reports with traffic (each a mean over its last ~10 s)."""
        s = self.busy()
        return sum(x.tps for x in s) / len(s) if s else 0.0

    @property
    def peak_tps(self) -> int:
        return max((x.tps for x in self.samples), default=0)

    @property
    def avg_s2c_ms(self) -> float:
        s = self.busy()
        return sum(x.avg_s2c_ms for x in s) / len(s) if s else 0.0

    @property
    def avg_b2c_ms(self) -> float:
        s = self.busy()
        return sum(x.avg_b2c_ms for x in s) / len(s) if s else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "tps": round(self.tps, 1),
            "peak_tps": self.peak_tps,
            "avg_b2c_ms": round(self.avg_b2c_ms, 3),
            "avg_s2c_ms": round(self.avg_s2c_ms, 3),
            "max_b2c_ms": max((x.max_b2c_ms for x in self.samples), default=0),
            "max_s2c_ms": max((x.max_s2c_ms for x in self.samples), default=0),
            "failed": max((x.failed for x in self.samples), default=0),
            "samples": len(self.samples),
            "busy_samples": len(self.busy()),
            "duration_s": self.duration_s,
        }


def parse_producer_output(text: str) -> list[ProducerSample]:
    return [
        ProducerSample(int(m["tps"]), int(m["max"]), float(m["avg"]), int(m["sfail"]), int(m["rfail"]))
        for m in PRODUCER_LINE.finditer(text)
    ]


def parse_consumer_output(text: str) -> list[ConsumerSample]:
    return [
        ConsumerSample(
            int(m["tps"]),
            float(m["b2c"]),
            float(m["s2c"]),
            int(m["mb2c"]),
            int(m["ms2c"]),
            int(m["fail"] or 0),
        )
        for m in CONSUMER_LINE.finditer(text)
    ]


class _Tool:
    """A benchmark JVM whose output is collected by a thread; runs until stop()."""

    def __init__(self, cmd: list[str], home: Path, echo: TextIO | None) -> None:
        self.lines: list[str] = []
        self.echo = echo
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=home,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if self.echo is not None and ("TPS" in line or "Exception" in line):
                print(line, file=self.echo, flush=True)

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(text in line for line in list(self.lines)):
                return True
            time.sleep(0.1)
        return any(text in line for line in list(self.lines))

    def stop(self, timeout: float = 15.0) -> str:
        _stop_process(self.proc, timeout)
        self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return "\n".join(self.lines)


def _tool_command(home: Path, heap: str, main: str, args: Sequence[str]) -> list[str]:
    _, tools_cp = build_classpaths()
    (home / "userhome").mkdir(parents=True, exist_ok=True)
    return [
        find_java(),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        f"-Duser.home={home / 'userhome'}",
        f"-Drocketmq.log.root={home / 'logs'}",
        # As distribution/benchmark/producer.sh does.
        "-Dorg.apache.rocketmq.client.sendSmartMsg=true",
        "-cp",
        tools_cp,
        main,
        *args,
    ]


def create_topic(
    namesrv_addr: str, topic: str, *, home: Path, heap: str = "256m", timeout: float = 120.0
) -> None:
    """Auto-create TOPIC (via TBW102) by sending one message with benchmark.Producer -q 1."""
    cmd = _tool_command(home, heap, PRODUCER_MAIN, ["-n", namesrv_addr, "-t", topic, "-w", "1", "-q", "1"])
    try:
        proc = subprocess.run(
            cmd, cwd=home, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:
        raise RocketMQRefError(f"creating topic {topic}: benchmark.Producer -q 1 timed out") from e
    if proc.returncode != 0 or "Send Failed: 0" not in proc.stdout:
        raise RocketMQRefError(
            f"creating topic {topic} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )


def _producer_args(
    namesrv_addr: str, topic: str, threads: int, size: int, report_interval_ms: int, extra: Sequence[str]
) -> list[str]:
    return [
        "-n",
        namesrv_addr,
        "-t",
        topic,
        "-w",
        str(threads),
        "-s",
        str(size),
        "-ri",
        str(report_interval_ms),
        *extra,
    ]


def run_benchmark(
    namesrv_addr: str,
    *,
    duration_s: float = 20.0,
    threads: int = 4,
    size: int = 128,
    topic: str = "BenchmarkTest",
    group: str = "benchmark_consumer",
    consumer: bool = True,
    consumer_threads: int = 4,
    report_interval_ms: int = 2000,
    producer_args: Sequence[str] = (),
    heap: str = "256m",
    home: Path | None = None,
    echo: TextIO | None = None,
) -> tuple[ProducerResult, ConsumerResult | None]:
    """Run benchmark.Producer (and benchmark.Consumer alongside) for ``duration_s``; parse their figures.

    The topic is created first (one message), then the consumer starts (it consumes from the last
    offset), then the producer runs for ``duration_s``; the consumer gets two report intervals to drain.
    """
    own = home is None
    work = Path(tempfile.mkdtemp(prefix="rocketmq-bench-")) if home is None else Path(home)
    tools: list[_Tool] = []
    try:
        cons_tool: _Tool | None = None
        if consumer:
            # A push consumer started before its topic exists only sees it at the next route poll
            # (30 s), so the topic is created first, by the benchmark Producer sending one message.
            create_topic(namesrv_addr, topic, home=work, heap=heap)
            cons_args = ["-n", namesrv_addr, "-t", topic, "-g", group, "-w", str(consumer_threads)]
            cons_args += ["-ri", str(report_interval_ms)]
            cons_tool = _Tool(_tool_command(work, heap, CONSUMER_MAIN, cons_args), work, echo)
            tools.append(cons_tool)
            cons_tool.wait_for("Consumer Started", 60.0)
            time.sleep(2.0)  # first rebalance
        prod_args = _producer_args(namesrv_addr, topic, threads, size, report_interval_ms, producer_args)
        prod_tool = _Tool(_tool_command(work, heap, PRODUCER_MAIN, prod_args), work, echo)
        tools.append(prod_tool)
        end = time.monotonic() + duration_s
        while time.monotonic() < end and prod_tool.proc.poll() is None:
            time.sleep(0.2)
        prod_out = prod_tool.stop()
        producer_result = ProducerResult(
            duration_s, threads, size, parse_producer_output(prod_out), prod_out[-3000:]
        )
        consumer_result: ConsumerResult | None = None
        if cons_tool is not None:
            time.sleep(2 * report_interval_ms / 1000 + 0.5)
            cons_out = cons_tool.stop()
            consumer_result = ConsumerResult(duration_s, parse_consumer_output(cons_out), cons_out[-3000:])
        return producer_result, consumer_result
    finally:
        for tool in tools:
            tool.stop()
        if own:
            shutil.rmtree(work, ignore_errors=True)


def run_benchmark_producer(namesrv_addr: str, **kwargs: Any) -> ProducerResult:
    """benchmark.Producer alone for a fixed duration (see run_benchmark for the options)."""
    producer_result, _ = run_benchmark(namesrv_addr, consumer=False, **kwargs)
    return producer_result


# ---------------------------------------------------------------------------------------------
# The Java compat scenarios against a name server (normally real Apache RocketMQ)
# ---------------------------------------------------------------------------------------------


def run_compat_scenarios(namesrv_addr: str, *, echo: TextIO = sys.stdout) -> dict[str, str]:
    """Run every compat-tests/java scenario with the shared checks; returns {scenario: "ok" | error}."""
    sys.path.insert(0, str(REPO_ROOT / "compat-tests"))
    try:
        import java_support as js
    finally:
        sys.path.pop(0)

    js.build()
    outcome: dict[str, str] = {}

    def scenario(name: str, fn: Any) -> None:
        started = time.monotonic()
        try:
            fn()
            outcome[name] = "ok"
        except (AssertionError, js.JavaScenarioError, RuntimeError) as e:
            outcome[name] = f"FAILED: {e}"
        print(
            f"  {name:<28} {outcome[name][:300]}  ({time.monotonic() - started:.1f}s)", file=echo, flush=True
        )

    for name, run in js.SCENARIOS.items():
        scenario(name, lambda run=run: run(namesrv_addr))
    return outcome


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--namesrv", help="benchmark this running name server instead of starting RocketMQ")
    parser.add_argument("--duration", type=float, default=20.0, help="producer run time in seconds (20)")
    parser.add_argument("--threads", type=int, default=4, help="producer threads, -w (4)")
    parser.add_argument("--size", type=int, default=128, help="message size in bytes, -s (128)")
    parser.add_argument("--topic", default="BenchmarkTest")
    parser.add_argument("--report-interval-ms", type=int, default=2000)
    parser.add_argument("--no-consumer", action="store_true", help="do not run benchmark.Consumer alongside")
    parser.add_argument("--no-bench", action="store_true", help="skip the benchmark (with --compat)")
    parser.add_argument("--compat", action="store_true", help="run the Java compat scenarios first")
    parser.add_argument("--broker-heap", default="512m")
    parser.add_argument("--keep-home", action="store_true", help="keep RocketMQ's temp dir (logs, store)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line at the end")
    args = parser.parse_args(argv)

    report: dict[str, Any] = {}
    ref: RocketMQRef | None = None
    try:
        build_classpaths()
        if args.namesrv:
            namesrv = args.namesrv
            report["target"] = namesrv
        else:
            started = time.monotonic()
            ref = start_rocketmq(broker_heap=args.broker_heap, keep_home=args.keep_home)
            namesrv = ref.namesrv_addr
            report["target"] = (
                f"Apache RocketMQ (jars) namesrv {namesrv} broker {ref.broker_addr} home {ref.home}"
            )
            print(f"Apache RocketMQ up in {time.monotonic() - started:.1f}s: {report['target']}", flush=True)
        if args.compat:
            print("Java compat scenarios:", flush=True)
            report["compat"] = run_compat_scenarios(namesrv)
        if not args.no_bench:
            print(
                f"benchmark.Producer -w {args.threads} -s {args.size} for {args.duration:.0f}s"
                + ("" if args.no_consumer else " with benchmark.Consumer"),
                flush=True,
            )
            prod, cons = run_benchmark(
                namesrv,
                duration_s=args.duration,
                threads=args.threads,
                size=args.size,
                topic=args.topic,
                consumer=not args.no_consumer,
                report_interval_ms=args.report_interval_ms,
                echo=sys.stdout,
            )
            report["producer"] = prod.figures()
            report["producer_samples"] = [asdict(s) for s in prod.samples]
            print(
                f"PRODUCER tps={prod.tps:.1f} avg_rt_ms={prod.avg_rt_ms:.3f} max_rt_ms={prod.max_rt_ms} "
                f"(last report, ~10 s window) mean_tps_all_reports={prod.mean_tps:.1f} failed={prod.failed} "
                f"samples={len(prod.samples)}",
                flush=True,
            )
            if not prod.samples:
                print("no producer figures parsed; output tail:\n" + prod.output_tail, file=sys.stderr)
            if cons is not None:
                report["consumer"] = cons.figures()
                f = cons.figures()
                print(
                    f"CONSUMER tps={f['tps']} peak_tps={f['peak_tps']} avg_b2c_ms={f['avg_b2c_ms']} "
                    f"avg_s2c_ms={f['avg_s2c_ms']} max_b2c_ms={f['max_b2c_ms']} failed={f['failed']} "
                    f"samples={f['samples']}",
                    flush=True,
                )
    finally:
        if ref is not None:
            ref.stop()
    if args.json:
        print(json.dumps(report, sort_keys=True))
    failed = [k for k, v in report.get("compat", {}).items() if v != "ok"]
    no_figures = not args.no_bench and not report.get("producer", {}).get("samples")
    return 1 if failed or no_figures else 0


if __name__ == "__main__":
    sys.exit(main())
