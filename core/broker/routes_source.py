"""Where a broker's frontends learn the cluster: name servers, broker groups and topic routes.

The admin API (cluster page, topic deletion) and the Kafka frontend (partitions across broker
groups, peers' Kafka listeners) read the same source, which the ``ferrymq`` command creates and
hands to both; it lives in core so that neither frontend imports the other for it.
In ``ferrymq serve`` the name server runs in the same process, so its tables are read directly
(:class:`LocalRoutes`). A standalone broker asks its name servers over remoting
(:class:`RemoteRoutes`: GET_BROKER_CLUSTER_INFO, GET_ROUTEINFO_BY_TOPIC, DELETE_TOPIC_IN_NAMESRV).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.outbound import Outbound
from ferrymq.core.remoting.route import ClusterInfo, RouteCodecError, TopicRouteData
from ferrymq.core.remoting.transport import RemotingConnection, RemotingError

log = logging.getLogger("ferrymq.routes")

TIMEOUT_S = 2.0


class RouteTables(Protocol):
    """What is read of an in-process name server (``RouteInfoManager`` fits)."""

    def cluster_info(self) -> ClusterInfo: ...

    def pick_topic_route(self, topic: str) -> TopicRouteData | None: ...

    def delete_topic(self, topic: str, cluster_name: str | None = None) -> bool: ...


class ClusterSource(Protocol):
    namesrv_addrs: list[str]

    async def cluster_info(self) -> tuple[ClusterInfo | None, dict[str, bool]]:
        """The cluster as the name servers see it, and which name servers answered."""
        ...

    async def topic_route(self, topic: str) -> TopicRouteData | None: ...

    async def delete_topic(self, topic: str, cluster: str) -> None: ...

    async def close(self) -> None: ...


class LocalRoutes:
    """The in-process name server of ``ferrymq serve``."""

    def __init__(self, tables: RouteTables, addr: str) -> None:
        self.tables = tables
        self.namesrv_addrs = [addr]

    async def cluster_info(self) -> tuple[ClusterInfo | None, dict[str, bool]]:
        return self.tables.cluster_info(), {self.namesrv_addrs[0]: True}

    async def topic_route(self, topic: str) -> TopicRouteData | None:
        return self.tables.pick_topic_route(topic)

    async def delete_topic(self, topic: str, cluster: str) -> None:
        self.tables.delete_topic(topic, cluster)

    async def close(self) -> None:
        pass


class RemoteRoutes:
    """Name servers over remoting; one kept connection per address, reopened when closed."""

    def __init__(self, addrs: list[str], outbound: Outbound | None = None) -> None:
        self.namesrv_addrs = list(addrs)
        #: the broker's TLS and signing (core/remoting/outbound.py), None: neither
        self.outbound = outbound or Outbound()
        self._conns: dict[str, RemotingConnection] = {}

    async def invoke(self, addr: str, cmd: RemotingCommand) -> RemotingCommand:
        conn = self._conns.get(addr)
        if conn is None or not conn.is_open:
            conn = self._conns[addr] = await self.outbound.connect(addr, timeout=TIMEOUT_S)
        return await conn.invoke(cmd, timeout=TIMEOUT_S)

    async def cluster_info(self) -> tuple[ClusterInfo | None, dict[str, bool]]:
        async def ask(addr: str) -> ClusterInfo | None:
            try:
                resp = await self.invoke(addr, RemotingCommand(code=RequestCode.GET_BROKER_CLUSTER_INFO))
                if resp.code != ResponseCode.SUCCESS:
                    return None
                return ClusterInfo.from_json_bytes(resp.body)
            except (RemotingError, RouteCodecError, ValueError) as exc:
                log.info("name server %s: no cluster info: %s", addr, exc)
                return None

        answers = await asyncio.gather(*(ask(a) for a in self.namesrv_addrs))
        merged: ClusterInfo | None = None
        for info in answers:
            if info is None:
                continue
            if merged is None:
                merged = info
            else:  # name servers never sync: a broker may be known to only some of them
                merged.broker_addr_table.update(info.broker_addr_table)
                for cluster, names in info.cluster_addr_table.items():
                    merged.cluster_addr_table.setdefault(cluster, set()).update(names)
        reachable = {a: info is not None for a, info in zip(self.namesrv_addrs, answers, strict=True)}
        return merged, reachable

    async def topic_route(self, topic: str) -> TopicRouteData | None:
        for addr in self.namesrv_addrs:
            cmd = RemotingCommand(code=RequestCode.GET_ROUTEINFO_BY_TOPIC, ext_fields={"topic": topic})
            try:
                resp = await self.invoke(addr, cmd)
            except RemotingError:
                continue
            if resp.code == ResponseCode.SUCCESS:
                try:
                    return TopicRouteData.from_json_bytes(resp.body)
                except (RouteCodecError, ValueError):
                    continue
        return None

    async def delete_topic(self, topic: str, cluster: str) -> None:
        async def one(addr: str) -> None:
            cmd = RemotingCommand(
                code=RequestCode.DELETE_TOPIC_IN_NAMESRV, ext_fields={"topic": topic, "clusterName": cluster}
            )
            try:
                await self.invoke(addr, cmd)
            except RemotingError as exc:
                log.warning("cannot delete topic %s on name server %s: %s", topic, addr, exc)

        await asyncio.gather(*(one(a) for a in self.namesrv_addrs))

    async def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
