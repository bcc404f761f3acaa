"""The official Java DefaultMQPushConsumer (rocketmq-client 5.3.3, unmodified) against ferrymq, next
to ferrymq's own Python PushConsumer: concurrent consumption with retries and a dead letter,
orderly consumption, one clustering group with Java and Python members (fed by the Java
producer), and a broadcasting group with Java and Python members (fed by the Python producer).

The Java side is compat-tests/java's PushConsume, run as a separate JVM; without java or mvn these
tests are skipped with the reason shown.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import java_support as js
import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.client import (
    ConsumeStatus,
    Message,
    MessageExt,
    Producer,
    PushConsumer,
    SelectMessageQueueByHash,
)
from tests.test_consumer_push import FAST
from tests.test_consumer_support import SMALL_LOG, broker_conn, create_topic, wait_messages, wait_until

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]


class JavaPush:
    """A PushConsume JVM in the background; ``stop()`` ends it and returns its result lines."""

    def __init__(self, tmp: Path, namesrv: str, topic: str, group: str, name: str, **options: object) -> None:
        self.ready = tmp / f"{name}.ready"
        self.stop_file = tmp / f"{name}.stop"
        args = [namesrv, topic, group, "--name", name, "--ready-file", str(self.ready)]
        args += ["--stop-file", str(self.stop_file), "--rebalance-ms", "1000"]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        cmd = js.java_command("PushConsume", *args)
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def messages(self) -> list[dict[str, Any]]:
        return js.of_type(js.parse_results("".join(list(self.lines))), "msg")

    def wait_ready(self, timeout: float = 60) -> None:
        assert wait_until(lambda: self.ready.exists() or self.proc.poll() is not None, timeout)
        if not self.ready.exists():
            raise AssertionError(
                f"PushConsume did not start:\n{self.proc.stderr.read() if self.proc.stderr else ''}"
            )

    def stop(self, timeout: float = 60) -> list[dict[str, Any]]:
        self.stop_file.touch()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        assert self.proc.returncode == 0, f"PushConsume exited {self.proc.returncode}:\n{err[-3000:]}"
        return self.messages()


def _body(m: dict[str, Any]) -> bytes:
    return bytes.fromhex(m["body"])


@pytest.fixture
def server(tmp_path: Path) -> Any:
    js.build()
    with FerryServer(tmp_path / "server", "messageDelayLevel=1s 1s 1s\n" + SMALL_LOG) as s:
        yield s


def test_java_concurrent_consumer_retries_then_dead_letters(server: FerryServer, tmp_path: Path) -> None:
    create_topic(server, "JavaPushT", 4)
    java = JavaPush(
        tmp_path, server.namesrv_addr, "JavaPushT", "java-push", "j1", fail_idx="3", max_reconsume=1
    )
    try:
        java.wait_ready()
        with Producer(server.namesrv_addr, group="py-producer") as producer:  # Python producer -> Java
            for i in range(20):
                msg = Message("JavaPushT", f"py-{i}".encode(), tags="TagA", properties={"idx": str(i)})
                assert producer.send(msg).ok
        # 20 deliveries plus the failing message's retry (reconsumeTimes 1), then it is a dead letter
        assert wait_until(lambda: len(java.messages()) >= 21, 30), len(java.messages())
    finally:
        got = java.stop()
    good = [m for m in got if m["properties"]["idx"] != "3"]
    assert sorted(_body(m) for m in good) == sorted(f"py-{i}".encode() for i in range(20) if i != 3)
    bad = [m for m in got if m["properties"]["idx"] == "3"]
    assert [m["reconsumeTimes"] for m in bad] == [0, 1]
    assert all(m["topic"] == "JavaPushT" and m["tags"] == "TagA" for m in bad)
    assert bad[1]["t"] - bad[0]["t"] >= 1000  # the retry waited for its delay level

    async def dead() -> list[MessageExt]:
        conn = await broker_conn(server)
        try:
            return await wait_messages(conn, "%DLQ%java-push", 1, timeout=5)
        finally:
            conn.close()

    # One dead letter; two when the Java client's send-back timed out under load and it fell back
    # to sending a copy to the retry topic itself (DefaultMQPushConsumerImpl.sendMessageBack), an
    # at-least-once path of the client: every copy is the failing message.
    dead_letters = asyncio.run(dead())
    assert 1 <= len(dead_letters) <= 2, [m.body for m in dead_letters]
    for dlq in dead_letters:
        assert dlq.body == b"py-3" and dlq.properties["RETRY_TOPIC"] == "JavaPushT"


def test_java_orderly_consumer_keeps_per_key_order(server: FerryServer, tmp_path: Path) -> None:
    create_topic(server, "JavaOrderT", 4, order=True)
    java = JavaPush(tmp_path, server.namesrv_addr, "JavaOrderT", "java-orderly", "j1", mode="orderly")
    keys = [f"k{i}" for i in range(6)]
    try:
        java.wait_ready()
        with Producer(server.namesrv_addr, group="py-producer") as producer:
            for seq in range(15):
                for key in keys:
                    msg = Message("JavaOrderT", f"{key}:{seq}".encode(), properties={"idx": f"{key}:{seq}"})
                    assert producer.send_orderly(msg, SelectMessageQueueByHash(), key).ok
        assert wait_until(lambda: len(java.messages()) >= len(keys) * 15, 30)
    finally:
        got = java.stop()
    seen: dict[str, list[int]] = defaultdict(list)
    for m in got:
        key, _, seq = _body(m).decode().partition(":")
        seen[key].append(int(seq))
    assert all(seen[k] == list(range(15)) for k in keys), dict(seen)


def test_mixed_java_and_python_group_shares_queues(server: FerryServer, tmp_path: Path) -> None:
    create_topic(server, "MixedT", 8)
    python_got: list[MessageExt] = []
    lock = threading.Lock()

    def consume(msgs: list[MessageExt]) -> ConsumeStatus:
        with lock:
            python_got.extend(msgs)
        return ConsumeStatus.CONSUME_SUCCESS

    py = PushConsumer(server.namesrv_addr, "mixed-group", consume_from="FIRST_OFFSET", **FAST)
    py.subscribe("MixedT")
    py.register_listener(consume)
    py.start()
    java = JavaPush(tmp_path, server.namesrv_addr, "MixedT", "mixed-group", "j1")
    try:
        java.wait_ready()
        # both members see both; the Python one owns half of the 8 queues
        assert wait_until(lambda: len([q for q in py.assignment() if q.topic == "MixedT"]) == 4, 20)
        count = 40
        out = js.produce(server.namesrv_addr, "MixedT", "java-producer", count, mode="sync")  # Java -> both
        sent = js.of_type(out, "send")
        js.check_sent(sent, count, mode="sync")
        assert wait_until(lambda: len(python_got) + len(java.messages()) >= count, 30)
        time.sleep(1.0)  # anything delivered twice would show up now
        # what each member got while both were in the group: once one leaves, the other takes its
        # queues from the last committed offsets (at-least-once across a rebalance, as RocketMQ)
        with lock:
            both_in = list(python_got)
        java_in = java.messages()
    finally:
        java.stop()
        py.shutdown()
    python_got, java_got = both_in, java_in
    assert python_got and java_got, "both members must take part"
    ids = [m.msg_id for m in python_got] + [m["msgId"] for m in java_got]
    assert sorted(ids) == sorted(s["msgId"] for s in sent)  # every message once, in one member
    python_queues = {m.queue_id for m in python_got}
    java_queues = {m["queueId"] for m in java_got}
    assert not python_queues & java_queues  # the two allocations agree
    by_id = {s["msgId"]: s for s in sent}
    for m in python_got:  # what the Java producer sent arrives intact in Python
        s = by_id[m.msg_id]
        assert m.body.hex() == s["body"] and m.tags == s["tags"]
        assert {k: v for k, v in m.user_properties.items()} == s["properties"]


def test_broadcast_group_with_java_and_python_members(server: FerryServer, tmp_path: Path) -> None:
    create_topic(server, "JavaBcastT", 2)
    python_got: list[MessageExt] = []

    def consume(msgs: list[MessageExt]) -> ConsumeStatus:
        python_got.extend(msgs)
        return ConsumeStatus.CONSUME_SUCCESS

    py = PushConsumer(
        server.namesrv_addr,
        "bcast-group",
        message_model="BROADCASTING",
        consume_from="FIRST_OFFSET",
        offset_store_dir=tmp_path / "offsets",
        **FAST,
    )
    py.subscribe("JavaBcastT")
    py.register_listener(consume)
    py.start()
    java = JavaPush(tmp_path, server.namesrv_addr, "JavaBcastT", "bcast-group", "j1", model="broadcasting")
    try:
        java.wait_ready()
        with Producer(server.namesrv_addr, group="py-producer") as producer:
            bodies = [f"b{i}".encode() for i in range(20)]
            for body in bodies:
                assert producer.send(Message("JavaBcastT", body)).ok
        assert wait_until(lambda: len(python_got) >= 20 and len(java.messages()) >= 20, 30)
    finally:
        java_got = java.stop()
        py.shutdown()
    assert sorted(m.body for m in python_got) == sorted(bodies)
    assert sorted(_body(m) for m in java_got) == sorted(bodies)
