"""A real NameServer on a free port, driven by fake brokers and clients over real sockets."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import pytest

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand, SerializeType
from ferrymq.core.remoting.route import (
    ClusterInfo,
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicList,
    TopicRouteData,
)
from ferrymq.core.remoting.transport import RemotingConnection, connect
from ferrymq.namesrv import NameServer

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
    """Run one async test body with an overall deadline, so a hang fails instead of stalling."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_until(pred: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Bounded poll for a condition the server exposes no event for."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def start(**kw: Any) -> NameServer:
    ns = NameServer("127.0.0.1", 0, **kw)
    await ns.start()
    return ns


async def client(ns: NameServer) -> RemotingConnection:
    return await connect("127.0.0.1", ns.port)


def register_request(
    *,
    topics: Iterable[TopicConfig] = (),
    cluster: str = "DefaultCluster",
    name: str = "broker-a",
    addr: str = "127.0.0.1:10911",
    broker_id: int = 0,
    compressed: bool = False,
    crc: bool = True,
    timeout_ms: int | None = None,
    body: bytes | None = None,
) -> RemotingCommand:
    """REGISTER_BROKER as BrokerOuterAPI.registerBrokerAll builds it."""
    rb = RegisterBrokerBody({t.topic_name: t for t in topics}, DataVersion(counter=1))
    payload = rb.encode(compressed) if body is None else body
    ext = {
        "brokerName": name,
        "brokerAddr": addr,
        "clusterName": cluster,
        "haServerAddr": addr.rsplit(":", 1)[0] + ":10912",
        "brokerId": str(broker_id),
        "enableActingMaster": "false",
        "compressed": "true" if compressed else "false",
        "bodyCrc32": str(zlib.crc32(payload) & 0x7FFFFFFF) if crc else "0",
    }
    if timeout_ms is not None:
        ext["heartbeatTimeoutMillis"] = str(timeout_ms)
    return RemotingCommand(code=RequestCode.REGISTER_BROKER, ext_fields=ext, body=payload)


def route_request(topic: str) -> RemotingCommand:
    return RemotingCommand(code=RequestCode.GET_ROUTEINFO_BY_TOPIC, ext_fields={"topic": topic})


async def route_of(conn: RemotingConnection, topic: str) -> RemotingCommand:
    return await conn.invoke(route_request(topic))


def route_gone(conn: RemotingConnection, topic: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await route_of(conn, topic)).code == ResponseCode.TOPIC_NOT_EXIST

    return check


# ---- registration and route lookup ---------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True], ids=["json", "compressed"])
def test_register_then_route_is_standard_json(compressed: bool) -> None:
    async def body() -> None:
        ns = await start()
        try:
            broker = await client(ns)
            resp = await broker.invoke(
                register_request(topics=[TopicConfig("TopicTest", 4, 4)], compressed=compressed)
            )
            assert resp.code == ResponseCode.SUCCESS, resp.remark
            assert resp.is_response and "masterAddr" not in resp.ext_fields

            cli = await client(ns)
            route = await route_of(cli, "TopicTest")
            assert route.code == ResponseCode.SUCCESS
            raw = bytes(route.body)
            obj = json.loads(raw)  # strict JSON: quoted keys, as fastjson/Go/JS clients parse
            assert obj == {
                "brokerDatas": [
                    {
                        "brokerAddrs": {"0": "127.0.0.1:10911"},
                        "brokerName": "broker-a",
                        "cluster": "DefaultCluster",
                        "enableActingMaster": False,
                    }
                ],
                "filterServerTable": {},
                "queueDatas": [
                    {
                        "brokerName": "broker-a",
                        "perm": 6,
                        "readQueueNums": 4,
                        "topicSysFlag": 0,
                        "writeQueueNums": 4,
                    }
                ],
            }
            assert b'"0":"127.0.0.1:10911"' in raw
            broker.close()
            cli.close()
        finally:
            await ns.stop()

    run(body())


