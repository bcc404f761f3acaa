"""Classic Kafka consumer groups as a sans-IO state machine.

This is Apache Kafka's classic group protocol (``ClassicGroup`` and the classic half of
``GroupMetadataManager``): JoinGroup, SyncGroup, Heartbeat and LeaveGroup over the states
Empty -> PreparingRebalance -> CompletingRebalance -> Stable (and back to PreparingRebalance on
any membership or protocol change), Dead once deleted.

Pure code, no clock and no I/O, so every rebalance can be replayed in a unit test:

- time comes in as milliseconds (``now``) with each call;
- a JoinGroup or SyncGroup request that must wait for the rest of the group is identified by a
  *token* its caller picks; results for tokens (the caller's own, or other parked members') are
  collected and handed out by :meth:`GroupManager.drain`;
- the caller drives timers: call :meth:`GroupManager.tick` at :meth:`GroupManager.next_deadline`
  (rebalance timeout, initial rebalance delay, session expiry, pending-sync expiry).

Left out: a maximum group size, the KIP-848 consumer protocol, and keeping group membership
across a broker restart (members are told UNKNOWN_MEMBER_ID and rejoin, as after a coordinator
move). Committed offsets are not kept here; the coordinator stores them in the broker.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.group.consumer_protocol import subscribed_topics

log = logging.getLogger("ferrymq.kafka.group")

#: the member id of a member that does not have one yet
UNKNOWN_MEMBER_ID = ""
#: the protocol type of Kafka consumers (the only one whose metadata we read)
CONSUMER_PROTOCOL_TYPE = "consumer"


class GroupState(StrEnum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


#: the states a group may come from, per target state (Kafka's ClassicGroupState)
_VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}
    ),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.DEAD: frozenset(GroupState),
}


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """Kafka's group.* broker settings, with Kafka's defaults."""

    min_session_timeout_ms: int = 6_000
    max_session_timeout_ms: int = 1_800_000
    initial_rebalance_delay_ms: int = 3_000
    new_member_join_timeout_ms: int = 300_000
    #: an empty group's state is dropped after this long (Kafka's
    #: offsets.retention.check.interval.ms: how long an empty group without offsets lingers)
    empty_group_retention_ms: int = 600_000


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A JoinGroup request, version-independent (v0 has no rebalance timeout: pass the session one)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    #: JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and its id
    require_known_member_id: bool = True
    #: JoinGroup v9+: a rejoining static leader may be told to skip the assignment
    supports_skip_assignment: bool = False


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """A SyncGroup request, version-independent (types and name are None before v5)."""

    member_id: str
    group_instance_id: str | None
    generation_id: int
    protocol_type: str | None
    protocol_name: str | None
    #: from the leader only: member id -> its assignment
    assignments: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class JoinMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: tuple[JoinMember, ...] = ()
    skip_assignment: bool = False


@dataclass(frozen=True, slots=True)
class SyncResult:
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(frozen=True, slots=True)
class DescribedMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group_id: str
    state: GroupState
    protocol_type: str
    protocol_name: str
    members: tuple[DescribedMember, ...]


Result = JoinResult | SyncResult


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    #: token of the parked JoinGroup / SyncGroup request, if any
    join_token: int | None = None
    sync_token: int | None = None
    #: joined but never got a JoinGroup response yet: may expire while waiting
    is_new: bool = False
    heartbeat_deadline: int | None = None

    @property
    def awaiting_join(self) -> bool:
        return self.join_token is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_token is not None

    def metadata(self, protocol: str | None) -> bytes:
        for name, meta in self.protocols:
            if name == protocol:
                return meta
        return b""

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def has_satisfied_heartbeat(self) -> bool:
        """A member waiting in a rebalance needs no heartbeat, unless it never got a response."""
        return not self.is_new and (self.awaiting_join or self.awaiting_sync)


class Group:
    """One classic group. Results for parked tokens go to the shared ``outbox``."""

    def __init__(
        self,
        group_id: str,
        config: GroupConfig,
        outbox: list[tuple[int, Result]],
        new_id: Callable[[], str],
    ) -> None:
        self.group_id = group_id
        self.config = config
        self._outbox = outbox
        self._new_id = new_id
        self.state = GroupState.EMPTY
        self.previous_state = GroupState.EMPTY
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}  # group instance id -> member id
        #: member ids handed out with MEMBER_ID_REQUIRED, with their expiry
        self.pending_members: dict[str, int] = {}
        self.pending_sync: set[str] = set()
        self.new_member_added = False
        self.subscribed_topics: frozenset[str] | None = None
        #: the join phase ends at join_deadline; during the initial rebalance it may be
        #: extended: (delay, remaining) as Kafka's InitialDelayedJoin
        self.join_deadline: int | None = None
        self._initial_join: tuple[int, int] | None = None
        self.sync_deadline: int | None = None
        self._sync_generation = -1
        #: when a sweep first found it without members (GroupManager.forget_empty)
        self.empty_since: int | None = None

    # ---- small queries ------------------------------------------------------------------

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    @property
    def has_members(self) -> bool:
        return bool(self.members) or bool(self.pending_members)

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def has_all_members_joined(self) -> bool:
        return all(m.awaiting_join for m in self.members.values()) and not self.pending_members

    def candidate_protocols(self) -> set[str]:
        counts: Counter[str] = Counter()
        for m in self.members.values():
            counts.update({name for name, _ in m.protocols})
        return {name for name, n in counts.items() if n == len(self.members)}

    def supports_protocols(self, protocol_type: str, names: Iterable[str]) -> bool:
        names = set(names)
        if self.state == GroupState.EMPTY:
            return bool(protocol_type) and bool(names)
        return self.protocol_type == protocol_type and bool(names & self.candidate_protocols())

    def select_protocol(self) -> str:
        candidates = self.candidate_protocols()
        votes = Counter(m.vote(candidates) for m in self.members.values())
        return votes.most_common(1)[0][0]

    def validate_member(self, member_id: str, group_instance_id: str | None) -> ErrorCode | None:
        """UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID for a request naming a member we don't have."""
        if group_instance_id is not None:
            existing = self.static_members.get(group_instance_id)
            if existing is None:
                return ErrorCode.unknown_member_id
            if existing != member_id:
                log.info(
                    "group %s: member %s of instance %s is fenced by %s",
                    self.group_id,
                    member_id,
                    group_instance_id,
                    existing,
                )
                return ErrorCode.fenced_instance_id
        if member_id not in self.members:
            return ErrorCode.unknown_member_id
        return None

    def join_members(self) -> tuple[JoinMember, ...]:
        return tuple(
            JoinMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
            for m in self.members.values()
        )

    def summary(self) -> GroupSummary:
        stable = self.state == GroupState.STABLE
        return GroupSummary(
            self.group_id,
            self.state,
            self.protocol_type or "",
            (self.protocol_name or "") if stable else "",
            tuple(
                DescribedMember(
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.metadata(self.protocol_name) if stable else b"",
                    m.assignment,
                )
                for m in self.members.values()
            ),
        )

    # ---- membership ---------------------------------------------------------------------

    def _transition(self, state: GroupState) -> None:
        if self.state not in _VALID_PREVIOUS[state]:
            raise AssertionError(f"group {self.group_id}: illegal transition {self.state} -> {state}")
        self.previous_state, self.state = self.state, state

    def _emit(self, token: int, result: Result) -> None:
        self._outbox.append((token, result))

    def _complete_join(self, member: Member, result: JoinResult) -> bool:
        if member.join_token is None:
            return False
        self._emit(member.join_token, result)
        member.join_token = None
        return True

    def _complete_sync(self, member: Member, result: SyncResult) -> bool:
        if member.sync_token is None:
            return False
        self._emit(member.sync_token, result)
        member.sync_token = None
        return True

    def _add(self, member: Member, token: int | None) -> None:
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        member.join_token = token
        self.pending_members.pop(member.member_id, None)

    def _remove(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        if member is not None and member.group_instance_id is not None:
            self.static_members.pop(member.group_instance_id, None)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_members.pop(member_id, None)
        self.pending_sync.discard(member_id)

    def _update_member(self, member: Member, req: JoinRequest, token: int) -> None:
        if member.join_token is not None and member.join_token != token:
            # a second JoinGroup while the first is parked: the first gets an answer, not silence
            self._complete_join(member, JoinResult(ErrorCode.rebalance_in_progress, member.member_id))
        member.protocols = req.protocols
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_timeout_ms = req.session_timeout_ms
        member.join_token = token

    def _reschedule_heartbeat(self, member: Member, now: int, timeout_ms: int | None = None) -> None:
        member.heartbeat_deadline = now + (member.session_timeout_ms if timeout_ms is None else timeout_ms)

    def adopt(self, members: list[Member], generation_id: int, now: int) -> None:
        """Take over the members of a consumer group downgraded to this (new, empty) classic group
        at their generation and assignment, then rebalance so they rejoin (Kafka's
        ``ClassicGroup.fromConsumerGroup`` and the ``prepareRebalance`` after it)."""
        for member in members:
            self._add(member, None)
            self._reschedule_heartbeat(member, now)
        self.generation_id = generation_id
        self.protocol_type = CONSUMER_PROTOCOL_TYPE
        self.protocol_name = self.select_protocol()
        self.subscribed_topics = self._compute_subscribed_topics()
        self.previous_state, self.state = GroupState.COMPLETING_REBALANCE, GroupState.STABLE
        self._prepare_rebalance(now, f"Downgrade group {self.group_id} from consumer to classic.")

    # ---- JoinGroup ----------------------------------------------------------------------

    def join(self, req: JoinRequest, token: int, now: int) -> None:
        if req.member_id == UNKNOWN_MEMBER_ID:
            self._join_new(req, token, now)
        else:
            self._join_existing(req, token, now)

    def _join_new(self, req: JoinRequest, token: int, now: int) -> None:
        if self.state == GroupState.DEAD:
            self._emit(token, JoinResult(ErrorCode.coordinator_not_available, UNKNOWN_MEMBER_ID))
            return
        if not self.supports_protocols(req.protocol_type, (p for p, _ in req.protocols)):
            self._emit(token, JoinResult(ErrorCode.inconsistent_group_protocol, UNKNOWN_MEMBER_ID))
            return
        new_member_id = f"{req.group_instance_id or req.client_id}-{self._new_id()}"
        if req.group_instance_id is not None:
            existing = self.static_members.get(req.group_instance_id)
            if existing is not None:
                log.info(
                    "group %s: static member %s rejoins, replacing member %s with %s",
                    self.group_id,
                    req.group_instance_id,
                    existing,
                    new_member_id,
                )
                self._replace_static_member(req, existing, new_member_id, token, now)
            else:
                self._add_member_and_rebalance(req, new_member_id, token, now)
        elif req.require_known_member_id:
            self.pending_members[new_member_id] = now + req.session_timeout_ms
            self._emit(token, JoinResult(ErrorCode.member_id_required, new_member_id))
        else:
            self._add_member_and_rebalance(req, new_member_id, token, now)

    def _join_existing(self, req: JoinRequest, token: int, now: int) -> None:
        member_id = req.member_id
        if self.state == GroupState.DEAD:
            self._emit(token, JoinResult(ErrorCode.coordinator_not_available, member_id))
            return
        if not self.supports_protocols(req.protocol_type, (p for p, _ in req.protocols)):
            self._emit(token, JoinResult(ErrorCode.inconsistent_group_protocol, member_id))
            return
        if member_id in self.pending_members:
            if req.group_instance_id is not None:
                # pending ids are only handed to dynamic members
                self._emit(token, JoinResult(ErrorCode.unknown_member_id, member_id))
                return
            self._add_member_and_rebalance(req, member_id, token, now)
            return
        error = self.validate_member(member_id, req.group_instance_id)
        if error is not None:
            self._emit(token, JoinResult(error, member_id))
            return
        member = self.members[member_id]
        same = member.protocols == req.protocols
        if self.state == GroupState.PREPARING_REBALANCE:
            self._update_member_and_rebalance(member, req, token, now)
        elif self.state == GroupState.COMPLETING_REBALANCE:
            if same:
                # it probably missed its JoinGroup response: send it again
                members = self.join_members() if self.is_leader(member_id) else ()
                self._emit(token, self._join_ok(member_id, members))
            else:
                self._update_member_and_rebalance(member, req, token, now)
        elif self.state == GroupState.STABLE:
            if self.is_leader(member_id) or not same:
                # the leader rejoining forces a rebalance (e.g. it saw new partitions)
                self._update_member_and_rebalance(member, req, token, now)
            else:
                self._emit(token, self._join_ok(member_id, ()))
        else:
            self._emit(token, JoinResult(ErrorCode.unknown_member_id, member_id))

    def _join_ok(
        self,
        member_id: str,
        members: tuple[JoinMember, ...],
        leader: str | None = None,
        skip_assignment: bool = False,
    ) -> JoinResult:
        return JoinResult(
            ErrorCode.none,
            member_id,
            self.generation_id,
            self.protocol_type,
            self.protocol_name,
            (self.leader_id or "") if leader is None else leader,
            members,
            skip_assignment,
        )

    def _add_member_and_rebalance(self, req: JoinRequest, member_id: str, token: int, now: int) -> None:
        member = Member(
            member_id,
            req.group_instance_id,
            req.client_id,
            req.client_host,
            req.rebalance_timeout_ms,
            req.session_timeout_ms,
            req.protocol_type,
            req.protocols,
            is_new=True,
        )
        if self.state == GroupState.PREPARING_REBALANCE and self.previous_state == GroupState.EMPTY:
            self.new_member_added = True
        self._add(member, token)
        # a new member cannot heartbeat while its JoinGroup is parked; give up on it after a while
        self._reschedule_heartbeat(member, now, self.config.new_member_join_timeout_ms)
        self._maybe_prepare_rebalance_or_complete_join(now, f"member {member_id} joined")

    def _update_member_and_rebalance(self, member: Member, req: JoinRequest, token: int, now: int) -> None:
        self._update_member(member, req, token)
        self._maybe_prepare_rebalance_or_complete_join(now, f"member {member.member_id} rejoined")

    def _replace_static_member(
        self, req: JoinRequest, old_id: str, new_id: str, token: int, now: int
    ) -> None:
        current_leader = self.leader_id or ""
        old = self.members.pop(old_id)
        # whoever still waits under the old id is a duplicate instance: fence it
        self._complete_join(old, JoinResult(ErrorCode.fenced_instance_id, old_id))
        self._complete_sync(old, SyncResult(ErrorCode.fenced_instance_id))
        member = Member(
            new_id,
            old.group_instance_id,
            old.client_id,
            old.client_host,
            old.rebalance_timeout_ms,
            old.session_timeout_ms,
            old.protocol_type,
            old.protocols,
            old.assignment,
        )
        self.members[new_id] = member
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        assert req.group_instance_id is not None
        self.static_members[req.group_instance_id] = new_id
        self._reschedule_heartbeat(member, now)
        self._update_member(member, req, token)

        if self.state == GroupState.STABLE:
            if self.protocol_name == self.select_protocol():
                # same protocol: no rebalance, the member keeps its assignment
                log.info(
                    "group %s: static member %s rejoined without a rebalance",
                    self.group_id,
                    req.group_instance_id,
                )
                if req.supports_skip_assignment:
                    leader = self.is_leader(new_id)
                    result = self._join_ok(new_id, self.join_members() if leader else (), None, leader)
                else:
                    # the old leader id, so a rejoining leader does not run an assignment that a
                    # stable group would not broadcast
                    result = self._join_ok(new_id, (), current_leader)
                self._complete_join(member, result)
            else:
                self._maybe_prepare_rebalance_or_complete_join(
                    now, f"static member {req.group_instance_id} changed the group's protocol"
                )
        elif self.state == GroupState.COMPLETING_REBALANCE:
            # the leader may have assigned to the old member id: assign again
            self._prepare_rebalance(now, f"static member {req.group_instance_id} rejoined")
        else:
            self._maybe_complete_join_phase(now)

    # ---- rebalancing --------------------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete_join(self, now: int, reason: str) -> None:
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY):
            self._prepare_rebalance(now, reason)
        else:
            self._maybe_complete_join_phase(now)

    def _prepare_rebalance(self, now: int, reason: str) -> None:
        if self.state == GroupState.COMPLETING_REBALANCE:
            self._reset_and_propagate_assignment(ErrorCode.rebalance_in_progress, now)
        self.pending_sync.clear()
        self.sync_deadline = None
        initial = self.state == GroupState.EMPTY
        if initial:
            delay = self.config.initial_rebalance_delay_ms
            self.join_deadline = now + delay
            self._initial_join = (delay, max(self.rebalance_timeout_ms() - delay, 0))
        self._transition(GroupState.PREPARING_REBALANCE)
        log.info(
            "group %s: preparing to rebalance, generation %d (%s)", self.group_id, self.generation_id, reason
        )
        if not initial:
            if self.has_all_members_joined():
                self._complete_join_phase(now)
            else:
                self.join_deadline = now + self.rebalance_timeout_ms()
                self._initial_join = None

    def _maybe_complete_join_phase(self, now: int) -> None:
        if (
            self.state == GroupState.PREPARING_REBALANCE
            and self.previous_state != GroupState.EMPTY  # the initial rebalance waits its delay out
            and self.has_all_members_joined()
        ):
            self._complete_join_phase(now)

    def _maybe_elect_new_joined_leader(self) -> bool:
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join:
            return True
        for m in self.members.values():
            if m.awaiting_join:
                self.leader_id = m.member_id
                return True
        return False

    def _complete_join_phase(self, now: int) -> None:
        self.join_deadline = None
        self._initial_join = None
        gone = [
            m.member_id for m in self.members.values() if not m.awaiting_join and m.group_instance_id is None
        ]
        for member_id in gone:
            self._remove(member_id)
        if gone:
            log.info("group %s: removed members that did not rejoin: %s", self.group_id, gone)
        if self.state == GroupState.DEAD:
            return
        if not self._maybe_elect_new_joined_leader() and self.members:
            # only static members that have not rejoined: wait another round for them or their expiry
            self.join_deadline = now + self.rebalance_timeout_ms()
            return
        self._init_next_generation()
        if self.state == GroupState.EMPTY:
            log.info("group %s: generation %d is empty", self.group_id, self.generation_id)
            return
        log.info(
            "group %s: generation %d with %d members, protocol %s, leader %s",
            self.group_id,
            self.generation_id,
            len(self.members),
            self.protocol_name,
            self.leader_id,
        )
        members = self.join_members()
        for m in self.members.values():
            self._complete_join(m, self._join_ok(m.member_id, members if self.is_leader(m.member_id) else ()))
            self._reschedule_heartbeat(m, now)
            m.is_new = False
            self.pending_sync.add(m.member_id)
        self.sync_deadline = now + self.rebalance_timeout_ms()
        self._sync_generation = self.generation_id

    def _init_next_generation(self) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self._compute_subscribed_topics()
            self._transition(GroupState.COMPLETING_REBALANCE)
        else:
            self.protocol_name = None
            self.subscribed_topics = frozenset() if self.protocol_type == CONSUMER_PROTOCOL_TYPE else None
            self._transition(GroupState.EMPTY)
        self.pending_sync.clear()

    def _compute_subscribed_topics(self) -> frozenset[str] | None:
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for m in self.members.values():
            parsed = subscribed_topics(m.metadata(self.protocol_name))
            if parsed is None:
                log.warning("group %s: cannot read the subscription of member %s", self.group_id, m.member_id)
                return None
            topics.update(parsed)
        return frozenset(topics)

    def _propagate_assignment(self, error: ErrorCode, now: int) -> None:
        ok = error == ErrorCode.none
        for m in self.members.values():
            result = SyncResult(
                error,
                self.protocol_type if ok else None,
                self.protocol_name if ok else None,
                m.assignment,
            )
            if self._complete_sync(m, result):
                self._reschedule_heartbeat(m, now)

    def _reset_and_propagate_assignment(self, error: ErrorCode, now: int) -> None:
        for m in self.members.values():
            m.assignment = b""
        self._propagate_assignment(error, now)

    # ---- SyncGroup ----------------------------------------------------------------------

    def sync(self, req: SyncRequest, token: int, now: int) -> None:
        member_id, generation_id = req.member_id, req.generation_id
        protocol_type, protocol_name = req.protocol_type, req.protocol_name
        error: ErrorCode | None
        if self.state == GroupState.DEAD:
            error = ErrorCode.coordinator_not_available
        else:
            error = self.validate_member(member_id, req.group_instance_id)
            if error is None and generation_id != self.generation_id:
                error = ErrorCode.illegal_generation
            if error is None and (
                (protocol_type is not None and protocol_type != self.protocol_type)
                or (protocol_name is not None and protocol_name != self.protocol_name)
            ):
                error = ErrorCode.inconsistent_group_protocol
        if error is not None:
            self._emit(token, SyncResult(error))
        elif self.state == GroupState.PREPARING_REBALANCE:
            self._emit(token, SyncResult(ErrorCode.rebalance_in_progress))
        elif self.state == GroupState.COMPLETING_REBALANCE:
            member = self.members[member_id]
            if member.sync_token is not None:
                self._complete_sync(member, SyncResult(ErrorCode.rebalance_in_progress))
            member.sync_token = token
            self._pending_sync_done(member_id)
            if self.is_leader(member_id):
                log.info(
                    "group %s: assignment from leader %s for generation %d",
                    self.group_id,
                    member_id,
                    self.generation_id,
                )
                for m in self.members.values():
                    m.assignment = req.assignments.get(m.member_id, b"")
                self._propagate_assignment(ErrorCode.none, now)
                self._transition(GroupState.STABLE)
        elif self.state == GroupState.STABLE:
            self._pending_sync_done(member_id)
            assignment = self.members[member_id].assignment
            self._emit(token, SyncResult(ErrorCode.none, self.protocol_type, self.protocol_name, assignment))
        else:  # Empty: validate_member already failed
            self._emit(token, SyncResult(ErrorCode.unknown_member_id))

    def _pending_sync_done(self, member_id: str) -> None:
        self.pending_sync.discard(member_id)
        if not self.pending_sync:
            self.sync_deadline = None

    # ---- Heartbeat, LeaveGroup, offsets -------------------------------------------------

    def heartbeat(
        self, member_id: str, group_instance_id: str | None, generation_id: int, now: int
    ) -> ErrorCode:
        if self.state == GroupState.DEAD:
            return ErrorCode.coordinator_not_available
        error = self.validate_member(member_id, group_instance_id)
        if error is not None:
            return error
        if generation_id != self.generation_id:
            return ErrorCode.illegal_generation
        self._reschedule_heartbeat(self.members[member_id], now)
        if self.state == GroupState.PREPARING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    def leave(self, members: list[tuple[str, str | None]], now: int) -> list[ErrorCode]:
        """Remove members given as (member id, group instance id); one error per member."""
        errors: list[ErrorCode] = []
        left: list[str] = []
        for member_id, instance_id in members:
            if member_id == UNKNOWN_MEMBER_ID:
                # an admin removing a static member by its instance id alone
                existing = self.static_members.get(instance_id) if instance_id is not None else None
                if existing is None:
                    errors.append(ErrorCode.unknown_member_id)
                    continue
                self._remove_current_member(existing)
                left.append(existing)
            elif member_id in self.pending_members:
                del self.pending_members[member_id]
                left.append(member_id)
            else:
                error = self.validate_member(member_id, instance_id)
                if error is not None:
                    errors.append(error)
                    continue
                self._remove_current_member(member_id)
                left.append(member_id)
            errors.append(ErrorCode.none)
        if left:
            log.info("group %s: members left: %s", self.group_id, left)
            if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(now, f"members left: {left}")
            elif self.state == GroupState.PREPARING_REBALANCE:
                self._maybe_complete_join_phase(now)
        return errors

    def _remove_current_member(self, member_id: str) -> None:
        member = self.members[member_id]
        self._complete_join(member, JoinResult(ErrorCode.unknown_member_id, UNKNOWN_MEMBER_ID))
        self._complete_sync(member, SyncResult(ErrorCode.unknown_member_id))
        self._remove(member_id)

    def validate_offset_commit(
        self, member_id: str, group_instance_id: str | None, generation_id: int, now: int
    ) -> ErrorCode | None:
        """None if the commit may be stored (Kafka's ClassicGroup.validateOffsetCommit)."""
        if self.state == GroupState.DEAD:
            return ErrorCode.coordinator_not_available
        if generation_id < 0 and self.state == GroupState.EMPTY:
            return None  # an admin client or a consumer assigning partitions itself
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = self.validate_member(member_id, group_instance_id)
            if error is not None:
                return error
            if generation_id != self.generation_id:
                return ErrorCode.illegal_generation
        elif self.state != GroupState.EMPTY:
            return ErrorCode.unknown_member_id
        if self.state == GroupState.COMPLETING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        if self.state in (GroupState.STABLE, GroupState.PREPARING_REBALANCE):
            self._reschedule_heartbeat(self.members[member_id], now)
        return None

    def is_subscribed_to(self, topic: str) -> bool:
        if self.subscribed_topics is not None:
            return topic in self.subscribed_topics
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    # ---- timers -------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        deadlines = [d for d in (self.join_deadline, self.sync_deadline) if d is not None]
        deadlines.extend(self.pending_members.values())
        for m in self.members.values():
            if m.heartbeat_deadline is not None:
                deadlines.append(m.heartbeat_deadline)
        return min(deadlines, default=None)

    def tick(self, now: int) -> None:
        """Run every timer due at ``now``."""
        if self.join_deadline is not None and now >= self.join_deadline:
            self._on_join_deadline(now)
        if self.sync_deadline is not None and now >= self.sync_deadline:
            self._on_sync_deadline(now)
        for member_id, expiry in list(self.pending_members.items()):
            if now >= expiry:
                log.info("group %s: pending member %s expired", self.group_id, member_id)
                del self.pending_members[member_id]
                self._maybe_complete_join_phase_after_removal(now)
        for member in list(self.members.values()):
            deadline = member.heartbeat_deadline
            if deadline is None or now < deadline or self.members.get(member.member_id) is not member:
                continue
            member.heartbeat_deadline = None
            if not member.has_satisfied_heartbeat():
                log.info("group %s: member %s expired (no heartbeat)", self.group_id, member.member_id)
                self._expire_member(member, now)

    def _on_join_deadline(self, now: int) -> None:
        if self.state != GroupState.PREPARING_REBALANCE:
            self.join_deadline = None
            return
        if self._initial_join is not None:
            delay, remaining = self._initial_join
            if self.new_member_added and remaining:
                # members are still arriving: wait a little longer, within the rebalance timeout
                self.new_member_added = False
                new_delay = min(self.config.initial_rebalance_delay_ms, remaining)
                self.join_deadline = now + new_delay
                self._initial_join = (new_delay, max(remaining - delay, 0))
                return
        self._complete_join_phase(now)

    def _on_sync_deadline(self, now: int) -> None:
        self.sync_deadline = None
        if self._sync_generation != self.generation_id:
            return
        if self.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE) and self.pending_sync:
            late = sorted(self.pending_sync)
            for member_id in late:
                self._remove(member_id)
            self._prepare_rebalance(now, f"members {late} did not send SyncGroup in time")

    def _maybe_complete_join_phase_after_removal(self, now: int) -> None:
        if self.state == GroupState.PREPARING_REBALANCE and self.has_all_members_joined():
            self._complete_join_phase(now)

    def _expire_member(self, member: Member, now: int) -> None:
        self._complete_join(member, JoinResult(ErrorCode.unknown_member_id, UNKNOWN_MEMBER_ID))
        self._complete_sync(member, SyncResult(ErrorCode.unknown_member_id))
        self._remove(member.member_id)
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(now, f"member {member.member_id} expired")
        else:
            self._maybe_complete_join_phase_after_removal(now)

    def mark_dead(self) -> None:
        """The group is deleted: fail whoever still waits, answer COORDINATOR_NOT_AVAILABLE from now on."""
        for m in self.members.values():
            self._complete_join(m, JoinResult(ErrorCode.coordinator_not_available, m.member_id))
            self._complete_sync(m, SyncResult(ErrorCode.coordinator_not_available))
        self._transition(GroupState.DEAD)
        self.members.clear()
        self.static_members.clear()
        self.pending_members.clear()
        self.pending_sync.clear()
        self.join_deadline = self.sync_deadline = None


