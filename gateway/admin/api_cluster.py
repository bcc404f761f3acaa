"""GET /api/cluster: name servers, broker groups, and each broker's address, role, version,
uptime, disk use and replication (this broker from its own objects, the others over remoting:
GET_BROKER_RUNTIME_INFO and GET_BROKER_HA_STATUS, one shape for both, replication_view.py)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from typing import Any

from fastapi import APIRouter, Depends

from ferrymq import __version__
from ferrymq.core.broker.replication_view import ha_runtime_info
from ferrymq.core.broker.routes_source import TIMEOUT_S
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.outbound import Outbound
from ferrymq.core.remoting.route import MASTER_ID, BrokerData
from ferrymq.core.remoting.transport import RemotingError
from ferrymq.gateway.admin.context import AdminContext, get_ctx
from ferrymq.gateway.admin.models import BrokerOut, ClusterOut, NameServerOut, ReplicaOut, ReplicationOut

router = APIRouter(tags=["cluster"])


async def local_broker(ctx: AdminContext) -> BrokerOut:
    b = ctx.broker
    c = b.config
    try:
        usage = shutil.disk_usage(c.store_path_root_dir)
        total, ratio = usage.total, usage.used / max(usage.total, 1)
    except OSError:
        total, ratio = None, None
    return BrokerOut(
        cluster=c.broker_cluster_name,
        broker_name=c.broker_name,
        broker_id=c.broker_id,
        addr=c.broker_addr,
        role="MASTER" if c.broker_id == MASTER_ID else "SLAVE",
        local=True,
        reachable=True,
        version=f"ferrymq {__version__}",
        boot_timestamp=b.boot_timestamp,
        uptime_seconds=round(time.time() - b.boot_timestamp / 1000, 3),
        disk_used_bytes=await ctx.disk_used(),
        disk_total_bytes=total,
        disk_used_ratio=ratio,
        put_messages=b.stats.put_messages,
        get_messages=b.stats.get_messages,
        replication=replication_of(ha_runtime_info(b), c.broker_addr),
    )


def replication_of(info: dict[str, Any], addr: str) -> ReplicationOut | None:
    """A GET_BROKER_HA_STATUS body (RocketMQ's HARuntimeInfo) as the API shows it; ``addr`` is the
    broker's own, first in a master's in-sync set."""
    try:
        if not info.get("master", True):
            link = info.get("haClientRuntimeInfo") or {}
            return ReplicationOut(
                broker_role=str(info.get("brokerRole") or "SLAVE"),
                epoch=info.get("masterEpoch"),
                commit_log_max_offset=link.get("maxOffset"),
                master_ha_addr=link.get("masterAddr") or None,
                master_addr=link.get("masterRemotingAddr") or None,
                master_connected=link.get("connected"),
            )
        slaves = [
            ReplicaOut(
                addr=c["addr"],
                ack_offset=c["slaveAckOffset"],
                lag_bytes=c["diff"],
                lag_messages=c.get("diffMessages"),
                in_sync=c["inSync"],
                last_ack_ms=c.get("lastAckTimestamp"),
            )
            for c in info.get("haConnectionInfo") or ()
        ]
        return ReplicationOut(
            broker_role=str(info.get("brokerRole") or "MASTER"),
            epoch=info.get("masterEpoch"),
            commit_log_max_offset=info.get("masterCommitLogMaxOffset"),
            in_sync_slaves=int(info.get("inSyncSlaveNums") or 0),
            in_sync_set=[addr, *(r.addr for r in slaves if r.in_sync)],
            slaves=slaves,
        )
    except (KeyError, TypeError, ValueError, AttributeError):  # a broker that answers otherwise
        return None


def _int(table: dict[str, Any], key: str) -> int | None:
    try:
        return int(table[key])
    except (KeyError, TypeError, ValueError):
        return None


async def _broker_json(outbound: Outbound, addr: str, code: RequestCode) -> dict[str, Any] | None:
    """Another broker's JSON answer to ``code``, or None if it does not answer with one."""
    try:
        conn = await outbound.connect(addr, timeout=TIMEOUT_S)
    except (RemotingError, ValueError):
        return None
    try:
        resp = await conn.invoke(RemotingCommand(code=code), TIMEOUT_S)
        if resp.code != ResponseCode.SUCCESS:
            return None
        body = json.loads(bytes(resp.body))
        return body if isinstance(body, dict) else None
    except (RemotingError, ValueError, AttributeError, TypeError):
        return None
    finally:
        conn.close()


async def broker_runtime_info(outbound: Outbound, addr: str) -> dict[str, Any] | None:
    """Another broker's GET_BROKER_RUNTIME_INFO table, or None if it does not answer."""
    body = await _broker_json(outbound, addr, RequestCode.GET_BROKER_RUNTIME_INFO)
    table = body.get("table") if body is not None else None
    return table if isinstance(table, dict) else None


async def remote_broker(outbound: Outbound, bd: BrokerData, broker_id: int, addr: str) -> BrokerOut:
    table, ha = await asyncio.gather(
        broker_runtime_info(outbound, addr), _broker_json(outbound, addr, RequestCode.GET_BROKER_HA_STATUS)
    )
    out = BrokerOut(
        cluster=bd.cluster,
        broker_name=bd.broker_name,
        broker_id=broker_id,
        addr=addr,
        role="MASTER" if broker_id == MASTER_ID else "SLAVE",
        local=False,
        reachable=table is not None,
        replication=replication_of(ha, addr) if ha is not None else None,
    )
    if table is not None:
        out.version = str(table.get("brokerVersionDesc") or table.get("brokerVersion") or "") or None
        out.boot_timestamp = _int(table, "bootTimestamp")
        if out.boot_timestamp:
            out.uptime_seconds = round(time.time() - out.boot_timestamp / 1000, 3)
        out.put_messages = _int(table, "msgPutTotalTodayNow")
        out.get_messages = _int(table, "msgGetTotalTodayNow")
        ratio = table.get("commitLogDiskRatio")
        try:
            out.disk_used_ratio = float(ratio) if ratio is not None else None
        except ValueError:
            pass
    return out


@router.get("/cluster", response_model=ClusterOut, summary="Name servers and brokers")
async def cluster(ctx: AdminContext = Depends(get_ctx)) -> ClusterOut:
    info, reachable = await ctx.routes.cluster_info()
    me = await local_broker(ctx)
    clusters: dict[str, list[str]] = {}
    brokers: list[BrokerOut] = []
    pending = []
    if info is not None:
        clusters = {c: sorted(names) for c, names in sorted(info.cluster_addr_table.items())}
        for name, bd in sorted(info.broker_addr_table.items()):
            for bid, addr in sorted(bd.broker_addrs.items()):
                if name == me.broker_name and bid == me.broker_id:
                    continue
                pending.append(remote_broker(ctx.broker.outbound, bd, bid, addr))
    brokers = [me, *await asyncio.gather(*pending)]
    clusters.setdefault(me.cluster, [])
    if me.broker_name not in clusters[me.cluster]:
        clusters[me.cluster] = sorted([*clusters[me.cluster], me.broker_name])
    brokers.sort(key=lambda b: (b.cluster, b.broker_name, b.broker_id))
    return ClusterOut(
        name_servers=[
            NameServerOut(addr=a, reachable=reachable.get(a, False)) for a in ctx.routes.namesrv_addrs
        ],
        clusters=clusters,
        brokers=brokers,
    )
