"""Kafka acks=all in a broker group: Kafka's in-sync-replica rules over the group's replication
state (reference rocketmq-ha.md §4; Kafka's Partition.checkEnoughReplicasReachOffset and
DelayedProduce).

The decision is sans-IO (gateway/kafka/isr.py) and tested as such; the produce path is tested
in-process with the slaves' acknowledgements played into ``Broker.ha`` as the HA service reports
them, so each outcome (answered after the acks, NOT_ENOUGH_REPLICAS before the append,
NOT_ENOUGH_REPLICAS_AFTER_APPEND when the set shrank, REQUEST_TIMED_OUT) is seen exactly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from ferrymq.core.broker.broker import Broker
from ferrymq.core.ha.state import ReplicaInfo
from ferrymq.gateway.kafka import isr
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.test_kafka_frontend import TOPIC, Wire, alter_topic, batch, ms, produced, run


def replica(addr: str, ack: int, in_sync: bool = True) -> ReplicaInfo:
    return ReplicaInfo(addr, ack, 0, in_sync, 0)


# ---- the decision, sans-IO ---------------------------------------------------------------------


def test_before_append_counts_the_master_and_its_in_sync_slaves() -> None:
    assert isr.before_append(1, 0) == ErrorCode.none
    assert isr.before_append(2, 0) == ErrorCode.not_enough_replicas
    assert isr.before_append(2, 1) == ErrorCode.none
    assert isr.before_append(3, 1) == ErrorCode.not_enough_replicas


def test_replicated_once_every_in_sync_slave_acked_the_end() -> None:
    assert isr.replicated([], 100)  # the master alone: its own end is the high watermark
    assert not isr.replicated([replica("a", 99)], 100)
    assert isr.replicated([replica("a", 100)], 100)
    assert not isr.replicated([replica("a", 100), replica("b", 50)], 100)
    assert isr.replicated([replica("a", 100), replica("b", 50, in_sync=False)], 100)  # out of the set


def test_after_wait_is_not_enough_replicas_after_append_when_the_set_shrank() -> None:
    assert isr.after_wait(2, 1) == ErrorCode.none
    assert isr.after_wait(2, 0) == ErrorCode.not_enough_replicas_after_append
    assert isr.after_wait(1, 0) == ErrorCode.none


def test_min_insync_replicas_of_a_topic() -> None:
    from ferrymq.core.remoting.route import TopicConfig

    assert isr.min_insync_replicas(TopicConfig("t", 1, 1, 6)) == 1
    assert isr.min_insync_replicas(TopicConfig("t", 1, 1, 6, attributes={"min.insync.replicas": "2"})) == 2


# ---- the produce path, in-process --------------------------------------------------------------


def produce(records: bytes, acks: int, timeout_ms: int = 5000) -> Any:
    part = PartitionProduceData(index=0, records=records)
    return ProduceRequest(
        transactional_id=None,
        acks=acks,
        timeout=ms(timeout_ms),
        topic_data=(TopicProduceData(name=TOPIC, partition_data=(part,)),),
    )


async def error_of(task: asyncio.Future[Any]) -> ErrorCode:
    return ErrorCode((await task).responses[0].partition_responses[0].error_code)


def caught_up(broker: Broker, *slaves: str) -> None:
    """``slaves`` report the master's end: in sync, nothing left to acknowledge."""
    end = broker.store.commit_log.write_offset
    for addr in slaves:
        broker.ha.slave_acked(addr, end, end)


async def pending_produce(broker: Broker, w: Wire, n: int = 1) -> tuple[asyncio.Future[Any], int]:
    """An acks=-1 produce of ``n`` records sent and appended (its answer still to come), and the
    commit-log end it reached."""
    start = broker.store.commit_log.write_offset
    task = asyncio.ensure_future(w.call(produce(batch(n), acks=-1)))
    while broker.store.commit_log.write_offset <= start:
        await asyncio.sleep(0.002)
    return task, broker.store.commit_log.write_offset


async def min_insync(wire: Wire, n: int) -> None:
    r = (await wire.call(alter_topic(TOPIC, "min.insync.replicas", str(n)))).responses[0]
    assert r.error_code == ErrorCode.none, r.error_message


def test_acks_all_is_answered_after_every_in_sync_slave_acked(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        ha = broker.ha
        w = await Wire.open(f.port)
        caught_up(broker, "10.0.0.1:1", "10.0.0.2:1")
        task, end = await pending_produce(broker, w, 2)
        ha.slave_acked("10.0.0.1:1", end, end)
        await asyncio.sleep(0.2)  # one slave of two: no answer however long it waits
        assert not task.done()
        ha.slave_acked("10.0.0.2:1", end, end)
        assert await error_of(task) == ErrorCode.none

    run(tmp_path, body)


def test_acks_all_below_min_insync_is_refused_before_the_append(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await min_insync(w, 2)
        assert await produced(w, batch(1), acks=-1) == (ErrorCode.not_enough_replicas, -1)
        assert broker.store.max_offset(TOPIC, 0) == 0  # nothing stored
        assert (await produced(w, batch(1), acks=1))[0] == ErrorCode.none  # acks=1 never checks
        caught_up(broker, "10.0.0.1:1")  # a slave joins: two in sync
        task, end = await pending_produce(broker, w)
        broker.ha.slave_acked("10.0.0.1:1", end, end)
        assert await error_of(task) == ErrorCode.none

    run(tmp_path, body)


def test_the_set_shrinking_below_min_insync_during_the_wait(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await min_insync(w, 2)
        caught_up(broker, "10.0.0.1:1")
        task, _ = await pending_produce(broker, w)
        broker.ha.slave_gone("10.0.0.1:1")
        assert await error_of(task) == ErrorCode.not_enough_replicas_after_append
        assert broker.store.max_offset(TOPIC, 0) == 1  # stored on the master all the same

    run(tmp_path, body)


def test_acks_all_times_out_within_the_request_timeout(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        caught_up(broker, "10.0.0.1:1")
        loop = asyncio.get_running_loop()
        began = loop.time()
        r = await w.call(produce(batch(1), acks=-1, timeout_ms=300))
        assert ErrorCode(r.responses[0].partition_responses[0].error_code) == ErrorCode.request_timed_out
        assert loop.time() - began < 3  # bounded by timeout_ms, not slaveTimeout or longer
        assert (await produced(w, batch(1), acks=1))[0] == ErrorCode.none  # acks=1 never waits

    run(tmp_path, body)


def test_produce_is_refused_while_a_foreign_slave_is_connected(tmp_path: Path) -> None:
    """An HA slave that did not identify as ferrymq (an Apache RocketMQ slave) cannot dispatch a
    Kafka batch entry: produce gets POLICY_VIOLATION, whatever acks, and stores nothing."""

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        broker.ha.foreign.add("10.0.0.9:4242")  # as HaMaster marks an unidentified HA peer
        assert await produced(w, batch(1), acks=1) == (ErrorCode.policy_violation, -1)
        assert await produced(w, batch(1), acks=-1) == (ErrorCode.policy_violation, -1)
        assert broker.store.max_offset(TOPIC, 0) == 0
        broker.ha.foreign.clear()  # it identified itself (or left)
        assert (await produced(w, batch(1), acks=1))[0] == ErrorCode.none

    run(tmp_path, body)
