"""KIP-848 consumer groups, sans-IO: epochs, server-side assignment, incremental revocation,
fencing and timeouts, with time passed in."""

from __future__ import annotations

import dataclasses
import io
import struct
from collections.abc import Iterable

from kio.schema.consumer_protocol_subscription.v1.data import ConsumerProtocolSubscription
from kio.schema.consumer_protocol_subscription.v1.data import TopicPartition as SubPartition
from kio.schema.consumer_protocol_subscription.v3.data import ConsumerProtocolSubscription as SubV3
from kio.schema.errors import ErrorCode
from kio.schema.types import TopicName
from kio.serial import entity_writer
from kio.static.primitive import i32

from ferrymq.gateway.kafka.group import classic_members
from ferrymq.gateway.kafka.group.assignors import range_assign, uniform_assign
from ferrymq.gateway.kafka.group.consumer_group import (
    ConsumerGroupConfig,
    ConsumerGroupManager,
    HeartbeatRequest,
    HeartbeatResult,
    regex_error,
)
from ferrymq.gateway.kafka.group.consumer_protocol import assigned_partitions, encode_assignment
from ferrymq.gateway.kafka.group.state import GroupConfig, GroupManager, JoinRequest, JoinResult, SyncRequest

G = "g"


class Topics:
    def __init__(self, **counts: int) -> None:
        self.counts = counts
        self.racks: dict[str, list[frozenset[str]]] = {}

    def partition_count(self, topic: str) -> int:
        return self.counts.get(topic, 0)

    def topic_names(self) -> Iterable[str]:
        return list(self.counts)

    def partition_racks(self, topic: str) -> list[frozenset[str]]:
        return self.racks.get(topic) or [frozenset()] * self.counts.get(topic, 0)


def join(
    mgr: ConsumerGroupManager, topics: Topics, member: str, now: int = 0, **kw: object
) -> HeartbeatResult:
    args: dict[str, object] = {"rebalance_timeout_ms": 10_000, "subscribed_topic_names": ("t",), "owned": {}}
    args.update(kw)
    return mgr.heartbeat(HeartbeatRequest(G, member, 0, **args), topics, now)  # type: ignore[arg-type]


def beat(
    mgr: ConsumerGroupManager, topics: Topics, member: str, epoch: int, owned: dict | None, now: int = 0
) -> HeartbeatResult:
    return mgr.heartbeat(HeartbeatRequest(G, member, epoch, owned=owned), topics, now)


def parts(result: HeartbeatResult) -> set[int]:
    assert result.assignment is not None
    return set(result.assignment.get("t", ()))


def test_first_member_gets_every_partition_at_the_group_epoch() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=4)
    r = join(mgr, topics, "a")
    assert r.error == ErrorCode.none and r.member_epoch == mgr.get(G).epoch >= 1
    assert parts(r) == {0, 1, 2, 3}
    assert r.heartbeat_interval_ms == 5_000
    assert mgr.get(G).state == "Stable"


def test_partition_moves_only_after_the_old_owner_revokes_it() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=4)
    a = join(mgr, topics, "a")
    b = join(mgr, topics, "b")
    # b is in the group at the new epoch but may not take a's partitions yet
    assert b.error == ErrorCode.none and parts(b) == set()
    # a is asked to revoke two partitions: it keeps its epoch until it acknowledges
    a2 = beat(mgr, topics, "a", a.member_epoch, {"t": frozenset({0, 1, 2, 3})})
    assert a2.member_epoch == a.member_epoch and len(parts(a2)) == 2
    kept = parts(a2)
    # b heartbeats before a acknowledged: still nothing (no partition has two owners)
    assert beat(mgr, topics, "b", b.member_epoch, {}).assignment in (None, {})
    assert mgr.get(G).state == "Reconciling"
    # a acknowledges (owns only what it kept): it moves to the group epoch
    a3 = beat(mgr, topics, "a", a2.member_epoch, {"t": frozenset(kept)})
    assert a3.member_epoch == mgr.get(G).epoch
    # now b gets the released partitions
    b3 = beat(mgr, topics, "b", b.member_epoch, {})
    assert parts(b3) == {0, 1, 2, 3} - kept
    assert mgr.get(G).state == "Stable"


