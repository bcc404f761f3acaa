"""RocketMQ's own mqadmin (org.apache.rocketmq:rocketmq-tools 5.3.3, unmodified) against
``ferrymq serve``: each command an operator runs, its output read as an operator reads it.

One JVM for the whole module (tools_support.ToolSession); the live consumers the group commands
look at are ferrymq's Python PushConsumer, which answers GET_CONSUMER_RUNNING_INFO and applies
RESET_CONSUMER_CLIENT_OFFSET pushed by the broker.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import java_support as js
import pytest
import tools_support as ts

from ferrymq.cli.testing import FerryServer
from ferrymq.client import (
    ConsumeStatus,
    LitePullConsumer,
    Message,
    MessageExt,
    Producer,
    PushConsumer,
    SendResult,
)
from tests.test_consumer_push import FAST
from tests.test_consumer_support import create_topic, wait_until

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

TOPIC = "OpsTopic"
GROUP = "OpsGroup"
COUNT = 12


class Counting:
    """A push consumer of TOPIC in GROUP counting what its listener saw, by key."""

    def __init__(self, namesrv: str) -> None:
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.consumer = PushConsumer(namesrv, group=GROUP, consume_from="FIRST_OFFSET", **FAST)
        self.consumer.subscribe(TOPIC, "*")
        self.consumer.register_listener(self._listen)
        self.consumer.start()

    def _listen(self, msgs: list[MessageExt]) -> ConsumeStatus:
        with self.lock:
            self.seen.update(m.keys or "" for m in msgs)
        return ConsumeStatus.CONSUME_SUCCESS

    def total(self) -> int:
        with self.lock:
            return sum(self.seen.values())


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ts.ToolSession]:
    with ts.ToolSession(tmp_path_factory.mktemp("mqadmin")) as session:
        yield session


@pytest.fixture(scope="module")
def sent(server: FerryServer) -> list[SendResult]:
    create_topic(server, TOPIC, queues=4)
    with Producer(server.namesrv_addr, group="ops-producer") as producer:
        return [
            producer.send(Message(TOPIC, b"body-%d" % i, tags="T", keys=f"key-{i}")) for i in range(COUNT)
        ]


@pytest.fixture(scope="module")
def consumer(server: FerryServer, sent: list[SendResult]) -> Iterator[Counting]:
    c = Counting(server.namesrv_addr)
    assert wait_until(lambda: c.total() >= COUNT, 30), c.seen
    try:
        yield c
    finally:
        c.consumer.shutdown()


def admin(tools: ts.ToolSession, server: FerryServer, command: str, *args: str) -> str:
    """Run one mqadmin command; fail on any stack trace in its output."""
    run = tools.mqadmin(command, *args, "-n", server.namesrv_addr)
    assert "Exception" not in run.text and run.status == 0, run.text
    return run.text


def test_cluster_and_broker(tools: ts.ToolSession, server: FerryServer) -> None:
    out = admin(tools, server, "clusterList")
    assert re.search(rf"DefaultCluster\s+broker-a\s+0\s+{re.escape(server.broker_addr)}", out), out
    out = admin(tools, server, "brokerStatus", "-b", server.broker_addr)
    assert re.search(r"brokerVersionDesc\s*:\s*ferrymq", out), out


def test_topic_lifecycle(tools: ts.ToolSession, server: FerryServer) -> None:
    out = admin(tools, server, "updateTopic", "-t", "OpsTemp", "-c", "DefaultCluster", "-r", "3", "-w", "3")
    assert "success" in out, out
    assert wait_until(lambda: "OpsTemp" in admin(tools, server, "topicList").split(), 15)
    route = admin(tools, server, "topicRoute", "-t", "OpsTemp")
    assert '"readQueueNums":3' in route and '"writeQueueNums":3' in route, route
    out = admin(tools, server, "deleteTopic", "-t", "OpsTemp", "-c", "DefaultCluster")
    assert "delete topic [OpsTemp] from cluster [DefaultCluster] success" in out, out
    assert wait_until(lambda: "OpsTemp" not in admin(tools, server, "topicList").split(), 15)


def test_topic_status(tools: ts.ToolSession, server: FerryServer, sent: list[SendResult]) -> None:
    out = admin(tools, server, "topicStatus", "-t", TOPIC)
    rows = [line.split() for line in out.splitlines() if line.startswith("broker-a")]
    # #Broker Name  #QID  #Min Offset  #Max Offset  #Last Updated
    assert sorted(int(r[1]) for r in rows) == [0, 1, 2, 3], out
    assert sum(int(r[3]) for r in rows) == COUNT, out


def test_consumer_connection_and_progress(
    tools: ts.ToolSession, server: FerryServer, consumer: Counting
) -> None:
    client_id = consumer.consumer.async_consumer.client_id
    out = admin(tools, server, "consumerConnection", "-g", GROUP)
    assert client_id in out and "PYTHON" in out, out
    assert "CONSUME_PASSIVELY" in out and "CLUSTERING" in out, out
    assert TOPIC in out, out

    def caught_up() -> bool:
        text = admin(tools, server, "consumerProgress", "-g", GROUP)
        return re.search(r"Diff Total:\s*0\b", text) is not None and TOPIC in text

    assert wait_until(caught_up, 20), admin(tools, server, "consumerProgress", "-g", GROUP)
    out = admin(tools, server, "consumerProgress")
    assert re.search(rf"^{GROUP}\s+1\s", out, re.M), out


def test_consumer_status(tools: ts.ToolSession, server: FerryServer, consumer: Counting) -> None:
    client_id = consumer.consumer.async_consumer.client_id
    out = admin(tools, server, "consumerStatus", "-g", GROUP)
    assert client_id in out, out
    assert "Same subscription in the same group of consumer" in out and "Rebalance OK" in out, out
    detail = admin(tools, server, "consumerStatus", "-g", GROUP, "-i", client_id)
    assert "PROP_CONSUME_TYPE" in detail and TOPIC in detail, detail


def test_consumer_status_of_a_lite_pull_group(tools: ts.ToolSession, server: FerryServer) -> None:
    """A lite-pull member answers GET_CONSUMER_RUNNING_INFO (before: 'request type 307 not supported')."""
    lite = LitePullConsumer(server.namesrv_addr, "OpsLiteGroup", consume_from="FIRST_OFFSET")
    lite.subscribe(TOPIC)
    lite.start()
    try:
        assert wait_until(lambda: bool(lite.assignment()), 20)
        out = admin(tools, server, "consumerConnection", "-g", "OpsLiteGroup")
        assert "CONSUME_ACTIVELY" in out and lite.client_id in out, out
        out = admin(tools, server, "consumerStatus", "-g", "OpsLiteGroup")
        assert lite.client_id in out and "Same subscription in the same group of consumer" in out, out
        detail = admin(tools, server, "consumerStatus", "-g", "OpsLiteGroup", "-i", lite.client_id)
        assert "CONSUME_ACTIVELY" in detail and TOPIC in detail, detail
    finally:
        lite.shutdown()


def test_rates_are_real(tools: ts.ToolSession, server: FerryServer) -> None:
    """brokerStatus putTps and statsAll's in-TPS and 24-hour counts move with traffic (before: 0)."""
    create_topic(server, "OpsRates", queues=2)
    with Producer(server.namesrv_addr, group="ops-rates") as producer:
        for i in range(20):
            producer.send(Message("OpsRates", b"rate-%d" % i, tags="T"))

    def put_tps() -> float:
        out = admin(tools, server, "brokerStatus", "-b", server.broker_addr)
        m = re.search(r"^putTps\s*:\s*(\S+)", out, re.M)
        return float(m[1]) if m else 0.0

    assert wait_until(lambda: put_tps() > 0, 15)

    def in_today() -> int:
        out = admin(tools, server, "statsAll", "-t", "OpsRates")
        rows = [line.split() for line in out.splitlines() if line.startswith("OpsRates")]
        return max((int(r[-2]) for r in rows if len(r) >= 4), default=0)  # no group: NO_CONSUMER last

    assert wait_until(lambda: in_today() >= 20, 30), admin(tools, server, "statsAll", "-t", "OpsRates")


