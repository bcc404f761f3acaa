"""The Kafka transaction coordinator of one broker: asyncio around ``state.TxnStates``.

It keeps the transactional ids this broker coordinates (the same hash as for groups,
cluster.ClusterView.coordinator_of), logs their state before answering, writes the markers of
each finished transaction and runs the timeout abort.

Durability: the whole coordinator state (every transactional id's metadata and the pending
transactional offsets) is one small JSON file, ``config/kafkaTransactions.json``, written
atomically with fsync off the event loop (core.persist.BackgroundJsonWriter, bursts coalesced).
EndTxn, AddPartitionsToTxn, AddOffsetsToTxn and TxnOffsetCommit answer once their change is on
disk, so after a kill -9 an Ongoing transaction is still known (and aborted at its timeout) and a
Prepare* one is completed: its markers are written again (the partition side ignores a marker for
a transaction it already closed). A file rather than an internal topic because the coordinator's
other state (producer ids, group offset metadata) lives in such files, the store has no
compaction to bound a state log, and a slave never coordinates.

Failover (controller mode): the state is also a ``core.broker.replicated_state`` provider named
``kafkaTransactions``: a slave copies its master's each slaveSyncInterval (and keeps it in its own
file), and when elected (``promoted``) takes over as after a restart: a new coordinator epoch, the
markers of every Prepare* transaction written, Ongoing ones aborted at their timeout. Should a
transaction still be left open on a partition (its coordinator's state lost), the partition side's
fallback aborts it after kafkaTransactionMaxTimeoutMs (``TxnPartitions.abort_orphans``).

Markers: partitions this broker group leads go to ``KafkaFrontend.txn_partitions.write_markers``;
the others as WriteTxnMarkers (27) v1 to their leader's Kafka listener. Each is retried with
backoff until written (or its topic is gone); then the transaction is Complete* and its pending
offsets are applied to the group (commit) or dropped (abort). ``coordinator_epoch`` (written in the
markers) counts this broker's starts.

Pending offsets live here, per group and producer id: TxnOffsetCommit reaches the group's
coordinator, which forwards it to the transactional id's coordinator when that is another broker
(apis/api28_txn_offset_commit.py), so they are always with the transaction that settles them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from kio.schema.errors import ErrorCode
from kio.schema.types import ProducerId, TopicName
from kio.schema.write_txn_markers.v1.request import (
    WritableTxnMarker,
    WritableTxnMarkerTopic,
    WriteTxnMarkersRequest,
)
from kio.static.primitive import i16, i32

from ferrymq.core.persist import BackgroundJsonWriter, read_json
from ferrymq.gateway.kafka.cluster import Node
from ferrymq.gateway.kafka.txn import peer
from ferrymq.gateway.kafka.txn.state import Finish, InitResult, Partition, TxnMeta, TxnStates

if TYPE_CHECKING:
    from ferrymq.gateway.kafka.frontend import KafkaFrontend
    from ferrymq.gateway.kafka.txn_partitions import TxnPartitions

log = logging.getLogger("ferrymq.kafka.txn")

#: marker retries back off from the first to the last
RETRY_S = (0.05, 2.0)

#: group -> producer id -> partition -> (offset, metadata)
Pending = dict[str, dict[int, dict[Partition, tuple[int, str]]]]


class MarkerWriter(Protocol):
    """What the coordinator needs of the partition side (``KafkaFrontend.txn_partitions``, a
    gateway/kafka/txn_partitions.TxnPartitions, built by the other half of issue 11)."""

    async def write_markers(
        self,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        partitions: list[tuple[str, int]],
    ) -> dict[tuple[str, int], int]: ...


def _wall_ms() -> int:
    return int(time.time() * 1000)


class TxnCoordinator:
    def __init__(self, frontend: KafkaFrontend) -> None:
        self.frontend = frontend
        self.cluster = frontend.cluster
        config = frontend.broker.config
        self.states = TxnStates(
            frontend.producers.new_producer_id,
            config.kafka_transaction_max_timeout_ms,
            config.kafka_transactional_id_expiration_ms,
        )
        self.pending: Pending = {}
        self.coordinator_epoch = 0
        self.check_s = config.kafka_transaction_abort_check_ms / 1000
        path = config.store_path_root_dir / "config" / "kafkaTransactions.json"
        self.writer = BackgroundJsonWriter(path, self._snapshot)
        self._finishing: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.max_timeout_ms = config.kafka_transaction_max_timeout_ms
        self._copied: bytes | None = None
        data = read_json(path)
        if isinstance(data, dict):
            self._apply(data)

    def _apply(self, data: dict[str, Any]) -> None:
        """Take a snapshot's state (the file at start; the master's on a slave), replacing ours."""
        self.coordinator_epoch = max(self.coordinator_epoch, int(data.get("coordinatorEpoch", 0)))
        pending: Pending = {}
        for g, by_pid in data.get("pending", {}).items():
            pending[g] = {
                int(pid): {(t, int(p)): (int(o), str(m)) for t, p, o, m in entries}
                for pid, entries in by_pid.items()
            }
        self.states.load(data.get("transactions", []), replace=True)
        self.pending = pending

    def _snapshot(self) -> dict[str, Any]:
        return {
            "coordinatorEpoch": self.coordinator_epoch,
            "transactions": self.states.to_json(),
            "pending": {
                g: {str(pid): [[t, p, o, m] for (t, p), (o, m) in parts.items()] for pid, parts in by.items()}
                for g, by in self.pending.items()
            },
        }

    # ---- replicated state (core.broker.replicated_state) -------------------------------------

    def dump(self) -> bytes:
        """On the master: the state a slave copies (what the file holds, and how far producer ids
        were handed out, so the slave once elected hands out none of them again)."""
        return orjson.dumps(self._snapshot() | {"producerIdsReserved": self.frontend.producers.ids_reserved})

    def load(self, data: bytes) -> None:
        """On a slave: the master's state replaces ours, and is kept in our file."""
        if data == self._copied:
            return
        obj = orjson.loads(data)
        if not isinstance(obj, dict):
            raise ValueError("the transaction state is not a JSON object")
        self.frontend.producers.reserve_ids(int(obj.get("producerIdsReserved", 0)))
        self._apply(obj)
        self._copied = data
        self.writer.changed()

    async def promoted(self) -> None:
        """Elected master: finish what the old master left, as after a restart."""
        log.warning("taking over %d transactional ids copied from the old master", len(self.states.txns))
        self._copied = None
        await self._take_over()

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self._take_over()
        self._task = asyncio.create_task(self._timeouts(), name="kafka-txn-timeouts")

    async def _take_over(self) -> None:
        """A new coordinator epoch; the markers of every Prepare* transaction written again."""
        self.coordinator_epoch += 1
        self.writer.changed()
        await self.writer.wait()
        if self.frontend.broker.config.is_slave:
            return  # the master writes them; we copy its state
        for finish in self.states.preparing():
            self._start_finish(finish)

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._finishing.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # unwritten markers: again at the next start
        self._finishing.clear()
        self.writer.write_now()

    async def _timeouts(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            if self.frontend.broker.config.is_slave:
                continue  # its master's coordinator aborts them
            try:
                self.abort_timed_out()
                self._abort_orphans()
            except Exception:
                log.exception("transaction timeout check failed")

    def abort_timed_out(self, now_ms: int | None = None) -> list[str]:
        """Abort (with an epoch fence) every Ongoing transaction past its timeout; their ids."""
        now_ms = _wall_ms() if now_ms is None else now_ms
        out = []
        for finish in self.states.timed_out(now_ms):
            log.info("transaction %s timed out: aborting it", finish.transactional_id)
            self._start_finish(finish)
            out.append(finish.transactional_id)
        expired = self.states.expire(now_ms)
        if out or expired:
            self.writer.changed()
        return out

    def _abort_orphans(self) -> None:
        """The fallback: abort transactions open on local partitions for longer than any timeout
        whose producer this coordinator does not know (its coordinator's state was lost)."""
        tp: TxnPartitions | None = getattr(self.frontend, "txn_partitions", None)
        if tp is not None:
            tp.abort_orphans(
                _wall_ms(),
                self.max_timeout_ms,
                lambda pid: self.states.by_producer(pid) is not None,
                self.coordinator_epoch,
            )

    # ---- which broker serves an id ------------------------------------------------------------

    async def serves(self, transactional_id: str) -> bool:
        await self.cluster.refresh_peers()
        return self.cluster.coordinates(transactional_id)

    def partition_in_transaction(
        self, producer_id: int, producer_epoch: int, topic: str, partition: int
    ) -> bool | None:
        """KIP-890 part 1 for Produce (contract with the partition side): True if (topic, partition)
        is in the producer's Ongoing transaction at that epoch, False if this coordinator knows the
        producer and it is not, None if the producer is not one of this coordinator's."""
        return self.states.partition_in_transaction(producer_id, producer_epoch, (topic, partition))

    # ---- requests -----------------------------------------------------------------------------

    async def init_producer(
        self, tid: str, timeout_ms: int, pid: int, epoch: int, version: int
    ) -> InitResult:
        result = self.states.init_producer(tid, timeout_ms, pid, epoch, _wall_ms(), version)
        if result.error in (ErrorCode.none, ErrorCode.concurrent_transactions):
            if result.finish is not None:
                log.info("transaction %s fenced by a new producer: aborting it", tid)
                self._start_finish(result.finish)
            if result.error == ErrorCode.none or result.finish is not None:
                error = await self._logged(self.writer.changed())
                if error != ErrorCode.none:
                    return InitResult(error)
        return result

    async def add(
        self,
        tid: str,
        pid: int,
        epoch: int,
        version: int,
        partitions: Iterable[Partition] = (),
        groups: Iterable[str] = (),
    ) -> ErrorCode:
        error, changed = self.states.add(tid, pid, epoch, _wall_ms(), version, partitions, groups)
        if changed:
            return await self._logged(self.writer.changed())
        return error

    async def end(self, tid: str, pid: int, epoch: int, commit: bool, version: int) -> ErrorCode:
        """EndTxn: answered once Prepare* is on disk, before the markers are written."""
        error, finish = self.states.end(tid, pid, epoch, commit, _wall_ms(), version)
        if finish is not None:
            change = self.writer.changed()
            self._start_finish(finish)
            return await self._logged(change)
        return error

    # ---- pending transactional offsets --------------------------------------------------------

    async def add_pending_offsets(
        self, group: str, producer_id: int, offsets: Iterable[tuple[str, int, int, str]]
    ) -> ErrorCode:
        """TxnOffsetCommit: offsets held until the producer's transaction ends (on disk on return)."""
        parts = self.pending.setdefault(group, {}).setdefault(producer_id, {})
        for topic, partition, offset, meta in offsets:
            parts[(topic, partition)] = (offset, meta)
        return await self._logged(self.writer.changed())

    async def _logged(self, change: int) -> ErrorCode:
        """Until ``change`` is on disk; COORDINATOR_NOT_AVAILABLE (retriable) if it cannot be written
        now. The state has moved on in memory: the writer retries, and the client's retry sees it."""
        try:
            await self.writer.wait(change)
        except OSError as exc:
            log.error("transaction state not written (answered COORDINATOR_NOT_AVAILABLE): %s", exc)
            return ErrorCode.coordinator_not_available
        return ErrorCode.none

    def has_pending(self, group: str, topic: str, partition: int) -> bool:
        """Whether the group has a pending transactional offset of the partition (require_stable)."""
        return any((topic, partition) in parts for parts in self.pending.get(group, {}).values())

    def producer_of(self, transactional_id: str) -> TxnMeta | None:
        return self.states.get(transactional_id)

    # ---- finishing transactions ---------------------------------------------------------------

    def _start_finish(self, finish: Finish) -> None:
        old = self._finishing.get(finish.transactional_id)
        if old is not None and not old.done():
            return
        task = asyncio.create_task(self._finish(finish), name=f"kafka-txn-end-{finish.transactional_id}")
        self._finishing[finish.transactional_id] = task

    async def _finish(self, finish: Finish) -> None:
        """Markers until written, the group's offsets, then Complete* (logged)."""
        delay = RETRY_S[0]
        todo = set(finish.partitions)
        while True:
            try:
                await self.writer.wait()  # Prepare* first on disk: a crash now completes it after restart
                todo = await self._write_markers(finish, todo)
                if not todo:
                    await self._settle_offsets(finish)
                    break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("markers of transaction %s not written", finish.transactional_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_S[1])
        if self.states.complete(finish.transactional_id, _wall_ms()):
            self.writer.changed()
        self._finishing.pop(finish.transactional_id, None)

    async def _settle_offsets(self, finish: Finish) -> None:
        for group in finish.groups:
            by_pid = self.pending.get(group, {})
            parts = by_pid.get(finish.producer_id)
            if parts is None:
                continue
            if finish.commit:
                entries = [(t, p, o, m) for (t, p), (o, m) in sorted(parts.items())]
                errors = await self.frontend.coordinator.apply_offsets(group, entries)
                failed = [
                    e for e in errors if e not in (ErrorCode.none, ErrorCode.unknown_topic_or_partition)
                ]
                if failed:
                    raise RuntimeError(f"offsets of group {group} not applied: {failed[0].name}")
                await self.frontend.broker.offsets.persist_durable()
            del by_pid[finish.producer_id]
            if not by_pid:
                del self.pending[group]
            self.writer.changed()

    async def _write_markers(self, finish: Finish, todo: set[Partition]) -> set[Partition]:
        """Write markers to ``todo``; the partitions still to do."""
        if not todo:
            return todo
        await self.cluster.placements({t: max(p for tt, p in todo if tt == t) for t, _ in todo})
        local: list[Partition] = []
        remote: dict[Node, list[Partition]] = {}
        gone: set[Partition] = set()
        nodes = {n.node_id: n for n in self.cluster.nodes()}
        for topic, partition in sorted(todo):
            if self.cluster.partition_count(topic) == 0:
                gone.add((topic, partition))  # the topic was deleted: nothing to mark
                continue
            owner = self.cluster.placement(topic).owner_of(partition)
            if owner is None or owner.broker_name == self.cluster.broker_name:
                local.append((topic, partition))
            elif owner.node_id in nodes:
                remote.setdefault(nodes[owner.node_id], []).append((topic, partition))
        results: dict[Partition, int] = dict.fromkeys(gone, 0)
        tp: MarkerWriter | None = getattr(self.frontend, "txn_partitions", None)
        if local:
            if tp is None:  # no partition side in this build: no partition state to close
                results.update(dict.fromkeys(local, 0))
            else:
                results.update(
                    await tp.write_markers(
                        finish.producer_id,
                        finish.producer_epoch,
                        finish.commit,
                        self.coordinator_epoch,
                        local,
                    )
                )
        for node, parts in remote.items():
            results.update(await self._send_markers(node, finish, parts))
        left = {p for p in todo if results.get(p, -1) != 0}
        for p in sorted(left):
            log.info(
                "marker of transaction %s on %s-%d not written yet (error %s)",
                finish.transactional_id,
                p[0],
                p[1],
                results.get(p, "no leader known"),
            )
        return left

    async def _send_markers(self, node: Node, finish: Finish, parts: list[Partition]) -> dict[Partition, int]:
        """WriteTxnMarkers v1 to another broker group's leader; its error code per partition."""
        topics: dict[str, list[int]] = {}
        for t, p in parts:
            topics.setdefault(t, []).append(p)
        request = WriteTxnMarkersRequest(
            markers=(
                WritableTxnMarker(
                    producer_id=ProducerId(finish.producer_id),
                    producer_epoch=i16(finish.producer_epoch),
                    transaction_result=finish.commit,
                    topics=tuple(
                        WritableTxnMarkerTopic(name=TopicName(t), partition_indexes=tuple(i32(p) for p in ps))
                        for t, ps in topics.items()
                    ),
                    coordinator_epoch=i32(self.coordinator_epoch),
                ),
            )
        )
        response = await peer.call(node, request, self.frontend.inter_broker)
        if response is None:
            return {}
        return {
            (t.name, int(p.partition_index)): int(p.error_code)
            for m in response.markers
            for t in m.topics
            for p in t.partitions
        }

    async def wait_finished(self, transactional_id: str) -> None:
        """Until the transaction's markers and completion are done (tests, shutdown)."""
        task = self._finishing.get(transactional_id)
        if task is not None:
            await asyncio.shield(task)