def test_wrong_epochs_are_fenced_and_unknown_members_told_so() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=2)
    a = join(mgr, topics, "a")
    assert beat(mgr, topics, "a", a.member_epoch + 1, None).error == ErrorCode.fenced_member_epoch
    assert beat(mgr, topics, "a", a.member_epoch - 1, None).error == ErrorCode.fenced_member_epoch
    assert beat(mgr, topics, "nobody", 1, None).error == ErrorCode.unknown_member_id
    other = ConsumerGroupManager()  # a coordinator that lost the group (restart): rejoin
    assert beat(other, topics, "a", 3, None).error == ErrorCode.unknown_member_id


def a_revokes_for_b() -> tuple[ConsumerGroupManager, Topics, HeartbeatResult, frozenset[int]]:
    """a owns both partitions, b joins, a revokes one and acknowledges: (.., a's join, a's kept)."""
    mgr, topics = ConsumerGroupManager(), Topics(t=2)
    a = join(mgr, topics, "a")
    join(mgr, topics, "b")
    kept = frozenset(parts(beat(mgr, topics, "a", a.member_epoch, {"t": frozenset({0, 1})})))
    acked = beat(mgr, topics, "a", a.member_epoch, {"t": kept})
    assert acked.member_epoch > a.member_epoch
    return mgr, topics, a, kept


def test_lost_response_previous_epoch_is_accepted() -> None:
    mgr, topics, a, kept = a_revokes_for_b()
    # the response was lost: the member heartbeats again with the epoch it had, owning a subset
    again = beat(mgr, topics, "a", a.member_epoch, {"t": kept})
    assert again.error == ErrorCode.none


def test_session_timeout_fences_and_survivor_takes_over() -> None:
    mgr, topics = ConsumerGroupManager(ConsumerGroupConfig(session_timeout_ms=1000)), Topics(t=2)
    a = join(mgr, topics, "a", now=0)
    b = join(mgr, topics, "b", now=0)
    a = beat(mgr, topics, "a", a.member_epoch, {"t": frozenset({0, 1})}, now=10)
    a = beat(mgr, topics, "a", a.member_epoch, {"t": frozenset(parts(a))}, now=20)
    b = beat(mgr, topics, "b", b.member_epoch, {}, now=30)
    owned_b = frozenset(parts(b))
    assert len(owned_b) == 1
    assert mgr.next_deadline() == 1020  # a's session (last heartbeat at 20)
    assert mgr.tick(1019) == []
    # b keeps heartbeating, a goes silent
    b = beat(mgr, topics, "b", b.member_epoch, {"t": owned_b}, now=900)
    assert mgr.tick(1020) == [(G, "a")]
    b = beat(mgr, topics, "b", b.member_epoch, {"t": owned_b}, now=1100)
    assert parts(b) == {0, 1}
    assert beat(mgr, topics, "a", a.member_epoch, None, now=1100).error == ErrorCode.unknown_member_id


def test_rebalance_timeout_fences_a_member_that_does_not_revoke() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=2)
    a = join(mgr, topics, "a", now=0, rebalance_timeout_ms=500)
    join(mgr, topics, "b", now=0)
    beat(mgr, topics, "a", a.member_epoch, {"t": frozenset({0, 1})}, now=100)  # told to revoke
    assert mgr.next_deadline() == 600
    assert mgr.tick(600) == [(G, "a")]


def test_leave_releases_partitions_to_the_others() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=2)
    a = join(mgr, topics, "a")
    b = join(mgr, topics, "b")
    r = beat(mgr, topics, "a", a.member_epoch, {"t": frozenset({0, 1})})
    left = beat(mgr, topics, "a", -1, None)
    assert left.error == ErrorCode.none and left.member_epoch == -1
    assert parts(beat(mgr, topics, "b", b.member_epoch, {})) == {0, 1}
    assert r.error == ErrorCode.none