def test_register_with_binary_header_and_oneway() -> None:
    async def body() -> None:
        ns = await start()
        try:
            broker = await client(ns)
            req = register_request(topics=[TopicConfig("T1")])
            req.serialize_type = SerializeType.ROCKETMQ
            broker.invoke_oneway(req)  # no response may come; the next request is ordered after it
            route = await route_of(broker, "T1")
            assert route.code == ResponseCode.SUCCESS
            assert TopicRouteData.from_json_bytes(route.body).queue_datas[0].read_queue_nums == 16
        finally:
            await ns.stop()

    run(body())


def test_register_java_5x_json_body_with_extra_fields() -> None:
    java_body = (
        b'{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":2,'
        b'"stateVersion":0,"timestamp":1700000000001},"mappingDataVersion":{"counter":0,'
        b'"stateVersion":0,"timestamp":1700000000000},"topicConfigTable":{"TBW102":{"attributes":{},'
        b'"order":false,"perm":7,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"TBW102",'
        b'"topicSysFlag":0,"writeQueueNums":8}},"topicQueueMappingDetailMap":{},'
        b'"topicQueueMappingInfoMap":{}}}'
    )

    async def body() -> None:
        ns = await start()
        try:
            broker = await client(ns)
            req = register_request(body=java_body)
            req.ext_fields.update({"ns": "", "bname": "broker-a", "oway": "false"})  # 5.x RPC fields
            assert (await broker.invoke(req)).code == ResponseCode.SUCCESS
            route = TopicRouteData.from_json_bytes((await route_of(broker, "TBW102")).body)
            assert route.queue_datas[0].perm == 7
        finally:
            await ns.stop()

    run(body())


def test_slave_registration_learns_master() -> None:
    async def body() -> None:
        ns = await start()
        try:
            master = await client(ns)
            slave = await client(ns)
            await master.invoke(register_request(topics=[TopicConfig("T", 4, 4)]))
            resp = await slave.invoke(
                register_request(
                    topics=[TopicConfig("T", 1, 1), TopicConfig("SlaveOnly")],
                    addr="127.0.0.2:10911",
                    broker_id=1,
                )
            )
            assert resp.code == ResponseCode.SUCCESS
            assert resp.ext_fields["masterAddr"] == "127.0.0.1:10911"
            assert resp.ext_fields["haServerAddr"] == "127.0.0.1:10912"
            route = TopicRouteData.from_json_bytes((await route_of(slave, "T")).body)
            assert route.broker_datas[0].broker_addrs == {0: "127.0.0.1:10911", 1: "127.0.0.2:10911"}
            assert route.queue_datas[0].read_queue_nums == 4
            assert (await route_of(slave, "SlaveOnly")).code == ResponseCode.TOPIC_NOT_EXIST
        finally:
            await ns.stop()

    run(body())


def test_unknown_topic_is_topic_not_exist() -> None:
    async def body() -> None:
        ns = await start()
        try:
            cli = await client(ns)
            resp = await route_of(cli, "Nope")
            assert resp.code == ResponseCode.TOPIC_NOT_EXIST == 17
            assert resp.remark == "No topic route info in name server for the topic: Nope"
            assert not resp.body
        finally:
            await ns.stop()

    run(body())


def test_cluster_info_and_topic_list() -> None:
    async def body() -> None:
        ns = await start()
        try:
            broker = await client(ns)
            await broker.invoke(register_request(topics=[TopicConfig("A"), TopicConfig("B")]))
            await broker.invoke(
                register_request(topics=[TopicConfig("B")], name="broker-b", addr="127.0.0.3:10911")
            )
            resp = await broker.invoke(RemotingCommand(code=RequestCode.GET_BROKER_CLUSTER_INFO))
            assert resp.code == ResponseCode.SUCCESS
            json.loads(bytes(resp.body))
            info = ClusterInfo.from_json_bytes(resp.body)
            assert info.cluster_addr_table == {"DefaultCluster": {"broker-a", "broker-b"}}
            assert info.broker_addr_table["broker-b"].broker_addrs == {0: "127.0.0.3:10911"}

            resp = await broker.invoke(RemotingCommand(code=RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER))
            assert resp.code == ResponseCode.SUCCESS
            assert TopicList.from_json_bytes(resp.body).topic_list == {"A", "B"}
        finally:
            await ns.stop()

    run(body())


