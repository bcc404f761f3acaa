"""Reads from slaves, in-process (issue 9, section 1): who serves a pull, what it suggests, and
which offsets a pull may move.

A slave here is a real broker started with brokerRole=SLAVE; whether its master is alive is what
registration results tell it (``broker.ha.master_addr``, set by the name-server registrar in a
running group), so these tests set that one field. Slaves with replicated data are exercised by
the process tests in test_slave_failover.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ferrymq.client._instance import ClientInstance
from ferrymq.client.message import MessageQueue
from ferrymq.client.offset_store import RemoteBrokerOffsetStore
from ferrymq.client.route import RouteManager
from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.subscription_group import SubscriptionGroupConfig
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import BrokerData
from ferrymq.core.remoting.transport import RemotingConnection
from tests.remoting_helpers import pull, send_v2
from tests.test_pull_limits import broker as plain_broker

TOPIC = "SlaveReadTopic"
GROUP = "test-group"  # the group tests.remoting_helpers.pull uses
SLAVE = {"broker_role": "SLAVE", "broker_id": 1}


@contextlib.asynccontextmanager
async def broker(tmp_path: Path, **config: Any) -> AsyncIterator[tuple[Broker, RemotingConnection]]:
    """A started broker holding TOPIC (one queue), and a connection to it."""
    async with plain_broker(tmp_path, **config) as (b, conn):
        b.topics.create_if_absent(TOPIC, 1)
        yield b, conn


def inloop(test: Callable[[Path], Awaitable[None]]) -> Callable[[Path], None]:
    """Run an async test in its own event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(tmp_path: Path) -> None:
        asyncio.run(asyncio.wait_for(test(tmp_path), 30))

    return run


def master_alive(b: Broker) -> None:
    """What a registration result naming the master tells a slave (and a connected HA link)."""
    b.ha.master_addr = "127.0.0.1:1"
    b.ha.master_connected = True


def with_commit(cmd: RemotingCommand, offset: int) -> RemotingCommand:
    cmd.ext_fields["sysFlag"] = str(int(cmd.ext_fields["sysFlag"]) | 1)
    cmd.ext_fields["commitOffset"] = str(offset)
    return cmd


def offset_request(code: int, **ext: str) -> RemotingCommand:
    fields = {"consumerGroup": GROUP, "topic": TOPIC, "queueId": "0", **ext}
    return RemotingCommand(code=code, ext_fields=fields)


async def committed(conn: RemotingConnection) -> int | None:
    resp = await conn.invoke(offset_request(RequestCode.QUERY_CONSUMER_OFFSET, setZeroIfNotFound="false"))
    return int(resp.ext_fields["offset"]) if resp.code == ResponseCode.SUCCESS else None


@inloop
async def test_master_suggests_the_slave_to_a_consumer_reading_cold_data(tmp_path: Path) -> None:
    # ratio 0: anything behind the commit-log end counts as cold (the default is 40% of RAM)
    async with broker(tmp_path, slave_read_enable=True, access_message_in_memory_max_ratio=0) as (b, conn):
        for i in range(3):
            assert (await conn.invoke(send_v2(TOPIC, b"m%d" % i, 0))).code == ResponseCode.SUCCESS
        behind = await conn.invoke(pull(TOPIC, 0, 0, max_nums=1))
        assert behind.code == ResponseCode.SUCCESS
        assert behind.ext_fields["suggestWhichBrokerId"] == "1"
        caught_up = await conn.invoke(pull(TOPIC, 0, 2, max_nums=1))
        assert caught_up.code == ResponseCode.SUCCESS
        assert caught_up.ext_fields["suggestWhichBrokerId"] == "0"
        # the group's own choices: whichBrokerWhenConsumeSlowly and brokerId
        b.subscription_groups.update(
            SubscriptionGroupConfig.model_validate(
                {"groupName": GROUP, "whichBrokerWhenConsumeSlowly": 2, "brokerId": 3}
            )
        )
        assert (await conn.invoke(pull(TOPIC, 0, 0, max_nums=1))).ext_fields["suggestWhichBrokerId"] == "2"
        assert (await conn.invoke(pull(TOPIC, 0, 2, max_nums=1))).ext_fields["suggestWhichBrokerId"] == "3"


@inloop
async def test_master_without_slave_read_always_suggests_itself(tmp_path: Path) -> None:
    async with broker(tmp_path, access_message_in_memory_max_ratio=0) as (_, conn):
        for i in range(3):
            await conn.invoke(send_v2(TOPIC, b"m%d" % i, 0))
        resp = await conn.invoke(pull(TOPIC, 0, 0, max_nums=1))
        assert resp.code == ResponseCode.SUCCESS
        assert resp.ext_fields["suggestWhichBrokerId"] == "0"


@inloop
async def test_slave_rejects_pulls_while_its_master_is_alive_without_slave_read(tmp_path: Path) -> None:
    async with broker(tmp_path, **SLAVE) as (b, conn):
        master_alive(b)
        resp = await conn.invoke(pull(TOPIC, 0, 0))
        assert resp.code == ResponseCode.SYSTEM_BUSY
        assert resp.remark is not None and "[REJECTREQUEST]" in resp.remark