def test_static_member_rejoins_with_its_assignment() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=2)
    a = join(mgr, topics, "a", instance_id="i1")
    epoch = mgr.get(G).epoch
    left = mgr.heartbeat(HeartbeatRequest(G, "a", -2, instance_id="i1"), topics, 10)
    assert left.member_epoch == -2 and mgr.get(G).epoch == epoch  # no rebalance
    # someone else cannot take the instance id while... it can: it is the static rejoin
    back = join(mgr, topics, "a2", instance_id="i1")
    assert back.error == ErrorCode.none and back.member_epoch == a.member_epoch
    assert parts(back) == {0, 1}
    assert join(mgr, topics, "a3", instance_id="i1").error == ErrorCode.unreleased_instance_id


def test_request_checks() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=1)
    bad = mgr.heartbeat(HeartbeatRequest(G, "a", 0, subscribed_topic_names=("t",)), topics, 0)
    assert bad.error == ErrorCode.invalid_request  # no rebalance timeout on join
    assert join(mgr, topics, "a", server_assignor="sticky").error == ErrorCode.unsupported_assignor
    assert (
        join(mgr, topics, "a", subscribed_topic_regex="(?=x)t").error == ErrorCode.invalid_regular_expression
    )
    assert join(mgr, topics, "a", subscribed_topic_regex="[").error == ErrorCode.invalid_regular_expression
    assert mgr.heartbeat(HeartbeatRequest("", "a", 1), topics, 0).error == ErrorCode.invalid_request
    assert beat(mgr, topics, "x", -1, None).error == ErrorCode.group_id_not_found
    assert regex_error("orders-.*") is None


def test_regex_subscription_and_new_topics_move_the_epoch() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(**{"orders-1": 1, "other": 1})
    r = join(mgr, topics, "a", subscribed_topic_names=None, subscribed_topic_regex="orders-.*")
    assert r.assignment == {"orders-1": frozenset({0})}
    epoch = r.member_epoch
    topics.counts["orders-2"] = 2
    r = beat(mgr, topics, "a", epoch, {"orders-1": frozenset({0})})
    assert r.member_epoch > epoch
    assert r.assignment == {"orders-1": frozenset({0}), "orders-2": frozenset({0, 1})}


def test_range_assignor_chosen_by_member() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=4)
    join(mgr, topics, "a", server_assignor="range")
    join(mgr, topics, "b", server_assignor="range")
    g = mgr.get(G)
    assert g.assignor == "range"
    assert g.target == {"a": {"t": frozenset({0, 1})}, "b": {"t": frozenset({2, 3})}}


def test_assignors() -> None:
    subs = {"a": frozenset({"x", "y"}), "b": frozenset({"x", "y"}), "c": frozenset({"y"})}
    ranged = range_assign(subs, {"x": 3, "y": 3})
    assert ranged["a"] == {"x": frozenset({0, 1}), "y": frozenset({0})}
    assert ranged["c"] == {"y": frozenset({2})}
    uni = uniform_assign(subs, {"x": 3, "y": 3}, {})
    sizes = sorted(sum(len(p) for p in a.values()) for a in uni.values())
    assert sizes == [2, 2, 2]
    every = {(t, p) for a in uni.values() for t, ps in a.items() for p in ps}
    assert len(every) == 6
    # sticky: a third member joins, the two keep most of what they had
    before = uniform_assign({"a": frozenset({"x"}), "b": frozenset({"x"})}, {"x": 6}, {})
    after = uniform_assign(
        {"a": frozenset({"x"}), "b": frozenset({"x"}), "c": frozenset({"x"})}, {"x": 6}, before
    )
    assert after["a"]["x"] <= before["a"]["x"] and after["b"]["x"] <= before["b"]["x"]
    assert len(after["c"]["x"]) == 2


def racks(*names: str) -> list[frozenset[str]]:
    return [frozenset({n}) for n in names]


