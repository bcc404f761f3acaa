"""The Kafka protocol frontend of one master broker: a listener on its own port, over core's API.

A Kafka topic is a RocketMQ topic, a Kafka offset is the queue offset. With one broker group
partition p is queue p; with several, a topic's queues are numbered across the groups from its
route (``cluster.ClusterView``, which the group coordinator and the APIs share), and the broker
advertises its Kafka listener to the name servers ("kafkaAddr") so the others can name it as
leader. The frontend owns the connections, the group coordinator (gateway/kafka/group), the
transaction coordinator (gateway/kafka/txn), idempotent producer state, the partitions'
transactions (txn_partitions.py: the last stable offset, which the store's ``stable_offset`` hook
applies to RocketMQ pulls too), fetches parked until data arrives (woken by the store's arrival
listeners, not by polling), per-topic retention.ms and retention.bytes, the threads that inflate
large compressed batches off the event loop, and the converter through which RocketMQ consumers
read Kafka batches (registered with the store at start). It is also the admin API's view of Kafka
(``core.broker.frontend_view.FrontendView``: its groups and its record batches, record by record),
handed to the admin server by the ``ferrymq`` command.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from ferrymq.core.broker.frontend_view import RecordView
from ferrymq.core.broker.listeners import CountedListener
from ferrymq.core.remoting.transport import Listener as Server
from ferrymq.core.remoting.transport import serve_tls_only
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2, DispatchRequest, EntryKind, StoredEntry
from ferrymq.gateway.kafka import listeners, mapping, record_views, topics
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.cluster import ClusterView
from ferrymq.gateway.kafka.compaction import LogCleaner
from ferrymq.gateway.kafka.connection import KafkaConnection
from ferrymq.gateway.kafka.fetch_sessions import FetchSessionCache
from ferrymq.gateway.kafka.framing import DEFAULT_MAX_REQUEST_SIZE
from ferrymq.gateway.kafka.group.coordinator import GroupCoordinator
from ferrymq.gateway.kafka.group.share_group import ShareGroups
from ferrymq.gateway.kafka.inter_broker import SOURCE as INTER_BROKER
from ferrymq.gateway.kafka.inter_broker import InterBrokerLink
from ferrymq.gateway.kafka.listeners import PLAINTEXT, Listener
from ferrymq.gateway.kafka.log_start import LogStartOffsets
from ferrymq.gateway.kafka.partition_log import PartitionLog
from ferrymq.gateway.kafka.partition_sizes import PartitionSizes
from ferrymq.gateway.kafka.producer_state import REBUILD_ENTRIES, ProducerStates
from ferrymq.gateway.kafka.retention_bytes import RetentionBytes
from ferrymq.gateway.kafka.sasl import SaslSession
from ferrymq.gateway.kafka.topic_ids import TopicIdIndex
from ferrymq.gateway.kafka.txn.coordinator import TxnCoordinator
from ferrymq.gateway.kafka.txn_partitions import TxnPartitions

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.core.broker.routes_source import ClusterSource

#: names in ``broker.replicated_states`` (REPLICATED_STATE's ``name``): the transaction
#: coordinator's state, and which partitions hold transactions (registered first: loaded first)
TXN_STATE = "kafkaTransactions"
TXN_PARTITIONS = "kafkaTxnPartitions"

log = logging.getLogger("ferrymq.kafka")

#: how often topics with their own retention.ms are trimmed
RETENTION_CHECK_S = 5.0
#: how often idempotent producers idle past kafkaProducerIdExpirationMs are dropped
PRODUCER_SWEEP_S = 60.0
#: threads that inflate large compressed batches off the event loop: at most this many
#: kafkaMaxInflatedBatchBytes buffers at once, however many clients send them
INFLATE_THREADS = 2


class KafkaFrontend:
    #: the batch-entry formats it stores, which the admin API shows record by record
    batch_formats = record_views.FORMATS

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
        listeners: list[Listener] | None = None,
    ) -> None:
        self.broker = broker
        self.host = host
        self.requested_port = port
        self.advertised_host = advertised_host
        self.max_request_size = max_request_size
        self.cluster = ClusterView(broker, routes, node_id, advertised_host)
        self.connections: set[KafkaConnection] = set()
        #: /metrics: this listener's open connections and refusals by reason (connection.py counts)
        self.counted = CountedListener(lambda: len(self.connections))
        #: /metrics: fetches waiting for data now
        self.parked_fetches = 0
        self.server: Server | None = None
        #: listeners side by side (listeners.py); the first is ``port``, the one other brokers learn
        self.listeners = listeners or [Listener(PLAINTEXT, host, port)]
        #: one server per listener, in listener order
        self.servers: list[tuple[Listener, Server]] = []
        config_dir = broker.config.store_path_root_dir / "config"
        self.log = PartitionLog(broker.store)
        self.retention_bytes = RetentionBytes(broker.store)
        self.inflater = ThreadPoolExecutor(INFLATE_THREADS, thread_name_prefix="kafka-inflate")
        self.producers = ProducerStates(
            config_dir / "kafkaProducerIds.json",
            self._producer_batches,
            expiration_ms=broker.config.kafka_producer_id_expiration_ms,
        )
        self._producers_swept = time.monotonic()
        self.log_starts = LogStartOffsets(config_dir / "kafkaLogStartOffsets.json")
        self.txn_partitions = TxnPartitions(
            broker.store,
            self.cluster,
            config_dir / "kafkaTxnPartitions.json",
            sync_flush=broker.config.sync_flush,
        )
        self._waiters: dict[tuple[str, int], list[asyncio.Future[None]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.coordinator = GroupCoordinator(broker, self.cluster)
        #: how this broker reaches the others' Kafka listeners and who it is there (inter_broker.py): that
        #: principal is a super user here too; ConfigError for an inter-broker listener it does not have
        self.inter_broker = InterBrokerLink.of(broker.config, self.listeners)
        if self.inter_broker.login is not None:
            broker.security.acl_authorizer.set_super_users(INTER_BROKER, [self.inter_broker.login.principal])
        self.txn_coordinator = TxnCoordinator(self)
        self.fetch_sessions = FetchSessionCache(broker.config.kafka_fetch_session_cache_slots)
        self.cleaner = LogCleaner(broker, self.txn_partitions.is_aborted)
        self.topic_ids = TopicIdIndex(self.cluster.cluster_id)
        self.partition_sizes = PartitionSizes()
        self.share_groups = ShareGroups(
            broker.config.kafka_share_heartbeat_interval_ms, broker.config.kafka_share_session_timeout_ms
        )

    @property
    def groups(self) -> GroupCoordinator:
        """Its consumer groups, as the admin API lists them (a ``GroupProvider``)."""
        return self.coordinator

    def batch_records(self, fmt: int, payload: bytes, count: int) -> list[RecordView]:
        """A stored batch entry's records for the admin's message view."""
        return record_views.batch_records(fmt, payload, count)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        store = self.broker.store
        self.log_starts.apply(store)
        store.visible_listeners.append(self._on_arrival)
        store.truncate_listeners.append(self._on_truncate)
        store.dispatch_listeners.append(self._on_replicated)
        store.batch_converters[BATCH_FORMAT_KAFKA_V2] = self._to_stored_messages
        store.stable_offset = self.txn_partitions.stable_limit
        await self._listen()
        self.cluster.port = self.port
        self.broker.listeners["kafka"] = self.counted
        self.broker.parked["kafka_fetch"] = lambda: self.parked_fetches
        await self.coordinator.start()
        await self.txn_coordinator.start()
        self.broker.replicated_states.register(TXN_PARTITIONS, self.txn_partitions)  # slaves copy them
        self.broker.replicated_states.register(TXN_STATE, self.txn_coordinator)
        registrar = self.broker.registrar
        if registrar is not None:  # the other brokers learn our Kafka listener from the name servers
            registrar.extra_fields["kafkaAddr"] = f"{self.advertised_host}:{self.port}"
            bound = [(protocol, self.advertised_host, port) for protocol, _, port in self.bound_listeners()]
            registrar.extra_fields["kafkaListeners"] = listeners.listeners_text(bound)
            registrar.kick()
        self._tasks.append(asyncio.create_task(self._retention_loop(), name="kafka-retention"))
        self._tasks.append(asyncio.create_task(self.cleaner.run(), name="kafka-log-cleaner"))
        log.info(
            "kafka frontend of broker %s listening on %s:%d (advertised %s:%d, node %d)",
            self.broker.config.broker_name,
            self.host,
            self.port,
            self.advertised_host,
            self.port,
            self.cluster.node_id,
        )
        for listener, _ in self.servers[1:]:
            log.info(
                "kafka listener %s on %s:%d", listener.protocol, listener.host, self.listener_port(listener)
            )

    def listener_port(self, listener: Listener) -> int:
        """The port a listener is bound to (its own port, or the free one it took for port 0)."""
        for known, server in self.servers:
            if known == listener:
                return int(server.sockets[0].getsockname()[1])
        return self.port

    def listener_ports(self) -> dict[str, int]:
        """Bound port per listener name (security protocol)."""
        return {
            listener.protocol: int(server.sockets[0].getsockname()[1]) for listener, server in self.servers
        }

    def sasl_session(self) -> SaslSession:
        """A new connection's SASL session on a SASL listener (broker.conf's mechanisms and reauth)."""
        c = self.broker.config
        mechanisms = [m.strip().upper() for m in c.kafka_sasl_mechanisms.split(",") if m.strip()]
        return SaslSession(mechanisms, self.broker.security.scram, c.kafka_connections_max_reauth_ms)

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        needs_tls = any(listener.tls for listener in self.listeners)
        context = listeners.ssl_context(self.broker.config) if needs_tls else None
        for listener in self.listeners:
            server: Server
            if listener.tls and context is not None:  # refusals logged with the peer
                refusal = f"plaintext on the {listener.protocol} listener"
                server = await serve_tls_only(
                    partial(KafkaConnection, self, listener),
                    context,
                    refusal,
                    host=listener.host,
                    port=listener.port,
                )
            else:
                server = await loop.create_server(
                    partial(KafkaConnection, self, listener),
                    listener.host,
                    listener.port,
                    reuse_address=True,
                )
            self.servers.append((listener, server))
        self.server = self.servers[0][1]

    def bound_listeners(self) -> list[tuple[str, str, int]]:
        """(protocol, host, bound port) of each listener."""
        return [(spec.protocol, spec.host, int(s.sockets[0].getsockname()[1])) for spec, s in self.servers]

    async def stop(self) -> None:
        self.broker.listeners.pop("kafka", None)
        self.broker.parked.pop("kafka_fetch", None)
        for _, server in self.servers:
            server.close()
        if self.server is not None and not self.servers:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        if self.broker.registrar is not None:
            self.broker.registrar.extra_fields.pop("kafkaAddr", None)
            self.broker.registrar.extra_fields.pop("kafkaListeners", None)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self.cluster.stop()
        self.inflater.shutdown(wait=False, cancel_futures=True)
        self.broker.replicated_states.unregister(TXN_STATE)
        self.broker.replicated_states.unregister(TXN_PARTITIONS)
        await self.txn_coordinator.stop()
        await self.coordinator.stop()
        store = self.broker.store
        if self._on_arrival in store.visible_listeners:
            store.visible_listeners.remove(self._on_arrival)
        if self._on_truncate in store.truncate_listeners:
            store.truncate_listeners.remove(self._on_truncate)
        if self._on_replicated in store.dispatch_listeners:
            store.dispatch_listeners.remove(self._on_replicated)
        store.batch_converters.pop(BATCH_FORMAT_KAFKA_V2, None)
        if store.stable_offset == self.txn_partitions.stable_limit:
            store.stable_offset = None
        for _, server in self.servers:
            await server.wait_closed()

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
        self.parked_fetches += 1
        try:
            async with asyncio.timeout(timeout):
                await fut
            return True
        except TimeoutError:
            return False
        finally:
            self.parked_fetches -= 1
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None and fut in waiters:
                    waiters.remove(fut)
                    if not waiters:
                        del self._waiters[key]

    # ---- cross protocol and idempotence --------------------------------------------------------

    def _to_stored_messages(self, entry: StoredEntry, from_offset: int, codes: Any) -> bytes:
        store = self.broker.store
        limit = self.broker.config.kafka_max_inflated_batch_bytes
        topic, queue, txns = entry.topic, entry.queue_id, self.txn_partitions

        def aborted(pid: int, offset: int) -> bool:
            return txns.is_aborted(topic, queue, pid, offset)

        return mapping.to_stored_messages(
            entry, from_offset, codes, store.store_host, store.store_port, limit, aborted
        )

    def _on_replicated(self, req: DispatchRequest) -> None:
        """On a slave, an entry replicated from the master: its Kafka transactional batches and
        markers reach the partitions' transactions at once (one compare for any other entry)."""
        if req.format == BATCH_FORMAT_KAFKA_V2:
            self.txn_partitions.replicated(self.broker.store.entry_at(req.offset))

    def _on_truncate(self, _offset: int) -> None:
        """The log was cut (a rejoining old master): idempotence state is rebuilt from what is left,
        so a cut batch is not acknowledged as a duplicate at an offset that no longer holds it."""
        self.producers.forget_all()
        self.txn_partitions.forget_all()

    def _producer_batches(self, topic: str, partition: int) -> Iterator[tuple[int, int, int, int, int, int]]:
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
                            entry.store_timestamp,
                        )
                    )
        yield from reversed(found)

    # ---- topics --------------------------------------------------------------------------------

    async def delete_topic(self, name: str) -> None:
        self.broker.topics.delete(name)
        self.broker.store.delete_topic(name)
        self.broker.topic_deleted(name)
        self.producers.forget_topic(name)
        self.txn_partitions.forget_topic(name)
        self.log_starts.forget_topic(name)
        self.retention_bytes.forget_topic(name)
        await self.cluster.delete_topic(name)

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
                if time.monotonic() - self._producers_swept >= PRODUCER_SWEEP_S:
                    self._producers_swept = time.monotonic()
                    self.producers.expire()
            except Exception:
                log.exception("kafka retention.ms/retention.bytes check failed")

    def apply_retention(self, now_ms: int | None = None) -> None:
        """Topics with their own retention.ms lose what is older, and those with retention.bytes
        their oldest entries beyond it (the log start offset moves); the partitions' transaction
        state below their log start goes."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        store = self.broker.store
        for tc in list(self.broker.topics.topics.values()):
            retention = topics.retention_ms(tc)
            budget = topics.retention_bytes(tc)
            for q in range(topics.partition_count(tc)):
                if retention is not None and retention >= 0:
                    # the first offset whose entry was stored at or after the cutoff
                    first_kept = store.offset_by_time(tc.topic_name, q, now_ms - retention)
                    if first_kept > store.min_offset(tc.topic_name, q):
                        store.advance_min_offset(tc.topic_name, q, first_kept)
                if budget is not None and budget >= 0:
                    self.retention_bytes.trim(tc.topic_name, q, budget)
        self.txn_partitions.trim()  # whatever moved the log start: these, DeleteRecords, segments
