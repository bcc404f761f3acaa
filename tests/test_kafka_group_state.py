"""The classic Kafka group state machine, driven by hand with an explicit clock: joins and member
ids, the initial delay, rebalances as members come and go, timeouts, static members, errors."""

from __future__ import annotations

import itertools

import pytest
from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.group.state import (
    GroupConfig,
    GroupManager,
    GroupState,
    JoinRequest,
    JoinResult,
    SyncRequest,
    SyncResult,
)

SESSION = 10_000
REBALANCE = 30_000
DELAY = 3_000


class Harness:
    """A GroupManager plus a clock and a token counter; ``join``/``sync`` return the token."""

    def __init__(self, **config: int) -> None:
        ids = (f"id{n}" for n in itertools.count(1))
        self.gm = GroupManager(GroupConfig(**config), new_id=lambda: next(ids))
        self.now = 0
        self.tokens = itertools.count(1)
        self.results: dict[int, JoinResult | SyncResult] = {}

    def _collect(self) -> None:
        # as the coordinator does after every request: run timers already due (a 0 ms delay)
        self.gm.tick(self.now)
        self.results.update(self.gm.drain())

    def join(
        self,
        member_id: str = "",
        client: str = "c",
        instance: str | None = None,
        protocols: tuple[tuple[str, bytes], ...] = (("range", b"m"),),
        protocol_type: str = "consumer",
        session: int = SESSION,
        rebalance: int = REBALANCE,
        require_known: bool = True,
        group: str = "g",
    ) -> int:
        token = next(self.tokens)
        req = JoinRequest(
            member_id,
            instance,
            client,
            "/127.0.0.1",
            session,
            rebalance,
            protocol_type,
            protocols,
            require_known,
        )
        self.gm.join(group, req, token, self.now)
        self._collect()
        return token

    def sync(self, member_id: str, generation: int, assignments: dict[str, bytes] | None = None, **kw) -> int:
        token = next(self.tokens)
        req = SyncRequest(member_id, kw.get("instance"), generation, None, None, assignments or {})
        self.gm.sync("g", req, token, self.now)
        self._collect()
        return token

    def advance(self, ms: int) -> None:
        """Let ``ms`` pass, firing each timer at its own deadline as the coordinator's loop does."""
        end = self.now + ms
        while (d := self.gm.next_deadline()) is not None and d <= end:
            self.now = max(self.now, d)
            self._collect()
        self.now = end
        self._collect()

    def join_result(self, token: int) -> JoinResult:
        r = self.results[token]
        assert isinstance(r, JoinResult)
        return r

    def sync_result(self, token: int) -> SyncResult:
        r = self.results[token]
        assert isinstance(r, SyncResult)
        return r

    def new_member(self, client: str, **kw) -> str:
        """A dynamic member's first JoinGroup (v4+): MEMBER_ID_REQUIRED with its id."""
        r = self.join_result(self.join(client=client, **kw))
        assert r.error == ErrorCode.member_id_required
        assert r.member_id.startswith(client + "-")
        return r.member_id

    @property
    def group(self):
        g = self.gm.get("g")
        assert g is not None
        return g

    def stable_pair(self) -> tuple[str, str]:
        """Two members a (leader) and b in a Stable generation 1, a owning b"A", b owning b"B"."""
        a, b = self.new_member("a"), self.new_member("b")
        ta, tb = self.join(a), self.join(b)
        self.advance(2 * DELAY)  # b joined during the initial delay, which extends it once
        assert self.join_result(ta).generation_id == self.join_result(tb).generation_id == 1
        sb = self.sync(b, 1)
        sa = self.sync(a, 1, {a: b"A", b: b"B"})
        assert self.sync_result(sa).assignment == b"A" and self.sync_result(sb).assignment == b"B"
        assert self.group.state == GroupState.STABLE
        return a, b


