"""The ``grpc`` bench section: send and receive TPS of the RocketMQ 5.x Java client (rocketmq-client-java
5.0.8, ``bench/grpc-java``: sync sends from N threads for a fixed time, then a SimpleConsumer receiving
and acking all of them) against ferrymq's gRPC listener and against Apache RocketMQ's proxy in local
mode (``rocketmq-proxy`` 5.3.3 from Maven Central, ``bench/java/proxy``: ProxyStartup with
``{"proxyMode": "local"}`` runs the broker inside the proxy's JVM, beside a name server), in the same
run on the same machine. Figures are printed, never asserted. From the repository root::

    .venv/bin/python -m bench --only grpc --seconds 10
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench import rocketmq_ref as ref
from ferrymq.cli.testing import FerryServer
from tests.cluster_helpers import create_topic, eventually, routed

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENT_MODULE = REPO_ROOT / "bench" / "grpc-java"
CLIENT_CP = CLIENT_MODULE / "target" / "classpath.txt"
PROXY_POM = REPO_ROOT / "bench" / "java" / "proxy" / "pom.xml"
PROXY_CP = PROXY_POM.parent / "target" / "classpath.txt"
PROXY_MAIN = "org.apache.rocketmq.proxy.ProxyStartup"
PROXY_READY = "rocketmq-proxy startup successfully"
QUEUES = 8


def _mvn(pom: Path, *goals: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ref.RocketMQRefError("mvn not found (install Maven 3)")
    cmd = [mvn, "-q", "-B", "-f", str(pom), *goals, "-Dmdep.outputFile=target/classpath.txt"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise ref.RocketMQRefError(f"mvn -f {pom} failed:\n{proc.stdout[-4000:]}")


def client_classpath() -> str:
    """The bench client's classpath, built first unless its classes are newer than its sources."""
    sources = [CLIENT_MODULE / "pom.xml", *CLIENT_MODULE.joinpath("src").rglob("*.java")]
    classes = list((CLIENT_MODULE / "target" / "classes").rglob("*.class"))
    if (
        not CLIENT_CP.exists()
        or not classes
        or max(p.stat().st_mtime for p in sources) > min(p.stat().st_mtime for p in classes)
    ):
        _mvn(CLIENT_MODULE / "pom.xml", "-DskipTests", "package", "dependency:build-classpath")
    return f"{CLIENT_MODULE / 'target' / 'classes'}{os.pathsep}{CLIENT_CP.read_text().strip()}"


def run_client(endpoint: str, topic: str, seconds: float, threads: int, size: int) -> dict[str, float]:
    """One GrpcBench JVM against ``endpoint``: its RESULT figures."""
    cmd = [
        ref.find_java(),
        "-Xms256m",
        "-Xmx512m",
        "-cp",
        client_classpath(),
        "io.ferrymq.bench.GrpcBench",
        endpoint,
        topic,
        f"{topic}-group",
        str(seconds),
        str(threads),
        str(size),
    ]
    with tempfile.TemporaryDirectory() as home:  # the client's logs go to ~/logs
        proc = subprocess.run(
            [cmd[0], f"-Duser.home={home}", *cmd[1:]],
            capture_output=True,
            text=True,
            timeout=seconds * 3 + 180,
            stdin=subprocess.DEVNULL,
        )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise ref.RocketMQRefError(f"GrpcBench printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


@contextlib.contextmanager
def apache_proxy(timeout: float = 180.0) -> Iterator[tuple[str, str, str]]:
    """A name server and ``ProxyStartup -pm local`` (a broker in the proxy's JVM) on free loopback
    ports: yields (gRPC endpoint, broker address, name server address)."""
    if not PROXY_CP.exists():
        _mvn(PROXY_POM, "dependency:build-classpath")
    cp = PROXY_CP.read_text().strip()
    home = Path(tempfile.mkdtemp(prefix="rocketmq-proxy-"))
    (home / "userhome").mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        namesrv_port, broker_port = ref.free_port(), ref.free_broker_port()
        grpc_port, remoting_port = ref.free_port(), ref.free_port()
        namesrv = f"{ref.HOST}:{namesrv_port}"
        (home / "namesrv.conf").write_text(f"listenPort={namesrv_port}\nbindAddress={ref.HOST}\n")
        (home / "broker.conf").write_text(ref.broker_conf(home, namesrv_port, broker_port))
        proxy_conf = {
            "proxyMode": "local",
            "rocketMQClusterName": ref.CLUSTER,
            "namesrvAddr": namesrv,
            "grpcServerPort": grpc_port,
            "remotingListenPort": remoting_port,
        }
        (home / "rmq-proxy.json").write_text(json.dumps(proxy_conf))
        base = [*ref._jvm_base(home, "1g"), "-cp", cp]
        log = home / "namesrv.out"
        procs.append(ref._spawn([*base, ref.NAMESRV_MAIN, "-c", str(home / "namesrv.conf")], log, home))
        if not ref._wait_ready(procs[0], log, ref.NAMESRV_READY, namesrv_port, timeout):
            raise ref.RocketMQRefError(f"name server did not start:\n{ref._tail(log)}")
        log = home / "proxy.out"
        args = ["-pc", str(home / "rmq-proxy.json"), "-bc", str(home / "broker.conf"), "-pm", "local"]
        procs.append(ref._spawn([*base, PROXY_MAIN, *args, "-n", namesrv], log, home))
        if not ref._wait_ready(procs[1], log, PROXY_READY, grpc_port, timeout):
            raise ref.RocketMQRefError(f"proxy did not start:\n{ref._tail(log)}")
        yield f"{ref.HOST}:{grpc_port}", f"{ref.HOST}:{broker_port}", namesrv
    finally:
        for proc in reversed(procs):
            ref._stop_process(proc, 30)
        shutil.rmtree(home, ignore_errors=True)


def _row(server: str, result: dict[str, float]) -> dict[str, object]:
    return {
        "server": server,
        "send TPS": result["sendTps"],
        "avg RT ms": result["avgRtMs"],
        "max RT ms": result["maxRtMs"],
        "failed": result["failed"],
        "received": f"{result['received']:.0f}/{result['sent']:.0f}",
        "receive TPS": result["receiveTps"],
    }


def run(seconds: float, threads: int, size: int) -> list[dict[str, object]]:
    """ferrymq first, then Apache's proxy; a fresh topic of QUEUES queues on each."""
    rows = []
    topic = f"GrpcBench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, FerryServer(Path(tmp), grpc=True) as server:
        create_topic(server.broker_addr, topic, QUEUES)
        rows.append(_row("ferrymq", run_client(server.grpc_endpoint, topic, seconds, threads, size)))
    try:
        with apache_proxy() as (endpoint, broker, namesrv):
            create_topic(broker, topic, QUEUES)
            eventually(lambda: routed(namesrv, topic) is not None, 30.0, "the topic's route")
            rows.append(_row("RocketMQ 5.3.3 proxy", run_client(endpoint, topic, seconds, threads, size)))
    except ref.RocketMQRefError as exc:
        print(f"  Apache RocketMQ's proxy could not be run: {exc}")
    return rows
