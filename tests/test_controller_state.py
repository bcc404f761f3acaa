"""The controller's state machine: elections only from alive in-sync replicas, epochs that only
grow, and in-sync set changes fenced by epochs (sans-IO: time and liveness passed in)."""

from __future__ import annotations

from ferrymq.namesrv.controller.liveness import BrokerLiveness
from ferrymq.namesrv.controller.state import Candidate, ControllerCode, ControllerState


def group_of_three() -> ControllerState:
    st = ControllerState()
    for bid in (1, 2, 3):
        assert st.register("C", "b", bid, f"10.0.0.{bid}:10911").ok
    return st


def alive(*cands: Candidate) -> dict[int, Candidate]:
    return {c.broker_id: c for c in cands}


def test_first_election_of_a_new_group_picks_the_most_advanced_replica() -> None:
    st = group_of_three()
    r = st.elect("b", alive(Candidate(1, 0, 100), Candidate(2, 0, 300), Candidate(3, 0, 200)))
    assert r.ok and r.group is not None
    assert (r.group.master_id, r.group.master_epoch, r.group.sync_state_set) == (2, 1, {2})
    assert r.notify == [1, 3]


def test_a_live_master_stays_and_a_dead_one_is_replaced_only_from_the_in_sync_set() -> None:
    st = group_of_three()
    st.elect("b", alive(Candidate(1, 0, 0)))
    assert st.alter_sync_state_set("b", 1, 1, {1, 2}, 1, alive={1, 2}).ok
    assert (
        st.elect("b", alive(Candidate(1, 1, 50), Candidate(2, 1, 50))).code
        == ControllerCode.MASTER_STILL_EXIST
    )
    # master 1 dies; 3 is further ahead but was never in sync: 2 wins
    r = st.elect("b", alive(Candidate(2, 1, 50), Candidate(3, 1, 900)))
    assert r.ok and r.group is not None and r.group.master_id == 2 and r.group.master_epoch == 2
    assert r.group.sync_state_set == {2}


def test_no_alive_in_sync_replica_means_no_master_unless_unclean() -> None:
    st = group_of_three()
    st.elect("b", alive(Candidate(1, 0, 0)))
    r = st.elect("b", alive(Candidate(3, 0, 10)))
    assert r.code == ControllerCode.MASTER_NOT_AVAILABLE and r.group is not None
    assert (r.group.master_id, r.group.master_epoch) == (1, 1)  # no churn: 1 is still the one in sync
    r = st.elect("b", alive(Candidate(3, 0, 10)), allow_unclean=True)
    assert r.ok and r.group is not None and r.group.master_id == 3 and r.group.master_epoch == 2


def test_election_order_epoch_then_offset_then_priority_then_id() -> None:
    st = group_of_three()
    st.elect("b", alive(Candidate(1, 0, 0)))
    st.alter_sync_state_set("b", 1, 1, {1, 2, 3}, 1, alive={1, 2, 3})
    r = st.elect("b", alive(Candidate(2, 1, 500, priority=5), Candidate(3, 1, 500, priority=1)))
    assert r.group is not None and r.group.master_id == 3
    st2 = group_of_three()
    st2.elect("b", alive(Candidate(1, 0, 0)))
    st2.alter_sync_state_set("b", 1, 1, {1, 2, 3}, 1, alive={1, 2, 3})
    r = st2.elect("b", alive(Candidate(2, 2, 10), Candidate(3, 1, 999)))
    assert r.group is not None and r.group.master_id == 2


def test_alter_sync_state_set_is_fenced() -> None:
    st = group_of_three()
    st.elect("b", alive(Candidate(1, 0, 0)))
    assert st.alter_sync_state_set("b", 2, 1, {1, 2}, 1, {1, 2}).code == ControllerCode.INVALID_MASTER
    assert st.alter_sync_state_set("b", 1, 0, {1, 2}, 1, {1, 2}).code == ControllerCode.FENCED_MASTER_EPOCH
    assert (
        st.alter_sync_state_set("b", 1, 1, {1, 2}, 0, {1, 2}).code
        == ControllerCode.FENCED_SYNC_STATE_SET_EPOCH
    )
    assert st.alter_sync_state_set("b", 1, 1, {2}, 1, {1, 2}).code == ControllerCode.INVALID_REPLICAS
    assert st.alter_sync_state_set("b", 1, 1, {1, 9}, 1, {1, 9}).code == ControllerCode.INVALID_REPLICAS
    assert st.alter_sync_state_set("b", 1, 1, {1, 2}, 1, {1}).code == ControllerCode.BROKER_NOT_ALIVE
    r = st.alter_sync_state_set("b", 1, 1, {1, 2}, 1, {1, 2})
    assert r.ok and r.group is not None and r.group.sync_state_set_epoch == 2


def test_snapshot_round_trip_keeps_every_decision() -> None:
    st = group_of_three()
    st.elect("b", alive(Candidate(1, 0, 0)))
    st.alter_sync_state_set("b", 1, 1, {1, 3}, 1, {1, 3})
    again = ControllerState.restore(st.snapshot())  # type: ignore[arg-type]
    assert again.snapshot() == st.snapshot()


def test_liveness_uses_the_heartbeat_timeout() -> None:
    live = BrokerLiveness()
    live.heartbeat("b", 1, "a:1", epoch=1, max_offset=10, now=100.0, timeout=10.0)
    live.heartbeat("b", 2, "a:2", epoch=1, max_offset=20, now=105.0, timeout=10.0)
    assert set(live.alive("b", 110.0)) == {1, 2}
    assert set(live.alive("b", 110.5)) == {2}
    assert live.expire(120.0) == [("b", 1), ("b", 2)]
    assert live.alive("b", 120.0) == {}