def test_unregister_removes_routes() -> None:
    async def body() -> None:
        ns = await start()
        try:
            broker = await client(ns)
            await broker.invoke(register_request(topics=[TopicConfig("T")]))
            unreg = RemotingCommand(
                code=RequestCode.UNREGISTER_BROKER,
                ext_fields={
                    "brokerName": "broker-a",
                    "brokerAddr": "127.0.0.1:10911",
                    "clusterName": "DefaultCluster",
                    "brokerId": "0",
                },
            )
            assert (await broker.invoke(unreg)).code == ResponseCode.SUCCESS
            assert (await route_of(broker, "T")).code == ResponseCode.TOPIC_NOT_EXIST
            info = ClusterInfo.from_json_bytes(
                (await broker.invoke(RemotingCommand(code=RequestCode.GET_BROKER_CLUSTER_INFO))).body
            )
            assert info.broker_addr_table == {} and info.cluster_addr_table == {}
        finally:
            await ns.stop()

    run(body())


def test_delete_topic_in_namesrv() -> None:
    async def body() -> None:
        ns = await start()
        try:
            broker = await client(ns)
            await broker.invoke(register_request(topics=[TopicConfig("T"), TopicConfig("U")]))
            resp = await broker.invoke(
                RemotingCommand(code=RequestCode.DELETE_TOPIC_IN_NAMESRV, ext_fields={"topic": "T"})
            )
            assert resp.code == ResponseCode.SUCCESS
            assert (await route_of(broker, "T")).code == ResponseCode.TOPIC_NOT_EXIST
            assert (await route_of(broker, "U")).code == ResponseCode.SUCCESS
        finally:
            await ns.stop()

    run(body())


# ---- bad requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "override", "field"),
    [
        ("brokerName", {}, "brokerName"),
        ("brokerId", {}, "brokerId"),
        ("haServerAddr", {}, "haServerAddr"),
        (None, {"brokerId": "zero"}, "brokerId"),
        (None, {"heartbeatTimeoutMillis": "soon"}, "heartbeatTimeoutMillis"),
    ],
)
def test_bad_register_header_is_invalid_parameter(
    drop: str | None, override: dict[str, str], field: str
) -> None:
    async def body() -> None:
        ns = await start()
        try:
            broker = await client(ns)
            req = register_request(topics=[TopicConfig("T")])
            if drop:
                del req.ext_fields[drop]
            req.ext_fields.update(override)
            resp = await broker.invoke(req)
            assert resp.code == ResponseCode.INVALID_PARAMETER
            assert resp.remark is not None and field in resp.remark
            # the connection is still usable, and nothing was registered
            assert (await route_of(broker, "T")).code == ResponseCode.TOPIC_NOT_EXIST
        finally:
            await ns.stop()

    run(body())


def test_missing_topic_header_is_invalid_parameter() -> None:
    async def body() -> None:
        ns = await start()
        try:
            cli = await client(ns)
            resp = await cli.invoke(RemotingCommand(code=RequestCode.GET_ROUTEINFO_BY_TOPIC))
            assert resp.code == ResponseCode.INVALID_PARAMETER
            assert resp.remark is not None and "topic" in resp.remark
        finally:
            await ns.stop()

    run(body())


def test_crc_mismatch_and_bad_body_are_system_errors() -> None:
    async def body() -> None:
        ns = await start()
        try:
            broker = await client(ns)
            req = register_request(topics=[TopicConfig("T")])
            req.ext_fields["bodyCrc32"] = "12345"
            resp = await broker.invoke(req)
            assert (resp.code, resp.remark) == (ResponseCode.SYSTEM_ERROR, "crc32 not match")

            resp = await broker.invoke(register_request(body=b"\x78\x9cnot really zlib", compressed=True))
            assert resp.code == ResponseCode.SYSTEM_ERROR
            resp = await broker.invoke(register_request(body=b"{not json"))
            assert resp.code == ResponseCode.SYSTEM_ERROR
            assert (await route_of(broker, "T")).code == ResponseCode.TOPIC_NOT_EXIST
        finally:
            await ns.stop()

    run(body())


def test_unknown_code_is_request_code_not_supported() -> None:
    async def body() -> None:
        ns = await start()
        try:
            cli = await client(ns)
            resp = await cli.invoke(RemotingCommand(code=9999))
            assert resp.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
            assert resp.remark == " request type 9999 not supported"
        finally:
            await ns.stop()

    run(body())