def test_broker_consume_stats(tools: ts.ToolSession, server: FerryServer, consumer: Counting) -> None:
    out = admin(tools, server, "brokerConsumeStats", "-b", server.broker_addr)
    rows = [line.split() for line in out.splitlines() if line.startswith(TOPIC)]
    assert {r[1] for r in rows} == {GROUP}, out
    assert len(rows) == 4, out


def test_query_messages(
    tools: ts.ToolSession, server: FerryServer, sent: list[SendResult], consumer: Counting
) -> None:
    first = sent[0]
    out = admin(tools, server, "queryMsgById", "-t", TOPIC, "-i", first.offset_msg_id)
    assert re.search(r"Keys:\s+\[key-0\]", out) and f"Topic:               {TOPIC}" in out, out
    assert GROUP in out, out  # the message track names the group that consumed it
    out = admin(tools, server, "queryMsgByKey", "-t", TOPIC, "-k", "key-3")
    assert sent[3].msg_id in out, out
    out = admin(tools, server, "queryMsgByUniqueKey", "-t", TOPIC, "-i", sent[4].msg_id)
    assert re.search(r"Keys:\s+\[key-4\]", out), out
    q = sent[5].queue
    out = admin(
        tools,
        server,
        "queryMsgByOffset",
        "-t",
        TOPIC,
        "-b",
        "broker-a",
        "-i",
        str(q.queue_id),
        "-o",
        str(sent[5].queue_offset),
    )
    assert "Keys:                [key-5]" in out, out


