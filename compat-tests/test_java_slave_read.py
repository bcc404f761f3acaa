"""The official Java DefaultMQPushConsumer (rocketmq-client 5.3.x, unmodified) reads from the slave
while the master of its broker group is gone, and goes back to the master when it returns; its
committed offsets never go backwards (issue 9, section 1). One JVM (compat-tests/java PushConsume).

The group (name server, master, slave) is tests/test_slave_failover.py's.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import java_support as js
import pytest
from test_java_push import JavaPush

from tests.cluster_helpers import eventually
from tests.test_consumer_support import wait_until
from tests.test_slave_failover import Group, committed, ends, group, members, send

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]
__all__ = ["group"]  # the fixture


def test_java_push_consumer_reads_from_the_slave_and_returns(group: Group, tmp_path: Path) -> None:
    js.build()
    ns, topic = group.ns.addr, group.topic
    first = [b"a%03d" % i for i in range(30)]
    send(ns, topic, first)
    eventually(lambda: sum(ends(group.slave.addr, topic)) == len(first), 15, "the slave replicated")
    group.master.kill()
    eventually(lambda: 0 not in members(ns, topic), 15, "the master left the route")

    java = JavaPush(tmp_path, ns, topic, "java-slave-read", "j1")
    try:
        java.wait_ready()
        # the backlog comes from the slave, the only member left; offsets are committed there
        assert wait_until(lambda: len(java.messages()) >= len(first), 30), len(java.messages())
        slave_end = ends(group.slave.addr, topic)
        eventually(lambda: committed(group.slave.addr, "java-slave-read", topic) == slave_end, 10, "on slave")
        on_slave = committed(group.slave.addr, "java-slave-read", topic)

        group.restart_master()
        eventually(lambda: members(ns, topic).get(0) == group.master.addr, 15, "the master is back")
        second = [b"b%03d" % i for i in range(10)]
        send(ns, topic, second)
        assert wait_until(lambda: len(java.messages()) >= len(first + second), 30), len(java.messages())
    finally:
        got = java.stop()  # shuts the consumer down, which commits its offsets
    on_master = committed(group.master.addr, "java-slave-read", topic)
    assert on_master == ends(group.master.addr, topic)
    assert all(s <= m for s, m in zip(on_slave, on_master, strict=True)), (on_slave, on_master)
    bodies = Counter(bytes.fromhex(m["body"]) for m in got)
    assert set(bodies) == set(first + second)
    assert max(bodies.values()) == 1, [b for b, n in bodies.items() if n > 1]
