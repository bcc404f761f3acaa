"""ferrymq.client.PushConsumer against a real ``ferrymq serve``: clustering (queues shared, taken
over when a member leaves, nothing lost) and committed offsets across a consumer restart, flow control."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.client import ConsumeStatus, Message, MessageExt, MessageQueue, Producer, PushConsumer
from tests.test_consumer_support import Recorder, create_topic, wait_until

FAST = {
    "rebalance_interval": 1.0,
    "persist_consumer_offset_interval": 0.5,
    "poll_namesrv_interval": 1.0,
    "heartbeat_interval": 1.0,
    "broker_suspend_max": 2.0,
    "pull_timeout": 5.0,
}


def _send(server: FerryServer, topic: str, bodies: list[bytes]) -> None:
    with Producer(server.namesrv_addr, group="push-test-producer") as producer:
        for body in bodies:
            assert producer.send(Message(topic, body)).ok


def test_clustering_members_share_queues_and_take_over_on_leave(tmp_path: Path) -> None:
    with FerryServer(tmp_path) as server:
        create_topic(server, "ClusterT", 8)
        rec = Recorder()
        consumers = []
        for i in range(3):
            # rebalancing every minute only: joins and leaves must reach members by NOTIFY
            options = {**FAST, "rebalance_interval": 60.0}
            c = PushConsumer(server.namesrv_addr, "cluster-group", consume_from="FIRST_OFFSET", **options)
            c.subscribe("ClusterT", "*")
            c.register_listener(rec.listener(f"c{i}", ConsumeStatus.CONSUME_SUCCESS))
            consumers.append(c.start())
        try:
            queues = {MessageQueue("ClusterT", "broker-a", q) for q in range(8)}

            def owned(members: list[PushConsumer]) -> list[set[MessageQueue]]:
                return [{mq for mq in c.assignment() if mq.topic == "ClusterT"} for c in members]

            def exactly_once(members: list[PushConsumer]) -> bool:
                sets = owned(members)
                return sum(len(s) for s in sets) == 8 and set().union(*sets) == queues

            assert wait_until(lambda: exactly_once(consumers), timeout=10), owned(consumers)
            assert sorted(len(s) for s in owned(consumers)) == [2, 3, 3]  # averagely
            first = [f"m{i}".encode() for i in range(200)]
            _send(server, "ClusterT", first)
            assert rec.wait_for(lambda: rec.bodies() >= set(first)), len(rec.bodies())
            assert all(rec.bodies(f"c{i}") for i in range(3))  # everyone took part

            leaving = consumers.pop(0)
            leaving.shutdown()
            # the leaver's queues move to the others at once (NOTIFY_CONSUMER_IDS_CHANGED)
            assert wait_until(lambda: exactly_once(consumers), timeout=5), owned(consumers)
            second = [f"n{i}".encode() for i in range(200)]
            _send(server, "ClusterT", second)
            assert rec.wait_for(lambda: rec.bodies() >= set(first + second))
            assert rec.bodies() == set(first + second)
            assert not rec.bodies("c0") & set(second)
        finally:
            for c in consumers:
                c.shutdown()


def test_offsets_survive_a_consumer_restart(tmp_path: Path) -> None:
    with FerryServer(tmp_path) as server:
        create_topic(server, "OffsetT", 4)
        _send(server, "OffsetT", [b"old-1", b"old-2"])
        rec = Recorder()
        c = PushConsumer(server.namesrv_addr, "offset-group", consume_from="FIRST_OFFSET", **FAST)
        c.subscribe("OffsetT")
        c.register_listener(rec.listener("a"))
        c.start()
        try:
            _send(server, "OffsetT", [b"new-1"])
            assert rec.wait_for(lambda: rec.bodies("a") == {b"old-1", b"old-2", b"new-1"})
        finally:
            c.shutdown()  # commits
        _send(server, "OffsetT", [b"while-away"])
        # the same group resumes at its committed offsets: only what came meanwhile
        c = PushConsumer(server.namesrv_addr, "offset-group", consume_from="FIRST_OFFSET", **FAST)
        c.subscribe("OffsetT")
        c.register_listener(rec.listener("b"))
        c.start()
        try:
            assert rec.wait_for(lambda: b"while-away" in rec.bodies("b"))
            _send(server, "OffsetT", [b"after"])
            assert rec.wait_for(lambda: b"after" in rec.bodies("b"))
        finally:
            c.shutdown()
        assert rec.bodies("b") == {b"while-away", b"after"}
        assert len(rec.got["a"]) == 3 and len(rec.got["b"]) == 2  # nothing twice


def test_flow_control_bounds_the_messages_cached_per_queue(tmp_path: Path) -> None:
    with FerryServer(tmp_path) as server:
        create_topic(server, "FlowT", 1)
        _send(server, "FlowT", [f"f{i}".encode() for i in range(150)])
        release = threading.Event()
        rec = Recorder()
        record = rec.listener("slow")

        def slow(msgs: list[MessageExt]) -> bool:
            release.wait(30)
            return bool(record(msgs))

        c = PushConsumer(
            server.namesrv_addr,
            "flow-group",
            consume_from="FIRST_OFFSET",
            pull_threshold_for_queue=20,
            pull_batch_size=8,
            consume_thread_max=2,
            **FAST,
        )
        c.subscribe("FlowT")
        c.register_listener(slow)
        c.start()
        try:
            assert wait_until(lambda: sum(c.cached().values()) > 20, 10)
            time.sleep(0.5)  # pulling must have stopped: the cache does not grow past one more batch
            assert max(c.cached().values()) <= 20 + 8
            release.set()
            assert rec.wait_for(lambda: len(rec.bodies()) == 150)
        finally:
            release.set()
            c.shutdown()
