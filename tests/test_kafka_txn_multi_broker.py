"""Kafka transactions across two broker groups (``ferrymq serve`` = broker-a, a ``ferrymq broker``
= broker-b, one name server): a transactional id and a group coordinated by different brokers.

TxnOffsetCommit reaches the group's coordinator, which checks the member and forwards the offsets
to the transactional id's coordinator; that one applies them at the partitions' owners when the
transaction commits. Markers for partitions the other group leads go out as WriteTxnMarkers (27),
which the partition side of issue 11 serves: until it lands that transaction cannot complete.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kio.schema.add_offsets_to_txn.v3.request import AddOffsetsToTxnRequest
from kio.schema.add_partitions_to_txn.v3.request import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
from kio.schema.end_txn.v3.request import EndTxnRequest
from kio.schema.errors import ErrorCode
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.txn_offset_commit.v3.request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)

from ferrymq.cli.testing import FerryBroker, FerryServer
from tests.test_kafka_frontend import Wire, ms
from tests.test_kafka_multi_broker import group_coordinated_by, port_of, query_offset, two_groups

__all__ = ["two_groups"]  # the fixture, used by name

pytestmark = pytest.mark.timeout(60)
BOTH = ["broker-a", "broker-b"]


async def on(port: int, request: Any) -> Any:
    wire = await Wire.open(port)
    try:
        return await wire.call(request)
    finally:
        wire.close()


async def open_transaction(port: int, tid: str, topic: str, partition: int, group: str) -> tuple[int, int]:
    init = await on(port, InitProducerIdRequest(transactional_id=tid, transaction_timeout=ms(60_000)))
    assert init.error_code == ErrorCode.none
    pid, epoch = init.producer_id, init.producer_epoch
    added = await on(
        port,
        AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=tid,
            v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=(AddPartitionsToTxnTopic(name=topic, partitions=(partition,)),),
        ),
    )
    assert added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0
    offsets = AddOffsetsToTxnRequest(
        transactional_id=tid, producer_id=pid, producer_epoch=epoch, group_id=group
    )
    assert (await on(port, offsets)).error_code == ErrorCode.none
    return pid, epoch


async def completed(port: int, tid: str) -> str:
    """The transaction's state once it leaves Prepare* (or the last seen after 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        (state,) = (await on(port, DescribeTransactionsRequest(transactional_ids=(tid,)))).transaction_states
        if not state.transaction_state.startswith("Prepare") or time.monotonic() > deadline:
            return str(state.transaction_state)
        await asyncio.sleep(0.05)


def test_offsets_committed_at_another_groups_coordinator_are_applied_with_the_transaction(
    two_groups: tuple[FerryServer, FerryBroker, str],
) -> None:
    server, broker_b, topic = two_groups
    tid = group_coordinated_by(BOTH, "broker-a")  # the same hash names the transaction coordinator
    group = group_coordinated_by(BOTH, "broker-b")
    a, b = port_of(server.kafka_bootstrap), port_of(broker_b.kafka_bootstrap)

    async def body() -> None:
        pid, epoch = await open_transaction(a, tid, topic, 0, group)  # partition 0: broker-a's
        commit = TxnOffsetCommitRequest(
            transactional_id=tid,
            group_id=group,
            producer_id=pid,
            producer_epoch=epoch,
            topics=(
                TxnOffsetCommitRequestTopic(
                    name=topic,
                    partitions=(
                        TxnOffsetCommitRequestPartition(
                            partition_index=2, committed_offset=5, committed_metadata=""
                        ),
                    ),
                ),
            ),
        )
        not_coordinator = (await on(a, commit)).topics[0].partitions[0].error_code
        assert not_coordinator == ErrorCode.not_coordinator  # broker-a does not coordinate the group
        assert (await on(b, commit)).topics[0].partitions[0].error_code == ErrorCode.none
        end = EndTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch, committed=True)
        assert (await on(a, end)).error_code == ErrorCode.none
        assert await completed(a, tid) == "CompleteCommit"

    asyncio.run(body())
    # partition 2 is broker-b's queue 0: the committed offset is stored there
    assert query_offset(broker_b.addr, group, topic, 0) == 5


def test_markers_for_partitions_the_other_group_leads_go_as_write_txn_markers(
    two_groups: tuple[FerryServer, FerryBroker, str],
) -> None:
    server, _, topic = two_groups
    tid = group_coordinated_by(BOTH, "broker-a")
    a = port_of(server.kafka_bootstrap)

    async def body() -> None:
        pid, epoch = await open_transaction(a, tid, topic, 3, "g-unused")  # partition 3: broker-b's
        end = EndTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch, committed=False)
        assert (await on(a, end)).error_code == ErrorCode.none
        assert await completed(a, tid) == "CompleteAbort"

    asyncio.run(body())