def test_first_generation_member_ids_initial_delay_leader_and_assignment() -> None:
    h = Harness()
    a = h.new_member("a")
    ta = h.join(a)
    assert h.group.state == GroupState.PREPARING_REBALANCE
    assert ta not in h.results, "the initial rebalance waits group.initial.rebalance.delay.ms"
    b = h.new_member("b")
    tb = h.join(b)
    h.advance(DELAY - 1)
    assert ta not in h.results
    # b arrived during the delay: one more delay, then the generation forms
    h.advance(1)
    assert ta not in h.results
    h.advance(DELAY)
    ra, rb = h.join_result(ta), h.join_result(tb)
    assert ra.error == rb.error == ErrorCode.none
    assert ra.generation_id == rb.generation_id == 1
    assert ra.leader == rb.leader == a
    assert ra.protocol_name == "range" and ra.protocol_type == "consumer"
    assert [m.member_id for m in ra.members] == [a, b], "the leader gets every member's metadata"
    assert rb.members == (), "followers get no member list"
    assert h.group.state == GroupState.COMPLETING_REBALANCE

    # the follower's SyncGroup waits for the leader's assignment
    sb = h.sync(b, 1)
    assert sb not in h.results
    sa = h.sync(a, 1, {a: b"for-a", b: b"for-b"})
    assert h.sync_result(sa) == SyncResult(ErrorCode.none, "consumer", "range", b"for-a")
    assert h.sync_result(sb).assignment == b"for-b"
    assert h.group.state == GroupState.STABLE
    assert h.gm.heartbeat("g", b, None, 1, h.now) == ErrorCode.none


def test_join_without_member_id_on_old_versions_and_protocol_vote() -> None:
    h = Harness(initial_rebalance_delay_ms=0)
    t1 = h.join(client="x", require_known=False, protocols=(("range", b""), ("roundrobin", b"")))
    t2 = h.join(client="y", require_known=False, protocols=(("roundrobin", b""), ("range", b"")))
    t3 = h.join(client="z", require_known=False, protocols=(("roundrobin", b""),))
    r1 = h.join_result(t1)  # delay 0: the first member formed generation 1 alone
    assert r1.generation_id == 1 and r1.member_id.startswith("x-")
    # y and z joined the CompletingRebalance group: the rebalance waits for x to rejoin
    assert t2 not in h.results and t3 not in h.results
    t1b = h.join(r1.member_id, protocols=(("range", b""), ("roundrobin", b"")))
    r = [h.join_result(t) for t in (t1b, t2, t3)]
    assert {x.generation_id for x in r} == {2}
    assert r[0].protocol_name == "roundrobin", "only roundrobin is supported by all; it wins"


def test_member_joining_stable_group_rebalances_and_heartbeat_says_so() -> None:
    h = Harness()
    a, b = h.stable_pair()
    c = h.new_member("c")
    tc = h.join(c)
    assert h.group.state == GroupState.PREPARING_REBALANCE
    assert h.gm.heartbeat("g", a, None, 1, h.now) == ErrorCode.rebalance_in_progress
    ta = h.join(a)
    assert tc not in h.results
    tb = h.join(b)
    # everyone rejoined: no waiting for the rebalance timeout
    results = [h.join_result(t) for t in (ta, tb, tc)]
    assert {r.generation_id for r in results} == {2}
    assert results[0].leader == a and len(results[0].members) == 3
    # a sync or heartbeat of the old generation is refused
    assert h.sync_result(h.sync(b, 1)).error == ErrorCode.illegal_generation
    assert h.gm.heartbeat("g", b, None, 1, h.now) == ErrorCode.illegal_generation


