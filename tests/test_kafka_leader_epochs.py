"""Kafka leader epochs over controller-mode master epochs, in-process: Metadata's leader_epoch,
OffsetForLeaderEpoch from the epoch history (mapped to queue offsets), FENCED_LEADER_EPOCH and
UNKNOWN_LEADER_EPOCH, and a slave answering NOT_LEADER_OR_FOLLOWER."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.offset_for_leader_epoch.v4.request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)

from ferrymq.core.broker.broker import Broker
from ferrymq.core.ha.epoch import EpochFile
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.inprocess import run_kafka_broker
from tests.test_kafka_frontend import TOPIC, Wire, batch, fetch, metadata, produce


def offsets_for(epoch: int, current: int = -1) -> Any:
    part = OffsetForLeaderPartition(partition=0, current_leader_epoch=current, leader_epoch=epoch)
    return OffsetForLeaderEpochRequest(
        replica_id=-1, topics=(OffsetForLeaderTopic(topic=TOPIC, partitions=(part,)),)
    )


def test_leader_epochs_come_from_the_master_epochs(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        store = broker.store
        epochs = EpochFile(tmp_path / "epochs")
        epochs.append(1, 0)
        for i in range(2):
            store.put_message(TOPIC, 0, f"e1-{i}".encode(), "")
        epochs.append(3, store.commit_log_max_offset)  # elected again at epoch 3 (2 was another's)
        for i in range(2):
            store.put_message(TOPIC, 0, f"e3-{i}".encode(), "")
        broker.epochs = epochs  # type: ignore[attr-defined]  # as role changes set it
        broker.controller = SimpleNamespace(epoch=3)  # type: ignore[assignment]
        wire = await Wire.open(frontend.port)
        try:
            md = await wire.call(metadata(TOPIC))
            assert md.topics[0].partitions[0].leader_epoch == 3
            answers = {}
            for asked in (0, 1, 2, 3, 4):
                p = (await wire.call(offsets_for(asked))).topics[0].partitions[0]
                answers[asked] = (p.error_code, p.leader_epoch, p.end_offset)
            assert answers == {
                0: (ErrorCode.none, -1, -1),  # older than the history
                1: (ErrorCode.none, 1, 2),  # epoch 1 ends where epoch 3's first message is
                2: (ErrorCode.none, 1, 2),  # never led here: the largest epoch below it
                3: (ErrorCode.none, 3, 4),  # the current one ends at the high watermark
                4: (ErrorCode.none, 3, 4),
            }
            p = (await wire.call(offsets_for(3, current=2))).topics[0].partitions[0]
            assert p.error_code == ErrorCode.fenced_leader_epoch
            p = (await wire.call(offsets_for(3, current=4))).topics[0].partitions[0]
            assert p.error_code == ErrorCode.unknown_leader_epoch
            f = fetch(0)
            part = f.topics[0].partitions[0]
            stale = type(f)(
                max_wait=f.max_wait,
                min_bytes=1,
                topics=(
                    type(f.topics[0])(
                        topic=TOPIC,
                        partitions=(
                            type(part)(
                                partition=0,
                                current_leader_epoch=2,
                                fetch_offset=0,
                                partition_max_bytes=1 << 20,
                            ),
                        ),
                    ),
                ),
                forgotten_topics_data=(),
            )
            assert (await wire.call(stale)).responses[0].partitions[
                0
            ].error_code == ErrorCode.fenced_leader_epoch
        finally:
            wire.close()
            broker.controller = None

    run_kafka_broker(tmp_path, body, TOPIC, 1, timeout=30)


def test_a_slave_sends_clients_to_its_master(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        broker.config.__dict__["broker_role"] = "SLAVE"  # as Broker.become_slave switches it
        wire = await Wire.open(frontend.port)
        try:
            resp = await wire.call(produce(batch(1)))
            assert resp.responses[0].partition_responses[0].error_code == ErrorCode.not_leader_or_follower
            resp = await wire.call(fetch(0))
            assert resp.responses[0].partitions[0].error_code == ErrorCode.not_leader_or_follower
            resp = await wire.call(metadata("not-there-yet"))
            assert resp.topics[0].error_code == ErrorCode.leader_not_available  # a slave creates nothing
            assert broker.topics.get("not-there-yet") is None
        finally:
            wire.close()

    run_kafka_broker(tmp_path, body, TOPIC, 1, timeout=30)
