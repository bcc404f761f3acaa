"""Kafka transactions, the partition side (gateway/kafka/txn_partitions.py): transactional produce,
COMMIT/ABORT markers, the last stable offset, the aborted-transaction index, read_committed
Fetch and ListOffsets, and what RocketMQ consumers see. In process, over the raw protocol (kio),
with a small fake coordinator (the real one is s11-ktxn-coord's) that calls write_markers."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

from kafka.record.default_records import DefaultRecordBatchBuilder
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.write_txn_markers.v1.request import (
    WritableTxnMarker,
    WritableTxnMarkerTopic,
    WriteTxnMarkersRequest,
)
from kio.static.primitive import i32

from ferrymq.core.broker.broker import Broker
from ferrymq.core.remoting.transport import connect
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.remoting_helpers import pull_all
from tests.test_kafka_frontend import TOPIC, Wire, init_producer, ms, records_of, run

READ_UNCOMMITTED, READ_COMMITTED = 0, 1


def txn_batch(n: int, pid: int, epoch: int, seq: int, first: int = 0) -> bytes:
    b = DefaultRecordBatchBuilder(2, 0, True, pid, epoch, seq, 1 << 20)
    for i in range(n):
        b.append(i, 1_700_000_000_000 + i, None, f"t{first + i}".encode(), [])
    return bytes(b.build())


def plain_batch(n: int, first: int = 0) -> bytes:
    b = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 1 << 20)
    for i in range(n):
        b.append(i, 1_700_000_000_000 + i, None, f"p{first + i}".encode(), [])
    return bytes(b.build())


def produce(records: bytes, txn_id: str | None = None, partition: int = 0) -> Any:
    return ProduceRequest(
        transactional_id=txn_id,
        acks=1,
        timeout=ms(5000),
        topic_data=(
            TopicProduceData(
                name=TOPIC, partition_data=(PartitionProduceData(index=partition, records=records),)
            ),
        ),
    )


async def produced(wire: Wire, records: bytes, txn_id: str | None = None) -> tuple[ErrorCode, int]:
    r = await wire.call(produce(records, txn_id))
    p = r.responses[0].partition_responses[0]
    return ErrorCode(p.error_code), int(p.base_offset)


def fetch(offset: int, isolation: int, wait_ms: int = 0) -> Any:
    part = FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)
    return FetchRequest(
        max_wait=ms(wait_ms),
        min_bytes=1,
        isolation_level=isolation,
        topics=(FetchTopic(topic=TOPIC, partitions=(part,)),),
        forgotten_topics_data=(),
    )


async def fetched(wire: Wire, offset: int, isolation: int, wait_ms: int = 0) -> Any:
    r = await wire.call(fetch(offset, isolation, wait_ms))
    return r.responses[0].partitions[0]


def values(data: bytes) -> list[bytes]:
    return [r.value for r in records_of(data)]


def test_read_committed_never_serves_a_transactional_batch_no_marker_closed(tmp_path: Path) -> None:
    """Today's fault: a transactional batch (attribute bit 4) stored by a plain produce was served
    to read_committed consumers at once, LSO = high watermark."""

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        init = await w.call(init_producer())
        pid = init.producer_id
        await produced(w, txn_batch(2, pid, 0, 0))
        p = await fetched(w, 0, READ_COMMITTED)
        assert values(p.records) == []
        assert p.last_stable_offset == 0

    run(tmp_path, body)


class FakeCoordinator:
    """The coordinator side as the contract gives it: which partitions are in a transaction."""

    def __init__(self) -> None:
        self.added: set[tuple[int, str, int]] = set()

    def partition_in_transaction(self, pid: int, epoch: int, topic: str, partition: int) -> bool | None:
        return (pid, topic, partition) in self.added

    async def stop(self) -> None:
        """The frontend stops its coordinator; this one holds nothing."""


def list_latest(isolation: int) -> Any:
    part = ListOffsetsPartition(partition_index=0, timestamp=-1)
    return ListOffsetsRequest(
        replica_id=-1, isolation_level=isolation, topics=(ListOffsetsTopic(name=TOPIC, partitions=(part,)),)
    )


async def latest(wire: Wire, isolation: int) -> int:
    r = await wire.call(list_latest(isolation))
    return int(r.topics[0].partitions[0].offset)


async def native_values(broker: Broker) -> list[bytes]:
    conn = await connect("127.0.0.1", broker.port)
    try:
        return [m.body for m in await pull_all(conn, TOPIC, range(1))]
    finally:
        conn.close()


def control_batches(data: bytes) -> list[tuple[int, int]]:
    """(base offset, attributes) of the control batches in ``data``."""
    out, pos = [], 0
    while pos < len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        (attributes,) = struct.unpack_from(">h", data, pos + 21)
        if attributes & 0x20:
            out.append((base, attributes))
        pos += 12 + length
    return out


def test_commit_and_abort_lso_aborted_index_and_what_each_reader_sees(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        coord = f.txn_coordinator = FakeCoordinator()  # type: ignore[attr-defined]
        w = await Wire.open(f.port)
        pid = (await w.call(init_producer())).producer_id
        assert await produced(w, plain_batch(2)) == (ErrorCode.none, 0)
        # KIP-890 part 1: a partition never added to the transaction
        assert (await produced(w, txn_batch(2, pid, 0, 0), "tx"))[0] == ErrorCode.invalid_txn_state
        coord.added.add((pid, TOPIC, 0))
        assert await produced(w, txn_batch(2, pid, 0, 0), "tx") == (ErrorCode.none, 2)  # aborted later
        assert await produced(w, plain_batch(1, 2)) == (ErrorCode.none, 4)  # another producer
        assert await produced(w, txn_batch(1, pid, 0, 2, 2), "tx") == (ErrorCode.none, 5)
        p = await fetched(w, 0, READ_COMMITTED)
        assert (p.high_watermark, p.last_stable_offset) == (6, 2)
        assert values(p.records) == [b"p0", b"p1"] and p.aborted_transactions == ()
        p = await fetched(w, 0, READ_UNCOMMITTED)
        assert p.last_stable_offset == 2 and p.aborted_transactions is None and len(values(p.records)) == 6
        assert (await latest(w, READ_COMMITTED), await latest(w, READ_UNCOMMITTED)) == (2, 6)
        assert await native_values(broker) == [b"p0", b"p1"]  # RocketMQ stops at the LSO too
        # a non-transactional batch of the producer while its transaction is open
        assert (await produced(w, batch_of(pid, 0, 3)))[0] == ErrorCode.invalid_txn_state

        codes = await f.txn_partitions.write_markers(pid, 0, False, 7, [(TOPIC, 0), (TOPIC, 1)])
        assert codes == {(TOPIC, 0): 0, (TOPIC, 1): 0}  # partition 1: nothing open, a no-op
        assert broker.store.max_offset(TOPIC, 1) == 0
        assert await f.txn_partitions.write_markers(pid, 0, False, 7, [(TOPIC, 0)]) == {(TOPIC, 0): 0}
        assert broker.store.max_offset(TOPIC, 0) == 7  # the retry wrote nothing
        p = await fetched(w, 0, READ_COMMITTED)
        assert p.last_stable_offset == 7 == p.high_watermark
        assert [(a.producer_id, a.first_offset) for a in p.aborted_transactions] == [(pid, 2)]
        assert control_batches(p.records) == [(6, 0x30)]
        assert await native_values(broker) == [b"p0", b"p1", b"p2"]

        # the next transaction, fenced by a newer epoch, then committed
        coord.added.add((pid, TOPIC, 0))
        assert await produced(w, txn_batch(2, pid, 1, 0, 10), "tx") == (ErrorCode.none, 7)
        assert (await produced(w, txn_batch(1, pid, 0, 3), "tx"))[0] == ErrorCode.invalid_producer_epoch
        assert await f.txn_partitions.write_markers(pid, 1, True, 7, [(TOPIC, 0)]) == {(TOPIC, 0): 0}
        p = await fetched(w, 7, READ_COMMITTED)
        assert values(p.records)[:2] == [b"t10", b"t11"] and p.last_stable_offset == 10
        assert control_batches(p.records) == [(9, 0x30)]
        assert p.aborted_transactions == ()  # the aborted one ended before offset 7
        assert await native_values(broker) == [b"p0", b"p1", b"p2", b"t10", b"t11"]
        views = []
        for entry in broker.store.entries(TOPIC, 0, 0):
            if entry.kind.name == "BATCH":
                views.extend(f.batch_records(0, bytes(entry.payload), entry.message_count))
        markers = [(v.queue_offset, v.properties.get("kafka.control")) for v in views if not v.body]
        assert markers == [(6, "ABORT"), (9, "COMMIT")]
        assert views[-1].properties["kafka.coordinatorEpoch"] == "7"

    run(tmp_path, body)


def batch_of(pid: int, epoch: int, seq: int) -> bytes:
    b = DefaultRecordBatchBuilder(2, 0, False, pid, epoch, seq, 1 << 20)
    b.append(0, 1_700_000_000_000, None, b"idem", [])
    return bytes(b.build())


def write_markers_request(pid: int, epoch: int, commit: bool) -> Any:
    topic = WritableTxnMarkerTopic(name=TOPIC, partition_indexes=(i32(0),))
    marker = WritableTxnMarker(
        producer_id=pid, producer_epoch=epoch, transaction_result=commit, topics=(topic,), coordinator_epoch=3
    )
    return WriteTxnMarkersRequest(markers=(marker,))


def test_open_transactions_and_aborts_survive_a_restart_and_markers_come_over_the_wire(
    tmp_path: Path,
) -> None:
    ids: dict[str, int] = {}

    async def first(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        pid = ids["pid"] = (await w.call(init_producer())).producer_id
        assert await produced(w, txn_batch(2, pid, 0, 0), "tx") == (ErrorCode.none, 0)
        assert (await f.txn_partitions.write_markers(pid, 0, False, 0, [(TOPIC, 0)])) == {(TOPIC, 0): 0}
        assert await produced(w, txn_batch(1, pid, 0, 2, 2), "tx") == (ErrorCode.none, 3)  # left open

    async def after_restart(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        pid = ids["pid"]
        parked = asyncio.ensure_future(fetched(await Wire.open(f.port), 3, READ_COMMITTED, wait_ms=10_000))
        p = await fetched(await Wire.open(f.port), 0, READ_COMMITTED)
        assert (p.last_stable_offset, p.high_watermark) == (3, 4)
        assert [(a.producer_id, a.first_offset) for a in p.aborted_transactions] == [(pid, 0)]
        assert await native_values(broker) == []  # aborted, then open: nothing for RocketMQ yet
        assert (await produced(w, batch_of(pid, 0, 3)))[0] == ErrorCode.invalid_txn_state
        w2 = await Wire.open(f.port)
        r = await w2.call(write_markers_request(pid, 0, True))
        assert r.markers[0].topics[0].partitions[0].error_code == ErrorCode.none
        p = await parked  # woken by the marker: the LSO moved
        assert values(p.records)[0] == b"t2" and p.last_stable_offset == 5
        assert await native_values(broker) == [b"t2"]

    run(tmp_path, first)
    run(tmp_path, after_restart)


def test_a_transaction_no_coordinator_knows_is_aborted_after_the_max_timeout(tmp_path: Path) -> None:
    """The fallback for a coordinator state lost (e.g. a failover before the slave copied it): the
    LSO stayed at the open transaction for good. Now a transaction open longer than
    kafkaTransactionMaxTimeoutMs whose producer the local coordinator does not know is aborted."""

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        pid = (await w.call(init_producer())).producer_id  # idempotent only: no coordinator knows it
        assert await produced(w, txn_batch(2, pid, 0, 0), "lost") == (ErrorCode.none, 0)
        tp, max_ms = f.txn_partitions, broker.config.kafka_transaction_max_timeout_ms
        now = tp._clock()
        assert tp.abort_orphans(now + max_ms + 5_000, max_ms, lambda p: p == pid, 1) == []  # known
        assert tp.abort_orphans(now + max_ms // 2, max_ms, lambda p: False, 1) == []  # not yet
        assert (await fetched(w, 0, READ_COMMITTED)).last_stable_offset == 0
        assert tp.abort_orphans(now + max_ms + 5_000, max_ms, lambda p: False, 1) == [(TOPIC, 0, pid)]
        await produced(w, plain_batch(1))
        p = await fetched(w, 0, READ_COMMITTED)
        assert control_batches(p.records) == [(2, 0x30)]  # the ABORT marker (clients filter by it)
        assert [(a.producer_id, a.first_offset) for a in p.aborted_transactions] == [(pid, 0)]
        assert p.last_stable_offset == 4  # 2 records, the marker, the plain record
        assert await native_values(broker) == [b"p0"]

    run(tmp_path, body)


def test_retention_trims_the_aborted_index_and_producer_epochs(tmp_path: Path) -> None:
    """Once the log start passes an aborted transaction's marker, its aborted-index entry goes,
    and so does the epoch kept for a producer whose last batch or marker is below the log start
    (Kafka: the transaction index is deleted with its segment; producer state below the log start
    is evicted). Before: both stayed in memory for the life of the process."""

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        coord = f.txn_coordinator = FakeCoordinator()  # type: ignore[attr-defined]
        w = await Wire.open(f.port)
        old = (await w.call(init_producer())).producer_id
        new = (await w.call(init_producer())).producer_id
        coord.added |= {(old, TOPIC, 0), (new, TOPIC, 0)}
        assert await produced(w, txn_batch(2, old, 0, 0), "tx") == (ErrorCode.none, 0)
        assert await f.txn_partitions.write_markers(old, 0, False, 7, [(TOPIC, 0)]) == {(TOPIC, 0): 0}
        assert await produced(w, plain_batch(2), "tx") == (ErrorCode.none, 3)
        assert await produced(w, txn_batch(1, new, 0, 0), "tx") == (ErrorCode.none, 5)  # open
        st = f.txn_partitions.state(TOPIC, 0)
        assert st is not None and [a[0] for a in st.aborted] == [old] and set(st.epochs) == {old, new}

        f.delete_records(TOPIC, 0, 2)  # the marker (offset 2) is still in the log
        f.apply_retention()
        assert [a[0] for a in st.aborted] == [old] and set(st.epochs) == {old, new}
        f.delete_records(TOPIC, 0, 5)
        f.apply_retention()
        assert st.aborted == [] and set(st.epochs) == {new}  # the open transaction is kept
        p = await fetched(w, 5, READ_COMMITTED)
        assert p.last_stable_offset == 5 and p.aborted_transactions == ()

    run(tmp_path, body)
