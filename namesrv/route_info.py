"""The name server's routing tables (``namesrv/.../routeinfo/RouteInfoManager.java``).

Serves the state behind REGISTER_BROKER (103), UNREGISTER_BROKER (104), GET_ROUTEINFO_BY_TOPIC
(105), GET_BROKER_CLUSTER_INFO (106), GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206) and
DELETE_TOPIC_IN_NAMESRV (216), plus broker expiry by silence or by a closed connection.

No IO and no locks: the name server mutates these tables only from its event loop. Time is
``time.monotonic`` seconds (injectable for tests), so wall-clock jumps never expire brokers.

Left out, compared with 5.x Java: slave-acting-master (a slave never updates topic routes, and
routes are never rewritten to promote a slave), static-topic mappings,
``deleteTopicWithBrokerRegistration``, the KV-config/order-topic namespace, min-broker-id-change
notifications, and Java's rejection of a first registration that carries exactly one topic (a
5.x single-topic update), which would also reject a real one-topic broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ferrymq.core.remoting.route import (
    MASTER_ID,
    BrokerData,
    ClusterInfo,
    DataVersion,
    QueueData,
    RegisterBrokerBody,
    TopicConfig,
    TopicList,
    TopicRouteData,
)

log = logging.getLogger("ferrymq.namesrv")

#: ``RouteInfoManager.DEFAULT_BROKER_CHANNEL_EXPIRED_TIME``: 2 minutes of silence.
DEFAULT_BROKER_EXPIRY_S = 120.0


@dataclass(frozen=True, slots=True)
class BrokerAddrInfo:
    """Key of the live table: Java keys liveness by (cluster, address), not address alone."""

    cluster_name: str
    broker_addr: str


@dataclass(slots=True)
class BrokerLiveInfo:
    """When a broker last registered, how long it may stay silent, and over which connection."""

    last_update: float
    heartbeat_timeout_s: float
    data_version: DataVersion
    connection: object | None
    ha_server_addr: str


@dataclass(slots=True)
class RegisterBrokerResult:
    """What REGISTER_BROKER answers: a slave learns its master's address and HA address."""

    master_addr: str | None = None
    ha_server_addr: str | None = None


@dataclass(slots=True)
class RemovedBroker:
    """A broker dropped by expiry or a closed connection; the server logs and closes it."""

    cluster_name: str
    broker_name: str
    broker_id: int
    broker_addr: str
    connection: object | None = None


