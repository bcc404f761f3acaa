"""A Kafka transaction open when the master fails over (controller mode): the slave copied the
transaction coordinator's state from its master (slave metadata sync, REPLICATED_STATE), so the new
master aborts the transaction at its timeout and the partition's last stable offset moves on —
read_committed Kafka consumers and RocketMQ pulls get what is produced afterwards.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.message import decode_stored_messages
from tests.cluster_helpers import call, controller_broker, create_topic, elected, eventually, replica_info
from tests.remoting_helpers import pull

GROUP = "kafkaTxnHa"
TOPIC = "ktxnha"


#: short timers: the slave copies every 200 ms, timed-out transactions are looked for as often
CONF = {"slaveSyncInterval": "200", "defaultTopicQueueNums": "1", "kafkaTransactionAbortCheckMs": "200"}


def config_file(tmp: Path, identity: int, name: str) -> Any:
    path = tmp / f"b{identity}" / "store" / "config" / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def rocketmq_bodies(addr: str) -> list[bytes]:
    resp = call(addr, RequestCode.PULL_MESSAGE, pull(TOPIC, 0, 0).ext_fields)
    if resp.code != ResponseCode.SUCCESS:
        return []
    return [m.body for m in decode_stored_messages(resp.body)]


def read_committed(bootstrap: str, until: bytes) -> list[bytes]:
    """What a read_committed consumer reads from offset 0 until ``until`` (or 15 s)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "rc",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + 15
    try:
        while until not in got and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(bytes(msg.value() or b""))
    finally:
        consumer.close()
    return got


@contextlib.contextmanager
def group_of_two(tmp_path: Path, conf: dict[str, str]) -> Iterator[tuple[str, FerryBroker, FerryBroker, int]]:
    """A name server (controller) and a two-broker group with a Kafka listener each, a topic of one
    queue on the master: (name server address, master, slave, the slave's broker id)."""
    ns = FerryNameServer(tmp_path / "ns", controller=True)
    brokers: list[FerryBroker] = []
    try:
        brokers = [controller_broker(tmp_path, ns.addr, GROUP, i, kafka=True, **conf) for i in (1, 2)]
        master = elected(ns.addr, GROUP, brokers)
        slave = brokers[1] if master is brokers[0] else brokers[0]
        create_topic(master.addr, TOPIC, 1)
        assert master.kafka_bootstrap and slave.kafka_bootstrap
        yield ns.addr, master, slave, 2 if slave is brokers[1] else 1
    finally:
        for b in brokers:
            b.stop()
        ns.stop()


def open_transaction(bootstrap: str, txn_id: str) -> Producer:
    """A transactional producer with three records stored (acks=all: replicated) and not ended."""
    txn = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": txn_id,
            "transaction.timeout.ms": 3000,
            "acks": "all",
        }
    )
    txn.init_transactions(20)
    txn.begin_transaction()
    for i in range(3):
        txn.produce(TOPIC, f"open-{i}".encode(), partition=0)
    assert txn.flush(20) == 0
    return txn


def test_open_transaction_is_aborted_on_the_new_master(tmp_path: Path) -> None:
    with group_of_two(tmp_path, CONF) as (ns_addr, master, slave, slave_identity):
        assert master.kafka_bootstrap and slave.kafka_bootstrap
        txn = open_transaction(master.kafka_bootstrap, "tx-ha")  # noqa: F841 (kept open)

        def slave_knows_it() -> bool:
            coordinator = config_file(tmp_path, slave_identity, "kafkaTransactions.json") or {}
            tracked = config_file(tmp_path, slave_identity, "kafkaTxnPartitions.json") or {}
            txns = coordinator.get("transactions", [])
            return TOPIC in tracked and any(t["id"] == "tx-ha" and t["partitions"] for t in txns)

        eventually(slave_knows_it, 10, "the slave copied the open transaction from its master")
        master.kill()
        eventually(lambda: replica_info(ns_addr, GROUP)[0] == slave.addr, 20, "the slave elected")

        plain = Producer({"bootstrap.servers": slave.kafka_bootstrap, "acks": "all"})
        plain.produce(TOPIC, b"after", partition=0)
        assert plain.flush(20) == 0

        got = read_committed(slave.kafka_bootstrap, b"after")
        assert got == [b"after"], f"read_committed got {got}: the open transaction was never ended"
        assert rocketmq_bodies(slave.addr)[-1:] == [b"after"]

        # a new transactional producer on the new master gets a producer id of its own (the old
        # master's ids are reserved on the slave): its transaction commits
        txn2 = Producer({"bootstrap.servers": slave.kafka_bootstrap, "transactional.id": "tx-2"})
        txn2.init_transactions(20)
        txn2.begin_transaction()
        txn2.produce(TOPIC, b"committed", partition=0)
        txn2.commit_transaction(20)
        assert read_committed(slave.kafka_bootstrap, b"committed") == [b"after", b"committed"]


#: the slave copies its master's metadata only on a kick (the topic's first replicated entry) or
#: after 10 min: a transaction begun after that copy is known to the slave only by its batches
LATE = {
    "slaveSyncInterval": "600000",
    "defaultTopicQueueNums": "1",
    "kafkaTransactionAbortCheckMs": "200",
    "kafkaTransactionMaxTimeoutMs": "3000",
}


def test_transaction_begun_since_the_last_slave_sync_stays_unstable(tmp_path: Path) -> None:
    """A transaction that first touches a partition after the slave's last metadata copy: the slave
    learns it from the replicated batches, so the new master's last stable offset stops at its
    first offset at once (RocketMQ pulls included), and the orphan fallback aborts it later."""
    with group_of_two(tmp_path, LATE) as (ns_addr, master, slave, slave_identity):
        assert master.kafka_bootstrap and slave.kafka_bootstrap
        plain = Producer({"bootstrap.servers": master.kafka_bootstrap, "acks": "all"})
        plain.produce(TOPIC, b"warm", partition=0)
        assert plain.flush(20) == 0

        def slave_has_topic() -> bool:
            topics = config_file(tmp_path, slave_identity, "topics.json") or {}
            return TOPIC in topics.get("topicConfigTable", {})

        eventually(slave_has_topic, 10, "the slave copied the topic (its one metadata sync)")
        txn = open_transaction(master.kafka_bootstrap, "tx-late")  # noqa: F841 (kept open)
        master.kill()
        eventually(lambda: replica_info(ns_addr, GROUP)[0] == slave.addr, 20, "the slave elected")

        assert rocketmq_bodies(slave.addr) == [b"warm"], "the open transaction's records read as stable"
        after = Producer({"bootstrap.servers": slave.kafka_bootstrap, "acks": "all"})
        after.produce(TOPIC, b"after", partition=0)
        assert after.flush(20) == 0
        got = read_committed(slave.kafka_bootstrap, b"after")
        assert got == [b"warm", b"after"], f"read_committed got {got}"
