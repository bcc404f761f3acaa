"""Broker groups with real processes: a master and a slave (same brokerName) over the HA port.

The slave's store is compared with the master's after both stopped (same queue offsets, same
bytes); while they run, GET_MAX_OFFSET on the slave says how far it got. Segments are small
(64 KiB) so replication rolls them.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import decode_stored_messages
from ferrymq.core.remoting.transport import connect, split_addr
from ferrymq.core.store import MessageStore
from tests.cluster_helpers import eventually, max_offset
from tests.remoting_helpers import send_v2

SEGMENT = 64 * 1024
GROUP = "haGroup"
TOPIC = "HaProcTopic"
QUEUES = 4
COMMON = {"mappedFileSizeCommitLog": str(SEGMENT), "defaultTopicQueueNums": str(QUEUES)}


def start_master(tmp: Path, ns: FerryNameServer, **conf: str) -> FerryBroker:
    return FerryBroker(tmp / "master", ns.addr, GROUP, conf={**COMMON, **conf})


def start_slave(tmp: Path, ns: FerryNameServer, master: FerryBroker, **conf: str) -> FerryBroker:
    assert master.ha_addr is not None
    slave_conf = {**COMMON, "brokerRole": "SLAVE", "brokerId": "1", "haMasterAddress": master.ha_addr}
    return FerryBroker(tmp / "slave", ns.addr, GROUP, conf={**slave_conf, **conf})


def send_all(addr: str, bodies: list[bytes], concurrency: int = 1) -> list[RemotingCommand]:
    """SEND_MESSAGE_V2 of each body (queue i % QUEUES); the responses, in order."""

    async def go() -> list[RemotingCommand]:
        host, port = split_addr(addr)
        conn = await connect(host, port)
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int, body: bytes) -> RemotingCommand:
            async with sem:
                return await conn.invoke(send_v2(TOPIC, body, i % QUEUES, queue_nums=QUEUES), timeout=15)

        try:
            return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))))
        finally:
            conn.close()

    return asyncio.run(go())


def caught_up(master: FerryBroker, slave: FerryBroker) -> bool:
    return all(max_offset(slave.addr, TOPIC, q) == max_offset(master.addr, TOPIC, q) for q in range(QUEUES))


def open_copy(data_dir: Path) -> MessageStore:
    """A stopped broker's store, opened in this process to compare bytes."""
    values = {"storePathRootDir": str(data_dir / "store"), "mappedFileSizeCommitLog": str(SEGMENT)}
    return MessageStore(BrokerConfig.build(values))


def queue_entries(store: MessageStore, q: int) -> dict[int, bytes]:
    cq = store.consume_queue(TOPIC, q)
    out = {}
    for off in range(cq.min_offset, cq.max_offset):
        u = cq.unit(off)
        assert u is not None and u[1] > 0
        out[off] = bytes(store.commit_log.read(u[0], u[1]))
    return out


def test_a_slave_holds_the_masters_messages_at_the_same_offsets(tmp_path: Path) -> None:
    rng = random.Random(9)
    ns = FerryNameServer(tmp_path / "ns")
    master = start_master(tmp_path, ns)
    slave = None
    try:
        assert master.ha_addr and ", ha 127.0.0.1:" in master.ready_line
        slave = start_slave(tmp_path, ns, master)
        bodies = [rng.randbytes(rng.randint(10, 4000)) for _ in range(150)]  # several segments
        assert {r.code for r in send_all(master.addr, bodies, concurrency=8)} == {ResponseCode.SUCCESS}
        eventually(lambda: caught_up(master, slave), 20, "the slave caught up")
        slave.stop()  # a restarted slave resumes where it stopped
        more = [rng.randbytes(rng.randint(10, 4000)) for _ in range(60)]
        assert {r.code for r in send_all(master.addr, more, concurrency=8)} == {ResponseCode.SUCCESS}
        slave = start_slave(tmp_path, ns, master)
        eventually(lambda: caught_up(master, slave), 20, "the restarted slave caught up")
        send_code = send_all(slave.addr, [b"to a slave"])[0].code
        assert send_code == ResponseCode.SERVICE_NOT_AVAILABLE  # a slave takes no sends
    finally:
        if slave is not None:
            slave.stop()
        master.stop()
        ns.stop()
    m, s = open_copy(tmp_path / "master"), open_copy(tmp_path / "slave")
    try:
        assert s.commit_log_min_offset == 0  # it was empty when the master had one segment
        for q in range(QUEUES):
            assert queue_entries(s, q) == queue_entries(m, q)
        assert sum(len(queue_entries(s, q)) for q in range(QUEUES)) == 210
    finally:
        m.close()
        s.close()