@dataclass
class RouteInfoManager:
    """Topic, broker, cluster and liveness tables with RocketMQ's update rules."""

    default_timeout_s: float = DEFAULT_BROKER_EXPIRY_S
    clock: Callable[[], float] = time.monotonic
    topic_queue_table: dict[str, dict[str, QueueData]] = field(default_factory=dict)
    broker_addr_table: dict[str, BrokerData] = field(default_factory=dict)
    cluster_addr_table: dict[str, set[str]] = field(default_factory=dict)
    broker_live_table: dict[BrokerAddrInfo, BrokerLiveInfo] = field(default_factory=dict)
    filter_server_table: dict[BrokerAddrInfo, list[str]] = field(default_factory=dict)

    # ---- registration ----------------------------------------------------------------------------

    def register_broker(
        self,
        cluster_name: str,
        broker_addr: str,
        broker_name: str,
        broker_id: int,
        ha_server_addr: str,
        body: RegisterBrokerBody | None = None,
        *,
        heartbeat_timeout_s: float | None = None,
        enable_acting_master: bool | None = None,
        zone_name: str | None = None,
        connection: object | None = None,
        kafka_addr: str | None = None,
        grpc_addr: str | None = None,
        kafka_listeners: str | None = None,
    ) -> RegisterBrokerResult:
        """Record or refresh a broker; a master's topics (re)define its queues of each topic.

        A registration is also the heartbeat: brokers re-register every 30 s.
        """
        body = body if body is not None else RegisterBrokerBody(data_version=DataVersion(timestamp=0))
        result = RegisterBrokerResult()

        self.cluster_addr_table.setdefault(cluster_name, set()).add(broker_name)
        broker_data = self.broker_addr_table.get(broker_name)
        register_first = broker_data is None
        if broker_data is None:
            broker_data = BrokerData(cluster_name, broker_name, {})
            self.broker_addr_table[broker_name] = broker_data
        broker_data.enable_acting_master = bool(enable_acting_master)
        broker_data.zone_name = zone_name
        if kafka_addr:
            broker_data.kafka_addrs[broker_id] = kafka_addr
        else:
            broker_data.kafka_addrs.pop(broker_id, None)
        if grpc_addr:
            broker_data.grpc_addrs[broker_id] = grpc_addr
        else:
            broker_data.grpc_addrs.pop(broker_id, None)
        if kafka_listeners:
            broker_data.kafka_listeners[broker_id] = kafka_listeners
        else:
            broker_data.kafka_listeners.pop(broker_id, None)
        addrs = broker_data.broker_addrs

        # A slave promoted to master (or the reverse) keeps its address under a new id:
        # one address must have exactly one id.
        for bid in [bid for bid, addr in addrs.items() if addr == broker_addr and bid != broker_id]:
            del addrs[bid]

        # Another address already holds this id: the newer state version wins, as in Java.
        old_addr = addrs.get(broker_id)
        if old_addr is not None and old_addr != broker_addr:
            old_live = self.broker_live_table.get(BrokerAddrInfo(cluster_name, old_addr))
            if old_live is not None and old_live.data_version.state_version > body.data_version.state_version:
                log.warning(
                    "broker %s/%s id %s at %s conflicts with %s (newer state version); ignored",
                    cluster_name,
                    broker_name,
                    broker_id,
                    broker_addr,
                    old_addr,
                )
                self.broker_live_table.pop(BrokerAddrInfo(cluster_name, broker_addr), None)
                return result

        addrs[broker_id] = broker_addr
        register_first = register_first or not old_addr

        if broker_id == MASTER_ID:
            for tc in body.topic_configs.values():
                self._create_or_update_queue_data(broker_name, tc)

        key = BrokerAddrInfo(cluster_name, broker_addr)
        previous = self.broker_live_table.get(key)
        self.broker_live_table[key] = BrokerLiveInfo(
            last_update=self.clock(),
            heartbeat_timeout_s=(
                heartbeat_timeout_s if heartbeat_timeout_s is not None else self.default_timeout_s
            ),
            data_version=body.data_version,
            connection=connection,
            ha_server_addr=ha_server_addr,
        )
        if previous is None or register_first:
            log.debug(
                "new broker registered: cluster=%s name=%s id=%s addr=%s ha=%s topics=%d",
                cluster_name,
                broker_name,
                broker_id,
                broker_addr,
                ha_server_addr,
                len(body.topic_configs),
            )

        if body.filter_server_list:
            self.filter_server_table[key] = list(body.filter_server_list)
        else:
            self.filter_server_table.pop(key, None)

        if broker_id != MASTER_ID:
            master_addr = addrs.get(MASTER_ID)
            if master_addr is not None:
                master_live = self.broker_live_table.get(BrokerAddrInfo(cluster_name, master_addr))
                if master_live is not None:
                    result.master_addr = master_addr
                    result.ha_server_addr = master_live.ha_server_addr
        return result

    def _create_or_update_queue_data(self, broker_name: str, tc: TopicConfig) -> None:
        qd = QueueData.from_topic_config(broker_name, tc)
        per_broker = self.topic_queue_table.get(tc.topic_name)
        if per_broker is None:
            self.topic_queue_table[tc.topic_name] = {broker_name: qd}
            log.info("new topic registered: %s %s", tc.topic_name, qd)
            return
        existing = per_broker.get(broker_name)
        if existing != qd:
            if existing is not None:
                log.info("topic changed: %s old=%s new=%s", tc.topic_name, existing, qd)
            per_broker[broker_name] = qd

    def unregister_broker(
        self, cluster_name: str, broker_addr: str, broker_name: str, broker_id: int
    ) -> bool:
        """Drop one broker member; a group with no member left takes its routes with it.

        Returns whether the broker was known at all. ``broker_id`` is accepted for parity with
        the request header; like Java, the member is found by address.
        """
        key = BrokerAddrInfo(cluster_name, broker_addr)
        known = self.broker_live_table.pop(key, None) is not None
        self.filter_server_table.pop(key, None)

        broker_data = self.broker_addr_table.get(broker_name)
        if broker_data is None:
            return known
        stale = [bid for bid, addr in broker_data.broker_addrs.items() if addr == broker_addr]
        for bid in stale:
            del broker_data.broker_addrs[bid]
            broker_data.kafka_addrs.pop(bid, None)
            broker_data.grpc_addrs.pop(bid, None)
            broker_data.kafka_listeners.pop(bid, None)
        known = known or bool(stale)
        if broker_data.broker_addrs:
            return known

        del self.broker_addr_table[broker_name]
        names = self.cluster_addr_table.get(cluster_name)
        if names is not None:
            names.discard(broker_name)
            if not names:
                del self.cluster_addr_table[cluster_name]
        for topic in list(self.topic_queue_table):
            per_broker = self.topic_queue_table[topic]
            if per_broker.pop(broker_name, None) is not None and not per_broker:
                del self.topic_queue_table[topic]
                log.info("topic %s removed with its last broker %s", topic, broker_name)
        log.info("broker group %s removed from cluster %s", broker_name, cluster_name)
        return True

    def _remove_live(self, key: BrokerAddrInfo, live: BrokerLiveInfo | None) -> RemovedBroker | None:
        found = self._find_member(key)
        if found is None:
            self.broker_live_table.pop(key, None)
            self.filter_server_table.pop(key, None)
            return None
        broker_name, broker_id = found
        self.unregister_broker(key.cluster_name, key.broker_addr, broker_name, broker_id)
        return RemovedBroker(
            key.cluster_name,
            broker_name,
            broker_id,
            key.broker_addr,
            live.connection if live is not None else None,
        )

    def _find_member(self, key: BrokerAddrInfo) -> tuple[str, int] | None:
        for bd in self.broker_addr_table.values():
            if bd.cluster != key.cluster_name:
                continue
            for bid, addr in bd.broker_addrs.items():
                if addr == key.broker_addr:
                    return bd.broker_name, bid
        return None

    # ---- liveness --------------------------------------------------------------------------------

    def scan_not_active(self, now: float | None = None) -> list[RemovedBroker]:
        """Drop brokers silent for longer than their heartbeat timeout; return them."""
        now = self.clock() if now is None else now
        expired = [
            (key, live)
            for key, live in self.broker_live_table.items()
            if live.last_update + live.heartbeat_timeout_s < now
        ]
        removed: list[RemovedBroker] = []
        for key, live in expired:
            silent = now - live.last_update
            log.debug("broker %s in cluster %s silent for %.1fs", key.broker_addr, key.cluster_name, silent)
            gone = self._remove_live(key, live)
            if gone is not None:
                removed.append(gone)
        return removed

    def on_connection_closed(self, connection: object) -> list[RemovedBroker]:
        """Drop at once every broker that registered over ``connection``."""
        keys = [(k, v) for k, v in self.broker_live_table.items() if v.connection is connection]
        removed: list[RemovedBroker] = []
        for key, live in keys:
            gone = self._remove_live(key, live)
            if gone is not None:
                removed.append(gone)
        return removed

    def update_timestamp(self, cluster_name: str, broker_addr: str) -> bool:
        """Refresh a broker's liveness without a full registration."""
        live = self.broker_live_table.get(BrokerAddrInfo(cluster_name, broker_addr))
        if live is None:
            return False
        live.last_update = self.clock()
        return True

    # ---- queries ---------------------------------------------------------------------------------

    def pick_topic_route(self, topic: str) -> TopicRouteData | None:
        """The route of ``topic`` (copies, safe to encode later), or None when unknown."""
        per_broker = self.topic_queue_table.get(topic)
        if not per_broker:
            return None
        route = TopicRouteData()
        for broker_name, qd in sorted(per_broker.items()):
            route.queue_datas.append(
                QueueData(qd.broker_name, qd.read_queue_nums, qd.write_queue_nums, qd.perm, qd.topic_sys_flag)
            )
            bd = self.broker_addr_table.get(broker_name)
            if bd is None:
                continue
            clone = bd.copy()
            route.broker_datas.append(clone)
            if self.filter_server_table:
                for addr in clone.broker_addrs.values():
                    servers = self.filter_server_table.get(BrokerAddrInfo(clone.cluster, addr))
                    if servers is not None:
                        route.filter_server_table[addr] = list(servers)
        if not route.broker_datas:
            return None
        return route

    def cluster_info(self) -> ClusterInfo:
        return ClusterInfo(
            broker_addr_table={name: bd.copy() for name, bd in self.broker_addr_table.items()},
            cluster_addr_table={c: set(names) for c, names in self.cluster_addr_table.items()},
        )

    def all_topics(self) -> TopicList:
        return TopicList(set(self.topic_queue_table))

    def delete_topic(self, topic: str, cluster_name: str | None = None) -> bool:
        """Forget a topic everywhere, or only on the broker groups of ``cluster_name``."""
        if not cluster_name:
            return self.topic_queue_table.pop(topic, None) is not None
        per_broker = self.topic_queue_table.get(topic)
        names = self.cluster_addr_table.get(cluster_name)
        if per_broker is None or not names:
            return False
        changed = False
        for name in names:
            changed = per_broker.pop(name, None) is not None or changed
        if not per_broker:
            del self.topic_queue_table[topic]
        return changed

    def data_version_of(self, cluster_name: str, broker_addr: str) -> DataVersion | None:
        live = self.broker_live_table.get(BrokerAddrInfo(cluster_name, broker_addr))
        return None if live is None else live.data_version

    def live_brokers(self) -> Mapping[BrokerAddrInfo, BrokerLiveInfo]:
        return self.broker_live_table
