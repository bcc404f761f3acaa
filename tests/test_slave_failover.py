"""Consumers read from the slave when the master is gone and come back (issue 9, section 1), with
real processes: a name server, a master and its slave (brokerRole=SLAVE, brokerId=1, the same
brokerName). The master is killed with SIGKILL while the consumers still have a backlog; they go
on from the slave (committing there), and return to the master when it restarts. No committed
offset ever goes backwards, nothing is lost, nothing is read twice (the consumers keep running, so
their in-memory offsets carry them across both switches).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from ferrymq.client import ConsumeStatus, LitePullConsumer, Message, MessageExt, Producer, PushConsumer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from tests.cluster_helpers import call, create_topic, eventually, max_offset, routed

NAME = "broker-g"
QUEUES = 2
GROUPS = ("g-push", "g-lite")
MASTER_CONF = {"registerNameServerPeriod": "1000"}
#: the slave copies the master's topics every second (slaveSyncInterval)
SLAVE_CONF = {
    "brokerRole": "SLAVE",
    "brokerId": "1",
    "registerNameServerPeriod": "1000",
    "slaveSyncInterval": "1000",
}
#: client timers short enough that route changes are seen within a second or two
FAST = {
    "poll_namesrv_interval": 0.5,
    "heartbeat_interval": 1.0,
    "rebalance_interval": 2.0,
    "broker_suspend_max": 2.0,
    "pull_timeout": 5.0,
    "pull_delay_on_error": 0.3,
}


@dataclass
class Group:
    ns: FerryNameServer
    master: FerryBroker
    slave: FerryBroker
    topic: str
    data: Path
    master_conf: dict[str, str]

    def restart_master(self) -> None:
        self.master = FerryBroker(self.data / "master", self.ns.addr, NAME, conf=self.master_conf)


def members(ns: str, topic: str) -> dict[int, str]:
    route = routed(ns, topic)
    if route is None:
        return {}
    return next((dict(bd.broker_addrs) for bd in route.broker_datas if bd.broker_name == NAME), {})


def knows_topic(addr: str, topic: str) -> bool:
    resp = call(addr, RequestCode.GET_ALL_TOPIC_CONFIG, {})
    return resp.code == ResponseCode.SUCCESS and topic in json.loads(bytes(resp.body))["topicConfigTable"]


def committed(addr: str, group: str, topic: str) -> list[int]:
    """The group's committed offset of each queue on one broker (-1: none)."""
    out = []
    for q in range(QUEUES):
        ext = {"consumerGroup": group, "topic": topic, "queueId": str(q), "setZeroIfNotFound": "false"}
        resp = call(addr, RequestCode.QUERY_CONSUMER_OFFSET, ext)
        out.append(int(resp.ext_fields["offset"]) if resp.code == ResponseCode.SUCCESS else -1)
    return out


def ends(addr: str, topic: str) -> list[int]:
    return [max_offset(addr, topic, q) for q in range(QUEUES)]


def send(ns: str, topic: str, bodies: list[bytes]) -> None:
    with Producer(ns, group=f"pg-{uuid.uuid4().hex[:6]}", send_timeout=5.0) as producer:
        for body in bodies:
            assert producer.send(Message(topic, body)).ok


@contextlib.contextmanager
def broker_group(tmp_path: Path, conf: dict[str, str] | None = None) -> Iterator[Group]:
    """A name server, a master and its slave (both with ``conf`` too), and a topic routed to both
    and copied to the slave."""
    ns = FerryNameServer(tmp_path / "ns")
    started: list[FerryBroker] = []
    g: Group | None = None
    master_conf = {**MASTER_CONF, **(conf or {})}
    try:
        master = FerryBroker(tmp_path / "master", ns.addr, NAME, conf=master_conf)
        started.append(master)
        slave = FerryBroker(tmp_path / "slave", ns.addr, NAME, conf={**SLAVE_CONF, **(conf or {})})
        started.append(slave)
        topic = f"SlaveRead-{uuid.uuid4().hex[:8]}"
        create_topic(master.addr, topic, QUEUES)
        eventually(lambda: set(members(ns.addr, topic)) == {0, 1}, 15, "master and slave routed")
        eventually(lambda: knows_topic(slave.addr, topic), 15, "the slave copied the topic")
        g = Group(ns, master, slave, topic, tmp_path, master_conf)
        yield g
    finally:
        if g is not None:
            started.append(g.master)
        for b in started:
            b.stop()
        ns.stop()


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    with broker_group(tmp_path) as g:
        yield g