def test_sync_master_answers_by_what_the_slave_acknowledged(tmp_path: Path) -> None:
    ns = FerryNameServer(tmp_path / "ns")
    master = start_master(tmp_path, ns, brokerRole="SYNC_MASTER", slaveTimeout="1000")
    slave = None
    try:
        alone = send_all(master.addr, [b"no slave yet"])[0]
        assert alone.code == ResponseCode.SLAVE_NOT_AVAILABLE  # stored all the same: the header says where
        assert alone.ext_fields["queueOffset"] == "0" and alone.ext_fields["msgId"]
        slave = start_slave(tmp_path, ns, master)
        eventually(lambda: caught_up(master, slave), 20, "the slave caught up")
        ok = send_all(master.addr, [b"with a slave"] * 5, concurrency=5)
        assert {r.code for r in ok} == {ResponseCode.SUCCESS}
        assert slave.proc is not None
        os.kill(slave.proc.pid, signal.SIGSTOP)
        try:
            late = send_all(master.addr, [b"slave stopped"])[0]
        finally:
            os.kill(slave.proc.pid, signal.SIGCONT)
        assert late.code == ResponseCode.FLUSH_SLAVE_TIMEOUT
        assert late.ext_fields["queueOffset"] and late.ext_fields["msgId"]
        assert {r.code for r in send_all(master.addr, [b"back"] * 3)} == {ResponseCode.SUCCESS}
        eventually(lambda: caught_up(master, slave), 20, "the slave caught up again")
    finally:
        if slave is not None:
            slave.stop()
        master.stop()
        ns.stop()


def test_every_acknowledged_send_survives_a_sync_master_kill_9(tmp_path: Path) -> None:
    ns = FerryNameServer(tmp_path / "ns")
    # small frames: the slave trails the master under load, so a send acknowledged before the
    # slave had it would show (without the SYNC_MASTER wait this fails)
    master = start_master(tmp_path, ns, brokerRole="SYNC_MASTER", haTransferBatchSize="1024")
    slave = start_slave(tmp_path, ns, master)
    acked: list[tuple[int, int, bytes]] = []
    try:
        send_all(master.addr, [b"warm-up"])
        eventually(lambda: caught_up(master, slave), 20, "the slave caught up")

        async def load() -> None:
            host, port = split_addr(master.addr)
            conn = await connect(host, port)
            killed = asyncio.Event()

            async def sender(w: int) -> None:
                i = 0
                while not killed.is_set():
                    body = f"w{w}-{i}".encode() * 1500
                    try:
                        r = await conn.invoke(send_v2(TOPIC, body, w % QUEUES, queue_nums=QUEUES), timeout=5)
                    except Exception:
                        return
                    if r.code == ResponseCode.SUCCESS:
                        acked.append((int(r.ext_fields["queueId"]), int(r.ext_fields["queueOffset"]), body))
                    i += 1

            async def killer() -> None:
                while len(acked) < 300:
                    await asyncio.sleep(0.01)
                master.kill()
                killed.set()

            await asyncio.gather(killer(), *(sender(w) for w in range(8)))
            conn.close()

        asyncio.run(load())
    finally:
        master.stop()
        slave.stop()
        ns.stop()
    assert len(acked) >= 300
    s = open_copy(tmp_path / "slave")
    try:
        held = {q: queue_entries(s, q) for q in range(QUEUES)}
        missing = [
            (q, off)
            for q, off, body in acked
            if off not in held[q] or decode_stored_messages(held[q][off])[0].body != body
        ]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged sends are not on the slave"
    finally:
        s.close()


def test_a_slave_finds_its_master_through_the_name_server(tmp_path: Path) -> None:
    """No haMasterAddress: the slave takes the master's HA address from its REGISTER_BROKER
    answer, replicates, and copies the master's topics."""
    ns = FerryNameServer(tmp_path / "ns")
    master = start_master(tmp_path, ns)
    slave_conf = {**COMMON, "brokerRole": "SLAVE", "brokerId": "1", "slaveSyncInterval": "300"}
    slave = FerryBroker(tmp_path / "slave", ns.addr, GROUP, conf=slave_conf)
    try:
        bodies = [os.urandom(100) for _ in range(40)]
        assert {r.code for r in send_all(master.addr, bodies, concurrency=4)} == {ResponseCode.SUCCESS}
        eventually(lambda: caught_up(master, slave), 20, "the slave replicated without haMasterAddress")
    finally:
        slave.stop()
        master.stop()
        ns.stop()
