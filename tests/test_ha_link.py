"""The HA link in one interpreter: a master's HaMaster and a slave's HaSlave over a real socket,
each with its own store (small segments, so replication rolls them)."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.ha import ReplicationState, SlaveWait
from ferrymq.core.ha.master import HaMaster
from ferrymq.core.ha.slave import HaSlave
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import connect
from ferrymq.core.store import MessageStore
from tests.remoting_helpers import send_v2
from tests.test_store_support import make_config, put

TOPIC = "LinkTopic"


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


@asynccontextmanager
async def master_node(
    root: Path, **conf: object
) -> AsyncIterator[tuple[MessageStore, ReplicationState, HaMaster]]:
    config = make_config(root, listenHost="127.0.0.1", **conf)
    store = MessageStore(config)
    state = ReplicationState(config)
    ha = HaMaster(config, store, state)
    await ha.start(0)
    try:
        yield store, state, ha
    finally:
        await ha.stop()
        store.close()


@asynccontextmanager
async def slave_node(
    root: Path, master_addr: str | None
) -> AsyncIterator[tuple[MessageStore, ReplicationState]]:
    config = make_config(root, brokerRole="SLAVE", brokerId=1, haMasterAddress=master_addr)
    store = MessageStore(config)
    state = ReplicationState(config)
    ha = HaSlave(config, store, state)
    ha.start()
    try:
        yield store, state
    finally:
        await ha.stop()
        store.close()


def test_a_slave_follows_its_master_and_acks(tmp_path: Path) -> None:
    async def main() -> None:
        rng = random.Random(1)
        async with master_node(tmp_path / "m", haTransferBatchSize=1024) as (mstore, mstate, ha):
            addr = f"127.0.0.1:{ha.port}"
            assert mstate.config.ha_listen_port == ha.port
            for i in range(50):
                put(mstore, TOPIC, i % 2, rng.randbytes(rng.randint(1, 3000)))
            async with slave_node(tmp_path / "s", addr) as (sstore, sstate):
                await until(lambda: sstore.replication_offset == mstore.commit_log_max_offset)
                assert sstate.master_connected
                await until(lambda: mstate.max_ack_offset() == mstore.commit_log_max_offset)
                for _ in range(3):  # puts are replicated as they land, each acked
                    r = put(mstore, TOPIC, 0, rng.randbytes(70_000 // 3))
                    assert await mstate.wait_for_slaves(r.end_offset, 5000) is SlaveWait.OK
                # it started empty: from the start of the master's last segment (RocketMQ's rule)
                assert len(mstore.commit_log.files.files) > 1
                lo, hi = sstore.queue_bounds(TOPIC, 0)
                assert hi == mstore.max_offset(TOPIC, 0) and lo > 0
            await until(lambda: not mstate.slaves)
            r = put(mstore, TOPIC, 0, b"alone")
            assert await mstate.wait_for_slaves(r.end_offset, 100) is SlaveWait.SLAVE_NOT_AVAILABLE

    asyncio.run(main())


def test_a_report_beyond_the_masters_end_closes_the_link(tmp_path: Path, caplog) -> None:
    async def main() -> None:
        async with master_node(tmp_path / "m") as (mstore, mstate, ha):
            put(mstore, TOPIC, 0, b"x")
            reader, writer = await asyncio.open_connection("127.0.0.1", ha.port)
            writer.write(struct.pack(">q", 0))
            header = await reader.readexactly(12)
            assert struct.unpack(">qi", header)[0] == 0
            writer.write(struct.pack(">q", 10**12))  # "I have everything": a lie
            async with asyncio.timeout(5):
                while await reader.read(65536):
                    pass
            assert not mstate.slaves
            writer.close()

    asyncio.run(main())
    said = [r.getMessage() for r in caplog.records]
    assert any("beyond this master's end" in m and "127.0.0.1:" in m for m in said)


def test_a_slave_whose_offset_the_master_lacks_is_refused_loudly(tmp_path: Path, caplog) -> None:
    async def main() -> None:
        async with master_node(tmp_path / "m2") as (m2, _s2, ha2):
            put(m2, TOPIC, 0, b"short")  # a master that never had the slave's data
            async with master_node(tmp_path / "m") as (mstore, _state, ha):
                for _ in range(5):
                    put(mstore, TOPIC, 0, b"y" * 100)
                async with slave_node(tmp_path / "s", f"127.0.0.1:{ha.port}") as (sstore, sstate):
                    await until(lambda: sstore.replication_offset == mstore.commit_log_max_offset)
                    sstate.master_ha_addr = f"127.0.0.1:{ha2.port}"  # the address changes
                    await until(lambda: any("REFUSED" in r.getMessage() for r in caplog.records))
                    assert sstore.replication_offset == mstore.commit_log_max_offset  # untouched

    asyncio.run(main())


def test_brokers_of_a_group_replicate_and_a_slave_takes_no_writes(tmp_path: Path) -> None:
    def config(name: str, **conf: object) -> BrokerConfig:
        base = {"listen_port": 0, "listen_host": "127.0.0.1", "store_path_root_dir": tmp_path / name}
        return BrokerConfig(**{**base, "mapped_file_size_commit_log": 65536, **conf})

    async def main() -> None:
        master = Broker(config("m"))
        await master.start()
        assert master.ha_master is not None and master.ha_addr == f"127.0.0.1:{master.ha_master.port}"
        assert master.config.ha_server_addr == master.ha_addr  # what REGISTER_BROKER advertises
        slave = Broker(config("s", broker_role="SLAVE", broker_id=1, ha_master_address=master.ha_addr))
        slave.ha.master_addr = f"127.0.0.1:{master.port}"  # what a REGISTER_BROKER answer says
        await slave.start()
        try:
            assert slave.ha_addr is None and slave.ha_slave is not None
            assert slave.schedule._task is None and slave.timer._task is None  # master-only services
            conn = await connect("127.0.0.1", master.port)
            r = await conn.invoke(send_v2(TOPIC, b"to the master", 0), timeout=5)
            assert r.code == ResponseCode.SUCCESS
            conn.close()
            await until(lambda: slave.store.max_offset(TOPIC, 0) == 1)
            conn = await connect("127.0.0.1", slave.port)
            for cmd in (
                send_v2(TOPIC, b"to a slave", 0),
                RemotingCommand(code=RequestCode.SEND_MESSAGE, ext_fields={}),
                RemotingCommand(code=RequestCode.SEND_BATCH_MESSAGE, ext_fields={}),
                RemotingCommand(code=RequestCode.CONSUMER_SEND_MSG_BACK, ext_fields={"group": "g"}),
            ):
                assert (await conn.invoke(cmd, timeout=5)).code == ResponseCode.SERVICE_NOT_AVAILABLE
            conn.close()
            assert slave.store.max_offset(TOPIC, 0) == 1
            # the slave said it is ferrymq (HA_SLAVE_HELLO): it is sent Kafka batch entries too
            await until(lambda: not master.ha.foreign)
            master.store.put_batch_entry(TOPIC, 1, 3, 1, b"three records")
            await until(lambda: slave.store.max_offset(TOPIC, 1) == 3)
        finally:
            await slave.stop()
            await master.stop()

    asyncio.run(main())


def test_a_foreign_slave_is_never_sent_a_batch_entry_until_it_identifies(tmp_path: Path, caplog) -> None:
    """An HA client that does not say it is ferrymq (an Apache RocketMQ slave, whose dispatcher
    stops for good at a Kafka batch entry) gets everything before the first batch entry, then
    heartbeats; once identified (HA_SLAVE_HELLO) it gets the rest."""

    async def main() -> None:
        async with master_node(tmp_path / "m", haSendHeartbeatInterval=50) as (mstore, mstate, ha):
            put(mstore, TOPIC, 0, b"native before")
            batch = mstore.put_batch_entry(TOPIC, 1, 2, 1, b"kafka-ish payload")
            put(mstore, TOPIC, 0, b"native after")
            end = mstore.commit_log_max_offset
            reader, writer = await asyncio.open_connection("127.0.0.1", ha.port)
            peer = "{}:{}".format(*writer.get_extra_info("sockname"))
            writer.write(struct.pack(">q", 0))
            got = 0
            heartbeats_at_batch = 0
            while heartbeats_at_batch < 3:  # it holds at the batch entry, heartbeating there
                async with asyncio.timeout(5):
                    offset, size = struct.unpack(">qi", await reader.readexactly(12))
                await reader.readexactly(size)
                got = offset + size
                heartbeats_at_batch += size == 0 and offset == batch.phys_offset
            assert got == batch.phys_offset and peer in mstate.foreign
            assert any("REFUSED" in r.getMessage() and peer in r.getMessage() for r in caplog.records)
            ha.identify(peer)
            assert peer not in mstate.foreign
            while got < end:
                offset, size = struct.unpack(">qi", await reader.readexactly(12))
                await reader.readexactly(size)
                got = offset + size
            assert got == end
            writer.close()

    asyncio.run(main())
