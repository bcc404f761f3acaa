"""The Kafka transaction coordinator over real sockets, in process: requests encoded with kio as a
client sends them, against a broker whose partition side (``KafkaFrontend.txn_partitions``) is a
fake that records the markers it is asked to write (the real one is the other half of issue 11).

What a transactional client sees: the id's coordinator, InitProducerId, AddPartitionsToTxn (with an
unknown topic), AddOffsetsToTxn + TxnOffsetCommit pending until the end (require_stable), EndTxn
answered before the markers, markers retried until written, offsets applied on commit and dropped on
abort, a zombie fenced, Describe/ListTransactions, and the state kept across a crash.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from kio.schema.add_offsets_to_txn.v3.request import AddOffsetsToTxnRequest
from kio.schema.add_partitions_to_txn.v1.request import AddPartitionsToTxnRequest as AddPartitionsV1
from kio.schema.add_partitions_to_txn.v1.request import AddPartitionsToTxnTopic as AddTopicV1
from kio.schema.add_partitions_to_txn.v3.request import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from kio.schema.add_partitions_to_txn.v5.request import AddPartitionsToTxnRequest as AddPartitionsV5
from kio.schema.add_partitions_to_txn.v5.request import AddPartitionsToTxnTopic as AddTopicV5
from kio.schema.add_partitions_to_txn.v5.request import AddPartitionsToTxnTransaction
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
from kio.schema.end_txn.v1.request import EndTxnRequest as EndTxnV1
from kio.schema.end_txn.v3.request import EndTxnRequest
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v3.request import FindCoordinatorRequest as FindV3
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest as FindV4
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.list_transactions.v1.request import ListTransactionsRequest
from kio.schema.offset_fetch.v7.request import OffsetFetchRequest, OffsetFetchRequestTopic
from kio.schema.txn_offset_commit.v3.request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.gateway.kafka.apis.api18_api_versions import build_response
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.test_kafka_frontend import Wire

TOPIC, TID, GROUP = "kt", "tx-a", "g-a"


class FakePartitions:
    """The partition side's contract (write_markers), recording each call; ``fail`` answers
    NOT_LEADER_OR_FOLLOWER that many times first, ``gate`` holds each call until set."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[int, int, bool, int, list[tuple[str, int]]]] = []
        self.fail = fail
        self.gate: asyncio.Event | None = None
        #: the frontend's real partition side, for everything but write_markers (LSO, produce state)
        self.real: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["real"], name)

    async def write_markers(
        self,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        partitions: list[tuple[str, int]],
    ) -> dict[tuple[str, int], int]:
        self.calls.append((producer_id, producer_epoch, commit, coordinator_epoch, list(partitions)))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            return dict.fromkeys(partitions, int(ErrorCode.not_leader_or_follower))
        return dict.fromkeys(partitions, 0)


@asynccontextmanager
async def broker(tmp_path: Path, fake: FakePartitions) -> AsyncIterator[tuple[KafkaFrontend, Wire]]:
    """A broker (topic ``kt``, 2 partitions) whose frontend has ``fake`` as its partition side from
    before the start (a restart finishes Prepare* transactions at once), and a client connection."""
    config = BrokerConfig(listen_port=0, listen_host="127.0.0.1", store_path_root_dir=tmp_path / "store")
    b = Broker(config)
    await b.start()
    try:
        b.topics.create_if_absent(TOPIC, 2)
        f = KafkaFrontend(b, "127.0.0.1", 0, "127.0.0.1")
        fake.real = f.txn_partitions
        f.txn_partitions = fake  # type: ignore[assignment]
        await f.start()
        wire = await Wire.open(f.port)
        try:
            yield f, wire
        finally:
            wire.close()
            await f.stop()
    finally:
        await b.stop()


def run(body: Any) -> None:
    asyncio.run(asyncio.wait_for(body(), 30))


def ms(n: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=n)


async def init(wire: Wire, pid: int = -1, epoch: int = -1, timeout: int = 60_000) -> Any:
    return await wire.call(
        InitProducerIdRequest(
            transactional_id=TID, transaction_timeout=ms(timeout), producer_id=pid, producer_epoch=epoch
        )
    )


async def add_partitions(wire: Wire, pid: int, epoch: int, *parts: int, topic: str = TOPIC) -> list[Any]:
    r = await wire.call(
        AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=TID,
            v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=(AddPartitionsToTxnTopic(name=topic, partitions=parts),),
        )
    )
    return [
        (t.name, p.partition_index, p.partition_error_code)
        for t in r.results_by_topic_v3_and_below
        for p in t.results_by_partition
    ]


async def end(wire: Wire, pid: int, epoch: int, commit: bool) -> ErrorCode:
    r = await wire.call(
        EndTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch, committed=commit)
    )
    return r.error_code


