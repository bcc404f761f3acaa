"""The controller on a name server's remoting port: heartbeats, registration, an election asked
for by a broker, and an election the leader makes itself when a master goes silent."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingConnection, connect
from ferrymq.namesrv import NameServer
from ferrymq.namesrv.controller.raft import ControllerNode, Peer
from ferrymq.namesrv.controller.service import ControllerService
from ferrymq.namesrv.controller.state import ControllerCode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def call(
    conn: RemotingConnection, code: int, ext: dict[str, str], body: bytes = b""
) -> RemotingCommand:
    return await conn.invoke(RemotingCommand(code=code, ext_fields=ext, body=body), timeout=10.0)


def beat(name: str, bid: int, epoch: int, max_offset: int) -> dict[str, str]:
    return {
        "clusterName": "C",
        "brokerName": name,
        "brokerId": str(bid),
        "brokerAddr": f"127.0.0.{bid}:10911",
        "epoch": str(epoch),
        "maxOffset": str(max_offset),
        "heartbeatTimeoutMills": "1000",
    }


def test_controller_elects_and_fails_over(tmp_path: Path) -> None:
    port, raft = free_port(), free_port()
    node = ControllerNode([Peer(f"127.0.0.1:{port}", f"127.0.0.1:{raft}")], f"127.0.0.1:{port}", tmp_path)
    service = ControllerService(node, scan_interval=0.1)

    async def body() -> None:
        async with NameServer("127.0.0.1", port, controller=service):
            conn = await connect("127.0.0.1", port)
            try:
                while not node.is_leader:  # a single node elects itself within ~1.4 s
                    await asyncio.sleep(0.05)
                meta = await call(conn, RequestCode.CONTROLLER_GET_METADATA_INFO, {})
                assert meta.ext_fields["isLeader"] == "true"
                for bid, offset in ((1, 100), (2, 50)):
                    assert (
                        await call(conn, RequestCode.BROKER_HEARTBEAT, beat("b", bid, 0, offset))
                    ).code == 0
                    reg = await call(
                        conn,
                        RequestCode.CONTROLLER_REGISTER_BROKER,
                        {
                            "clusterName": "C",
                            "brokerName": "b",
                            "brokerId": str(bid),
                            "brokerAddress": f"a{bid}",
                        },
                    )
                    assert reg.code == ResponseCode.SUCCESS and "masterBrokerId" not in reg.ext_fields
                el = await call(
                    conn,
                    RequestCode.CONTROLLER_ELECT_MASTER,
                    {"clusterName": "C", "brokerName": "b", "brokerId": "2"},
                )
                assert el.code == ResponseCode.SUCCESS, el.remark
                assert (el.ext_fields["masterBrokerId"], el.ext_fields["masterEpoch"]) == ("1", "1")
                assert json.loads(el.body) == {"syncStateSet": [1], "syncStateSetEpoch": 1}
                alter = await call(
                    conn,
                    RequestCode.CONTROLLER_ALTER_SYNC_STATE_SET,
                    {"brokerName": "b", "masterBrokerId": "1", "masterEpoch": "1"},
                    json.dumps({"syncStateSet": [1, 2], "syncStateSetEpoch": 1}).encode(),
                )
                assert alter.code == ResponseCode.SUCCESS, alter.remark
                # broker 1 goes silent, broker 2 keeps beating: the leader elects 2 on its own
                for _ in range(100):
                    await call(conn, RequestCode.BROKER_HEARTBEAT, beat("b", 2, 1, 50))
                    info = await call(conn, RequestCode.CONTROLLER_GET_REPLICA_INFO, {"brokerName": "b"})
                    if info.ext_fields.get("masterBrokerId") == "2":
                        break
                    await asyncio.sleep(0.1)
                assert info.ext_fields["masterBrokerId"] == "2" and info.ext_fields["masterEpoch"] == "2"
                stale = await call(
                    conn,
                    RequestCode.CONTROLLER_ALTER_SYNC_STATE_SET,
                    {"brokerName": "b", "masterBrokerId": "1", "masterEpoch": "1"},
                    json.dumps({"syncStateSet": [1, 2], "syncStateSetEpoch": 2}).encode(),
                )
                assert stale.code == ControllerCode.INVALID_MASTER
                bad = await call(conn, RequestCode.CONTROLLER_ELECT_MASTER, {"brokerName": "b"})
                assert bad.code == ResponseCode.INVALID_PARAMETER and "brokerId" in (bad.remark or "")
            finally:
                conn.close()

    asyncio.run(body())


def test_a_master_whose_connection_closes_is_replaced_at_once(tmp_path: Path) -> None:
    """A killed master's heartbeat connection closes: the leader elects its slave then, as
    RocketMQ's controller does (BrokerHousekeepingService), not a heartbeat timeout later. The
    timeout (30 s) and the silence scan (every 30 s) are too long to be what elects here."""
    port, raft = free_port(), free_port()
    node = ControllerNode([Peer(f"127.0.0.1:{port}", f"127.0.0.1:{raft}")], f"127.0.0.1:{port}", tmp_path)
    service = ControllerService(node, scan_interval=30.0)

    async def body() -> None:
        async with NameServer("127.0.0.1", port, controller=service):
            conns = {bid: await connect("127.0.0.1", port) for bid in (1, 2)}
            try:
                while not node.is_leader:
                    await asyncio.sleep(0.05)
                for bid, conn in conns.items():
                    hb = beat("b", bid, 0, 100) | {"heartbeatTimeoutMills": "30000"}
                    assert (await call(conn, RequestCode.BROKER_HEARTBEAT, hb)).code == 0
                    reg = {"clusterName": "C", "brokerName": "b", "brokerId": str(bid)}
                    await call(
                        conn, RequestCode.CONTROLLER_REGISTER_BROKER, reg | {"brokerAddress": f"a{bid}"}
                    )
                el = await call(conns[1], RequestCode.CONTROLLER_ELECT_MASTER, reg | {"brokerId": "1"})
                assert el.ext_fields["masterBrokerId"] == "1", el.remark
                alter = await call(
                    conns[1],
                    RequestCode.CONTROLLER_ALTER_SYNC_STATE_SET,
                    {"brokerName": "b", "masterBrokerId": "1", "masterEpoch": el.ext_fields["masterEpoch"]},
                    json.dumps({"syncStateSet": [1, 2], "syncStateSetEpoch": 1}).encode(),
                )
                assert alter.code == ResponseCode.SUCCESS, alter.remark
                conns[1].close()  # the master's process is gone: the kernel closes its sockets
                info = None
                for _ in range(30):  # at most 3 s
                    info = await call(conns[2], RequestCode.CONTROLLER_GET_REPLICA_INFO, {"brokerName": "b"})
                    if info.ext_fields.get("masterBrokerId") == "2":
                        break
                    await asyncio.sleep(0.1)
                assert info is not None and info.ext_fields.get("masterBrokerId") == "2", (
                    info and info.ext_fields
                )
            finally:
                for conn in conns.values():
                    conn.close()

    asyncio.run(body())
