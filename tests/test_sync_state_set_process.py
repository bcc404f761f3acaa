"""SYNC_MASTER in controller mode with real processes, a group of three (RocketMQ 5's
allAckInSyncStateSet): a send is answered SEND_OK once every member of the in-sync set holds it.
One slave SIGSTOPped: sends time out (FLUSH_SLAVE_TIMEOUT) until the master drops it from the set
(haHousekeepingInterval of silence, then ALTER_SYNC_STATE_SET), then succeed; the other slave
killed too, the set is the master alone, below minInSyncReplicas=2: refused before the append
(SYSTEM_ERROR "in-sync replicas not enough"); the stopped slave resumed and caught up: SEND_OK.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from ferrymq.client import BrokerError, Message, Producer, SendStatus
from ferrymq.core.remoting.codes import ResponseCode
from tests.cluster_helpers import controller_broker, elected, eventually, max_offset, replica_info

GROUP = "isrGroup"
TOPIC = "IsrTopic"


def start(tmp: Path, ns: FerryNameServer, identity: int) -> FerryBroker:
    return controller_broker(
        tmp,
        ns.addr,
        GROUP,
        identity,
        slaveTimeout="1000",
        haSendHeartbeatInterval="200",
        haHousekeepingInterval="1500",
        minInSyncReplicas="2",
        defaultTopicQueueNums="1",
    )


def identity(brokers: list[FerryBroker], b: FerryBroker) -> int:
    return brokers.index(b) + 1


def test_sends_wait_for_every_member_of_the_in_sync_set(tmp_path: Path) -> None:
    ns = FerryNameServer(tmp_path / "ns", controller=True)
    brokers: list[FerryBroker] = []
    stopped: FerryBroker | None = None
    producer = Producer(
        ns.addr, group="isrProducer", send_timeout=5.0, retry_times=0, poll_namesrv_interval=0.5
    )
    try:
        brokers = [start(tmp_path, ns, i) for i in (1, 2, 3)]
        master = elected(ns.addr, GROUP, brokers)
        slave_a, slave_b = (b for b in brokers if b is not master)
        producer.start()
        assert producer.send(Message(TOPIC, b"all-three")).status == SendStatus.SEND_OK

        assert slave_a.proc is not None
        os.kill(slave_a.proc.pid, signal.SIGSTOP)
        stopped = slave_a
        # one slave acknowledges, the stopped member does not: no SEND_OK (stored, not on every member)
        assert producer.send(Message(TOPIC, b"held")).status == SendStatus.FLUSH_SLAVE_TIMEOUT
        left = {identity(brokers, master), identity(brokers, slave_b)}
        eventually(lambda: replica_info(ns.addr, GROUP)[1] == left, 20, "the stopped slave out of the set")
        assert producer.send(Message(TOPIC, b"two-left")).status == SendStatus.SEND_OK

        slave_b.kill()
        eventually(lambda: replica_info(ns.addr, GROUP)[1] == {identity(brokers, master)}, 20, "master alone")
        before = max_offset(master.addr, TOPIC, 0)
        with pytest.raises(BrokerError) as refused:
            producer.send(Message(TOPIC, b"refused"))
        assert refused.value.code == ResponseCode.SYSTEM_ERROR
        assert "in-sync replicas not enough" in refused.value.remark
        assert max_offset(master.addr, TOPIC, 0) == before  # refused before the append

        assert slave_a.proc is not None
        os.kill(slave_a.proc.pid, signal.SIGCONT)
        stopped = None
        eventually(lambda: len(replica_info(ns.addr, GROUP)[1]) == 2, 20, "the resumed slave back in the set")
        assert producer.send(Message(TOPIC, b"back")).status == SendStatus.SEND_OK
    finally:
        producer.shutdown()
        if stopped is not None and stopped.proc is not None:
            os.kill(stopped.proc.pid, signal.SIGCONT)
        for b in brokers:
            b.stop()
        ns.stop()
