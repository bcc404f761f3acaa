"""Topic routes as a client sees them: the name-server query, caching, and queue lists.

A route (``TopicRouteData`` from ``ferrymq.core.remoting.route``) is fetched with
GET_ROUTEINFO_BY_TOPIC (105) and turned into

* the **publish** queues (``MQClientInstance.topicRouteData2TopicPublishInfo``): the write queues
  of every broker group whose queue data is writable and which has a master (broker id 0), in
  broker-name order; or, when the route carries ``orderTopicConf`` (``"broker:n;..."``), exactly
  the queues it lists;
* the **subscribe** queues (``topicRouteData2TopicSubscribeInfo``): the read queues of every
  readable queue data, masters or not.

For a topic the name server does not know (TOPIC_NOT_EXIST), a producer borrows the route of
the default topic ``TBW102`` with at most ``default_topic_queue_nums`` queues per broker and
sends with ``defaultTopic=TBW102`` so the broker creates the topic (``from_default``).

Broker addresses are the union of the brokers named in all cached routes. Routes are refreshed
by :meth:`RouteManager.refresh` (the client instance calls it every 30 s); listeners hear about
every change. Left out: static-topic mappings (``topicQueueMappingByBroker``), namespaces.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ferrymq.client._remote import RemotingClient, check_response, request
from ferrymq.client.errors import ClientError
from ferrymq.client.message import MessageQueue
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.route import (
    MASTER_ID,
    BrokerData,
    QueueData,
    RouteCodecError,
    TopicRouteData,
    is_readable,
    is_writeable,
)

log = logging.getLogger("ferrymq.client")

DEFAULT_TOPIC = "TBW102"
FAQ = "\nSee http://rocketmq.apache.org/docs/faq/ for further details."


def route_fingerprint(route: TopicRouteData) -> str:
    """A canonical text of a route, for change detection (``topicRouteDataChanged``)."""
    obj = route.to_json()
    obj["queueDatas"] = sorted(obj["queueDatas"], key=lambda q: q["brokerName"])
    obj["brokerDatas"] = sorted(obj["brokerDatas"], key=lambda b: b["brokerName"])
    return json.dumps(obj, sort_keys=True)


@dataclass(slots=True)
class TopicPublishInfo:
    """The queues a producer may send a topic's messages to, with round-robin selection."""

    topic: str
    queues: list[MessageQueue]
    route: TopicRouteData
    order_topic: bool = False
    from_default: bool = False
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(random.randrange(1 << 16)))

    @property
    def ok(self) -> bool:
        return bool(self.queues)

    def select(self, last_broker: str | None = None, avoid: Iterable[str] = ()) -> MessageQueue:
        """Next queue round-robin; on a retry (``last_broker`` set) prefer another broker group,
        and skip the groups in ``avoid`` (recently failed) while another group is left."""
        n = len(self.queues)
        if n == 0:
            raise ClientError(f"No route info of this topic: {self.topic}{FAQ}")
        avoid = set(avoid)
        if last_broker is not None:
            avoid.add(last_broker)
        if avoid:
            for _ in range(n):
                mq = self.queues[next(self._counter) % n]
                if mq.broker_name not in avoid:
                    return mq
            if last_broker is not None:
                # every group failed recently: at least leave the one that just failed
                for _ in range(n):
                    mq = self.queues[next(self._counter) % n]
                    if mq.broker_name != last_broker:
                        return mq
        return self.queues[next(self._counter) % n]


def _masters(route: TopicRouteData) -> dict[str, BrokerData]:
    return {bd.broker_name: bd for bd in route.broker_datas if MASTER_ID in bd.broker_addrs}


def publish_info_from_route(topic: str, route: TopicRouteData) -> TopicPublishInfo:
    """``topicRouteData2TopicPublishInfo``."""
    queues: list[MessageQueue] = []
    if route.order_topic_conf:
        for item in route.order_topic_conf.split(";"):
            name, sep, nums = item.partition(":")
            if sep and nums.strip().isdigit():
                queues.extend(MessageQueue(topic, name, i) for i in range(int(nums)))
        return TopicPublishInfo(topic, queues, route, order_topic=True)
    masters = _masters(route)
    for qd in sorted(route.queue_datas, key=lambda q: q.broker_name):
        if is_writeable(qd.perm) and qd.broker_name in masters:
            queues.extend(MessageQueue(topic, qd.broker_name, i) for i in range(qd.write_queue_nums))
    return TopicPublishInfo(topic, queues, route)


