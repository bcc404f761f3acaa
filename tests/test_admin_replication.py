"""What operators see of a broker group's replication: GET_BROKER_HA_STATUS (RocketMQ's
HARuntimeInfo), the admin API's /api/cluster (this broker from its own state, the others over
remoting), the CLI's cluster table and the Prometheus metrics.

In-process: a master and a slave Broker replicating for real (core/ha), plus a second, lagging
slave played into the master's ``Broker.ha`` as its HA service would report one; the admin app
driven through ASGI.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ferrymq.cli.admin import replication_text
from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.controller_client import ReplicaView
from ferrymq.core.broker.replication_view import ha_runtime_info
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import BrokerData, ClusterInfo, TopicRouteData
from ferrymq.core.remoting.transport import connect
from ferrymq.gateway.admin.api_cluster import replication_of
from ferrymq.gateway.admin.app import create_app
from ferrymq.gateway.admin.context import AdminContext
from ferrymq.gateway.admin.metrics import registry_for
from tests.remoting_helpers import send_v2


class FixedRoutes:
    """A ClusterSource that knows one broker group."""

    def __init__(self, bd: BrokerData) -> None:
        self.bd = bd
        self.namesrv_addrs: list[str] = []

    async def cluster_info(self) -> tuple[ClusterInfo | None, dict[str, bool]]:
        info = ClusterInfo({self.bd.broker_name: self.bd}, {self.bd.cluster: {self.bd.broker_name}})
        return info, {}

    async def topic_route(self, topic: str) -> TopicRouteData | None:
        return None

    async def delete_topic(self, topic: str, cluster: str) -> None:
        return None

    async def close(self) -> None:
        return None


def broker(tmp_path: Path, name: str, **config: Any) -> Broker:
    values = {"listen_port": 0, "listen_host": "127.0.0.1", "store_path_root_dir": tmp_path / name}
    return Broker(BrokerConfig(**{**values, **config}))


async def ha_status(b: Broker) -> dict[str, Any]:
    host, port = b.config.broker_addr.split(":")
    conn = await connect(host, int(port))
    try:
        resp = await conn.invoke(RemotingCommand(code=RequestCode.GET_BROKER_HA_STATUS), 5)
        return json.loads(bytes(resp.body))
    finally:
        conn.close()


async def linked(master: Broker, slave: Broker) -> str:
    """Wait until the slave's HA link is up and the master has its ack of the master's end; the
    slave's HA address as the master sees it."""
    while not (
        slave.ha.master_connected
        and master.ha.slaves
        and master.ha.max_ack_offset() >= master.store.commit_log.write_offset
    ):
        await asyncio.sleep(0.01)
    return master.ha.replicas()[0].addr


