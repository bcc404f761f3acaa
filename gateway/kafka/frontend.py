"""The Kafka protocol frontend of one master broker: a listener on its own port, over core's API.

A Kafka topic is a RocketMQ topic, a Kafka offset is the queue offset. With one broker group
partition p is queue p; with several, a topic's queues are numbered across the groups
(cluster.py) from its route, cached here (fetched on a miss, refreshed in the background after
ROUTE_TTL_S), and the broker advertises its Kafka listener to the name servers ("kafkaAddr") so
the others can name it as leader.
The frontend owns the connections, the group coordinator (gateway/kafka/group), idempotent
producer state, fetches parked until data arrives (woken by the store's arrival listeners, not by
polling), per-topic retention.ms, and the converter through which RocketMQ consumers read Kafka
batches (registered with the store at start).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2, EntryKind, StoredEntry
from ferrymq.gateway.kafka import apis, mapping, topics
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.cluster import Owner, TopicPartitions, node_id_of, place
from ferrymq.gateway.kafka.connection import KafkaConnection
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.framing import DEFAULT_MAX_REQUEST_SIZE
from ferrymq.gateway.kafka.group.coordinator import GroupCoordinator
from ferrymq.gateway.kafka.log_start import LogStartOffsets
from ferrymq.gateway.kafka.partition_log import PartitionLog
from ferrymq.gateway.kafka.producer_state import REBUILD_ENTRIES, ProducerStates

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.gateway.admin.routes_source import ClusterSource

log = logging.getLogger("ferrymq.kafka")

#: how often topics with their own retention.ms are trimmed
RETENTION_CHECK_S = 5.0
#: a cached topic route older than this is refreshed in the background
ROUTE_TTL_S = 10.0
#: a route is fetched again, awaited, for a partition it does not know, at most this often
ROUTE_MISS_S = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    node_id: int
    host: str
    port: int


class KafkaFrontend:
    def __init__(
        self,
        broker: Broker,
        host: str,
        port: int,
        advertised_host: str,
        node_id: int | None = None,
        *,
        max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
        routes: ClusterSource | None = None,
    ) -> None:
        self.broker = broker
        self.host = host
        self.requested_port = port
        self.advertised_host = advertised_host
        self.broker_name = broker.config.broker_name
        self.node_id = node_id_of(self.broker_name) if node_id is None else node_id
        self.max_request_size = max_request_size
        self.routes = routes
        self.cluster_id = broker.config.broker_cluster_name
        self.connections: set[KafkaConnection] = set()
        self.server: asyncio.Server | None = None
        config_dir = broker.config.store_path_root_dir / "config"
        self.log = PartitionLog(broker.store)
        self.producers = ProducerStates(config_dir / "kafkaProducerIds.json", self._producer_batches)
        self.log_starts = LogStartOffsets(config_dir / "kafkaLogStartOffsets.json")
        self._waiters: dict[tuple[str, int], list[asyncio.Future[None]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # other broker groups: topic -> (fetched at, broker name -> queues); their Kafka nodes
        self._remote: dict[str, tuple[float, dict[str, int]]] = {}
        self._placed: dict[str, tuple[int, TopicPartitions]] = {}  # by the local queue count
        self._peers: dict[str, Node] = {}
        self._peers_at = 0.0
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self.coordinator = GroupCoordinator(self)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def nodes(self) -> list[Node]:
        """The Kafka brokers of the cluster: this one and every other group with a Kafka address."""
        me = Node(self.node_id, self.advertised_host, self.port)
        return [me, *(n for name, n in sorted(self._peers.items()) if name != self.broker_name)]

    def leader_of(self, topic: str, partition: int) -> int:
        placed = self.placement(topic)
        if len(placed.owners) <= 1 and (placed.local is not None or not placed.owners):
            return self.node_id
        has_kafka = {name: True for name in self._peers}
        has_kafka[self.broker_name] = True
        return placed.leader(partition, has_kafka)

    async def coordinator_of(self, key: str) -> Node:
        """The broker coordinating a group: the same from every broker, by a hash of the key over
        the sorted names of the broker groups with a Kafka listener (this one alone: itself)."""
        await self.refresh_peers()
        names = sorted({self.broker_name, *self._peers})
        chosen = names[zlib.crc32(key.encode()) % len(names)]
        return self._peers.get(chosen) or Node(self.node_id, self.advertised_host, self.port)

    # ---- partitions across broker groups -------------------------------------------------------

    def placement(self, topic: str) -> TopicPartitions:
        """The topic's partitions from the cached route and this broker's live topic config."""
        tc = self.broker.topics.get(topic)
        local_count = topics.partition_count(tc) if tc is not None else 0
        cached = self._placed.get(topic)
        if cached is not None and cached[0] == local_count:
            return cached[1]
        remote = self._remote.get(topic)
        if remote is None or not remote[1]:
            own = Owner(self.broker_name, self.node_id, 0, local_count) if local_count else None
            placed = TopicPartitions((own,) if own else (), own, local_count)
        else:
            counts = dict(remote[1])
            counts[self.broker_name] = local_count
            placed = place(counts, self.broker_name)
        self._placed[topic] = (local_count, placed)
        return placed

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
                    self._learn_peer(bd.broker_name, bd.kafka_addrs.get(0))
        self._remote[topic] = (time.monotonic(), remote)
        self._placed.pop(topic, None)

    def _learn_peer(self, broker_name: str, kafka_addr: str | None) -> None:
        if broker_name == self.broker_name:
            return
        if not kafka_addr:
            self._peers.pop(broker_name, None)
            return
        host, _, port = kafka_addr.rpartition(":")
        self._peers[broker_name] = Node(node_id_of(broker_name), host, int(port))

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
            self._learn_peer(name, bd.kafka_addrs.get(0))
            seen.add(name)
        for gone in [n for n in self._peers if n not in seen]:
            del self._peers[gone]

    async def start(self) -> None:
        store = self.broker.store
        self.log_starts.apply(store)
        store.arrival_listeners.append(self._on_arrival)
        store.batch_converters[BATCH_FORMAT_KAFKA_V2] = self._to_stored_messages
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: KafkaConnection(self), self.host, self.requested_port, reuse_address=True
        )
        await self.coordinator.start()
        registrar = self.broker.registrar
        if registrar is not None:  # the other brokers learn our Kafka listener from the name servers
            registrar.extra_fields["kafkaAddr"] = f"{self.advertised_host}:{self.port}"
            registrar.kick()
        self._tasks.append(asyncio.create_task(self._retention_loop(), name="kafka-retention"))
        log.info(
            "kafka frontend of broker %s listening on %s:%d (advertised %s:%d, node %d)",
            self.broker.config.broker_name,
            self.host,
            self.port,
            self.advertised_host,
            self.port,
            self.node_id,
        )

    async def dispatch(self, ctx: RequestContext, request: Any) -> Any:
        return await apis.API_HANDLERS[ctx.api_key].handler(ctx, request)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        if self.broker.registrar is not None:
            self.broker.registrar.extra_fields.pop("kafkaAddr", None)
        tasks = [*self._tasks, *self._refreshing.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self.coordinator.stop()
        store = self.broker.store
        if self._on_arrival in store.arrival_listeners:
            store.arrival_listeners.remove(self._on_arrival)
        store.batch_converters.pop(BATCH_FORMAT_KAFKA_V2, None)
        if self.server is not None:
            await self.server.wait_closed()

    # ---- fetches waiting for data --------------------------------------------------------------

    def _on_arrival(self, topic: str, queue_id: int, offset: int, tag_code: int) -> None:
        waiters = self._waiters.pop((topic, queue_id), None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def wait_for_data(self, partitions: Iterable[tuple[str, int]], timeout: float) -> bool:
        """Wait until a message arrives on any of ``partitions``; False when ``timeout`` passes."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keys = list(partitions)
        for key in keys:
            self._waiters.setdefault(key, []).append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None and fut in waiters:
                    waiters.remove(fut)
                    if not waiters:
                        del self._waiters[key]

    # ---- cross protocol and idempotence --------------------------------------------------------

    def _to_stored_messages(self, entry: StoredEntry, from_offset: int, codes: Any) -> bytes:
        store = self.broker.store
        return mapping.to_stored_messages(entry, from_offset, codes, store.store_host, store.store_port)

    def _producer_batches(self, topic: str, partition: int) -> Iterator[tuple[int, int, int, int, int]]:
        """The last entries' idempotent batches, oldest first, to rebuild producer state."""
        store = self.broker.store
        found = []
        newest = store.entries_before(topic, partition, store.max_offset(topic, partition))
        for seen, entry in enumerate(newest):
            if seen >= REBUILD_ENTRIES:
                break
            if entry.kind is EntryKind.BATCH and entry.format == BATCH_FORMAT_KAFKA_V2:
                info = rb.read_header(entry.payload)
                if info.producer_id >= 0 and info.base_sequence >= 0:
                    found.append(
                        (
                            info.producer_id,
                            info.producer_epoch,
                            info.base_sequence,
                            info.last_sequence,
                            entry.queue_offset,
                        )
                    )
        yield from reversed(found)

    # ---- topics --------------------------------------------------------------------------------

    async def delete_topic(self, name: str) -> None:
        self.broker.topics.delete(name)
        self.broker.store.delete_topic(name)
        self.broker.topic_deleted(name)
        self.producers.forget_topic(name)
        self.log_starts.forget_topic(name)
        if self.routes is not None:
            try:
                await self.routes.delete_topic(name, self.broker.config.broker_cluster_name)
            except Exception as exc:  # the name servers drop it with the next full registration
                log.warning("could not delete topic %s from the name servers: %s", name, exc)

    def delete_records(self, topic: str, partition: int, before: int) -> int:
        """Move the log start offset up to ``before``; returns the new log start offset."""
        low = self.broker.store.advance_min_offset(topic, partition, before)
        self.log_starts.set(topic, partition, low)
        return low

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_CHECK_S)
            try:
                self.apply_retention()
            except Exception:
                log.exception("kafka retention.ms check failed")

    def apply_retention(self, now_ms: int | None = None) -> None:
        """Topics with their own retention.ms lose what is older (log start offset moves)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        for tc in list(self.broker.topics.topics.values()):
            retention = topics.retention_ms(tc)
            if retention is None or retention < 0:
                continue
            for q in range(topics.partition_count(tc)):
                # the first offset whose entry was stored at or after the cutoff
                first_kept = self.broker.store.offset_by_time(tc.topic_name, q, now_ms - retention)
                if first_kept > self.broker.store.min_offset(tc.topic_name, q):
                    self.broker.store.advance_min_offset(tc.topic_name, q, first_kept)
