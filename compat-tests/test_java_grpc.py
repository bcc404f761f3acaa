"""The official RocketMQ 5.x Java client (rocketmq-client-java, gRPC, unmodified) against
``ferrymq serve`` through its gRPC listener, one JVM per side (compat-tests/grpc-java):

- ``GrpcProducerScenarios``: sync, async, FIFO, delay and transactions with a checker; what it sent
  is read back with ferrymq's LitePullConsumer over remoting.
- ``GrpcConsumerScenarios``: SimpleConsumer (receive, ack, change invisible duration, redelivery),
  PushConsumer with a listener (FAILURE redelivered), a FIFO group's PushConsumer (in order per
  message group, a failure redelivered before the rest of its group), and a transaction whose
  checker answers UNKNOWN first, then COMMIT.
- ``GrpcTelemetryScenario``: a PushConsumer kept up while the broker is asked for its thread stack
  (GET_CONSUMER_RUNNING_INFO with jstack) and to have it consume a message directly
  (CONSUME_MESSAGE_DIRECTLY); both reach the client as commands on its Telemetry stream.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import java_support as js
import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.client import Message, Producer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from tests.cluster_helpers import call, create_group, create_topic, eventually, read_topic

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

MODULE = js.REPO_ROOT / "compat-tests" / "grpc-java"
TARGET = MODULE / "target"
CLASSPATH_FILE = TARGET / "classpath.txt"
# `make java` runs exactly this (from the repository root)
MVN_ARGS = [
    "-q",
    "-B",
    "-f",
    "compat-tests/grpc-java/pom.xml",
    "-DskipTests",
    "package",
    "dependency:build-classpath",
    "-Dmdep.outputFile=target/classpath.txt",
]
# short invisible durations and polls: a PushConsumer's close waits for its long poll, whose limit
# the Telemetry settings answer with (grpcClientConsumerMaxLongPollingTimeoutMillis)
CONF = (
    "transactionTimeOut=500\ntransactionCheckInterval=200\nminInvisibleTimeMillsForRecv=1000\n"
    "grpcClientConsumerMinLongPollingTimeoutMillis=100\ngrpcClientConsumerMaxLongPollingTimeoutMillis=1000\n"
)


def _build() -> str:
    """The module's classpath, built first unless its classes are newer than its sources."""
    sources = [MODULE / "pom.xml", *MODULE.joinpath("src").rglob("*.java")]
    classes = list((TARGET / "classes").rglob("*.class")) if TARGET.is_dir() else []
    fresh = CLASSPATH_FILE.exists() and classes
    if not fresh or max(p.stat().st_mtime for p in sources) > min(p.stat().st_mtime for p in classes):
        mvn = js.find_mvn()
        assert mvn is not None
        proc = subprocess.run([mvn, *MVN_ARGS], cwd=js.REPO_ROOT, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"mvn build of compat-tests/grpc-java failed:\n{proc.stdout[-4000:]}"
    return f"{TARGET / 'classes'}{os.pathsep}{CLASSPATH_FILE.read_text().strip()}"


def _command(main_class: str, *args: str) -> list[str]:
    classpath = _build()
    java = js.find_java()
    assert java is not None
    return [java, *js.DEFAULT_JVM_ARGS, "-cp", classpath, f"io.ferrymq.grpc.{main_class}", *args]


def run_scenarios(main_class: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One JVM running ``io.ferrymq.grpc.<main_class>`` of this module with ``args``."""
    cmd = _command(main_class, *args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerryServer]:
    with FerryServer(Path(tmp_path_factory.mktemp("java-grpc")), CONF, grpc=True) as srv:
        yield srv


def test_java_5x_producer_scenarios(server: FerryServer) -> None:
    run = uuid.uuid4().hex[:8]
    topics = {name: f"Java5{name}-{run}" for name in ("Normal", "Fifo", "Delay", "Txn")}
    for topic in topics.values():
        create_topic(server.broker_addr, topic, 4 if "Normal" in topic or "Fifo" in topic else 1)
    proc = run_scenarios("GrpcProducerScenarios", server.grpc_endpoint, *topics.values())
    results = js.parse_results(proc.stdout)
    assert proc.returncode == 0 and results[-1:] == [{"type": "done"}], (
        proc.stdout[-3000:] + proc.stderr[-3000:]
    )
    assert not js.of_type(results, "error"), results
    sent = {r["body"]: r for r in js.of_type(results, "send")}
    assert len(sent) == 9 and all(r["msgId"] for r in sent.values())
    assert [r["body"] for r in js.of_type(results, "check")] == ["java-checked"]

    normal = {m.body: m for m in read_topic(server.namesrv_addr, topics["Normal"], 2)}
    assert set(normal) == {b"java-sync", b"java-async"}
    sync = normal[b"java-sync"]
    assert (sync.tags, sync.keys, sync.user_properties["color"]) == ("TagA", "k1", "red")
    assert sync.msg_id == sent["java-sync"]["msgId"]
    fifo = read_topic(server.namesrv_addr, topics["Fifo"], 3)
    assert [m.body for m in fifo] == [b"fifo-0", b"fifo-1", b"fifo-2"] and len(
        {m.queue_id for m in fifo}
    ) == 1
    assert [m.body for m in read_topic(server.namesrv_addr, topics["Delay"], 1)] == [b"java-later"]
    assert sorted(m.body for m in read_topic(server.namesrv_addr, topics["Txn"], 2)) == [
        b"java-checked",
        b"java-committed",
    ]


def test_java_5x_consumer_scenarios(server: FerryServer) -> None:
    run = uuid.uuid4().hex[:8]
    names = {
        k: f"Java5C{k}-{run}"
        for k in (
            "SimpleTopic",
            "SimpleGroup",
            "PushTopic",
            "PushGroup",
            "FifoTopic",
            "FifoGroup",
            "TxnTopic",
        )
    }
    for key in ("SimpleTopic", "PushTopic", "FifoTopic", "TxnTopic"):
        create_topic(server.broker_addr, names[key], 2)
    create_group(server.broker_addr, names["FifoGroup"], consumeMessageOrderly=True)
    proc = run_scenarios("GrpcConsumerScenarios", server.grpc_endpoint, *names.values())
    results = js.parse_results(proc.stdout)
    assert proc.returncode == 0 and results[-1:] == [{"type": "done"}], (
        proc.stdout[-3000:] + proc.stderr[-3000:]
    )
    assert not js.of_type(results, "error"), results
    recv = js.of_type(results, "recv")

    def got(scenario: str) -> list[tuple[str, int]]:
        return [(r["body"], r["attempt"]) for r in recv if r["scenario"] == scenario]

    simple = got("simple")
    assert ("simple-change", 1) in simple and ("simple-change", 2) in simple, simple
    assert [b for b, _ in simple].count("simple-ack") == 1 and ("txn-checked", 1) in simple, simple
    assert js.of_type(results, "acked") == [{"type": "acked", "body": "simple-change"}]
    # every push message once, the one that FAILED once more as delivery attempt 2
    assert sorted(got("push")) == [
        ("push-0", 1),
        ("push-1", 1),
        ("push-3", 1),
        ("push-fail", 1),
        ("push-fail", 2),
    ]
    fifo = got("fifo")
    for group in ("a", "b"):
        in_group = [item for item in fifo if item[0].startswith(f"fifo-{group}-")]
        want = [(f"fifo-{group}-{i}", 1) for i in range(3)]
        if group == "a":  # redelivered by the client before the rest of its message group
            want.insert(1, ("fifo-a-0", 2))
        assert in_group == want, fifo
    assert [r["resolution"] for r in js.of_type(results, "check")][:2] == ["UNKNOWN", "COMMIT"]


class Scenario:
    """A scenario JVM left running: its RESULT lines as they come; it ends when its stdin closes."""

    def __init__(self, main_class: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            _command(main_class, *args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, want: dict[str, str], timeout: float = 30) -> None:
        """Waits for the RESULT line ``want``, each line waited for at most ``timeout`` seconds."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {want} within {timeout}s: {self.seen[-40:]}") from None
            assert line is not None, f"the JVM ended before {want}: {self.seen[-40:]}"
            self.seen.append(line)
            if line.startswith(js.RESULT_PREFIX) and json.loads(line[len(js.RESULT_PREFIX) :]) == want:
                return

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def test_java_5x_push_consumer_answers_thread_stack_and_verify_commands(server: FerryServer) -> None:
    run = uuid.uuid4().hex[:8]
    topic, other, group = f"Java5T-{run}", f"Java5TOther-{run}", f"Java5TGroup-{run}"
    create_topic(server.broker_addr, topic, 1)
    create_topic(server.broker_addr, other, 1)
    jvm = Scenario("GrpcTelemetryScenario", server.grpc_endpoint, topic, group)
    try:
        jvm.expect({"type": "ready"})
        client_ids: list[str] = []

        def member() -> bool:
            r = call(server.broker_addr, RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": group})
            client_ids[:] = json.loads(bytes(r.body) or b"{}").get("consumerIdList", [])
            return bool(client_ids)

        eventually(member, 30, "the PushConsumer is a member of its group")
        ids = {"consumerGroup": group, "clientId": client_ids[0]}

        # mqadmin consumerStatus -s: the client's own thread stack
        r = call(server.broker_addr, RequestCode.GET_CONSUMER_RUNNING_INFO, {**ids, "jstackEnable": "true"})
        assert r.code == ResponseCode.SUCCESS, (r.code, r.remark)
        info = json.loads(bytes(r.body))
        assert "java.lang.Thread" in info["jstack"], info
        assert info["properties"]["consumerGroup"] == group

        # mqadmin queryMsgById -g G -d clientId: the listener verifies a message, and its FAILURE shows
        with Producer(server.namesrv_addr, group=f"p-{run}") as producer:
            ok = producer.send(Message(topic, b"direct-ok"))
            failing = producer.send(Message(other, b"fail-direct"))
        jvm.expect({"type": "recv", "body": "direct-ok"})  # consumed as usual first
        for sent, want in ((ok, "CR_SUCCESS"), (failing, "CR_LATER")):
            fields = {**ids, "msgId": sent.offset_msg_id, "topic": sent.queue.topic}
            r = call(server.broker_addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, fields)
            assert r.code == ResponseCode.SUCCESS, (r.code, r.remark)
            assert json.loads(bytes(r.body))["consumeResult"] == want
        jvm.expect({"type": "recv", "body": "direct-ok"})
        jvm.expect({"type": "recv", "body": "fail-direct"})
    finally:
        jvm.close()
