"""The group high watermark (RocketMQ's confirmOffset with allAckInSyncStateSet), in-process:
how ReplicationState computes it, and how the store gates reads, wakes readers and keeps it
across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.long_polling import PullRequestHoldService
from ferrymq.core.config import BrokerConfig
from ferrymq.core.ha.state import ReplicationState
from ferrymq.core.store import GetStatus, MessageStore
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.inprocess import run_kafka_broker
from tests.test_kafka_frontend import TOPIC, Wire, fetch, list_offsets, records_of


def controller_config(tmp_path: Path, **extra: object) -> BrokerConfig:
    c = BrokerConfig(
        enable_controller_mode=True,
        controller_addr="127.0.0.1:1",
        broker_id=1,
        store_path_root_dir=tmp_path / "store",
        **extra,
    )
    c.switch_role(True)
    return c


def master_store(tmp_path: Path) -> MessageStore:
    store = MessageStore(controller_config(tmp_path))
    store.replica_only = False
    return store


# ---- ReplicationState ---------------------------------------------------------------------------


def test_confirm_is_the_least_ack_of_the_connected_in_sync_slaves(tmp_path: Path) -> None:
    st = ReplicationState(controller_config(tmp_path))
    seen: list[int | None] = []
    st.confirm_listeners.append(seen.append)
    st.peer_ids.update({"s2:1": 2, "s3:1": 3})
    st.slave_acked("s2:1", 100, 300)
    st.slave_acked("s3:1", 250, 300)
    assert st.confirm_offset is None  # alone in the in-sync set: not gated
    st.set_sync_state({2, 3}, 300)
    assert st.confirm_offset == 100
    st.slave_acked("s2:1", 280, 300)
    assert st.confirm_offset == 250
    st.slave_gone("s3:1")  # still in the set but not connected: the watermark holds (RocketMQ #6662)
    st.slave_acked("s2:1", 300, 300)
    assert st.confirm_offset == 250
    st.set_sync_state({2}, 300)  # the controller dropped it
    assert st.confirm_offset == 300
    st.set_sync_state(set(), 400)  # alone again: everything readable
    assert st.confirm_offset is None
    assert seen == [100, 250, 300, None]


def test_a_slave_joins_the_set_only_holding_the_watermark(tmp_path: Path) -> None:
    st = ReplicationState(controller_config(tmp_path))
    st.peer_ids.update({"s2:1": 2, "s3:1": 3})
    st.slave_acked("s2:1", 450, 500)
    assert not st.may_join(st.slaves["s2:1"], 500)  # alone, the master's whole log is readable
    st.slave_acked("s2:1", 500, 500)
    assert st.may_join(st.slaves["s2:1"], 500)
    st.set_sync_state({2}, 500)
    st.slave_acked("s3:1", 400, 600)
    assert not st.may_join(st.slaves["s3:1"], 600)
    st.slave_acked("s3:1", 500, 600)
    assert st.may_join(st.slaves["s3:1"], 600)  # holds the watermark (500)


def test_classic_mode_is_not_gated_unless_asked(tmp_path: Path) -> None:
    classic = BrokerConfig(store_path_root_dir=tmp_path / "a", broker_role="SYNC_MASTER")
    st = ReplicationState(classic)
    st.slave_acked("s:1", 10, 100)
    assert st.confirm_offset is None
    gated = BrokerConfig(store_path_root_dir=tmp_path / "b", all_ack_in_sync_state_set=True)
    st = ReplicationState(gated)
    st.slave_acked("s:1", 10, 100)
    assert st.confirm_offset == 10


def test_a_slave_follows_the_masters_watermark(tmp_path: Path) -> None:
    c = controller_config(tmp_path)
    c.switch_role(False)
    st = ReplicationState(c)
    st.slave_acked("x:1", 10, 100)  # never on a slave, but harmless
    assert st.confirm_offset is None
    st.master_confirmed(70)
    st.master_confirmed(50)  # an older answer never moves it back
    assert st.confirm_offset == 70


# ---- the store's gate ---------------------------------------------------------------------------


def test_reads_stop_at_the_watermark(tmp_path: Path) -> None:
    store = master_store(tmp_path)
    try:
        r = [store.put_message("T", 0, f"m{i}".encode(), "") for i in range(5)]
        store.set_read_limit(r[1].end_offset)
        got = store.get_messages("T", 0, 0, 32)
        assert (got.message_count, got.next_begin_offset, got.max_offset) == (2, 2, 2)
        assert store.get_messages("T", 0, 2, 32).status is GetStatus.OFFSET_OVERFLOW_ONE
        assert store.get_messages("T", 0, 4, 32).status is GetStatus.OFFSET_OVERFLOW_ONE
        assert store.readable_bounds("T", 0) == (0, 2)
        assert [e.queue_offset for e in store.entries("T", 0, 0, 2)] == [0, 1]
        store.set_read_limit(r[3].end_offset - 1)  # inside an entry: not readable yet
        assert store.readable_bounds("T", 0) == (0, 3)
        store.set_read_limit(None)
        assert store.readable_bounds("T", 0) == (0, 5)
        assert store.get_messages("T", 0, 2, 32).message_count == 3
    finally:
        store.close()


def test_readable_end_of_a_long_unconfirmed_tail(tmp_path: Path) -> None:
    store = master_store(tmp_path)
    try:
        ends = [store.put_message("T", 0, b"x", "").end_offset for _ in range(300)]
        for k in (0, 1, 2, 3, 7, 64, 150, 299, 300):
            store.set_read_limit(ends[k - 1] if k else 0)
            assert store.readable_bounds("T", 0)[1] == k
    finally:
        store.close()


def test_batch_entries_are_readable_whole_or_not_at_all(tmp_path: Path) -> None:
    store = master_store(tmp_path)
    try:
        a = store.put_message("T", 0, b"a", "")
        store.put_batch_entry("T", 0, 3, 1, b"\x00" * 40)
        store.set_read_limit(a.end_offset)
        assert store.readable_bounds("T", 0) == (0, 1)
        store.set_read_limit(store.commit_log_max_offset)
        assert store.readable_bounds("T", 0) == (0, 4)
    finally:
        store.close()


def test_long_polls_wake_when_the_watermark_passes_not_at_the_put(tmp_path: Path) -> None:
    async def main() -> None:
        store = master_store(tmp_path)
        hold = PullRequestHoldService()
        store.visible_listeners.append(hold.notify)
        try:
            store.set_read_limit(0)
            parked = asyncio.create_task(hold.hold("T", 0, None, 30))
            await asyncio.sleep(0)
            first = store.put_message("T", 0, b"a", "")
            second = store.put_message("T", 0, b"b", "")
            await asyncio.sleep(0)
            assert not parked.done(), "woken by a put nobody may read yet"
            store.set_read_limit(first.end_offset)
            assert await parked
            parked = asyncio.create_task(hold.hold("T", 0, None, 30))
            await asyncio.sleep(0)
            store.set_read_limit(second.end_offset)
            assert await parked  # the rest of the held-back wake-ups
        finally:
            store.close()

    asyncio.run(main())


def test_a_restart_shows_no_more_than_was_confirmed(tmp_path: Path) -> None:
    store = master_store(tmp_path)
    r = [store.put_message("T", 0, f"m{i}".encode(), "") for i in range(4)]
    store.set_read_limit(r[1].end_offset)
    store.close()
    again = MessageStore(controller_config(tmp_path))
    try:
        assert again.read_limit == r[1].end_offset
        assert again.readable_bounds("T", 0) == (0, 2)
        assert again.max_offset("T", 0) == 4  # stored, never renumbered (pitfall 7)
    finally:
        again.close()


def test_a_crash_keeps_the_last_checkpointed_watermark(tmp_path: Path) -> None:
    async def main() -> None:
        store = master_store(tmp_path)
        store.start_services()
        r = [store.put_message("T", 0, f"m{i}".encode(), "") for i in range(3)]
        store.set_read_limit(r[0].end_offset)
        await store.flush()  # the checkpoint records it
        store.put_message("T", 0, b"later", "")
        store.set_read_limit(None)  # alone: all readable, never checkpointed before the "crash"
        store.commit_log.flush()

    asyncio.run(main())
    again = MessageStore(controller_config(tmp_path))  # no close(): the abort file is there
    try:
        assert again.recovered_crash
        assert again.readable_bounds("T", 0) == (0, 1)
    finally:
        again.close()


# ---- Kafka: Fetch and ListOffsets answer the watermark -------------------------------------------


def test_kafka_fetch_serves_and_reports_only_the_confirmed_part(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        broker.ha.reset_confirm(0)  # an in-sync slave that acknowledged nothing yet
        ends = [broker.store.put_message(TOPIC, 0, f"m{i}".encode(), "").end_offset for i in range(3)]
        broker.ha.reset_confirm(ends[0])  # what its ack does (core/ha/state.py)
        wire = await Wire.open(frontend.port)
        try:
            part = (await wire.call(fetch(0))).responses[0].partitions[0]
            assert part.high_watermark == 1
            assert [r.value for r in records_of(part.records)] == [b"m0"]
            latest = (await wire.call(list_offsets(-1))).topics[0].partitions[0]
            assert latest.offset == 1
            corr = wire.send(fetch(1, wait_ms=20_000))  # parks: nothing confirmed past 1
            await asyncio.sleep(0.2)
            broker.ha.reset_confirm(ends[2])
            got, resp = await asyncio.wait_for(wire.receive(type(fetch(1))), 10)
            assert got == corr
            part = resp.responses[0].partitions[0]
            assert part.high_watermark == 3
            assert [r.value for r in records_of(part.records)] == [b"m1", b"m2"]
        finally:
            wire.close()

    run_kafka_broker(tmp_path, body, TOPIC, 1, timeout=30, all_ack_in_sync_state_set=True)
