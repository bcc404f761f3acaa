"""Kafka clients across a failover in controller mode, with an unmodified client (confluent-kafka):
a producer (acks=all, idempotent) keeps producing and a consumer keeps fetching while the master
is killed; the slave is elected and Metadata names it leader at a higher leader epoch.

Checked: every acknowledged record is read back exactly once, offsets are dense, and no offset
the consumer saw during the failover holds a different value afterwards.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from tests.cluster_helpers import controller_broker, create_topic, elected
from tests.cluster_helpers import replica_info as controller_replica_info

GROUP = "kafkaCtlGroup"
TOPIC = "kctl"


def start(tmp: Path, ns: FerryNameServer, identity: int) -> FerryBroker:
    return controller_broker(
        tmp, ns.addr, GROUP, identity, kafka=True, slaveSyncInterval="200", defaultTopicQueueNums="1"
    )


def replica_info(ns: FerryNameServer) -> tuple[str | None, set[int], int]:
    return controller_replica_info(ns.addr, GROUP)


class Watcher(threading.Thread):
    """Fetches the partition from offset 0 all along: what a consumer saw at each offset."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[int, bytes] = {}
        self.conflicts: list[tuple[int, bytes, bytes]] = []
        self.stop_at = threading.Event()
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "watcher",
                "enable.auto.commit": False,
                "topic.metadata.refresh.interval.ms": 500,
                "fetch.wait.max.ms": 100,
            }
        )

    def run(self) -> None:
        self.consumer.assign([TopicPartition(TOPIC, 0, 0)])
        try:
            while not self.stop_at.is_set():
                msg = self.consumer.poll(0.2)
                if msg is None or msg.error():
                    continue
                off, val = msg.offset(), bytes(msg.value() or b"")
                old = self.seen.setdefault(off, val)
                if old != val:
                    self.conflicts.append((off, old, val))
        finally:
            self.consumer.close()


def read_all(bootstrap: str, until: int) -> dict[int, bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "final", "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    out: dict[int, bytes] = {}
    deadline = time.monotonic() + 30
    try:
        while len(out) < until and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            assert msg.offset() not in out, f"offset {msg.offset()} read twice"
            out[msg.offset()] = bytes(msg.value() or b"")
    finally:
        consumer.close()
    return out


def test_kafka_clients_follow_the_failover(tmp_path: Path) -> None:
    ns = FerryNameServer(tmp_path / "ns", controller=True)
    b1 = b2 = None
    watcher = None
    try:
        b1, b2 = start(tmp_path, ns, 1), start(tmp_path, ns, 2)
        master = elected(ns.addr, GROUP, [b1, b2])
        slave = b2 if master is b1 else b1
        create_topic(master.addr, TOPIC, 1)
        assert master.kafka_bootstrap and slave.kafka_bootstrap
        bootstrap = f"{master.kafka_bootstrap},{slave.kafka_bootstrap}"
        epoch_before = replica_info(ns)[2]

        acked: dict[int, bytes] = {}
        failed: list[str] = []

        def delivered(err: KafkaError | None, msg: object) -> None:
            if err is not None:
                failed.append(str(err))
            else:
                acked[msg.offset()] = bytes(msg.value())  # type: ignore[attr-defined]

        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 60_000,
                "topic.metadata.refresh.interval.ms": 500,
                "retry.backoff.ms": 100,
            }
        )
        watcher = Watcher(bootstrap)
        watcher.start()
        i = 0

        def produce_until(count: int, timeout: float) -> None:
            nonlocal i
            deadline = time.monotonic() + timeout
            while len(acked) < count:
                assert time.monotonic() < deadline, f"{len(acked)}/{count} acked; errors {failed[-3:]}"
                producer.produce(TOPIC, f"v-{i}".encode(), partition=0, on_delivery=delivered)
                i += 1
                producer.poll(0.01)

        produce_until(200, 30)
        master.kill()
        t0 = time.monotonic()
        produce_until(400, 60)
        producer.flush(60)
        print(f"kafka failover: 200 more records acknowledged {time.monotonic() - t0:.2f}s after the kill")
        assert replica_info(ns)[0] == slave.addr
        assert replica_info(ns)[2] > epoch_before

        final = read_all(slave.kafka_bootstrap, max(acked) + 1)
        assert sorted(final) == list(range(len(final))), "offsets not dense"
        for off, val in acked.items():
            assert final.get(off) == val, f"acknowledged record {val!r} at {off} not read back there"
        values = list(final.values())
        assert len(values) == len(set(values)), "a record stored twice"
        watcher.stop_at.set()
        watcher.join(10)
        assert not watcher.conflicts, f"an offset held two values: {watcher.conflicts[:3]}"
        for off, val in watcher.seen.items():
            assert final.get(off) == val, f"the consumer saw {val!r} at {off}, later gone"
    finally:
        if watcher is not None:
            watcher.stop_at.set()
        for b in (b1, b2):
            if b is not None:
                b.stop()
        ns.stop()