def test_range_assignor_matches_racks_within_its_quotas() -> None:
    subs = {"m1": frozenset({"t"}), "m2": frozenset({"t"})}
    on = {"t": racks("a", "a", "b", "b")}
    assert range_assign(subs, {"t": 4})["m1"] == {"t": frozenset({0, 1})}
    ranged = range_assign(subs, {"t": 4}, {"m1": "b", "m2": "a"}, on)
    assert ranged == {"m1": {"t": frozenset({2, 3})}, "m2": {"t": frozenset({0, 1})}}
    # three on one rack, two members there: the quota (2 each) wins over racks
    ranged = range_assign(subs, {"t": 4}, {"m1": "a", "m2": "b"}, {"t": racks("a", "a", "a", "b")})
    assert ranged == {"m1": {"t": frozenset({0, 1})}, "m2": {"t": frozenset({2, 3})}}
    # every partition on the same rack (or no member rack among them): plain ranges
    same = range_assign(subs, {"t": 4}, {"m1": "b", "m2": "a"}, {"t": racks("a", "a", "a", "a")})
    assert same["m1"] == {"t": frozenset({0, 1})}
    assert range_assign(subs, {"t": 4}, {"m1": "z", "m2": "y"}, on)["m1"] == {"t": frozenset({0, 1})}


def test_uniform_assignor_matches_racks_and_stays_balanced() -> None:
    subs = {"x": frozenset({"t"}), "y": frozenset({"t"})}
    on = {"t": racks("a", "b", "a", "b")}
    fresh = uniform_assign(subs, {"t": 4}, {}, {"x": "a", "y": "b"}, on)
    assert fresh == {"x": {"t": frozenset({0, 2})}, "y": {"t": frozenset({1, 3})}}
    # owned partitions off the member's rack move to the member on their rack
    crossed = {"x": {"t": frozenset({1, 3})}, "y": {"t": frozenset({0, 2})}}
    assert uniform_assign(subs, {"t": 4}, crossed, {"x": "a", "y": "b"}, on) == fresh
    # without member racks it stays sticky
    assert uniform_assign(subs, {"t": 4}, crossed) == crossed
    # balance wins: three partitions on rack a, one member there
    lopsided = uniform_assign(subs, {"t": 4}, {}, {"x": "a", "y": "b"}, {"t": racks("a", "a", "a", "b")})
    assert sorted(len(a["t"]) for a in lopsided.values()) == [2, 2]
    assert 3 in lopsided["y"]["t"] and lopsided["x"]["t"] <= {0, 1, 2}


def test_member_racks_reach_the_server_side_assignor() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=4)
    topics.racks["t"] = racks("a", "b", "a", "b")
    join(mgr, topics, "x", rack_id="b")
    join(mgr, topics, "y", rack_id="a")
    g = mgr.get(G)
    assert g is not None and g.target == {"x": {"t": frozenset({1, 3})}, "y": {"t": frozenset({0, 2})}}
    epoch = g.epoch
    topics.racks["t"] = racks("b", "a", "b", "a")  # partitions' racks changed: a new target
    beat(mgr, topics, "x", g.members["x"].epoch, None)
    assert g.epoch > epoch and g.target["x"] == {"t": frozenset({0, 2})}


def test_offset_commit_checks_member_epoch() -> None:
    mgr, topics = ConsumerGroupManager(), Topics(t=1)
    a = join(mgr, topics, "a")
    g = mgr.get(G)
    assert g.validate_offset_commit("a", a.member_epoch, 9) is None
    assert g.validate_offset_commit("a", a.member_epoch - 1, 9) == ErrorCode.stale_member_epoch
    assert g.validate_offset_commit("zz", a.member_epoch, 9) == ErrorCode.unknown_member_id
    assert g.validate_offset_commit("a", a.member_epoch, 8) == ErrorCode.unsupported_version
    assert g.validate_offset_commit("", -1, 9) == ErrorCode.unknown_member_id  # not while members are in
    beat(mgr, topics, "a", -1, None)
    assert g.validate_offset_commit("", -1, 9) is None


def test_commit_with_the_epoch_before_a_revocation_ack_is_accepted_for_held_partitions() -> None:
    mgr, _, a, kept = a_revokes_for_b()
    g = mgr.get(G)
    (held,) = kept
    # a commit sent before the ack's response arrived carries the old epoch
    assert g.validate_offset_commit("a", a.member_epoch, 9, [("t", held)]) is None
    assert g.validate_offset_commit("a", a.member_epoch, 9, [("t", 1 - held)]) == ErrorCode.stale_member_epoch
    assert g.validate_offset_commit("a", a.member_epoch - 1, 9, [("t", held)]) == ErrorCode.stale_member_epoch


