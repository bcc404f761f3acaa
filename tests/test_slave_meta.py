"""A slave copies its master's metadata (topics, subscription groups, delay and consumer offsets)
and refuses metadata writes; a master serves those pulls, also on the VIP port (listenPort-2).

In-process brokers for the wire shapes and the sync itself; real processes and a name server for
what a user sees: the slave learning its master from REGISTER_BROKER results.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingConnection, connect, serve
from tests.cluster_helpers import call, create_topic, eventually, topic_fields

GET_ALL_CONSUMER_OFFSET = 43
GET_ALL_DELAY_OFFSET = 45
SLAVE_REMARK = "slave"


@asynccontextmanager
async def broker(tmp: Path, **config: Any) -> AsyncIterator[Broker]:
    values = {"listen_port": 0, "listen_host": "127.0.0.1", "store_path_root_dir": tmp / "store"}
    b = Broker(BrokerConfig(**{**values, **config}))
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


@asynccontextmanager
async def client(port: int) -> AsyncIterator[RemotingConnection]:
    conn = await connect("127.0.0.1", port)
    try:
        yield conn
    finally:
        conn.close()


def in_loop(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test body in its own event loop, bounded (the tests use no asyncio plugin)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        async def bounded() -> None:
            async with asyncio.timeout(60):
                await fn(*args, **kwargs)

        asyncio.run(bounded())

    return run


async def ask(conn: RemotingConnection, code: int, ext: dict[str, str] | None = None) -> RemotingCommand:
    return await conn.invoke(RemotingCommand(code=code, ext_fields=ext or {}), timeout=5.0)


def commit_ext(group: str, topic: str, queue: int, offset: int) -> dict[str, str]:
    return {"consumerGroup": group, "topic": topic, "queueId": str(queue), "commitOffset": str(offset)}


def is_data_version(obj: Any) -> bool:
    """DataVersion as fastjson parses it into Java's class: three numbers."""
    return isinstance(obj, dict) and all(
        isinstance(obj.get(k), int) for k in ("counter", "stateVersion", "timestamp")
    )


# ---- the master's side: the bodies Apache RocketMQ's SlaveSynchronize parses ------------------------


