"""Controller mode with real processes: a name server running a one-node controller and two
brokers of one group (``enableControllerMode``). One is elected master (route id 0), the other
replicates; kill -9 of the master: the slave is elected, takes id 0 at its own address, the
producer's sends succeed again and every acknowledged message (SYNC_MASTER) is readable from the
new master; the old master, restarted, follows the new one as a slave.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from ferrymq.client import Message, MQError, Producer, SendStatus
from ferrymq.core.remoting.transport import connect, split_addr
from tests.cluster_helpers import controller_broker, eventually, max_offset, routed
from tests.cluster_helpers import replica_info as controller_replica_info
from tests.remoting_helpers import pull_all

GROUP = "ctlGroup"
TOPIC = "CtlFailoverTopic"
QUEUES = 4
HB_TIMEOUT_MS = 2000


def start(tmp: Path, ns: FerryNameServer, identity: int) -> FerryBroker:
    return controller_broker(
        tmp,
        ns.addr,
        GROUP,
        identity,
        controllerHeartBeatTimeoutMills=str(HB_TIMEOUT_MS),
        mappedFileSizeCommitLog=str(64 * 1024),
        defaultTopicQueueNums=str(QUEUES),
    )


def replica_info(ns: FerryNameServer) -> tuple[str | None, set[int]]:
    """The controller's live master address and in-sync set of the group."""
    master, in_sync, _ = controller_replica_info(ns.addr, GROUP)
    return master, in_sync


def route_ids(ns: FerryNameServer) -> dict[int, str]:
    route = routed(ns.addr, TOPIC)
    if route is None:
        return {}
    return {
        int(k): v for bd in route.broker_datas if bd.broker_name == GROUP for k, v in bd.broker_addrs.items()
    }


def send_status(producer: Producer, body: bytes) -> SendStatus | None:
    try:
        return producer.send(Message(TOPIC, body)).status
    except MQError:
        return None


def read_bodies(addr: str) -> set[bytes]:
    async def go() -> set[bytes]:
        conn = await connect(*split_addr(addr))
        try:
            return {m.body for m in await pull_all(conn, TOPIC, range(QUEUES))}
        finally:
            conn.close()

    return asyncio.run(go())


def test_failover_to_the_slave_and_back(tmp_path: Path) -> None:
    ns = FerryNameServer(tmp_path / "ns", controller=True)
    b1 = b2 = b1_again = None
    producer = Producer(ns.addr, group="ctlProducer", send_timeout=3.0, poll_namesrv_interval=0.5)
    try:
        b1, b2 = start(tmp_path, ns, 1), start(tmp_path, ns, 2)
        by_addr = {b1.addr: b1, b2.addr: b2}
        eventually(lambda: replica_info(ns)[0] in by_addr, 20, "a master elected")
        master = by_addr[replica_info(ns)[0] or ""]
        slave = b2 if master is b1 else b1
        ident = {b1.addr: 1, b2.addr: 2}
        eventually(lambda: replica_info(ns)[1] == {1, 2}, 20, "the slave in the in-sync set")

        producer.start()
        acked: list[bytes] = []
        for i in range(40):
            body = f"before-{i}".encode()
            assert producer.send(Message(TOPIC, body)).status == SendStatus.SEND_OK
            acked.append(body)
        eventually(lambda: route_ids(ns) == {0: master.addr, ident[slave.addr]: slave.addr}, 10, "route")

        master.kill()
        t0 = time.monotonic()
        eventually(lambda: replica_info(ns)[0] == slave.addr, 20, "the slave elected")
        t_elected = time.monotonic() - t0
        eventually(lambda: route_ids(ns).get(0) == slave.addr, 10, "route id 0 at the new master")
        t_routed = time.monotonic() - t0
        # the producer's sends: refused or unroutable until its route has the new master; then
        # SEND_OK: alone in its in-sync set, the new master needs no slave (minInSyncReplicas=1)
        deadline = time.monotonic() + 20
        while send_status(producer, b"after-0") != SendStatus.SEND_OK:
            assert time.monotonic() < deadline, "no send stored after the failover"
            time.sleep(0.1)
        t_send = time.monotonic() - t0
        print(f"failover: elected {t_elected:.2f}s, route id 0 {t_routed:.2f}s, first send {t_send:.2f}s")
        assert set(acked) <= read_bodies(slave.addr)

        b1_again = start(tmp_path, ns, ident[master.addr])
        eventually(lambda: route_ids(ns).get(ident[master.addr]) == b1_again.addr, 20, "old master as slave")
        assert replica_info(ns)[0] == slave.addr
        eventually(
            lambda: all(
                max_offset(b1_again.addr, TOPIC, q) == max_offset(slave.addr, TOPIC, q) for q in range(QUEUES)
            ),
            20,
            "the old master replicating from the new one",
        )
        # a slave again: SYNC_MASTER sends are acknowledged by it
        eventually(lambda: send_status(producer, b"after-rejoin") == SendStatus.SEND_OK, 20, "SEND_OK again")
    finally:
        producer.shutdown()
        for b in (b1, b2, b1_again):
            if b is not None:
                b.stop()
        ns.stop()