def _classic_join(member_id: str, owned: dict[str, list[int]]) -> JoinRequest:
    sub = ConsumerProtocolSubscription(
        topics=(TopicName("t"),),
        user_data=None,
        owned_partitions=tuple(
            SubPartition(topic=TopicName(t), partitions=tuple(i32(p) for p in ps)) for t, ps in owned.items()
        ),
    )
    buf = io.BytesIO()
    buf.write(struct.pack(">h", 1))
    entity_writer(ConsumerProtocolSubscription)(buf, sub)
    return JoinRequest(member_id, None, "cli", "/h", 10_000, 10_000, "consumer", (("range", buf.getvalue()),))


def test_classic_members_of_a_consumer_group_rejoin_to_revoke() -> None:
    """A classic group upgraded by a consumer-protocol member: the classic member keeps its
    partitions until told to rejoin, gives them up by rejoining, and gets its share in SyncGroup."""
    classic = GroupManager(GroupConfig(initial_rebalance_delay_ms=0))
    first = dataclasses.replace(_classic_join("", {}), require_known_member_id=False)
    classic.join(G, first, 1, 0)
    classic.tick(0)
    joined_classic = dict(classic.drain())[1]
    assert isinstance(joined_classic, JoinResult) and joined_classic.error == ErrorCode.none
    k, generation = joined_classic.member_id, joined_classic.generation_id
    both = {k: encode_assignment({"t": frozenset({0, 1})})}
    classic.sync(G, SyncRequest(k, None, generation, "consumer", "range", both), 2, 0)
    old = classic.get(G)
    assert old is not None and classic_members.convertible(old)
    topics = Topics(t=2)
    mgr = ConsumerGroupManager()
    group = mgr.groups[G] = classic_members.convert(old, mgr.config, 0)
    assert group.members[k].assigned == {"t": frozenset({0, 1})} and group.epoch == generation
    n = join(mgr, topics, "n")  # a consumer-protocol member: nothing until k gives a partition up
    assert parts(n) == set()
    assert classic_members.heartbeat(group, k, generation, topics, 10) == ErrorCode.rebalance_in_progress
    assert classic_members.heartbeat(group, k, generation + 9, topics, 10) == ErrorCode.illegal_generation
    rejoined = classic_members.join(group, _classic_join(k, {}), topics, 20)  # eager: owns nothing now
    assert rejoined.error == ErrorCode.none and rejoined.generation_id == group.assignment_epoch
    epoch = rejoined.generation_id
    synced = classic_members.sync(group, SyncRequest(k, None, epoch, "consumer", "range", {}), 20)
    kept = assigned_partitions(synced.assignment)
    assert kept is not None and len(kept["t"]) == 1
    assert classic_members.heartbeat(group, k, epoch, topics, 30) == ErrorCode.none
    assert parts(beat(mgr, topics, "n", n.member_epoch, {})) == {0, 1} - set(kept["t"])
    assert group.validate_offset_commit(k, epoch, 2) is None
    assert group.validate_offset_commit(k, epoch - 1, 2) == ErrorCode.illegal_generation
    assert classic_members.leave(group, k, 40) == ErrorCode.none


def test_a_classic_members_subscription_rack_reaches_the_assignor() -> None:
    sub = SubV3(topics=(TopicName("t"),), user_data=None, owned_partitions=(), rack_id="b")
    buf = io.BytesIO()
    buf.write(struct.pack(">h", 3))
    entity_writer(SubV3)(buf, sub)
    req = dataclasses.replace(_classic_join("k", {}), protocols=(("range", buf.getvalue()),))
    mgr, topics = ConsumerGroupManager(), Topics(t=4)
    topics.racks["t"] = racks("a", "b", "a", "b")
    join(mgr, topics, "x", rack_id="a")
    group = mgr.get(G)
    assert group is not None
    assert classic_members.join(group, req, topics, 0).error == ErrorCode.none
    assert group.members["k"].rack_id == "b"
    assert group.target["k"] == {"t": frozenset({1, 3})}
