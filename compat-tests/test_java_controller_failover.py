"""The unmodified Java client (rocketmq-client 5.3.x) across a controller-mode failover: in one JVM
(compat-tests/java FailoverClients) a DefaultMQProducer keeps sending and a DefaultMQPushConsumer
keeps consuming while the SYNC_MASTER of the group is killed (kill -9). The controller elects the
slave; the clients find it through the name server's routes (RocketMQ clients never talk to the
controller). Every SEND_OK message is consumed, none is lost, and the consumer resumes from the
offsets it committed (copied to the slave by its metadata sync), not from the start.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import java_support as js
import pytest

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from tests.cluster_helpers import controller_broker, create_topic, elected, eventually, replica_info, routed
from tests.test_slave_failover import committed, ends, knows_topic

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

GROUP = "javaCtlGroup"
TOPIC = "JavaCtlFailover"
CONSUMER_GROUP = "java-ctl-failover"
QUEUES = 4  # tests.test_slave_failover's committed() and ends() read four queues


class Clients:
    """The FailoverClients JVM; its result lines are parsed as they come."""

    def __init__(self, tmp: Path, namesrv: str) -> None:
        self.ready, self.stop_sending, self.stop_file = (tmp / n for n in ("ready", "stop-sending", "stop"))
        cmd = js.java_command(
            "FailoverClients",
            namesrv,
            TOPIC,
            CONSUMER_GROUP,
            "--ready-file",
            str(self.ready),
            "--stop-sending-file",
            str(self.stop_sending),
            "--stop-file",
            str(self.stop_file),
        )
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
        )
        self.results: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(js.RESULT_PREFIX):
                self.results.append(json.loads(line[len(js.RESULT_PREFIX) :]))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in list(self.results) if r["type"] == kind]

    def acked(self, since_ms: int = 0) -> set[str]:
        return {r["body"] for r in self.of("sent") if r["status"] == "SEND_OK" and r["t"] >= since_ms}

    def consumed(self) -> Counter[str]:
        return Counter(bytes.fromhex(m["body"]).decode() for m in self.of("msg"))

    def finish(self, timeout: float = 60) -> None:
        self.stop_sending.touch()
        self.stop_file.touch()
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def test_java_clients_across_a_controller_failover(tmp_path: Path) -> None:
    js.build()
    ns = FerryNameServer(tmp_path / "ns", controller=True)
    brokers: list[FerryBroker] = []
    clients: Clients | None = None
    try:
        conf = {"slaveSyncInterval": "500", "defaultTopicQueueNums": str(QUEUES)}
        brokers = [controller_broker(tmp_path, ns.addr, GROUP, i, **conf) for i in (1, 2)]
        master = elected(ns.addr, GROUP, brokers)
        slave = next(b for b in brokers if b is not master)
        create_topic(master.addr, TOPIC, QUEUES)
        eventually(lambda: knows_topic(slave.addr, TOPIC), 15, "the slave copied the topic")
        eventually(lambda: routed(ns.addr, TOPIC) is not None, 15, "the topic routed")

        clients = Clients(tmp_path, ns.addr)
        c = clients
        eventually(lambda: c.ready.exists() or c.proc.poll() is not None, 60, "the JVM started")
        assert c.proc.poll() is None, c.proc.stderr.read() if c.proc.stderr else ""
        eventually(lambda: len(c.consumed()) >= 100, 60, "100 messages consumed before the failover")
        eventually(lambda: sum(committed(slave.addr, CONSUMER_GROUP, TOPIC)) > 50, 20, "offsets on the slave")
        consumed_before = set(c.consumed())

        master.kill()
        kill_ms = int(time.time() * 1000)
        eventually(lambda: replica_info(ns.addr, GROUP)[0] == slave.addr, 20, "the slave elected")
        eventually(lambda: len(c.acked(kill_ms)) >= 100, 60, "100 SEND_OK after the failover")
        c.stop_sending.touch()
        eventually(lambda: c.of("sending-stopped") != [], 30, "the producer stopped")
        acked = c.acked()
        eventually(lambda: acked <= set(c.consumed()), 60, "every SEND_OK message consumed")
        c.finish()
        clients = None

        seen = c.consumed()
        assert acked <= set(seen), sorted(acked - set(seen))[:10]
        redelivered = [b for b in consumed_before if seen[b] > 1]
        first_after = min(int(r["t"]) for r in c.of("sent") if r["status"] == "SEND_OK" and r["t"] >= kill_ms)
        errors = [r for r in c.of("send-error") if r["t"] >= kill_ms]
        print(
            f"java failover: {len(acked)} SEND_OK, all consumed; {len(consumed_before)} consumed before the "
            f"kill, {len(redelivered)} of them again after it; first SEND_OK {first_after - kill_ms} ms "
            f"after the kill; {len(errors)} failed sends"
        )
        # resumed from committed offsets: at most what was consumed after the last offset copy
        assert len(redelivered) < len(consumed_before) // 2, len(redelivered)
        # the consumer's shutdown committed its offsets to the new master: it consumed everything
        assert committed(slave.addr, CONSUMER_GROUP, TOPIC) == ends(slave.addr, TOPIC)
    finally:
        if clients is not None:
            clients.finish()
        for b in brokers:
            b.stop()
        ns.stop()
