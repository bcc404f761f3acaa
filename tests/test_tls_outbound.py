"""A broker's own connections out honour tls.enable / tls.client.* and sign with its accessKey /
secretKey (core/remoting/outbound.py): a controller-mode group whose name server (with the
controller) and brokers all enforce mutual TLS and RocketMQ ACL elects a master, replicates to the
slave (epoch query, HA hello, metadata sync, confirm-follow), and fails over to it when the master
stops. Every one of those connections is refused if it goes out plaintext or unsigned."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.acl_sign import sign
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.transport import connect
from ferrymq.namesrv import NameServer
from ferrymq.namesrv.controller.raft import ControllerNode, Peer
from ferrymq.namesrv.controller.service import ControllerService
from tests.acl_support import PLAIN_ACL
from tests.remoting_helpers import send_v2
from tests.test_ha_link import until
from tests.tls_certs import make_certs

TOPIC = "TlsOutTopic"
GROUP = "tlsOutGroup"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_tls_and_acl_group_replicates_and_fails_over(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    acl = tmp_path / "plain_acl.yml"
    acl.write_text(PLAIN_ACL)
    secure: dict[str, Any] = {
        **certs.broker_conf("enforcing", "require"),
        "tls.enable": True,
        "tls.client.certPath": certs.client_cert,
        "tls.client.keyPath": certs.client_key,
        "tls.client.trustCertPath": certs.ca,
        "haTlsEnable": True,
        "aclEnable": True,
        "aclFile": acl,
        "accessKey": "root",
        "secretKey": "root-secret",
    }
    port, raft = _free_port(), _free_port()
    ns_addr = f"127.0.0.1:{port}"
    node = ControllerNode([Peer(ns_addr, f"127.0.0.1:{raft}")], ns_addr, tmp_path / "raft")
    ns_tls = BrokerConfig.build({k: v for k, v in secure.items() if k.startswith("tls.server")}).server_tls()

    def broker(identity: int) -> Broker:
        conf = {
            "listenPort": 0,
            "listenHost": "127.0.0.1",
            "storePathRootDir": tmp_path / f"b{identity}",
            "mappedFileSizeCommitLog": 65536,
            "brokerName": GROUP,
            "namesrvAddr": ns_addr,
            "enableControllerMode": True,
            "controllerAddr": ns_addr,
            "brokerId": identity,
            "brokerRole": "SYNC_MASTER",
            "controllerHeartBeatTimeoutMills": 2000,
            "brokerHeartbeatInterval": 200,
            "syncBrokerMetadataPeriod": 200,
            "slaveSyncInterval": 200,
            "autoCreateTopicEnable": False,
        }
        return Broker(BrokerConfig.build({**conf, **secure}))

    async def send(b: Broker, body: bytes) -> ResponseCode | int:
        conn = await connect("127.0.0.1", b.port, ssl_context=certs.client(with_cert=True))
        try:
            cmd = send_v2(TOPIC, body, 0)
            sign(cmd, "root", "root-secret")
            return (await conn.invoke(cmd, timeout=5)).code
        finally:
            conn.close()

    async def main() -> None:
        async with NameServer(
            "127.0.0.1", port, controller=ControllerService(node, scan_interval=0.1), acl_file=acl, tls=ns_tls
        ):
            b1, b2 = broker(1), broker(2)
            await b1.start()
            await b2.start()
            stopped: set[Broker] = set()
            try:
                await until(lambda: not b1.fenced and not b2.fenced, 30)
                master, slave = (b1, b2) if b1.ha_master is not None else (b2, b1)
                assert master.controller is not None
                master.topics.create_if_absent(TOPIC, 1)
                assert await send(master, b"before failover") == ResponseCode.SUCCESS
                # replicated over TLS HA after a signed TLS epoch query; topics copied by slave sync
                await until(lambda: slave.store.max_offset(TOPIC, 0) == 1, 20)
                await until(lambda: slave.topics.get(TOPIC) is not None, 20)
                both = {1, 2}  # the controller knows the slave is in sync: it may be elected
                await until(lambda: bool((v := master.controller.view) and v.sync_state_set == both), 20)
                await master.stop()
                stopped.add(master)
                await until(lambda: slave.ha_master is not None, 30)  # elected over signed TLS heartbeats
                assert await send(slave, b"after failover") == ResponseCode.SUCCESS
                assert slave.store.max_offset(TOPIC, 0) == 2
            finally:
                for b in (b2, b1):
                    if b not in stopped:
                        await b.stop()

    asyncio.run(asyncio.wait_for(main(), 90))
