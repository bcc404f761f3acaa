"""Helpers the Kafka-client compat tests share (kafka-python, aiokafka, librdkafka, the Java
client): topics made through the admin API, where a record sits in the commit log, and group
members polling in threads. Holds no tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

from ferrymq.cli.testing import FerryServer

#: partitions of the topics these tests make
PARTITIONS = 6
#: broker.conf (a module's FERRYMQ_CONF): a new group forms at once instead of after Kafka's
#: default 3 s (tests do this with Kafka too)
FAST_GROUPS_CONF = "groupInitialRebalanceDelayMs=0\n"
#: kafka-python and aiokafka consumers: rebalances in a fraction of a second (the broker's minimum
#: session is 6 s)
GROUP_CONFIG: dict[str, Any] = {
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 200,
    "max_poll_interval_ms": 10_000,
    "request_timeout_ms": 15_000,
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
}
#: highly compressible values: a compressed batch of 20 is a small fraction of 20 KB
VALUE = b"ferrymq " * 125


def create_topic(server: FerryServer, name: str, queues: int = PARTITIONS) -> None:
    r = httpx.post(f"{server.admin_url}/api/topics", json={"name": name, "queues": queues}, timeout=10)
    assert r.status_code == 201, r.text


def commit_log_offset(server: FerryServer, topic: str, partition: int, offset: int) -> int:
    """Where the record at ``offset`` is stored in the commit log (admin REST API)."""
    url = f"{server.admin_url}/api/topics/{topic}/queues/{partition}/messages?offset={offset}"
    return int(httpx.get(url, timeout=10).json()["messages"][0]["commit_log_offset"])


class ThreadMember(threading.Thread):
    """One group member polling in its own thread (a subclass's ``run`` drives its client); its
    rebalance callbacks call ``_set`` with its share, which wakes ``wait_for``."""

    def __init__(self, server: FerryServer, group: str, topic: str, name: str, changed: threading.Condition):
        super().__init__(name=name, daemon=True)
        self.server, self.group, self.topic, self.changed = server, group, topic, changed
        self.assigned: frozenset[int] = frozenset()
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def _set(self, partitions: Iterable[Any]) -> None:
        with self.changed:
            self.assigned = frozenset(tp.partition for tp in partitions)
            self.changed.notify_all()

    def leave(self) -> None:
        self._halt.set()
        self.join(30)
        assert not self.is_alive()


def wait_for(
    changed: threading.Condition,
    members: Sequence[ThreadMember],
    check: Callable[[], bool],
    what: str,
    timeout: float = 30.0,
) -> None:
    """Until ``check`` holds (or a member failed, which fails the test with its error)."""
    with changed:
        ok = changed.wait_for(lambda: check() or any(m.error for m in members), timeout=timeout)
    errors = [m.error for m in members if m.error]
    assert not errors, f"{what}: consumer failed: {errors[0]!r}"
    assert ok, f"{what}: assignments {[sorted(m.assigned) for m in members]}"


def one_owner_each(members: Iterable[Any], partitions: int = PARTITIONS) -> bool:
    """Every partition owned by exactly one member, and every member owns some."""
    members = list(members)
    owned = [p for m in members for p in m.assigned]
    return sorted(owned) == list(range(partitions)) and all(m.assigned for m in members)
