"""SYNC_MASTER in controller mode with allAckInSyncStateSet (RocketMQ 5's CommitLog.asyncPutMessage
and GroupTransferService), in-process over ReplicationState: a send is answered once EVERY slave of
the in-sync set acknowledged it (the union while a change is reported), the master alone in its set
answers at once, the set's size is what minInSyncReplicas and Kafka's min.insync.replicas count."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferrymq.core.config import BrokerConfig
from ferrymq.core.ha.state import ReplicationState, SlaveWait
from ferrymq.gateway.kafka import isr


def master_state(tmp_path: Path, **extra: object) -> ReplicationState:
    c = BrokerConfig(
        enable_controller_mode=True,
        controller_addr="127.0.0.1:1",
        broker_id=1,
        broker_role="SYNC_MASTER",
        store_path_root_dir=tmp_path / "store",
        **extra,
    )
    c.switch_role(True)
    st = ReplicationState(c)
    st.peer_ids.update({"s2:1": 2, "s3:1": 3})
    return st


def members(st: ReplicationState, ids: set[int]) -> None:
    """Both slaves connected at offset 0; ``ids`` the in-sync set's slaves."""
    st.slave_acked("s2:1", 0, 0)
    st.slave_acked("s3:1", 0, 0)
    st.set_sync_state(ids, 0)


def test_the_master_alone_in_its_set_answers_at_once(tmp_path: Path) -> None:
    st = master_state(tmp_path)
    assert asyncio.run(st.wait_for_slaves(100, 50)) is SlaveWait.OK
    assert st.in_sync_count() == 0


def test_a_send_waits_for_every_member_of_the_set(tmp_path: Path) -> None:
    async def go() -> None:
        st = master_state(tmp_path)
        members(st, {2, 3})
        assert st.in_sync_count() == 2
        waiting = asyncio.create_task(st.wait_for_slaves(100, 5000))
        await asyncio.sleep(0)
        st.slave_acked("s2:1", 100, 100)  # one slave only: RocketMQ 4's rule, not enough here
        await asyncio.sleep(0)
        assert not waiting.done()
        st.slave_acked("s3:1", 100, 100)
        assert await waiting is SlaveWait.OK

    asyncio.run(go())


def test_a_silent_member_holds_sends_until_the_set_shrinks(tmp_path: Path) -> None:
    async def go() -> None:
        st = master_state(tmp_path)
        members(st, {2, 3})
        assert await st.wait_for_slaves(50, 50) is SlaveWait.FLUSH_SLAVE_TIMEOUT  # nobody acked
        waiting = asyncio.create_task(st.wait_for_slaves(100, 5000))
        st.slave_acked("s2:1", 100, 100)
        st.slave_gone("s3:1")  # disconnected but still a member: no answer yet
        await asyncio.sleep(0)
        assert not waiting.done()
        st.set_sync_state({2}, 100)  # the controller's answer drops it
        assert await waiting is SlaveWait.OK
        st.set_sync_state(set(), 100)
        assert await st.wait_for_slaves(200, 50) is SlaveWait.OK  # alone again

    asyncio.run(go())


def test_a_member_being_reported_counts_too(tmp_path: Path) -> None:
    """While an ALTER_SYNC_STATE_SET is in flight the set is the union (RocketMQ #5663)."""

    async def go() -> None:
        st = master_state(tmp_path)
        members(st, {2} | {3})  # the controller's {2} united with the reported {2, 3}
        waiting = asyncio.create_task(st.wait_for_slaves(100, 5000))
        st.slave_acked("s2:1", 100, 100)
        await asyncio.sleep(0)
        assert not waiting.done()
        st.slave_acked("s3:1", 100, 100)
        assert await waiting is SlaveWait.OK

    asyncio.run(go())


def test_kafka_acks_all_waits_for_the_same_set(tmp_path: Path) -> None:
    async def go() -> None:
        st = master_state(tmp_path)
        members(st, {2})  # s3 connected and in sync by lag, but not in the controller's set
        assert isr.before_append(2, st.in_sync_count()) == isr.ErrorCode.none
        assert isr.before_append(3, st.in_sync_count()) == isr.ErrorCode.not_enough_replicas
        st.slave_acked("s2:1", 100, 100)
        assert await isr.wait_replicated(st, 100, 1.0)  # s3 is no member: not waited for

    asyncio.run(go())