class Seen:
    """Bodies a consumer got, thread-safe; ``gate`` holds the push listener after ``hold_after``."""

    def __init__(self, hold_after: int = 1 << 30) -> None:
        self.lock = threading.Lock()
        self.bodies: Counter[bytes] = Counter()
        self.gate = threading.Event()
        self.hold_after = hold_after

    def add(self, msgs: list[MessageExt]) -> None:
        with self.lock:
            self.bodies.update(m.body for m in msgs)

    def listener(self, msgs: list[MessageExt]) -> ConsumeStatus:
        self.add(msgs)
        if sum(self.bodies.values()) >= self.hold_after:
            self.gate.wait(60)
        return ConsumeStatus.CONSUME_SUCCESS

    def has(self, wanted: set[bytes]) -> bool:
        with self.lock:
            return set(self.bodies) >= wanted


def drain_until(consumer: LitePullConsumer, seen: Seen, wanted: set[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not seen.has(wanted):
        assert time.monotonic() < deadline, f"lite consumer got {len(seen.bodies)} of {len(wanted)}"
        seen.add(consumer.poll(timeout=0.5))


def settled(addr: str, topic: str, end: list[int]) -> Callable[[], bool]:
    """Whether both groups committed ``end`` on ``addr``."""
    return lambda: all(committed(addr, g, topic) == end for g in GROUPS)


def polling(consumer: LitePullConsumer, seen: Seen, pred: Callable[[], bool]) -> Callable[[], bool]:
    """``pred`` after a short poll (polling is what drives the lite consumer's auto-commit)."""

    def check() -> bool:
        seen.add(consumer.poll(timeout=0.2))
        return pred()

    return check


def test_python_consumers_read_from_the_slave_while_the_master_is_gone(group: Group) -> None:
    ns, topic = group.ns.addr, group.topic
    first = [b"a%03d" % i for i in range(40)]
    send(ns, topic, first)
    eventually(lambda: sum(ends(group.slave.addr, topic)) == len(first), 15, "the slave replicated")

    small = {"pull_batch_size": 1, "pull_threshold_for_queue": 1, "consume_from": "FIRST_OFFSET", **FAST}
    push_seen, lite_seen = Seen(hold_after=6), Seen()
    push = PushConsumer(ns, "g-push", consume_thread_max=1, persist_consumer_offset_interval=0.3, **small)
    push.subscribe(topic, "*")
    push.register_listener(push_seen.listener)
    lite = LitePullConsumer(ns, "g-lite", auto_commit_interval=0.3, **small)
    lite.subscribe(topic, "*")
    push.start()
    lite.start()
    try:
        # some consumed from the master and committed there; most still to come
        eventually(lambda: sum(push_seen.bodies.values()) >= 6, 20, "push consumer started")
        while sum(lite_seen.bodies.values()) < 6:
            lite_seen.add(lite.poll(timeout=0.5))
        lite.commit()
        before = {g: committed(group.master.addr, g, topic) for g in GROUPS}
        eventually(lambda: sum(committed(group.master.addr, "g-push", topic)) > 0, 10, "push commits")
        before["g-push"] = committed(group.master.addr, "g-push", topic)
        assert sum(before["g-lite"]) >= 6

        group.master.kill()
        eventually(lambda: 0 not in members(ns, topic), 15, "the master left the route")
        push_seen.gate.set()
        drain_until(lite, lite_seen, set(first), 30)
        eventually(lambda: push_seen.has(set(first)), 30, "push consumer read the backlog")
        slave_end = ends(group.slave.addr, topic)
        # committed to the slave, up to what it holds
        eventually(polling(lite, lite_seen, settled(group.slave.addr, topic, slave_end)), 10, "on slave")
        during = {g: committed(group.slave.addr, g, topic) for g in GROUPS}

        group.restart_master()
        eventually(lambda: members(ns, topic).get(0) == group.master.addr, 15, "the master is back")
        second = [b"b%03d" % i for i in range(10)]
        send(ns, topic, second)
        drain_until(lite, lite_seen, set(first + second), 30)
        eventually(lambda: push_seen.has(set(first + second)), 30, "push consumer read from the master")
        master_end = ends(group.master.addr, topic)
        # back on the master: committed there
        eventually(polling(lite, lite_seen, settled(group.master.addr, topic, master_end)), 10, "on master")
        after = {g: committed(group.master.addr, g, topic) for g in GROUPS}
    finally:
        push.shutdown()
        lite.shutdown()
    for g in GROUPS:
        for q in range(QUEUES):  # never backwards, across both switches
            assert before[g][q] <= during[g][q] <= after[g][q], (g, q, before[g], during[g], after[g])
    for seen in (push_seen, lite_seen):
        assert set(seen.bodies) == set(first + second)
        assert max(seen.bodies.values()) == 1, [b for b, n in seen.bodies.items() if n > 1]


def test_offsets_are_committed_to_the_slave_while_the_master_is_gone(group: Group) -> None:
    """The lite-pull consumer's offsets follow the route: to the slave when the master leaves it,
    back to the master when it returns; the same offsets, never lower."""
    ns, topic = group.ns.addr, group.topic
    bodies = [b"c%03d" % i for i in range(10)]
    send(ns, topic, bodies)
    seen = Seen()
    lite = LitePullConsumer(ns, "g-commit", consume_from="FIRST_OFFSET", auto_commit_interval=0.2, **FAST)
    lite.subscribe(topic, "*")
    lite.start()
    try:
        drain_until(lite, seen, set(bodies), 20)
        end = ends(group.master.addr, topic)
        eventually(polling(lite, seen, lambda: committed(group.master.addr, "g-commit", topic) == end), 10)
        group.master.kill()
        eventually(lambda: 0 not in members(ns, topic), 15, "the master left the route")
        on_slave = polling(lite, seen, lambda: committed(group.slave.addr, "g-commit", topic) == end)
        eventually(on_slave, 15, "the same offsets committed to the slave")
        group.restart_master()
        eventually(lambda: members(ns, topic).get(0) == group.master.addr, 15, "the master is back")
        on_master = polling(lite, seen, lambda: committed(group.master.addr, "g-commit", topic) == end)
        eventually(on_master, 15, "committed to the master again")
    finally:
        lite.shutdown()
    assert max(seen.bodies.values()) == 1


def gets(addr: str) -> int:
    """Messages the broker has served to pulls (GET_BROKER_RUNTIME_INFO msgGetTotalTodayNow)."""
    resp = call(addr, RequestCode.GET_BROKER_RUNTIME_INFO, {})
    return int(json.loads(bytes(resp.body))["table"]["msgGetTotalTodayNow"])


def test_a_consumer_reading_cold_data_is_sent_to_the_slave(tmp_path: Path) -> None:
    """slaveReadEnable: the master suggests the slave (whichBrokerWhenConsumeSlowly) to a consumer
    far behind (accessMessageInMemoryMaxRatio=0: anything behind the end); the client follows,
    and still commits to the master, which is alive."""
    cold = {"slaveReadEnable": "true", "accessMessageInMemoryMaxRatio": "0"}
    with broker_group(tmp_path, cold) as g:
        bodies = [b"d%03d" % i for i in range(30)]
        send(g.ns.addr, g.topic, bodies)
        eventually(lambda: sum(ends(g.slave.addr, g.topic)) == len(bodies), 15, "the slave replicated")
        seen = Seen()
        lite = LitePullConsumer(
            g.ns.addr,
            "g-cold",
            consume_from="FIRST_OFFSET",
            pull_batch_size=1,
            auto_commit_interval=0.2,
            **FAST,
        )
        lite.subscribe(g.topic, "*")
        lite.start()
        try:
            drain_until(lite, seen, set(bodies), 20)
            end = ends(g.master.addr, g.topic)
            eventually(polling(lite, seen, lambda: committed(g.master.addr, "g-cold", g.topic) == end), 10)
        finally:
            lite.shutdown()
        assert max(seen.bodies.values()) == 1
        from_master, from_slave = gets(g.master.addr), gets(g.slave.addr)
        assert from_master >= 1 and from_slave >= len(bodies) // 2, (from_master, from_slave)
