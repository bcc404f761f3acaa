"""The group high watermark with real processes (controller mode): a consumer pulling from the
master never receives a message its in-sync slave has not acknowledged.

The slave's acknowledgements are held back deterministically by SIGSTOP (shorter than the HA
housekeeping interval, so the master keeps the link and the slave in the in-sync set). A send
stored meanwhile (FLUSH_SLAVE_TIMEOUT from the SYNC_MASTER) must stay invisible: pulls find
nothing, GET_MAX_OFFSET answers the confirmed end. SIGCONT: the slave acknowledges, the watermark
advances, and a long poll parked before it wakes with the message (not at its suspend timeout).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import decode_stored_messages
from ferrymq.core.remoting.transport import connect, split_addr
from tests.cluster_helpers import controller_broker, elected, eventually, max_offset
from tests.remoting_helpers import pull, send_v2

GROUP = "hwGroup"
TOPIC = "HwTopic"


def start(tmp: Path, ns: FerryNameServer, identity: int, **extra: str) -> FerryBroker:
    # the stopped slave must stay in the in-sync set: long silences before anyone gives up
    return controller_broker(
        tmp,
        ns.addr,
        GROUP,
        identity,
        slaveTimeout="300",
        controllerHeartBeatTimeoutMills="60000",
        haHousekeepingInterval="60000",
        slaveSyncInterval="200",
        mappedFileSizeCommitLog=str(64 * 1024),
        defaultTopicQueueNums="1",
        **extra,
    )


async def _send(addr: str, body: bytes) -> int:
    conn = await connect(*split_addr(addr))
    try:
        return (await conn.invoke(send_v2(TOPIC, body, 0, queue_nums=1), timeout=10)).code
    finally:
        conn.close()


async def _pull(addr: str, offset: int, suspend_ms: int = 0) -> tuple[int, list[bytes], float]:
    conn = await connect(*split_addr(addr))
    t0 = time.monotonic()
    try:
        resp = await conn.invoke(pull(TOPIC, 0, offset, suspend_ms=suspend_ms), timeout=30)
    finally:
        conn.close()
    bodies = [m.body for m in decode_stored_messages(resp.body)] if resp.code == ResponseCode.SUCCESS else []
    return resp.code, bodies, time.monotonic() - t0


def test_pulls_stop_at_what_the_in_sync_slave_acknowledged(tmp_path: Path) -> None:
    ns = FerryNameServer(tmp_path / "ns", controller=True)
    b1 = b2 = None
    try:
        b1, b2 = start(tmp_path, ns, 1), start(tmp_path, ns, 2)
        master = elected(ns.addr, GROUP, [b1, b2])
        slave = b2 if master is b1 else b1
        assert asyncio.run(_send(master.addr, b"replicated")) == ResponseCode.SUCCESS
        eventually(lambda: max_offset(master.addr, TOPIC, 0) == 1, 10, "the first message confirmed")

        assert slave.proc is not None
        os.kill(slave.proc.pid, signal.SIGSTOP)
        try:
            code = asyncio.run(_send(master.addr, b"not-yet-replicated"))
            assert code == ResponseCode.FLUSH_SLAVE_TIMEOUT  # stored, the slave never acked it
            code, bodies, _ = asyncio.run(_pull(master.addr, 0))
            assert bodies == [b"replicated"], "a consumer saw a message the in-sync slave does not hold"
            code, bodies, _ = asyncio.run(_pull(master.addr, 1))
            assert code == ResponseCode.PULL_NOT_FOUND and bodies == []
            assert max_offset(master.addr, TOPIC, 0) == 1  # GET_MAX_OFFSET: the confirmed end

            async def park_then_resume() -> tuple[int, list[bytes], float]:
                parked = asyncio.create_task(_pull(master.addr, 1, suspend_ms=20_000))
                await asyncio.sleep(0.5)  # let the pull park (it cannot finish before SIGCONT)
                assert not parked.done()
                os.kill(slave.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
                return await parked

            code, bodies, took = asyncio.run(park_then_resume())
        finally:
            os.kill(slave.proc.pid, signal.SIGCONT)
        assert bodies == [b"not-yet-replicated"]
        assert took < 15, f"the parked pull waited {took:.1f}s: not woken by the watermark"
        assert max_offset(master.addr, TOPIC, 0) == 2
    finally:
        for b in (b1, b2):
            if b is not None:
                b.stop()
        ns.stop()


def test_a_slave_serves_only_what_its_master_confirmed(tmp_path: Path) -> None:
    """Two slaves; one stopped holds the master's watermark back, so the running slave, which has
    the message, must not show it either (it learns the watermark with HA_CONFIRM_OFFSET)."""
    ns = FerryNameServer(tmp_path / "ns", controller=True)
    brokers: list[FerryBroker] = []
    try:
        brokers = [start(tmp_path, ns, i, slaveReadEnable="true") for i in (1, 2, 3)]
        master = elected(ns.addr, GROUP, brokers)
        reader, stopped = [b for b in brokers if b is not master]
        assert asyncio.run(_send(master.addr, b"replicated")) == ResponseCode.SUCCESS
        eventually(lambda: max_offset(reader.addr, TOPIC, 0) == 1, 10, "the slave learnt the watermark")
        eventually(lambda: asyncio.run(_pull(reader.addr, 0))[1] != [], 10, "the slave has the topic")
        assert stopped.proc is not None
        os.kill(stopped.proc.pid, signal.SIGSTOP)
        try:
            # stored, on one slave only: not SEND_OK, every member of the in-sync set must hold it
            assert asyncio.run(_send(master.addr, b"on-one-slave")) == ResponseCode.FLUSH_SLAVE_TIMEOUT
            end = asyncio.run(_commit_log_end(master.addr))
            eventually(
                lambda: asyncio.run(_commit_log_end(reader.addr)) == end, 10, "the running slave has it"
            )
            _, bodies, _ = asyncio.run(_pull(reader.addr, 0))
            assert bodies == [b"replicated"], "a slave served a message its master had not confirmed"
            assert max_offset(reader.addr, TOPIC, 0) == 1
        finally:
            os.kill(stopped.proc.pid, signal.SIGCONT)
        eventually(lambda: max_offset(reader.addr, TOPIC, 0) == 2, 20, "confirmed once both acked")
        assert asyncio.run(_pull(reader.addr, 1))[1] == [b"on-one-slave"]
    finally:
        for b in brokers:
            b.stop()
        ns.stop()


async def _commit_log_end(addr: str) -> int:
    """Where a broker's commit log ends, confirmed or not (GET_BROKER_HA_STATUS)."""
    conn = await connect(*split_addr(addr))
    try:
        resp = await conn.invoke(RemotingCommand(code=RequestCode.GET_BROKER_HA_STATUS), timeout=10)
    finally:
        conn.close()
    info = json.loads(bytes(resp.body))
    return int(
        info["haClientRuntimeInfo"]["maxOffset"]
        if info["haClientRuntimeInfo"]
        else info["masterCommitLogMaxOffset"]
    )