@inloop
async def test_slave_serves_pulls_when_its_master_is_gone_and_keeps_the_offset(tmp_path: Path) -> None:
    async with broker(tmp_path, **SLAVE) as (b, conn):
        assert b.ha.master_addr is None  # no registration result names a master
        resp = await conn.invoke(pull(TOPIC, 0, 7))
        # a master would move the consumer back to 0 (PULL_OFFSET_MOVED); a slave that may lag
        # keeps the consumer's offset (RocketMQ's nextOffsetCorrection without offsetCheckInSlave)
        assert resp.code == ResponseCode.PULL_NOT_FOUND
        assert resp.ext_fields["nextBeginOffset"] == "7"
        assert resp.ext_fields["suggestWhichBrokerId"] == "0"


@inloop
async def test_slave_with_offset_check_corrects_like_a_master(tmp_path: Path) -> None:
    async with broker(tmp_path, offset_check_in_slave=True, **SLAVE) as (_, conn):
        resp = await conn.invoke(pull(TOPIC, 0, 7))
        assert resp.code == ResponseCode.PULL_OFFSET_MOVED
        assert resp.ext_fields["nextBeginOffset"] == "0"


@inloop
async def test_slave_read_with_a_live_master_sends_a_caught_up_consumer_back(tmp_path: Path) -> None:
    async with broker(tmp_path, slave_read_enable=True, **SLAVE) as (b, conn):
        master_alive(b)
        resp = await conn.invoke(pull(TOPIC, 0, 0))
        assert resp.code == ResponseCode.PULL_RETRY_IMMEDIATELY
        assert resp.ext_fields["suggestWhichBrokerId"] == "0"


@inloop
async def test_a_stale_pull_commit_never_moves_an_offset_backwards(tmp_path: Path) -> None:
    async with broker(tmp_path) as (_, conn):
        resp = await conn.invoke(offset_request(RequestCode.UPDATE_CONSUMER_OFFSET, commitOffset="10"))
        assert resp.code == ResponseCode.SUCCESS
        await conn.invoke(with_commit(pull(TOPIC, 0, 0), 5))
        assert await committed(conn) == 10
        await conn.invoke(with_commit(pull(TOPIC, 0, 0), 12))
        assert await committed(conn) == 12
        # an explicit update (a reset) still may go back
        await conn.invoke(offset_request(RequestCode.UPDATE_CONSUMER_OFFSET, commitOffset="3"))
        assert await committed(conn) == 3


@inloop
async def test_slave_ignores_pull_commits_and_takes_offset_updates(tmp_path: Path) -> None:
    async with broker(tmp_path, **SLAVE) as (_, conn):
        await conn.invoke(with_commit(pull(TOPIC, 0, 0), 20))
        assert await committed(conn) is None
        resp = await conn.invoke(offset_request(RequestCode.UPDATE_CONSUMER_OFFSET, commitOffset="20"))
        assert resp.code == ResponseCode.SUCCESS
        assert await committed(conn) == 20


@pytest.mark.parametrize(
    ("addrs", "wanted", "expected"),
    [
        ({0: "m", 1: "s1", 2: "s2"}, 1, ("s1", True)),
        ({0: "m", 2: "s2"}, 1, ("s2", True)),  # the next slave id, as Java's findBrokerAddressInSubscribe
        ({0: "m", 3: "s3"}, 1, ("m", False)),  # then any member, lowest id first
        ({1: "s1"}, 0, ("s1", True)),  # master gone: its slave
        ({0: "m", 1: "s1"}, 0, ("m", False)),
        ({}, 0, None),
    ],
)
def test_subscribe_address_choice(
    addrs: dict[int, str], wanted: int, expected: tuple[str, bool] | None
) -> None:
    routes = RouteManager(remote=None)  # type: ignore[arg-type]
    routes.brokers["b"] = BrokerData("c", "b", addrs)
    assert routes.find_subscribe_addr("b", wanted) == expected


def test_offsets_go_to_the_slave_while_the_master_is_gone_and_back(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            broker(tmp_path / "m") as (master, to_master),
            broker(tmp_path / "s", **SLAVE) as (slave, to_slave),
        ):
            instance = ClientInstance("127.0.0.1:1")  # no name server: the route is set below
            offsets = RemoteBrokerOffsetStore(instance, GROUP, 3.0)
            mq = MessageQueue(TOPIC, "b", 0)
            routes = instance.routes
            try:
                routes.brokers["b"] = BrokerData("c", "b", {1: f"127.0.0.1:{slave.port}"})  # master gone
                await offsets.commit(mq, 5, oneway=False)
                assert await committed(to_slave) == 5
                assert await offsets.query(mq) == 5
                assert not offsets.moved(mq)
                routes.brokers["b"].broker_addrs[0] = f"127.0.0.1:{master.port}"  # it is back
                assert offsets.moved(mq)  # the same offset must be committed again, to the master
                await offsets.commit(mq, 5, oneway=False)
                assert await committed(to_master) == 5
                assert not offsets.moved(mq)
            finally:
                await instance.remote.close()

    asyncio.run(asyncio.wait_for(main(), 30))