def offset_commit(tid: str, pid: int, epoch: int, offset: int, **member: Any) -> TxnOffsetCommitRequest:
    """TxnOffsetCommit v3 of partition 0 in GROUP (``member``: generation_id, member_id)."""
    partition = TxnOffsetCommitRequestPartition(
        partition_index=0, committed_offset=offset, committed_metadata="m"
    )
    return TxnOffsetCommitRequest(
        transactional_id=tid,
        group_id=GROUP,
        producer_id=pid,
        producer_epoch=epoch,
        topics=(TxnOffsetCommitRequestTopic(name=TOPIC, partitions=(partition,)),),
        **member,
    )


async def offsets_in_txn(wire: Wire, pid: int, epoch: int, offset: int) -> tuple[ErrorCode, list[ErrorCode]]:
    added = await wire.call(
        AddOffsetsToTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch, group_id=GROUP)
    )
    r = await wire.call(offset_commit(TID, pid, epoch, offset))
    return added.error_code, [p.error_code for t in r.topics for p in t.partitions]


async def fetch_offset(wire: Wire, stable: bool = True) -> tuple[int, ErrorCode]:
    r = await wire.call(
        OffsetFetchRequest(
            group_id=GROUP,
            topics=(OffsetFetchRequestTopic(name=TOPIC, partition_indexes=(0,)),),
            require_stable=stable,
        )
    )
    (p,) = r.topics[0].partitions
    return p.committed_offset, p.error_code


def test_find_coordinator_answers_transaction_keys_one_by_one_and_batched(tmp_path: Path) -> None:
    async def body() -> None:
        async with broker(tmp_path, FakePartitions()) as (f, wire):
            one = await wire.call(FindV3(key=TID, key_type=1))
            assert (one.error_code, one.node_id, one.port) == (ErrorCode.none, f.cluster.node_id, f.port)
            many = await wire.call(FindV4(key_type=1, coordinator_keys=(TID, "tx-b")))
            assert [(c.key, c.error_code, c.port) for c in many.coordinators] == [
                (TID, ErrorCode.none, f.port),
                ("tx-b", ErrorCode.none, f.port),
            ]

    run(body)


def test_commit_writes_markers_after_answering_then_applies_the_pending_offsets(tmp_path: Path) -> None:
    fake = FakePartitions()

    async def body() -> None:
        async with broker(tmp_path, fake) as (f, wire):
            r = await init(wire)
            assert (r.error_code, r.producer_epoch) == (ErrorCode.none, 0)
            pid = r.producer_id
            assert await add_partitions(wire, pid, 0, 0, 1) == [
                (TOPIC, 0, ErrorCode.none),
                (TOPIC, 1, ErrorCode.none),
            ]
            assert f.txn_coordinator.partition_in_transaction(pid, 0, TOPIC, 1) is True
            assert f.txn_coordinator.partition_in_transaction(pid, 0, "other", 0) is False
            assert await offsets_in_txn(wire, pid, 0, 42) == (ErrorCode.none, [ErrorCode.none])
            assert await fetch_offset(wire) == (-1, ErrorCode.unstable_offset_commit)
            assert await fetch_offset(wire, stable=False) == (-1, ErrorCode.none)
            fake.gate = asyncio.Event()
            assert await end(wire, pid, 0, True) == ErrorCode.none  # answered while the markers wait
            await asyncio.sleep(0)
            assert await fetch_offset(wire) == (-1, ErrorCode.unstable_offset_commit)
            fake.gate.set()
            await f.txn_coordinator.wait_finished(TID)
            epoch = f.txn_coordinator.coordinator_epoch
            assert fake.calls == [(pid, 0, True, epoch, [(TOPIC, 0), (TOPIC, 1)])]
            assert await fetch_offset(wire) == (42, ErrorCode.none)
            assert await end(wire, pid, 0, True) == ErrorCode.none  # a retry of the end
            assert await end(wire, pid, 0, False) == ErrorCode.invalid_txn_state

    run(body)


def test_abort_drops_the_pending_offsets_and_markers_are_retried_until_written(tmp_path: Path) -> None:
    fake = FakePartitions(fail=2)

    async def body() -> None:
        async with broker(tmp_path, fake) as (f, wire):
            pid = (await init(wire)).producer_id
            await add_partitions(wire, pid, 0, 0)
            await offsets_in_txn(wire, pid, 0, 7)
            assert await end(wire, pid, 0, False) == ErrorCode.none
            assert await end(wire, pid, 0, False) == ErrorCode.concurrent_transactions  # still writing
            await f.txn_coordinator.wait_finished(TID)
            assert [c[2] for c in fake.calls] == [False, False, False]
            assert await fetch_offset(wire) == (-1, ErrorCode.none)
            described = await wire.call(DescribeTransactionsRequest(transactional_ids=(TID, "unknown")))
            a, b = described.transaction_states
            assert (a.error_code, a.transaction_state, a.producer_id) == (
                ErrorCode.none,
                "CompleteAbort",
                pid,
            )
            assert b.error_code == ErrorCode.transactional_id_not_found

    run(body)