@in_loop
async def test_master_metadata_bodies_parse_as_rocketmq_wrappers(tmp_path: Path) -> None:
    async with broker(tmp_path) as m, client(m.port) as conn:
        assert (await ask(conn, RequestCode.UPDATE_AND_CREATE_TOPIC, topic_fields("T1"))).code == 0
        assert (await ask(conn, RequestCode.UPDATE_CONSUMER_OFFSET, commit_ext("g1", "T1", 2, 7))).code == 0

        # 21: TopicConfigAndMappingSerializeWrapper. BrokerOuterAPI putAll()s topicConfigTable and
        # topicQueueMappingDetailMap (null = NullPointerException), SlaveSynchronize compares
        # mappingDataVersion when the detail map is non-null: all three must be present.
        resp = await ask(conn, RequestCode.GET_ALL_TOPIC_CONFIG)
        assert resp.code == ResponseCode.SUCCESS
        body = json.loads(resp.body)
        assert is_data_version(body["dataVersion"]) and is_data_version(body["mappingDataVersion"])
        assert body["topicQueueMappingDetailMap"] == {}
        t1 = body["topicConfigTable"]["T1"]
        assert t1["topicName"] == "T1" and t1["readQueueNums"] == 4 and t1["perm"] == 6
        assert "totalTopicNum" not in resp.ext_fields  # absent = the whole table in one page

        # 43: ConsumerOffsetSerializeWrapper {offsetTable: {topic@group: {queueId: offset}}, dataVersion}
        resp = await ask(conn, GET_ALL_CONSUMER_OFFSET)
        assert resp.code == ResponseCode.SUCCESS
        body = json.loads(resp.body)
        assert body["offsetTable"]["T1@g1"] == {"2": 7}
        assert is_data_version(body["dataVersion"])

        # 45: the delayOffset file's content {offsetTable: {level: offset}, dataVersion}
        resp = await ask(conn, GET_ALL_DELAY_OFFSET)
        assert resp.code == ResponseCode.SUCCESS
        body = json.loads(resp.body)
        assert isinstance(body["offsetTable"], dict) and is_data_version(body["dataVersion"])

        # 201: SubscriptionGroupWrapper; forbiddenTable is putAll()ed too
        resp = await ask(conn, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
        assert resp.code == ResponseCode.SUCCESS
        body = json.loads(resp.body)
        assert body["forbiddenTable"] == {} and is_data_version(body["dataVersion"])
        assert isinstance(body["subscriptionGroupTable"], dict)


@in_loop
async def test_master_serves_the_vip_port(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level("INFO")
    async with broker(tmp_path) as m:
        assert m.vip_port and m.vip_port != m.port
        assert re.search(rf"VIP port \S+:{m.vip_port}", caplog.text)
        async with client(m.vip_port) as conn:
            resp = await ask(conn, RequestCode.GET_ALL_TOPIC_CONFIG)
            assert resp.code == ResponseCode.SUCCESS and "topicConfigTable" in json.loads(resp.body)
    async with broker(tmp_path / "off", fast_listen_port=-1) as m:
        assert m.vip_port is None


# ---- the slave's side ---------------------------------------------------------------------------


def slave_conf() -> dict[str, Any]:
    return {"broker_role": "SLAVE", "broker_id": 1}


@asynccontextmanager
async def manual_slave(tmp: Path, **config: Any) -> AsyncIterator[Broker]:
    """A slave whose sync rounds the test runs itself (its own loop stopped)."""
    async with broker(tmp, **slave_conf(), **config) as s:
        await s.slave_sync.stop()
        yield s


@in_loop
async def test_slave_refuses_metadata_writes_but_takes_offset_commits(tmp_path: Path) -> None:
    async with broker(tmp_path, **slave_conf()) as s, client(s.port) as conn:
        s.topics.create_if_absent("T1", 2)  # as the sync would have copied it
        for code, ext in (
            (RequestCode.UPDATE_AND_CREATE_TOPIC, topic_fields("T2")),
            (RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": "T1"}),
            (RequestCode.DELETE_SUBSCRIPTIONGROUP, {"groupName": "g1", "cleanOffset": "true"}),
        ):
            resp = await ask(conn, code, ext)
            assert resp.code == ResponseCode.SYSTEM_ERROR and SLAVE_REMARK in (resp.remark or ""), code
        cmd = RemotingCommand(code=RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
        cmd.body = json.dumps({"groupName": "g1", "retryMaxTimes": 3}).encode()
        resp = await conn.invoke(cmd, timeout=5.0)
        assert resp.code == ResponseCode.SYSTEM_ERROR and SLAVE_REMARK in (resp.remark or "")
        assert s.topics.get("T2") is None and s.topics.get("T1") is not None
        # RemoteBrokerOffsetStore commits to a slave while the master is gone: accepted
        resp = await ask(conn, RequestCode.UPDATE_CONSUMER_OFFSET, commit_ext("g1", "T1", 0, 9))
        assert resp.code == ResponseCode.SUCCESS
        assert s.offsets.query("g1", "T1", 0) == 9


@in_loop
async def test_slave_sync_copies_metadata_and_never_lowers_offsets(tmp_path: Path) -> None:
    m_ctx, s_ctx = broker(tmp_path / "m"), manual_slave(tmp_path / "s")
    async with m_ctx as m, s_ctx as s, client(m.port) as mc, client(s.port) as sc:
        assert (await ask(mc, RequestCode.UPDATE_AND_CREATE_TOPIC, topic_fields("T1"))).code == 0
        await ask(mc, RequestCode.UPDATE_CONSUMER_OFFSET, commit_ext("g1", "T1", 0, 5))
        await ask(mc, RequestCode.UPDATE_CONSUMER_OFFSET, commit_ext("g1", "T1", 1, 3))
        m.schedule.offsets[3] = 11
        s.topics.create_if_absent("ONLY_ON_SLAVE", 1)

        s.ha.master_addr = m.config.broker_addr
        assert await s.slave_sync.sync_all()
        tc = s.topics.get("T1")
        assert tc is not None and tc.read_queue_nums == 4
        assert s.topics.get("ONLY_ON_SLAVE") is None  # deleted on the master: deleted here
        assert s.topics.data_version == m.topics.data_version
        assert s.offsets.query("g1", "T1", 0) == 5 and s.offsets.query("g1", "T1", 1) == 3
        assert s.schedule.offsets == m.schedule.offsets
        assert s.subscription_groups.groups.keys() == m.subscription_groups.groups.keys()
        resp = await ask(sc, RequestCode.GET_ALL_TOPIC_CONFIG)
        assert "T1" in json.loads(resp.body)["topicConfigTable"]

        # the master is gone: consumers commit to the slave, which gets ahead; a master that
        # comes back with older offsets must not move them back (RocketMQ #1094, #2181)
        await ask(sc, RequestCode.UPDATE_CONSUMER_OFFSET, commit_ext("g1", "T1", 0, 9))
        await ask(mc, RequestCode.UPDATE_CONSUMER_OFFSET, commit_ext("g1", "T1", 1, 4))
        assert await s.slave_sync.sync_all()
        assert s.offsets.query("g1", "T1", 0) == 9
        assert s.offsets.query("g1", "T1", 1) == 4


@in_loop
async def test_slave_sync_skips_without_master_or_to_itself(tmp_path: Path) -> None:
    async with manual_slave(tmp_path) as s:
        s.ha.master_addr = None
        assert not await s.slave_sync.sync_all()
        s.ha.master_addr = s.config.broker_addr
        assert not await s.slave_sync.sync_all()
        s.ha.master_addr = "127.0.0.1:1"  # nobody there: logged, retried next round
        assert not await s.slave_sync.sync_all()


@in_loop
async def test_slave_takes_the_first_master_named_and_forgets_it_when_none_is(tmp_path: Path) -> None:
    async with broker(tmp_path, **slave_conf()) as s:
        registrar = s.registrar
        assert registrar is not None
        none = {"masterAddr": "", "haServerAddr": ""}
        named = {"masterAddr": "10.0.0.1:10911", "haServerAddr": "10.0.0.2:10912"}
        registrar._learn_master([none, named, {"masterAddr": "10.9.9.9:1", "haServerAddr": "10.9.9.9:2"}])
        assert (s.ha.master_addr, s.ha.master_ha_addr) == ("10.0.0.1:10911", "10.0.0.2:10912")
        registrar._learn_master([])  # no name server answered: nothing learnt either way
        assert s.ha.master_addr == "10.0.0.1:10911"
        registrar._learn_master([none, {}])  # every answer says no master: it is gone
        assert s.ha.master_addr is None
        assert s.ha.master_ha_addr == "10.0.0.2:10912"  # kept: the HA client keeps retrying it
    async with broker(tmp_path / "fixed", ha_master_address="10.7.7.7:10912", **slave_conf()) as s:
        assert s.registrar is not None
        s.registrar._learn_master([named])
        assert (s.ha.master_addr, s.ha.master_ha_addr) == ("10.0.0.1:10911", "10.7.7.7:10912")


@in_loop
async def test_slave_sync_survives_a_master_answering_garbage(tmp_path: Path, caplog: Any) -> None:
    bodies = [b"[1]", b'{"offsetTable": 5}', b'{"offsetTable": {"t@g": {"x": 1}}}', b"\xff"]

    def answer(cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        return cmd.response(body=bodies[cmd.code % len(bodies)])

    fake = await serve(answer, "127.0.0.1", 0)
    try:
        async with manual_slave(tmp_path) as s:
            before = dict(s.topics.topics)
            s.ha.master_addr = f"127.0.0.1:{fake.sockets[0].getsockname()[1]}"
            assert not await s.slave_sync.sync_all()
            assert s.topics.topics == before and s.slave_sync._conn is not None
            warned = [r.getMessage() for r in caplog.records if r.name == "ferrymq.slave_sync"]
            assert len(warned) == 5, warned  # four metadata tables and the compacted parts
            assert "compacted parts" in warned[-1]
    finally:
        fake.close()


# ---- processes and a name server: what a user sees -------------------------------------------


def runtime_info(addr: str) -> dict[str, str]:
    resp = call(addr, RequestCode.GET_BROKER_RUNTIME_INFO, {})
    assert resp.code == ResponseCode.SUCCESS
    table: dict[str, str] = json.loads(resp.body)["table"]
    return table


def query_offset(addr: str, group: str, topic: str, queue: int) -> int | None:
    resp = call(
        addr,
        RequestCode.QUERY_CONSUMER_OFFSET,
        {"consumerGroup": group, "topic": topic, "queueId": str(queue), "setZeroIfNotFound": "false"},
    )
    return int(resp.ext_fields["offset"]) if resp.code == ResponseCode.SUCCESS else None


def test_slave_learns_its_master_from_the_name_server(tmp_path: Path) -> None:
    ns = FerryNameServer(tmp_path / "ns")
    slave = master = None
    try:
        conf = {"brokerRole": "SLAVE", "brokerId": "1", "slaveSyncInterval": "300"}
        # the slave first: no master yet, so it re-registers every few seconds (not every 30 s,
        # registerNameServerPeriod) until one shows up
        slave = FerryBroker(tmp_path / "s", ns.addr, "broker-a", conf=conf)
        assert runtime_info(slave.addr).get("masterAddr") == ""
        master = FerryBroker(tmp_path / "m", ns.addr, "broker-a")
        eventually(
            lambda: runtime_info(slave.addr).get("masterAddr") == master.addr, 10, "slave learns master"
        )
        info = runtime_info(slave.addr)
        assert info["brokerRole"] == "SLAVE"
        assert info["masterHaAddr"].startswith("127.0.0.1:") and info["masterHaAddr"] != master.addr

        create_topic(master.addr, "SYNCED", 3)
        eventually(
            lambda: (
                "SYNCED"
                in json.loads(call(slave.addr, RequestCode.GET_ALL_TOPIC_CONFIG, {}).body)["topicConfigTable"]
            ),
            10,
            "topic on slave",
        )
        assert (
            call(master.addr, RequestCode.UPDATE_CONSUMER_OFFSET, commit_ext("g", "SYNCED", 1, 42)).code == 0
        )
        eventually(lambda: query_offset(slave.addr, "g", "SYNCED", 1) == 42, 10, "offset on slave")

        resp = call(slave.addr, RequestCode.UPDATE_AND_CREATE_TOPIC, topic_fields("NOPE"))
        assert resp.code == ResponseCode.SYSTEM_ERROR and SLAVE_REMARK in (resp.remark or "")
    finally:
        for p in (slave, master, ns):
            if p is not None:
                p.stop()
