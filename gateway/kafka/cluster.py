"""Partitions across broker groups: which broker owns which Kafka partition of a topic.

The numbering (``place``, ``TopicPartitions``) is sans-IO; :class:`ClusterView` keeps it, with
the routes it comes from and the Kafka nodes, for the frontend, the group coordinator and the
APIs. A topic's queues live on one or more broker groups. Kafka sees them as one partition range: the
groups sorted by broker name, partitions numbered cumulatively (broker-a's queues 0..n-1 are
partitions 0..n-1, broker-b's are n..n+m-1), so every broker computes the same numbering from
the same route. A group's Kafka node id is derived from its broker name alone (CRC-32), so it is
stable and independent of which other groups exist.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
import time
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from ferrymq.core.config import ConfigError
from ferrymq.gateway.kafka import topics
from ferrymq.gateway.kafka.listeners import Listener, parse_listeners

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.core.broker.routes_source import ClusterSource

log = logging.getLogger("ferrymq.kafka")

#: a cached topic route older than this is refreshed in the background
ROUTE_TTL_S = 10.0
#: a route is fetched again, awaited, for a partition it does not know, at most this often
ROUTE_MISS_S = 1.0
#: topic routes kept at most (oldest looked-up dropped first): clients may name any number of
#: topics that do not exist, and a dropped route is only fetched again
MAX_ROUTES = 10_000

#: leader id of a partition whose broker has no Kafka listener (Metadata: LEADER_NOT_AVAILABLE)
NO_LEADER = -1


def node_id_of(broker_name: str) -> int:
    """The Kafka node id of a broker group: a non-negative int32 from its name."""
    return zlib.crc32(broker_name.encode()) & 0x7FFFFFFF


@dataclasses.dataclass(frozen=True, slots=True)
class Owner:
    broker_name: str
    node_id: int
    first: int  # its queue 0 is this partition
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class TopicPartitions:
    """The partition range of one topic; ``local`` is this broker's part, if it has one."""

    owners: tuple[Owner, ...]
    local: Owner | None
    total: int

    def queue_of(self, partition: int) -> int | None:
        """This broker's queue id for ``partition``, or None when another broker owns it.

        With this broker the only owner every partition maps to itself (the caller's usual
        checks answer unknown ones); with several owners one nobody owns maps to -1.
        """
        local = self.local
        if not self.owners or (len(self.owners) == 1 and local is not None):
            return partition
        if local is not None and local.first <= partition < local.first + local.count:
            return partition - local.first
        if 0 <= partition < self.total:
            return None
        return -1

    def owner_of(self, partition: int) -> Owner | None:
        """The broker group whose queue ``partition`` is (None: no such partition)."""
        i = bisect.bisect_right([o.first for o in self.owners], partition) - 1
        if i < 0 or partition >= self.owners[i].first + self.owners[i].count:
            return None
        return self.owners[i]

    def partition_of(self, queue_id: int) -> int:
        return queue_id if self.local is None else self.local.first + queue_id

    def leader(self, partition: int, has_kafka: Mapping[str, bool]) -> int:
        """Node id of the partition's owner (NO_LEADER when it has no Kafka listener)."""
        owner = self.owner_of(partition)
        if owner is None:
            return NO_LEADER
        return owner.node_id if has_kafka.get(owner.broker_name, False) else NO_LEADER


def place(queue_counts: Mapping[str, int], local_name: str) -> TopicPartitions:
    """Number the queues of every broker group (``queue_counts``: broker name -> queues)."""
    owners = []
    first = 0
    local = None
    for name in sorted(queue_counts):
        count = queue_counts[name]
        if count <= 0:
            continue
        owner = Owner(name, node_id_of(name), first, count)
        owners.append(owner)
        if name == local_name:
            local = owner
        first += count
    return TopicPartitions(tuple(owners), local, first)


#: the placement of a topic no broker group has
_NOWHERE = TopicPartitions((), None, 0)


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    node_id: int
    host: str
    port: int
    #: the broker group's rack (brokerRack, registered as its zone with the name servers)
    rack: str | None = None
    #: all its Kafka listeners, as registered (kafkaListeners): where inter-broker calls go
    listeners: tuple[Listener, ...] = ()