def test_a_zombie_is_fenced_and_its_open_transaction_aborted(tmp_path: Path) -> None:
    fake = FakePartitions()

    async def body() -> None:
        async with broker(tmp_path, fake) as (f, wire):
            pid = (await init(wire)).producer_id
            await add_partitions(wire, pid, 0, 0)
            fenced = await init(wire)  # a new instance with the same transactional id
            assert fenced.error_code == ErrorCode.concurrent_transactions
            await f.txn_coordinator.wait_finished(TID)
            assert fake.calls == [(pid, 1, False, f.txn_coordinator.coordinator_epoch, [(TOPIC, 0)])]
            new = await init(wire)
            assert (new.error_code, new.producer_id, new.producer_epoch) == (ErrorCode.none, pid, 2)
            assert await end(wire, pid, 0, True) == ErrorCode.producer_fenced
            old = await wire.call(
                EndTxnV1(transactional_id=TID, producer_id=pid, producer_epoch=0, committed=True)
            )
            assert old.error_code == ErrorCode.invalid_producer_epoch
            old_add = await wire.call(
                AddPartitionsV1(
                    v3_and_below_transactional_id=TID,
                    v3_and_below_producer_id=pid,
                    v3_and_below_producer_epoch=0,
                    v3_and_below_topics=(AddTopicV1(name=TOPIC, partitions=(1,)),),
                )
            )
            assert old_add.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == (
                ErrorCode.invalid_producer_epoch
            )
            stale = await init(wire, pid, 0)  # KIP-360 with a stale epoch
            assert stale.error_code == ErrorCode.producer_fenced

    run(body)


def test_unknown_topics_fail_the_whole_add_and_bad_timeouts_are_refused(tmp_path: Path) -> None:
    async def body() -> None:
        async with broker(tmp_path, FakePartitions()) as (f, wire):
            assert (await init(wire, timeout=900_001)).error_code == ErrorCode.invalid_transaction_timeout
            pid = (await init(wire)).producer_id
            assert await add_partitions(wire, pid, 0, 0, 5) == [
                (TOPIC, 0, ErrorCode.operation_not_attempted),
                (TOPIC, 5, ErrorCode.unknown_topic_or_partition),
            ]
            assert f.txn_coordinator.states.get(TID).partitions == set()  # type: ignore[union-attr]
            # KIP-447: a member of a generation the group does not have is refused
            r = await wire.call(offset_commit("other", pid, 0, 3, generation_id=5, member_id="m-1"))
            assert r.topics[0].partitions[0].error_code == ErrorCode.illegal_generation
            # offsets of an unknown transactional id, or of a transaction without the group, would
            # never be settled: refused
            for tid, error in (
                ("other", ErrorCode.invalid_producer_id_mapping),
                (TID, ErrorCode.invalid_txn_state),
            ):
                r = await wire.call(offset_commit(tid, pid, 0, 3))
                assert r.topics[0].partitions[0].error_code == error
            assert not f.txn_coordinator.pending
            listed = await wire.call(ListTransactionsRequest(state_filters=("Empty", "Bogus")))
            assert listed.unknown_state_filters == ("Bogus",)
            assert [(t.transactional_id, t.transaction_state) for t in listed.transaction_states] == [
                (TID, "Empty")
            ]

    run(body)