def test_member_not_rejoining_is_dropped_at_rebalance_timeout() -> None:
    h = Harness()
    a, b = h.stable_pair()
    c = h.new_member("c")
    tc = h.join(c)
    ta = h.join(a)
    # b keeps heartbeating but never rejoins
    for _ in range(3):
        h.advance(SESSION // 2)
        assert h.gm.heartbeat("g", b, None, 1, h.now) == ErrorCode.rebalance_in_progress
    h.advance(REBALANCE - 3 * (SESSION // 2))
    ra, rc = h.join_result(ta), h.join_result(tc)
    assert ra.generation_id == rc.generation_id == 2
    assert {m.member_id for m in ra.members} == {a, c}
    assert h.gm.heartbeat("g", b, None, 2, h.now) == ErrorCode.unknown_member_id


def test_session_expiry_removes_silent_member_and_last_one_leaves_group_empty() -> None:
    h = Harness()
    a, b = h.stable_pair()
    h.advance(SESSION - 1)
    assert h.gm.heartbeat("g", a, None, 1, h.now) == ErrorCode.none
    h.advance(1)  # b's session is over
    assert h.group.state == GroupState.PREPARING_REBALANCE
    assert b not in h.group.members
    ta = h.join(a)
    r = h.join_result(ta)
    assert r.generation_id == 2 and [m.member_id for m in r.members] == [a]
    h.sync(a, 2, {a: b"all"})
    errors = h.gm.leave("g", [(a, None)], h.now)
    assert errors == (ErrorCode.none, [ErrorCode.none])
    assert h.group.state == GroupState.EMPTY and h.group.generation_id == 3
    assert h.group.next_deadline() is None


def test_leave_batch_with_unknown_members_and_static_removal_by_instance_id() -> None:
    h = Harness()
    t = h.join(client="s", instance="inst-1")  # static: no MEMBER_ID_REQUIRED round
    h.advance(DELAY)
    s_id = h.join_result(t).member_id
    assert s_id.startswith("inst-1-") and h.group.static_members == {"inst-1": s_id}
    group_error, errors = h.gm.leave("g", [("nobody", None), ("", "inst-1"), ("", "other")], h.now)
    assert group_error == ErrorCode.none
    assert errors == [ErrorCode.unknown_member_id, ErrorCode.none, ErrorCode.unknown_member_id]
    assert not h.group.members and h.group.state == GroupState.EMPTY
    # an unknown group: every member is unknown
    assert h.gm.leave("nope", [("m", None)], h.now) == (ErrorCode.none, [ErrorCode.unknown_member_id])


def test_static_member_rejoin_keeps_assignment_without_rebalance_and_fences_old_id() -> None:
    h = Harness()
    t1 = h.join(client="c1", instance="i1")
    t2 = h.join(client="c2", instance="i2")
    h.advance(2 * DELAY)
    r1, r2 = h.join_result(t1), h.join_result(t2)
    m1, m2 = r1.member_id, r2.member_id
    h.sync(m2, 1)
    h.sync(m1, 1, {m1: b"P1", m2: b"P2"})
    assert h.group.state == GroupState.STABLE

    # i2 restarts: it forgot its member id and joins again with its instance id
    t = h.join(client="c2", instance="i2")
    r = h.join_result(t)
    assert r.error == ErrorCode.none and r.member_id != m2
    assert r.generation_id == 1 and r.leader == m1
    assert h.group.state == GroupState.STABLE, "no rebalance"
    s = h.sync_result(h.sync(r.member_id, 1, instance="i2"))
    assert s.assignment == b"P2", "it keeps its assignment"
    # the old incarnation is fenced
    assert h.gm.heartbeat("g", m2, "i2", 1, h.now) == ErrorCode.fenced_instance_id
    assert h.sync_result(h.sync(m2, 1, instance="i2")).error == ErrorCode.fenced_instance_id
    old_join = h.join_result(h.join(m2, instance="i2"))
    assert old_join.error == ErrorCode.fenced_instance_id


def test_static_member_is_not_dropped_by_a_rebalance_it_misses() -> None:
    h = Harness()
    t1 = h.join(client="c1", instance="i1")
    h.advance(DELAY)
    m1 = h.join_result(t1).member_id
    h.sync(m1, 1, {m1: b"P"})
    d = h.new_member("d")
    td = h.join(d)
    for _ in range(REBALANCE // 5_000):  # m1 stays alive but does not rejoin in time
        h.advance(5_000)
        h.gm.heartbeat("g", m1, "i1", 1, h.now)
    rd = h.join_result(td)
    assert rd.generation_id == 2 and rd.leader == d, "the leader did not rejoin: a joined member leads"
    assert {m.member_id for m in rd.members} == {m1, d}, "a static member survives a missed rebalance"


def test_leader_never_syncing_is_removed_and_followers_rejoin() -> None:
    h = Harness()
    a, b = h.new_member("a"), h.new_member("b")
    h.join(a)
    h.join(b)
    h.advance(2 * DELAY)
    sb = h.sync(b, 1)
    for _ in range(REBALANCE // 5_000):  # a heartbeats but never sends its SyncGroup
        h.advance(5_000)
        assert h.gm.heartbeat("g", a, None, 1, h.now) in (ErrorCode.none, ErrorCode.unknown_member_id)
    assert h.sync_result(sb).error == ErrorCode.rebalance_in_progress
    assert a not in h.group.members
    assert h.group.state == GroupState.PREPARING_REBALANCE
    tb = h.join(b)
    rb = h.join_result(tb)
    assert rb.leader == b and rb.generation_id == 2


def test_pending_member_that_never_rejoins_expires() -> None:
    h = Harness()
    a, b = h.stable_pair()
    pending = h.new_member("p")
    assert pending in h.group.pending_members
    h.advance(SESSION - 1)
    h.gm.heartbeat("g", a, None, 1, h.now)
    h.gm.heartbeat("g", b, None, 1, h.now)
    h.advance(1)
    assert pending not in h.group.pending_members
    assert h.group.state == GroupState.STABLE, "a pending id alone never triggers a rebalance"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"session": 1_000}, ErrorCode.invalid_session_timeout),
        ({"group": ""}, ErrorCode.invalid_group_id),
        ({"member_id": "ghost"}, ErrorCode.unknown_member_id),
        ({"protocol_type": "connect"}, ErrorCode.inconsistent_group_protocol),
        ({"protocols": (("sticky", b""),)}, ErrorCode.inconsistent_group_protocol),
    ],
)
def test_join_errors(kwargs: dict, error: ErrorCode) -> None:
    h = Harness()
    h.stable_pair()
    assert h.join_result(h.join(**kwargs)).error == error


def test_sync_and_heartbeat_errors() -> None:
    h = Harness()
    a, _ = h.stable_pair()
    assert h.gm.heartbeat("g", "ghost", None, 1, h.now) == ErrorCode.unknown_member_id
    assert h.gm.heartbeat("nope", a, None, 1, h.now) == ErrorCode.unknown_member_id
    assert h.gm.heartbeat("g", a, None, 7, h.now) == ErrorCode.illegal_generation
    assert h.sync_result(h.sync("ghost", 1)).error == ErrorCode.unknown_member_id
    token = next(h.tokens)
    h.gm.sync("g", SyncRequest(a, None, 1, "consumer", "roundrobin", {}), token, h.now)
    assert h.gm.drain() == [(token, SyncResult(ErrorCode.inconsistent_group_protocol))]


def test_offset_commit_validation() -> None:
    h = Harness()
    empty = h.gm.get_or_create("simple")
    assert empty.validate_offset_commit("", None, -1, 0) is None, "simple consumers commit to an empty group"
    a, _ = h.stable_pair()
    g = h.group
    assert g.validate_offset_commit(a, None, 1, h.now) is None
    assert g.validate_offset_commit(a, None, 0, h.now) == ErrorCode.illegal_generation
    assert g.validate_offset_commit("ghost", None, 1, h.now) == ErrorCode.unknown_member_id
    assert g.validate_offset_commit("", None, -1, h.now) == ErrorCode.unknown_member_id
    h.join(h.new_member("c"))
    assert g.state == GroupState.PREPARING_REBALANCE
    assert g.validate_offset_commit(a, None, 1, h.now) is None, "commits still allowed before rejoining"


def test_group_reports_subscribed_topics_from_consumer_metadata() -> None:
    # ConsumerProtocolSubscription v0: version, topics ["orders", "audit"], null user data
    meta = b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x06orders" + b"\x00\x05audit" + b"\xff\xff\xff\xff"
    h = Harness(initial_rebalance_delay_ms=0)
    t = h.join(client="c", require_known=False, protocols=(("range", meta),))
    assert h.join_result(t).generation_id == 1
    assert h.group.subscribed_topics == {"orders", "audit"}
    assert h.group.is_subscribed_to("orders") and not h.group.is_subscribed_to("other")