def test_garbage_bytes_close_only_that_connection() -> None:
    async def body() -> None:
        ns = await start()
        try:
            broker = await client(ns)
            await broker.invoke(register_request(topics=[TopicConfig("T")]))
            reader, writer = await asyncio.open_connection("127.0.0.1", ns.port)
            writer.write(b"\x00\x00\x00\x02garbage garbage")  # frame length 2 < 4: invalid
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5.0) == b""  # server closed it
            writer.close()
            # the broker's connection and its registration are untouched
            assert broker.is_open
            assert (await route_of(broker, "T")).code == ResponseCode.SUCCESS
        finally:
            await ns.stop()

    run(body())


# ---- liveness ------------------------------------------------------------------------------------


def test_silent_broker_expires_and_its_connection_is_closed() -> None:
    async def body() -> None:
        ns = await start(broker_expiry_s=0.3, scan_interval_s=0.05)
        try:
            broker = await client(ns)
            await broker.invoke(register_request(topics=[TopicConfig("T")]))
            cli = await client(ns)
            assert (await route_of(cli, "T")).code == ResponseCode.SUCCESS
            await wait_until(route_gone(cli, "T"))
            await asyncio.wait_for(broker.closed.wait(), 5.0)  # Java closes the channel too
            assert cli.is_open
        finally:
            await ns.stop()

    run(body())


def test_heartbeat_timeout_header_overrides_default_expiry() -> None:
    async def body() -> None:
        ns = await start(scan_interval_s=0.05)  # default expiry stays 120 s
        try:
            broker = await client(ns)
            await broker.invoke(register_request(topics=[TopicConfig("Short")], timeout_ms=200))
            await broker.invoke(
                register_request(topics=[TopicConfig("Long")], name="broker-b", addr="127.0.0.4:10911")
            )
            cli = await client(ns)
            await wait_until(route_gone(cli, "Short"))
            # broker-b shares that connection, which the expiry closed: it goes too, as in Java
            await asyncio.wait_for(broker.closed.wait(), 5.0)
            await wait_until(route_gone(cli, "Long"))
        finally:
            await ns.stop()

    run(body())


def test_connection_close_removes_broker_at_once() -> None:
    async def body() -> None:
        ns = await start()  # expiry 120 s: only the close can remove it within the wait below
        try:
            broker = await client(ns)
            other = await client(ns)
            await broker.invoke(register_request(topics=[TopicConfig("T")]))
            await other.invoke(
                register_request(topics=[TopicConfig("U")], name="broker-b", addr="127.0.0.5:10911")
            )
            cli = await client(ns)
            assert (await route_of(cli, "T")).code == ResponseCode.SUCCESS
            broker.close()
            await broker.closed.wait()
            await wait_until(route_gone(cli, "T"), timeout=2.0)
            assert (await route_of(cli, "U")).code == ResponseCode.SUCCESS
        finally:
            await ns.stop()

    run(body())


def test_two_name_servers_know_nothing_of_each_other() -> None:
    async def body() -> None:
        ns1, ns2 = await start(), await start()
        try:
            assert ns1.port != ns2.port and ns1.port != 0
            b1 = await client(ns1)
            await b1.invoke(register_request(topics=[TopicConfig("T")]))
            c2 = await client(ns2)
            assert (await route_of(c2, "T")).code == ResponseCode.TOPIC_NOT_EXIST
            info = ClusterInfo.from_json_bytes(
                (await c2.invoke(RemotingCommand(code=RequestCode.GET_BROKER_CLUSTER_INFO))).body
            )
            assert info.broker_addr_table == {}
            assert (await route_of(b1, "T")).code == ResponseCode.SUCCESS
        finally:
            await ns1.stop()
            await ns2.stop()

    run(body())


def test_stop_closes_client_connections_and_is_idempotent() -> None:
    async def body() -> None:
        ns = await start()
        cli = await client(ns)
        assert (await route_of(cli, "T")).code == ResponseCode.TOPIC_NOT_EXIST
        await ns.stop()
        await asyncio.wait_for(cli.closed.wait(), 5.0)
        await ns.stop()
        assert not ns.is_running

    run(body())