def _uuid() -> str:
    return str(uuid.uuid4())


class GroupManager:
    """All classic groups of one coordinator, and the results waiting to be handed out."""

    def __init__(self, config: GroupConfig | None = None, new_id: Callable[[], str] = _uuid) -> None:
        self.config = config or GroupConfig()
        self.new_id = new_id
        self.groups: dict[str, Group] = {}
        self._outbox: list[tuple[int, Result]] = []

    def get(self, group_id: str) -> Group | None:
        return self.groups.get(group_id)

    def get_or_create(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id, self.config, self._outbox, self.new_id)
        return group

    def drain(self) -> list[tuple[int, Result]]:
        """The results produced since the last drain, as (token, result)."""
        out, self._outbox[:] = list(self._outbox), []
        return out

    def join(self, group_id: str, req: JoinRequest, token: int, now: int) -> None:
        if not group_id:
            self._outbox.append((token, JoinResult(ErrorCode.invalid_group_id, req.member_id)))
            return
        cfg = self.config
        if not cfg.min_session_timeout_ms <= req.session_timeout_ms <= cfg.max_session_timeout_ms:
            self._outbox.append((token, JoinResult(ErrorCode.invalid_session_timeout, req.member_id)))
            return
        group = self.groups.get(group_id)
        if group is None or group.state == GroupState.DEAD:
            if req.member_id != UNKNOWN_MEMBER_ID:
                self._outbox.append((token, JoinResult(ErrorCode.unknown_member_id, req.member_id)))
                return
            group = self.groups[group_id] = Group(group_id, self.config, self._outbox, self.new_id)
        group.join(req, token, now)

    def sync(self, group_id: str, req: SyncRequest, token: int, now: int) -> None:
        if not group_id:
            self._outbox.append((token, SyncResult(ErrorCode.invalid_group_id)))
            return
        group = self.groups.get(group_id)
        if group is None or group.state == GroupState.EMPTY:
            self._outbox.append((token, SyncResult(ErrorCode.unknown_member_id)))
            return
        group.sync(req, token, now)

    def heartbeat(
        self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int, now: int
    ) -> ErrorCode:
        if not group_id:
            return ErrorCode.invalid_group_id
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.unknown_member_id
        return group.heartbeat(member_id, group_instance_id, generation_id, now)

    def leave(
        self, group_id: str, members: list[tuple[str, str | None]], now: int
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        """(group-level error, one error per member)."""
        if not group_id:
            return ErrorCode.invalid_group_id, []
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.none, [ErrorCode.unknown_member_id] * len(members)
        if group.state == GroupState.DEAD:
            return ErrorCode.coordinator_not_available, []
        return ErrorCode.none, group.leave(members, now)

    def forget_empty(self, now: int) -> int:
        """Drop the groups that have had no members (pending or static) for
        ``config.empty_group_retention_ms``; how many went. Such a group holds nothing a later
        member needs (its committed offsets live in the offset store), and a client could
        otherwise leave any number of them behind; as Kafka, an empty group without offsets is
        then Dead, one with offsets still Empty."""
        gone = 0
        for group_id, group in list(self.groups.items()):
            idle = group.state in (GroupState.EMPTY, GroupState.DEAD) and not (
                group.has_members or group.static_members
            )
            if not idle:
                group.empty_since = None
                continue
            if group.empty_since is None:
                group.empty_since = now
            if now - group.empty_since >= self.config.empty_group_retention_ms:
                del self.groups[group_id]
                gone += 1
        return gone

    def delete(self, group_id: str) -> None:
        group = self.groups.pop(group_id, None)
        if group is not None and group.state != GroupState.DEAD:
            group.mark_dead()

    def next_deadline(self) -> int | None:
        return min((d for g in self.groups.values() if (d := g.next_deadline()) is not None), default=None)

    def tick(self, now: int) -> None:
        for group in list(self.groups.values()):
            if (d := group.next_deadline()) is not None and d <= now:
                group.tick(now)