def test_update_sub_group(tools: ts.ToolSession, server: FerryServer) -> None:
    out = admin(tools, server, "updateSubGroup", "-g", "OpsNewGroup", "-c", "DefaultCluster", "-r", "3")
    assert "create subscription group to" in out and "groupName=OpsNewGroup" in out, out
    assert "retryMaxTimes=3" in out, out


def test_export_metadata_decodes_the_topic_and_group_tables(
    tools: ts.ToolSession, server: FerryServer, sent: list[SendResult], tmp_path: Path
) -> None:
    """exportMetadata reads GET_ALL_TOPIC_CONFIG and GET_ALL_SUBSCRIPTIONGROUP_CONFIG with the classes an
    Apache slave's SlaveSynchronize uses to copy its master's tables (the same JSON, decoded by Java)."""
    admin(tools, server, "updateSubGroup", "-g", "OpsExportGroup", "-c", "DefaultCluster", "-r", "5")
    out = admin(tools, server, "exportMetadata", "-c", "DefaultCluster", "-f", str(tmp_path))
    assert "success" in out, out
    exported = json.loads((tmp_path / "metadata.json").read_text())
    topic = exported["topicConfigTable"][TOPIC]
    assert (topic["readQueueNums"], topic["writeQueueNums"], topic["perm"]) == (4, 4, 6), topic
    assert exported["subscriptionGroupTable"]["OpsExportGroup"]["retryMaxTimes"] == 5, exported


def test_reset_offset_by_time_reaches_live_consumer(
    tools: ts.ToolSession, server: FerryServer, consumer: Counting
) -> None:
    """Back to the start while the consumer runs: it consumes everything again, and its own
    commits do not put the old position back."""
    before = consumer.total()
    out = admin(tools, server, "resetOffsetByTime", "-g", GROUP, "-t", TOPIC, "-s", "0")
    assert "start reset consumer offset by specified" in out and re.search(r"broker-a\s+0\s+0", out), out
    assert wait_until(lambda: consumer.total() >= before + COUNT, 30), consumer.seen
    assert all(n >= 2 for n in consumer.seen.values()), consumer.seen


def test_admin_api_forced_reset_reaches_live_consumer(server: FerryServer, consumer: Counting) -> None:
    """The admin REST API's forced reset uses the same push as mqadmin's resetOffsetByTime."""
    before = consumer.total()
    req = urllib.request.Request(
        f"{server.admin_url}/api/groups/{GROUP}/reset-offset",
        data=json.dumps({"to": "earliest", "force": True, "topic": TOPIC}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    assert wait_until(lambda: consumer.total() >= before + COUNT, 30), consumer.seen


def test_reset_offset_by_time_of_a_stopped_group(
    tools: ts.ToolSession, server: FerryServer, sent: list[SendResult]
) -> None:
    """No live member: the broker says CONSUMER_NOT_ONLINE and mqadmin falls back to rewriting the
    committed offsets itself (UPDATE_CONSUMER_OFFSET), which consumerProgress then shows."""
    c = PushConsumer(server.namesrv_addr, group="OpsStopped", consume_from="FIRST_OFFSET", **FAST)
    c.subscribe(TOPIC, "*")
    seen: list[MessageExt] = []
    c.register_listener(lambda msgs: seen.extend(msgs) or ConsumeStatus.CONSUME_SUCCESS)
    c.start()
    try:
        assert wait_until(lambda: len(seen) >= COUNT, 30)
    finally:
        c.shutdown()
    admin(tools, server, "resetOffsetByTime", "-g", "OpsStopped", "-t", TOPIC, "-s", "0")
    out = admin(tools, server, "consumerProgress", "-g", "OpsStopped")
    assert re.search(rf"Diff Total:\s*{COUNT}\b", out), out