def test_master_and_slave_replication_in_ha_status_api_cli_and_metrics(tmp_path: Path) -> None:
    async def main() -> None:
        master = broker(tmp_path, "m", broker_role="SYNC_MASTER")
        await master.start()
        assert master.ha_addr is not None
        slave = broker(tmp_path, "s", broker_role="SLAVE", broker_id=1, ha_master_address=master.ha_addr)
        await slave.start()
        try:
            master.topics.create_if_absent("t", 1)
            await linked(master, slave)
            conn = await connect("127.0.0.1", master.port)
            for body in (b"replicated", b"second", b"third"):
                assert (await conn.invoke(send_v2("t", body, 0), 5)).code == 0  # waits for the slave
            conn.close()
            real = await linked(master, slave)
            end = master.store.commit_log.write_offset
            assert end > 0
            far = "127.0.0.9:40002"  # a second slave, as the HA service would report it: behind by all
            master.ha.slave_acked(far, 0, end)
            first = master.store.consume_queue("t", 0).unit(0)
            assert first is not None
            mid = "127.0.0.9:40003"  # a third one: has the first message only
            master.ha.slave_acked(mid, first[0] + first[1], end)
            mid_bytes = end - first[0] - first[1]
            slave.ha.master_addr = master.config.broker_addr  # no name server here to tell it

            st = await ha_status(master)
            assert st["master"] is True and st["brokerRole"] == "SYNC_MASTER"
            assert st["masterCommitLogMaxOffset"] == end
            conns = [
                (c["addr"], c["slaveAckOffset"], c["diff"], c["diffMessages"]) for c in st["haConnectionInfo"]
            ]
            assert conns == [(real, end, 0, 0), (far, 0, end, 3), (mid, end - mid_bytes, mid_bytes, 2)]
            st = await ha_status(slave)
            assert st["master"] is False
            assert st["haClientRuntimeInfo"]["masterAddr"] == master.ha_addr
            assert st["haClientRuntimeInfo"]["maxOffset"] == end

            bd = BrokerData(
                "DefaultCluster",
                master.config.broker_name,
                {0: master.config.broker_addr, 1: slave.config.broker_addr},
            )
            ctx = AdminContext(master, FixedRoutes(bd), read_open=True)  # type: ignore[arg-type]
            app = create_app(ctx)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as h:
                cluster = (await h.get("/api/cluster")).json()
            m, s = cluster["brokers"]
            rm, rs = m["replication"], s["replication"]
            assert rm["broker_role"] == "SYNC_MASTER" and rm["commit_log_max_offset"] == end
            lags = [(r["addr"], r["lag_bytes"], r["lag_messages"]) for r in rm["slaves"]]
            assert lags == [(real, 0, 0), (far, end, 3), (mid, mid_bytes, 2)]
            in_sync = [r["addr"] for r in rm["slaves"] if r["in_sync"]]
            assert rm["in_sync_set"] == [master.config.broker_addr, *in_sync]
            assert rm["in_sync_slaves"] == len(in_sync)
            assert rs == {
                "broker_role": "SLAVE",
                "epoch": None,  # classic mode has no master epochs
                "commit_log_max_offset": end,
                "in_sync_slaves": 0,
                "in_sync_set": [],
                "slaves": [],
                "master_ha_addr": master.ha_addr,
                "master_addr": master.config.broker_addr,
                "master_connected": True,
            }
            assert replication_text(rs) == f"master {master.ha_addr} up"
            assert replication_text(rm).startswith(f"in sync {len(in_sync)}/3, lag ")
            assert replication_text(rm).endswith(", 3 msgs")

            text = generate_latest(registry_for(ctx)).decode()
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(text)
                for s in fam.samples
            }
            assert samples[("ferrymq_replication_lag_bytes", (("slave", far),))] == end
            assert samples[("ferrymq_replication_lag_bytes", (("slave", real),))] == 0
            assert samples[("ferrymq_replication_lag_messages", (("slave", far),))] == 3
            assert samples[("ferrymq_replication_lag_messages", (("slave", mid),))] == 2
            assert samples[("ferrymq_replication_in_sync_replicas", ())] == 1 + len(in_sync)
            slave_text = generate_latest(registry_for(AdminContext(slave, FixedRoutes(bd)))).decode()  # type: ignore[arg-type]
            assert "ferrymq_replication_master_connected 1.0" in slave_text
        finally:
            await slave.stop()
            await master.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_role_changes_and_the_master_epoch_in_metrics(tmp_path: Path) -> None:
    """Controller mode: each role the controller gives after the first counts as a failover."""

    async def main() -> None:
        b = broker(
            tmp_path,
            "c",
            enable_controller_mode=True,
            controller_addr="127.0.0.1:1",  # nobody: the test plays the controller
            broker_id=2,
            broker_role="SYNC_MASTER",
        )
        await b.start()
        try:
            assert b.controller is not None
            other = "127.0.0.1:1"

            def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
                ctx = AdminContext(b, FixedRoutes(BrokerData("DefaultCluster", "x", {})), read_open=True)  # type: ignore[arg-type]
                text = generate_latest(registry_for(ctx)).decode()
                return {
                    (s.name, tuple(sorted(s.labels.items()))): s.value
                    for fam in text_string_to_metric_families(text)
                    for s in fam.samples
                }

            await b.controller.act(ReplicaView(2, b.config.broker_addr, 1))  # elected from fenced
            got = samples()
            assert got[("ferrymq_replication_master_epoch", ())] == 1
            assert got.get(("ferrymq_replication_role_changes_total", (("role", "MASTER"),)), 0) == 0
            await b.controller.act(ReplicaView(1, other, 2))  # deposed: follows a new master
            await b.controller.act(ReplicaView(2, b.config.broker_addr, 3))  # elected again
            got = samples()
            assert got[("ferrymq_replication_master_epoch", ())] == 3
            info = ha_runtime_info(b)  # what GET_BROKER_HA_STATUS, the admin API and the console show
            assert info["masterEpoch"] == 3
            assert replication_of(info, b.config.broker_addr).epoch == 3  # type: ignore[union-attr]
            assert got[("ferrymq_replication_role_changes_total", (("role", "SLAVE"),))] == 1
            assert got[("ferrymq_replication_role_changes_total", (("role", "MASTER"),))] == 1
        finally:
            await b.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