class ClusterView:
    """The one view of the cluster the frontend, the group coordinator and the APIs share.

    Placement of partitions (from each topic's route, cached: fetched on a miss, refreshed in the
    background after ROUTE_TTL_S), the Kafka nodes (this broker and the other groups whose
    "kafkaAddr" the name servers know) and which node coordinates a group. It reads the broker's
    topic config and the cluster source it is given, and calls back into nothing.
    """

    def __init__(
        self, broker: Broker, routes: ClusterSource | None, node_id: int | None, advertised_host: str
    ) -> None:
        self.broker = broker
        self.routes = routes
        self.broker_name = broker.config.broker_name
        self.cluster_id = broker.config.broker_cluster_name
        self.node_id = node_id_of(self.broker_name) if node_id is None else node_id
        self.advertised_host = advertised_host
        self.port = 0  # this broker's Kafka port, set once its listener is bound
        # other broker groups: topic -> (fetched at, broker name -> queues); their Kafka nodes
        self._remote: dict[str, tuple[float, dict[str, int]]] = {}
        #: by the local queue count and whether this broker leads its group
        self._placed: dict[str, tuple[int, bool, TopicPartitions]] = {}
        self._peers: dict[str, Node] = {}
        #: broker name -> its rack (zone) as the name servers report it
        self._racks: dict[str, str] = {}
        #: controller mode, on a slave: the Kafka listener of this group's master (route id 0)
        self._master_node: Node | None = None
        self._broker_addrs: dict[str, str] = {}  # broker name -> its master's remoting address
        self._peers_at = 0.0
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    @property
    def leads(self) -> bool:
        """Whether this broker leads its group's partitions: a master (controller mode moves it;
        a slave answers NOT_LEADER_OR_FOLLOWER and names its master as the group's node)."""
        return not self.broker.config.is_slave

    def me(self, listener_port: int = 0) -> Node:
        """This group's Kafka node: this listener (``listener_port``, the one a client connected
        to, when there are several: an SSL client is sent to the SSL port), or on a slave its
        master's (as last seen)."""
        if not self.leads and self._master_node is not None:
            return self._master_node
        return Node(
            self.node_id, self.advertised_host, listener_port or self.port, self.broker.config.broker_rack
        )

    def nodes(self, listener_port: int = 0) -> list[Node]:
        """The Kafka brokers of the cluster: this one and every other group with a Kafka address
        (theirs is their first listener: kafkaAddr)."""
        me = self.me(listener_port)
        return [me, *(n for name, n in sorted(self._peers.items()) if name != self.broker_name)]

    def leader_of(self, topic: str, partition: int) -> int:
        placed = self.placement(topic)
        if len(placed.owners) <= 1 and (placed.local is not None or not placed.owners):
            return self.node_id
        has_kafka = {name: True for name in self._peers}
        has_kafka[self.broker_name] = self.leads or self._master_node is not None
        return placed.leader(partition, has_kafka)

    async def coordinator_of(self, key: str, listener_port: int = 0) -> Node:
        """The broker coordinating a group: the same from every broker, by a hash of the key over
        the sorted names of the broker groups with a Kafka listener (this one alone: itself).
        It moves when such a group comes or goes; the group's offsets stay with the partitions
        (group/owner_offsets.py), so the new coordinator finds them."""
        await self.refresh_peers()
        return self._peers.get(self._coordinator_name(key)) or self.me(listener_port)

    def coordinates(self, key: str) -> bool:
        """Whether this broker coordinates ``key`` as of the last look at the cluster (no I/O)."""
        return self._coordinator_name(key) == self.broker_name

    def _coordinator_name(self, key: str) -> str:
        if not self._peers:
            name = self.broker_name
        else:
            names = sorted({self.broker_name, *self._peers})
            name = names[zlib.crc32(key.encode()) % len(names)]
        return name if name != self.broker_name or self.leads else ""  # a slave coordinates none

    def broker_addr(self, broker_name: str) -> str | None:
        """The remoting address of a broker group's master, from the routes and cluster info seen."""
        return self._broker_addrs.get(broker_name)

    def other_broker_addrs(self) -> list[str]:
        """The masters of the other broker groups seen (with a Kafka listener or not)."""
        return [a for name, a in sorted(self._broker_addrs.items()) if name != self.broker_name]

    # ---- partitions across broker groups -------------------------------------------------------

    def placement(self, topic: str) -> TopicPartitions:
        """The topic's partitions from the cached route and this broker's live topic config."""
        tc = self.broker.topics.get(topic)
        local_count = topics.partition_count(tc) if tc is not None else 0
        leads = self.leads
        cached = self._placed.get(topic)
        if cached is not None and cached[0] == local_count and cached[1] == leads:
            return cached[2]
        remote = self._remote.get(topic)
        if remote is None or not remote[1]:
            if not local_count:  # a topic nobody has: nothing worth caching
                return _NOWHERE
            own = Owner(self.broker_name, self.node_id, 0, local_count)
            placed = TopicPartitions((own,), own if leads else None, local_count)
        else:
            counts = dict(remote[1])
            counts[self.broker_name] = local_count
            placed = place(counts, self.broker_name if leads else "")
        self._placed[topic] = (local_count, leads, placed)
        return placed

    def partition_racks(self, topic: str) -> list[frozenset[str]]:
        """The rack of each partition of a topic: its broker group's (one rack per group, whose
        slaves share it); an empty set where the group's rack is unknown."""
        placed = self.placement(topic)
        out: list[frozenset[str]] = []
        for p in range(self.partition_count(topic)):
            owner = placed.owner_of(p)
            name = owner.broker_name if owner is not None else self.broker_name
            rack = self.broker.config.broker_rack if name == self.broker_name else self._racks.get(name)
            out.append(frozenset((rack,)) if rack else frozenset())
        return out

    def partition_count(self, topic: str) -> int:
        """Partitions of a topic: its queues here, or across every broker group that has it; 0 if
        it does not exist."""
        tc = self.broker.topics.get(topic)
        local = max(tc.read_queue_nums, tc.write_queue_nums) if tc is not None else 0
        return max(local, self.placement(topic).total)

    def local_queue(self, topic: str, where: TopicPartitions, partition: int) -> tuple[int, ErrorCode]:
        """This broker's queue for ``partition`` of ``topic`` (placed as ``where``), or -1 and why
        it cannot serve it: another group owns it, or no such partition here."""
        queue = where.queue_of(partition)
        if queue is None:
            return -1, ErrorCode.not_leader_or_follower
        tc = self.broker.topics.get(topic)
        if tc is None or not 0 <= queue < topics.partition_count(tc):
            return -1, ErrorCode.unknown_topic_or_partition
        return queue, ErrorCode.none

    async def placements(
        self, wanted: Mapping[str, int], max_age: float = ROUTE_TTL_S
    ) -> dict[str, TopicPartitions]:
        """Placements of topics (name -> highest partition asked for, -1 for none).

        A topic never looked up, or asked for a partition beyond what it knows (at most every
        ROUTE_MISS_S), waits for its route; one older than ``max_age`` is refreshed in the
        background, so the hot paths do no name-server round trip.
        """
        now = time.monotonic()
        waits = []
        for name, highest in wanted.items():
            if topics.invalid_name(name) and self.broker.topics.get(name) is None:
                continue  # no Kafka topic can have this name: nothing to look up
            entry = self._remote.get(name)
            missed = entry is not None and highest >= self.placement(name).total
            if entry is None or (missed and now - entry[0] >= ROUTE_MISS_S):
                waits.append(name)
            elif now - entry[0] >= max_age:
                if max_age < ROUTE_TTL_S:
                    waits.append(name)
                elif name not in self._refreshing:
                    task = asyncio.create_task(self._refresh_route(name), name=f"kafka-route-{name}")
                    self._refreshing[name] = task
                    task.add_done_callback(self._refreshed)
        if waits:
            await asyncio.gather(*(self._refresh_route(n) for n in waits))
        return {name: self.placement(name) for name in wanted}

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        for name, t in list(self._refreshing.items()):
            if t is task:
                del self._refreshing[name]

    async def _refresh_route(self, topic: str) -> None:
        remote: dict[str, int] = {}
        if self.routes is not None:
            try:
                route = await self.routes.topic_route(topic)
            except Exception as exc:  # keep what we had; the next miss or refresh retries
                log.warning("route of %s unavailable: %s", topic, exc)
                old = self._remote.get(topic)
                route, remote = None, (dict(old[1]) if old else {})
            if route is not None:
                for qd in route.queue_datas:
                    if qd.broker_name != self.broker_name:
                        remote[qd.broker_name] = qd.read_queue_nums
                for bd in route.broker_datas:
                    self._learn_peer(
                        bd.broker_name, bd.kafka_addrs.get(0), bd.zone_name, bd.kafka_listeners.get(0)
                    )
                    self._learn_addr(bd.broker_name, bd.broker_addrs.get(0))
        self._remote.pop(topic, None)  # re-inserted last: the dict's order is lookup order
        self._remote[topic] = (time.monotonic(), remote)
        self._placed.pop(topic, None)
        while len(self._remote) > MAX_ROUTES:
            oldest = next(iter(self._remote))
            del self._remote[oldest]
            self._placed.pop(oldest, None)

    def _learn_peer(
        self, broker_name: str, kafka_addr: str | None, rack: str | None = None, listeners: str | None = None
    ) -> None:
        if broker_name == self.broker_name:
            if kafka_addr:  # our group's master (this broker itself while it is master)
                host, _, port = kafka_addr.rpartition(":")
                self._master_node = Node(self.node_id, host, int(port), self.broker.config.broker_rack)
            return
        if rack:
            self._racks[broker_name] = rack
        else:
            self._racks.pop(broker_name, None)
        if not kafka_addr:
            self._peers.pop(broker_name, None)
            return
        host, _, port = kafka_addr.rpartition(":")
        node = Node(
            node_id_of(broker_name), host, int(port), rack or None, _registered(broker_name, listeners)
        )
        self._peers[broker_name] = node

    def _learn_addr(self, broker_name: str, addr: str | None) -> None:
        if addr:
            self._broker_addrs[broker_name] = addr

    async def refresh_peers(self, max_age: float = ROUTE_MISS_S) -> None:
        """Learn the other broker groups' Kafka listeners from the name servers' cluster info."""
        now = time.monotonic()
        if self.routes is None or now - self._peers_at < max_age:
            return
        self._peers_at = now
        try:
            info, _ = await self.routes.cluster_info()
        except Exception as exc:
            log.warning("cluster info unavailable: %s", exc)
            return
        if info is None:
            return
        seen = set()
        for name, bd in info.broker_addr_table.items():
            self._learn_peer(name, bd.kafka_addrs.get(0), bd.zone_name, bd.kafka_listeners.get(0))
            self._learn_addr(name, bd.broker_addrs.get(0))
            seen.add(name)
        for gone in [n for n in self._peers if n not in seen]:
            del self._peers[gone]
        for gone in [n for n in self._broker_addrs if n not in seen]:
            del self._broker_addrs[gone]

    async def delete_topic(self, name: str) -> None:
        """Remove a deleted topic's route from the name servers (best effort)."""
        self._remote.pop(name, None)
        self._placed.pop(name, None)
        if self.routes is not None:
            try:
                await self.routes.delete_topic(name, self.cluster_id)
            except Exception as exc:  # the name servers drop it with the next full registration
                log.warning("could not delete topic %s from the name servers: %s", name, exc)

    async def stop(self) -> None:
        """Cancel route refreshes still running."""
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _registered(broker_name: str, text: str | None) -> tuple[Listener, ...]:
    """The Kafka listeners another broker registered (none if it did not, or sent what is not a list)."""
    try:
        return tuple(parse_listeners(text)) if text else ()
    except ConfigError as exc:
        log.warning("Kafka listeners of broker %s unreadable: %s", broker_name, exc)
        return ()