def test_state_survives_a_crash_prepared_ones_complete_and_ongoing_ones_abort_at_their_timeout(
    tmp_path: Path,
) -> None:
    first = FakePartitions()
    first.gate = asyncio.Event()  # markers never written before the crash
    pids: dict[str, int] = {}

    async def before_crash() -> None:
        async with broker(tmp_path, first) as (f, wire):
            pid = (await init(wire)).producer_id
            await add_partitions(wire, pid, 0, 0)
            await offsets_in_txn(wire, pid, 0, 9)
            assert await end(wire, pid, 0, True) == ErrorCode.none  # PrepareCommit is on disk
            r = await wire.call(
                InitProducerIdRequest(transactional_id="tx-ongoing", transaction_timeout=ms(1000))
            )
            other = wire.send(
                AddPartitionsToTxnRequest(
                    v3_and_below_transactional_id="tx-ongoing",
                    v3_and_below_producer_id=r.producer_id,
                    v3_and_below_producer_epoch=0,
                    v3_and_below_topics=(AddPartitionsToTxnTopic(name=TOPIC, partitions=(1,)),),
                )
            )
            assert (await wire.receive(AddPartitionsToTxnRequest))[0] == other
            pids.update(committed=pid, ongoing=r.producer_id)
            # kill -9: nothing more reaches the disk than what the replies promised
            f.txn_coordinator.writer.write_now = lambda: None  # type: ignore[method-assign]

    after = FakePartitions()

    async def after_restart() -> None:
        async with broker(tmp_path, after) as (f, wire):
            txn = f.txn_coordinator
            await txn.wait_finished(TID)
            assert after.calls[0][:3] == (pids["committed"], 0, True)
            assert after.calls[0][3] == txn.coordinator_epoch == 2
            assert await fetch_offset(wire) == (9, ErrorCode.none)
            meta = txn.states.get("tx-ongoing")
            assert meta is not None and meta.state.label == "Ongoing"
            assert txn.abort_timed_out(meta.start_ms + 1000) == []
            assert txn.abort_timed_out(meta.start_ms + 1001) == ["tx-ongoing"]
            await txn.wait_finished("tx-ongoing")
            assert after.calls[1] == (pids["ongoing"], 1, False, 2, [(TOPIC, 1)])

    run(before_crash)
    run(after_restart)


def test_api_versions_advertise_the_transaction_apis_up_to_transaction_version_1() -> None:
    response = build_response(3)
    ranges = {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in response.api_keys}
    assert {k: ranges[k] for k in (10, 22, 24, 25, 26, 28, 65, 66)} == {
        10: (0, 6),
        22: (0, 5),  # v3+: KIP-360 epoch bumps
        24: (0, 5),  # v4+: brokers' batched form (clients stay at 3)
        25: (0, 4),
        26: (0, 5),  # Kafka 4.0's maximum; clients send v5 only with transaction.version 2 finalized
        28: (0, 5),  # likewise
        65: (0, 0),
        66: (0, 1),
    }
    finalized = {f.name for f in getattr(response, "finalized_features", ())}
    assert "transaction.version" not in finalized, "transaction.version is not advertised"


def test_a_state_write_that_fails_is_retriable_and_no_marker_goes_out_before_it_is_on_disk(
    tmp_path: Path,
) -> None:
    fake = FakePartitions()

    async def body() -> None:
        async with broker(tmp_path, fake) as (f, wire):
            txn = f.txn_coordinator
            pid = (await init(wire)).producer_id
            await add_partitions(wire, pid, 0, 0)
            write = txn.writer._write

            def disk_full(change: int, data: Any) -> None:
                raise OSError(28, "No space left on device")

            txn.writer._write = disk_full  # type: ignore[method-assign]
            assert await end(wire, pid, 0, True) == ErrorCode.coordinator_not_available
            assert await end(wire, pid, 0, True) == ErrorCode.concurrent_transactions
            assert fake.calls == []  # PrepareCommit is not on disk: no marker yet
            txn.writer._write = write  # type: ignore[method-assign]
            await txn.wait_finished(TID)
            assert [c[2] for c in fake.calls] == [True]
            assert await end(wire, pid, 0, True) == ErrorCode.none

    run(body)


def test_batched_add_partitions_adds_or_verifies_each_transaction(tmp_path: Path) -> None:
    async def body() -> None:
        async with broker(tmp_path, FakePartitions()) as (f, wire):
            pid = (await init(wire)).producer_id

            def txn(tid: str, verify: bool, *parts: int) -> AddPartitionsToTxnTransaction:
                topics = (AddTopicV5(name=TOPIC, partitions=parts),)
                return AddPartitionsToTxnTransaction(
                    transactional_id=tid, producer_id=pid, producer_epoch=0, verify_only=verify, topics=topics
                )

            async def call(*txns: AddPartitionsToTxnTransaction) -> list[tuple[str, int, ErrorCode]]:
                r = await wire.call(AddPartitionsV5(transactions=txns))
                assert r.error_code == ErrorCode.none
                return [
                    (t.transactional_id, p.partition_index, p.partition_error_code)
                    for t in r.results_by_transaction
                    for topic in t.topic_results
                    for p in topic.results_by_partition
                ]

            assert await call(txn(TID, False, 0), txn("nope", True, 0)) == [
                (TID, 0, ErrorCode.none),
                ("nope", 0, ErrorCode.invalid_producer_id_mapping),
            ]
            assert await call(txn(TID, True, 0, 1)) == [
                (TID, 0, ErrorCode.none),
                (TID, 1, ErrorCode.invalid_txn_state),
            ]
            assert f.txn_coordinator.states.get(TID).partitions == {(TOPIC, 0)}  # type: ignore[union-attr]

    run(body)