def subscribe_queues_from_route(topic: str, route: TopicRouteData) -> list[MessageQueue]:
    """``topicRouteData2TopicSubscribeInfo``, sorted."""
    queues = [
        MessageQueue(topic, qd.broker_name, i)
        for qd in route.queue_datas
        if is_readable(qd.perm)
        for i in range(qd.read_queue_nums)
    ]
    return sorted(queues)


def default_route_for(route: TopicRouteData, queue_nums: int) -> TopicRouteData:
    """The TBW102 route trimmed to ``queue_nums`` queues per broker, as Java's producer does."""
    qds = []
    for qd in route.queue_datas:
        n = min(queue_nums, qd.read_queue_nums)
        qds.append(QueueData(qd.broker_name, n, n, qd.perm, qd.topic_sys_flag))
    return TopicRouteData(
        queue_datas=qds,
        broker_datas=[bd.copy() for bd in route.broker_datas],
        filter_server_table=dict(route.filter_server_table),
    )


RouteListener = Callable[[str, TopicRouteData | None], Any]


class RouteManager:
    """Route cache of one client instance (see the module docstring)."""

    def __init__(
        self,
        remote: RemotingClient,
        *,
        timeout: float = 3.0,
        default_topic: str = DEFAULT_TOPIC,
        default_topic_queue_nums: int = 4,
    ) -> None:
        self.remote = remote
        self.timeout = timeout
        self.default_topic = default_topic
        self.default_topic_queue_nums = default_topic_queue_nums
        self.routes: dict[str, TopicRouteData] = {}
        self._fingerprints: dict[str, str] = {}
        self.publish: dict[str, TopicPublishInfo] = {}
        self.brokers: dict[str, BrokerData] = {}
        self.listeners: list[RouteListener] = []
        self._inflight: dict[str, asyncio.Future[TopicRouteData | None]] = {}

    # ---- name server -----------------------------------------------------------------------------

    async def query_route(self, topic: str) -> TopicRouteData | None:
        """GET_ROUTEINFO_BY_TOPIC; None when the topic does not exist."""
        cmd = request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic, "acceptStandardJsonOnly": "true"})
        resp = await self.remote.invoke_namesrv(cmd, self.timeout)
        if resp.code == ResponseCode.TOPIC_NOT_EXIST:
            return None
        check_response(resp, addr=self.remote.current_namesrv)
        try:
            return TopicRouteData.from_json_bytes(resp.body)
        except RouteCodecError as exc:
            raise ClientError(f"unreadable route of topic {topic}: {exc}") from None

    async def update_topic(self, topic: str) -> TopicRouteData | None:
        """Fetch ``topic``'s route now and cache it; concurrent callers share one query."""
        pending = self._inflight.get(topic)
        if pending is None:
            pending = asyncio.ensure_future(self._update_topic(topic))
            self._inflight[topic] = pending

            def done(t: asyncio.Future[TopicRouteData | None]) -> None:
                if self._inflight.get(topic) is t:
                    del self._inflight[topic]
                if not t.cancelled():
                    t.exception()

            pending.add_done_callback(done)
        return await asyncio.shield(pending)

    async def _update_topic(self, topic: str) -> TopicRouteData | None:
        route = await self.query_route(topic)
        if route is None:
            return None
        fp = route_fingerprint(route)
        changed = self._fingerprints.get(topic) != fp
        self.routes[topic] = route
        self._fingerprints[topic] = fp
        if changed:
            self._rebuild_brokers()
            info = self.publish.get(topic)
            if info is not None:
                new = publish_info_from_route(topic, route)
                if new.ok or info.from_default is False:
                    self.publish[topic] = new
            for listener in list(self.listeners):
                try:
                    result = listener(topic, route)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("route listener failed for topic %s", topic)
        return route

    def _rebuild_brokers(self) -> None:
        brokers: dict[str, BrokerData] = {}
        for route in self.routes.values():
            for bd in route.broker_datas:
                brokers[bd.broker_name] = bd
        for info in self.publish.values():
            if info.from_default:
                for bd in info.route.broker_datas:
                    brokers.setdefault(bd.broker_name, bd)
        self.brokers = brokers

    async def refresh(self, topics: Iterable[str]) -> None:
        """Re-fetch the routes of ``topics``; failures are logged, the old route stays."""
        for topic in list(dict.fromkeys(topics)):
            try:
                await self.update_topic(topic)
            except Exception as exc:  # keep the last known route
                log.warning("route refresh of topic %s failed: %s", topic, exc)

    # ---- producer side -------------------------------------------------------------------------------

    async def publish_info(self, topic: str) -> TopicPublishInfo:
        """Queues to send ``topic`` to (``tryToFindTopicPublishInfo``); raises ClientError."""
        info = self.publish.get(topic)
        if info is not None and info.ok:
            return info
        route = await self.update_topic(topic)
        info = self.publish.get(topic)  # a concurrent caller may have built it meanwhile
        if info is not None and info.ok:
            return info
        if route is not None:
            info = publish_info_from_route(topic, route)
            if info.ok:
                self.publish[topic] = info
                return info
            # The topic exists but has no writable queue on a master: Java gives up here too
            # rather than sending over TBW102's route.
            raise ClientError(f"No route info of this topic: {topic} (no writable queue on a master){FAQ}")
        default = await self.query_route(self.default_topic) if self.default_topic else None
        info = self.publish.get(topic)
        if info is not None and info.ok:
            return info
        if default is not None:
            info = publish_info_from_route(topic, default_route_for(default, self.default_topic_queue_nums))
            if info.ok:
                info.from_default = True
                self.publish[topic] = info
                self._rebuild_brokers()
                return info
        raise ClientError(f"No route info of this topic: {topic}{FAQ}")

    # ---- consumer side -------------------------------------------------------------------------------

    async def subscribe_queues(self, topic: str, refresh: bool = False) -> list[MessageQueue]:
        """The readable queues of ``topic`` (empty when the topic does not exist)."""
        route = self.routes.get(topic)
        if route is None or refresh:
            route = await self.update_topic(topic) or route
        return [] if route is None else subscribe_queues_from_route(topic, route)

    def cached_subscribe_queues(self, topic: str) -> list[MessageQueue]:
        route = self.routes.get(topic)
        return [] if route is None else subscribe_queues_from_route(topic, route)

    # ---- addresses -------------------------------------------------------------------------------------

    def master_addr(self, broker_name: str) -> str | None:
        bd = self.brokers.get(broker_name)
        return None if bd is None else bd.broker_addrs.get(MASTER_ID)

    def find_subscribe_addr(self, broker_name: str, broker_id: int = MASTER_ID) -> tuple[str, bool] | None:
        """``findBrokerAddressInSubscribe``: (address, is a slave) of the wanted member; for a
        slave id missing, the next slave id; else any member, lowest id first (the master when
        listed). None when the group has no member."""
        bd = self.brokers.get(broker_name)
        if bd is None or not bd.broker_addrs:
            return None
        addrs = bd.broker_addrs
        for bid in (broker_id, broker_id + 1) if broker_id != MASTER_ID else (broker_id,):
            addr = addrs.get(bid)
            if addr is not None:
                return addr, bid != MASTER_ID
        bid = min(addrs)
        return addrs[bid], bid != MASTER_ID

    async def master_addr_or_refresh(self, broker_name: str, topic: str) -> str | None:
        addr = self.master_addr(broker_name)
        if addr is None:
            await self.refresh([topic])
            addr = self.master_addr(broker_name)
        return addr

    async def member_addr_or_refresh(self, broker_name: str, topic: str) -> str | None:
        """The group's master, else any member (a slave while the master is gone), refreshing
        the route once when it has neither (``findBrokerAddressInSubscribe(name, 0, false)``)."""
        found = self.find_subscribe_addr(broker_name)
        if found is None:
            await self.refresh([topic])
            found = self.find_subscribe_addr(broker_name)
        return None if found is None else found[0]

    def broker_addrs(self, masters_only: bool = False) -> list[str]:
        """Every known broker address (or only the masters), deduplicated, sorted."""
        addrs: set[str] = set()
        for bd in self.brokers.values():
            if masters_only:
                if MASTER_ID in bd.broker_addrs:
                    addrs.add(bd.broker_addrs[MASTER_ID])
            else:
                addrs.update(bd.broker_addrs.values())
        return sorted(addrs)

    def broker_addrs_of(self, topic: str) -> list[str]:
        """One address per broker group of ``topic`` (master preferred), in random order: where
        to ask group-wide questions, trying the next when one does not answer."""
        route = self.routes.get(topic)
        if route is None:
            return []
        addrs = [a for a in (bd.select_broker_addr() for bd in route.broker_datas) if a is not None]
        random.shuffle(addrs)
        return addrs

    def any_broker_addr_of(self, topic: str) -> str | None:
        """A broker of ``topic`` (master preferred), for group-wide queries."""
        addrs = self.broker_addrs_of(topic)
        return addrs[0] if addrs else None
