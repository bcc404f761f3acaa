"""KIP-848 consumer groups ("consumer" group type) as a sans-IO state machine.

Apache Kafka's ``ConsumerGroup`` / ``consumerGroupHeartbeat`` of ``GroupMetadataManager`` and the
member reconciliation of ``CurrentAssignmentBuilder``, served to ConsumerGroupHeartbeat (68):

- the *group epoch* moves on every change of membership, subscriptions (names, regex, assignor)
  or the subscribed topics' partition counts; the coordinator then computes the *target
  assignment* with a server-side assignor (assignors.py) and stamps it with the group epoch (the
  *assignment epoch*);
- each member moves to its target on its own heartbeats, with its *member epoch*: partitions it
  must give up are revoked first (state ``unrevoked_partitions``, epoch kept) and only after the
  member acknowledges (its owned partitions no longer hold them) does it take the target epoch;
  a partition is handed to its new owner only once its old owner has released it
  (``unreleased_partitions`` until then): no partition ever has two owners;
- a member that stops heartbeating for the session timeout, or does not revoke within its
  rebalance timeout, is fenced (removed, group epoch bumped); a member sending an epoch the
  coordinator did not give it gets FENCED_MEMBER_EPOCH and rejoins with epoch 0;
- static members (instance id): epoch -2 leaves temporarily, keeping the assignment until the
  session times out; a rejoin with the same instance id takes it over. Epoch -1 leaves for good.

Pure code: time comes in as ``now`` (ms); topic metadata comes from a :class:`TopicCatalog` the
caller passes in; the caller calls :meth:`ConsumerGroupManager.tick` at ``next_deadline``.
Regular expressions: Kafka matches the whole topic name with RE2J; here Python's ``re`` with
``fullmatch``; what RE2 rejects and ``re`` accepts (look-around, back-references) is refused with
INVALID_REGULAR_EXPRESSION, and Python-only syntax such as possessive quantifiers is accepted.
Racks: a member's rack id and the racks of the subscribed partitions (the broker group each lives
on, ``TopicCatalog.partition_racks``) go to the assignor (assignors.py: Kafka's rack rules); a
change of either moves the group epoch. Left out: group.consumer.max.size, client-side assignors, keeping
membership across a restart (members are told UNKNOWN_MEMBER_ID and rejoin).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.group.assignors import ASSIGNORS, Assignment, assign

#: a member leaves the group for good
LEAVE_EPOCH = -1
#: a static member leaves for now, keeping its assignment until its session times out
LEAVE_STATIC_EPOCH = -2


class MemberState(StrEnum):
    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


class TopicCatalog(Protocol):
    """What the state machine needs of the broker's topics (a snapshot per call)."""

    def partition_count(self, topic: str) -> int:
        """0 for a topic that does not exist."""
        ...

    def topic_names(self) -> Iterable[str]:
        """Every topic a regex subscription may match."""
        ...

    def partition_racks(self, topic: str) -> Sequence[frozenset[str]]:
        """The racks of each partition of the topic (empty sets where none is known)."""
        ...


@dataclass(frozen=True, slots=True)
class ConsumerGroupConfig:
    """Kafka's group.consumer.* broker settings, with Kafka's defaults."""

    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 5_000
    #: group.consumer.assignors: the first is the default
    assignors: tuple[str, ...] = ASSIGNORS
    #: an empty group without members is dropped after this long
    empty_group_retention_ms: int = 600_000


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    #: -1: unchanged
    rebalance_timeout_ms: int = -1
    #: None: unchanged
    subscribed_topic_names: tuple[str, ...] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: Assignment | None = None
    client_id: str = ""
    client_host: str = ""


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    #: None: unchanged since the member last heard it
    assignment: Assignment | None = None


@dataclass(frozen=True, slots=True)
class ClassicMeta:
    """What a classic-protocol member of a consumer group joined with."""

    session_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]

    @property
    def protocol_name(self) -> str:
        return self.protocols[0][0] if self.protocols else ""


@dataclass(slots=True)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    rebalance_timeout_ms: int = 300_000
    topic_names: tuple[str, ...] = ()
    topic_regex: str | None = None
    server_assignor: str | None = None
    epoch: int = 0
    previous_epoch: int = -1
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)
    session_deadline: int | None = None
    rebalance_deadline: int | None = None
    #: a member speaking the classic protocol (JoinGroup/SyncGroup) inside this group
    classic: ClassicMeta | None = None

    def subscription(self, catalog_names: Iterable[str] | None) -> frozenset[str]:
        subs = set(self.topic_names)
        if self.topic_regex and catalog_names is not None:
            pattern = re.compile(self.topic_regex)
            subs.update(t for t in catalog_names if pattern.fullmatch(t))
        return frozenset(subs)


class ConsumerGroup:
    """One group of the consumer protocol."""

    def __init__(self, group_id: str, config: ConsumerGroupConfig) -> None:
        self.group_id = group_id
        self.config = config
        self.epoch = 0
        self.assignment_epoch = 0
        self.members: dict[str, ConsumerMember] = {}
        self.target: dict[str, Assignment] = {}
        #: partition -> the member holding it (assigned or still revoking)
        self.owners: dict[tuple[str, int], str] = {}
        #: partition counts of the subscribed topics the target was computed from
        self.topic_counts: dict[str, int] = {}
        #: the racks of those topics' partitions, as the target saw them
        self.topic_racks: dict[str, tuple[frozenset[str], ...]] = {}
        self.assignor = config.assignors[0]
        self.empty_since: int | None = None

    @property
    def state(self) -> str:
        """Kafka's ConsumerGroupState names."""
        if not self.members:
            return "Empty"
        if self.assignment_epoch < self.epoch:
            return "Assigning"
        if any(
            m.epoch != self.assignment_epoch or m.state != MemberState.STABLE for m in self.members.values()
        ):
            return "Reconciling"
        return "Stable"

    def static_member(self, instance_id: str) -> ConsumerMember | None:
        return next((m for m in self.members.values() if m.instance_id == instance_id), None)

    def subscribed_topics(self) -> frozenset[str]:
        return frozenset(self.topic_counts)

    def is_subscribed_to(self, topic: str) -> bool:
        return topic in self.topic_counts

    # ---- membership ---------------------------------------------------------------------

    def remove(self, member_id: str, now: int) -> None:
        """Fence or drop a member: its partitions are free for others; the group epoch moves."""
        member = self.members.pop(member_id, None)
        if member is None:
            return
        self._release(member, member.assigned)
        self._release(member, member.pending_revocation)
        self.target.pop(member_id, None)
        self.epoch += 1
        if not self.members:
            self.empty_since = now

    def _release(self, member: ConsumerMember, parts: Assignment) -> None:
        for topic, ps in parts.items():
            for p in ps:
                if self.owners.get((topic, p)) == member.member_id:
                    del self.owners[(topic, p)]

    def refresh_target(self, catalog: TopicCatalog) -> None:
        """Bump the group epoch if the subscribed topics changed, and recompute the target
        assignment if the group epoch moved past it."""
        names = list(catalog.topic_names()) if any(m.topic_regex for m in self.members.values()) else None
        subs = {mid: m.subscription(names) for mid, m in self.members.items()}
        counts = {t: n for t in sorted(set().union(*subs.values())) if (n := catalog.partition_count(t)) > 0}
        racks = {t: tuple(catalog.partition_racks(t)) for t in counts}
        if counts != self.topic_counts or racks != self.topic_racks:
            self.topic_counts, self.topic_racks = counts, racks
            self.epoch += 1
        chosen = Counter(m.server_assignor for m in self.members.values() if m.server_assignor)
        self.assignor = min(chosen, key=lambda a: (-chosen[a], a)) if chosen else self.config.assignors[0]
        if self.assignment_epoch < self.epoch:
            member_racks = {mid: m.rack_id for mid, m in self.members.items()}
            self.target = assign(self.assignor, subs, counts, self.target, member_racks, racks)
            self.assignment_epoch = self.epoch

    def reconcile(self, member: ConsumerMember, owned: Assignment | None, now: int) -> None:
        """Move the member toward its target (Kafka's CurrentAssignmentBuilder)."""
        if member.state == MemberState.UNREVOKED_PARTITIONS:
            if owned is None or overlaps(owned, member.pending_revocation):
                return  # still revoking
            self._release(member, member.pending_revocation)
            member.pending_revocation = {}
            member.rebalance_deadline = None
        elif member.state == MemberState.STABLE and member.epoch == self.assignment_epoch:
            return
        target = self.target.get(member.member_id, {})
        keep = _intersect(member.assigned, target)
        revoke = _minus(member.assigned, target)
        if revoke:
            member.state = MemberState.UNREVOKED_PARTITIONS
            member.assigned = keep
            member.pending_revocation = revoke
            member.rebalance_deadline = now + member.rebalance_timeout_ms
            return
        wanted = _minus(target, keep)
        granted: dict[str, set[int]] = {t: set(ps) for t, ps in keep.items()}
        unreleased = False
        for topic, ps in wanted.items():
            for p in ps:
                owner = self.owners.get((topic, p))
                if owner is None or owner == member.member_id:
                    self.owners[(topic, p)] = member.member_id
                    granted.setdefault(topic, set()).add(p)
                else:
                    unreleased = True
        member.assigned = {t: frozenset(ps) for t, ps in granted.items() if ps}
        if member.epoch != self.assignment_epoch:
            member.previous_epoch, member.epoch = member.epoch, self.assignment_epoch
        member.state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE

    def next_deadline(self) -> int | None:
        deadlines = [
            d
            for m in self.members.values()
            for d in (m.session_deadline, m.rebalance_deadline)
            if d is not None
        ]
        return min(deadlines, default=None)

    def tick(self, now: int) -> list[str]:
        """Fence members whose session or rebalance timeout passed; their ids."""
        expired = [
            mid
            for mid, m in self.members.items()
            if (m.session_deadline is not None and m.session_deadline <= now)
            or (m.rebalance_deadline is not None and m.rebalance_deadline <= now)
        ]
        for mid in expired:
            self.remove(mid, now)
        return expired

    def validate_offset_commit(
        self, member_id: str, member_epoch: int, api_version: int, partitions: Iterable[tuple[str, int]] = ()
    ) -> ErrorCode | None:
        """Kafka's ConsumerGroup.validateOffsetCommit: None if the commit may go ahead.

        One relaxation: a commit carrying the epoch the member had before its latest bump is
        accepted for partitions it still holds. The epoch moves on the heartbeat acknowledging a
        revocation, and a commit the client sent before that heartbeat's response arrived carries
        the old one (Kafka answers STALE_MEMBER_EPOCH there, and the Java client's commitSync fails)."""
        if member_epoch < 0 and not self.members:
            return None  # an admin or a consumer without group management, on an empty group
        member = self.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if member.classic is not None:  # a classic member: its generation is its member epoch
            return None if member_epoch == member.epoch else ErrorCode.illegal_generation
        if api_version < 9:
            return ErrorCode.unsupported_version
        if member_epoch == member.epoch:
            return None
        held = partitions and all(p in member.assigned.get(t, ()) for t, p in partitions)
        return None if held and member_epoch == member.previous_epoch else ErrorCode.stale_member_epoch

    def validate_offset_fetch(self, member_id: str | None, member_epoch: int) -> ErrorCode | None:
        """OffsetFetch v9's member check (KIP-848): none without a member id and epoch -1."""
        if member_id is None and member_epoch < 0:
            return None
        member = self.members.get(member_id or "")
        if member is None:
            return ErrorCode.unknown_member_id
        return ErrorCode.stale_member_epoch if member_epoch != member.epoch else None


class ConsumerGroupManager:
    """Every consumer-protocol group of one coordinator."""

    def __init__(self, config: ConsumerGroupConfig | None = None) -> None:
        self.config = config or ConsumerGroupConfig()
        self.groups: dict[str, ConsumerGroup] = {}

    def get(self, group_id: str) -> ConsumerGroup | None:
        return self.groups.get(group_id)

    def delete(self, group_id: str) -> None:
        self.groups.pop(group_id, None)

    def heartbeat(self, req: HeartbeatRequest, catalog: TopicCatalog, now: int) -> HeartbeatResult:
        error = self._invalid(req)
        if error is not None:
            return error
        if req.member_epoch in (LEAVE_EPOCH, LEAVE_STATIC_EPOCH):
            return self._leave(req, now)
        group = self.groups.get(req.group_id)
        if group is None:
            if req.member_epoch != 0:
                # the coordinator lost the group (a restart or a move): the member rejoins
                return self._error(
                    ErrorCode.unknown_member_id, f"Group {req.group_id} has no member {req.member_id}."
                )
            group = self.groups[req.group_id] = ConsumerGroup(req.group_id, self.config)
        member_id = req.member_id or str(uuid.uuid4())  # v0: the coordinator may name it
        member, error = self._member(group, req, member_id, now)
        if error is not None:
            return error
        assert member is not None
        before = dict(member.assigned)
        update_member(group, member, req)
        member.session_deadline = now + self.config.session_timeout_ms
        group.empty_since = None
        group.refresh_target(catalog)
        group.reconcile(member, req.owned, now)
        send = (
            req.member_epoch == 0
            or member.assigned != before
            or (req.owned is not None and req.owned != member.assigned)
        )
        return HeartbeatResult(
            ErrorCode.none,
            None,
            member.member_id,
            member.epoch,
            self.config.heartbeat_interval_ms,
            dict(member.assigned) if send else None,
        )

    def _error(self, error: ErrorCode, message: str) -> HeartbeatResult:
        return HeartbeatResult(error, message, None, 0, 0)

    def _invalid(self, req: HeartbeatRequest) -> HeartbeatResult | None:
        """Kafka's request checks: INVALID_REQUEST, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION."""
        bad = ErrorCode.invalid_request
        if not req.group_id:
            return self._error(bad, "GroupId can't be empty.")
        if req.instance_id is not None and not req.instance_id:
            return self._error(bad, "InstanceId can't be empty.")
        if req.member_epoch == 0:
            if req.rebalance_timeout_ms == -1:
                return self._error(bad, "RebalanceTimeoutMs must be provided in first request.")
            if req.owned:
                return self._error(bad, "TopicPartitions must be empty when (re-)joining.")
            if req.subscribed_topic_names is None and req.subscribed_topic_regex is None:
                return self._error(
                    bad, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
                )
        elif req.member_epoch == LEAVE_STATIC_EPOCH and req.instance_id is None:
            return self._error(bad, "InstanceId can't be null.")
        elif req.member_epoch < LEAVE_STATIC_EPOCH:
            return self._error(bad, f"MemberEpoch {req.member_epoch} is invalid.")
        if req.server_assignor is not None and req.server_assignor not in self.config.assignors:
            return self._error(
                ErrorCode.unsupported_assignor, f"ServerAssignor {req.server_assignor} is not supported."
            )
        if req.subscribed_topic_regex and (why := regex_error(req.subscribed_topic_regex)):
            return self._error(ErrorCode.invalid_regular_expression, why)
        return None

    def _member(
        self, group: ConsumerGroup, req: HeartbeatRequest, member_id: str, now: int
    ) -> tuple[ConsumerMember | None, HeartbeatResult | None]:
        member = group.members.get(member_id)
        if req.member_epoch == 0:
            if req.instance_id is not None:
                holder = group.static_member(req.instance_id)
                if holder is not None and holder.member_id != member_id:
                    if holder.epoch != LEAVE_STATIC_EPOCH:
                        return None, self._error(
                            ErrorCode.unreleased_instance_id,
                            f"Static member {holder.member_id} with instance id {req.instance_id} "
                            "is present in the group.",
                        )
                    # the static member comes back: it takes over its old assignment and epoch
                    old_id = holder.member_id
                    del group.members[old_id]
                    holder.member_id = member_id
                    holder.epoch = max(holder.previous_epoch, 0)
                    group.members[member_id] = holder
                    if old_id in group.target:
                        group.target[member_id] = group.target.pop(old_id)
                    for tp, owner in list(group.owners.items()):
                        if owner == old_id:
                            group.owners[tp] = member_id
                    return holder, None
            if member is not None:  # a rejoin: what it held is released, it starts over
                group.remove(member_id, now)
            member = group.members[member_id] = ConsumerMember(member_id, req.instance_id)
            group.epoch += 1 if not (req.subscribed_topic_names or req.subscribed_topic_regex) else 0
            return member, None
        if member is None:
            return None, self._error(
                ErrorCode.unknown_member_id, f"Member {member_id} is not a member of group {group.group_id}."
            )
        if req.instance_id is not None and member.instance_id != req.instance_id:
            return None, self._error(
                ErrorCode.fenced_instance_id, f"Instance id {req.instance_id} is fenced."
            )
        if req.member_epoch > member.epoch or (
            req.member_epoch < member.epoch
            and not (
                req.member_epoch == member.previous_epoch
                and req.owned is not None
                and _subset(req.owned, member.assigned)
            )
        ):
            return None, self._error(
                ErrorCode.fenced_member_epoch,
                f"The consumer group member has a smaller or larger member epoch ({req.member_epoch}) "
                f"than the one known by the group coordinator ({member.epoch}).",
            )
        return member, None

    def _leave(self, req: HeartbeatRequest, now: int) -> HeartbeatResult:
        group = self.groups.get(req.group_id)
        if group is None:
            return self._error(ErrorCode.group_id_not_found, f"Group {req.group_id} not found.")
        if req.instance_id is not None:
            member = group.static_member(req.instance_id)
            if member is None:
                return self._error(ErrorCode.unknown_member_id, f"Instance id {req.instance_id} is unknown.")
            if member.member_id != req.member_id:
                return self._error(ErrorCode.fenced_instance_id, f"Instance id {req.instance_id} is fenced.")
        else:
            member = group.members.get(req.member_id)
            if member is None:
                return self._error(
                    ErrorCode.unknown_member_id,
                    f"Member {req.member_id} is not a member of group {group.group_id}.",
                )
        if req.member_epoch == LEAVE_STATIC_EPOCH:
            # keeps its assignment for its session; a rejoin with its instance id takes it over
            member.previous_epoch, member.epoch = member.epoch, LEAVE_STATIC_EPOCH
        else:
            group.remove(member.member_id, now)
        return HeartbeatResult(ErrorCode.none, None, req.member_id, req.member_epoch, 0)

    def next_deadline(self) -> int | None:
        return min((d for g in self.groups.values() if (d := g.next_deadline()) is not None), default=None)

    def tick(self, now: int) -> list[tuple[str, str]]:
        """Fence timed-out members; (group, member) of each."""
        return [(gid, mid) for gid, g in self.groups.items() for mid in g.tick(now)]

    def forget_empty(self, now: int) -> None:
        for gid in [
            g
            for g, grp in self.groups.items()
            if not grp.members
            and grp.empty_since is not None
            and now - grp.empty_since >= self.config.empty_group_retention_ms
        ]:
            del self.groups[gid]


def update_member(group: ConsumerGroup, member: ConsumerMember, req: HeartbeatRequest) -> None:
    """Take what the request changes; a subscription change moves the group epoch."""
    changed = False
    if (
        req.subscribed_topic_names is not None
        and tuple(sorted(req.subscribed_topic_names)) != member.topic_names
    ):
        member.topic_names = tuple(sorted(req.subscribed_topic_names))
        changed = True
    if req.subscribed_topic_regex is not None and (req.subscribed_topic_regex or None) != member.topic_regex:
        member.topic_regex = req.subscribed_topic_regex or None
        changed = True
    if req.server_assignor is not None and req.server_assignor != member.server_assignor:
        member.server_assignor = req.server_assignor
        changed = True
    if req.rebalance_timeout_ms >= 0:
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
    if req.rack_id is not None and (req.rack_id or None) != member.rack_id:
        member.rack_id = req.rack_id or None
        changed = True
    if req.client_id:
        member.client_id = req.client_id
    if req.client_host:
        member.client_host = req.client_host
    if changed:
        group.epoch += 1


_RE2_UNSUPPORTED = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]|\(\?P=")


def regex_error(pattern: str) -> str | None:
    """Why ``pattern`` is not a regular expression Kafka (RE2J) accepts, or None."""
    if _RE2_UNSUPPORTED.search(pattern):
        return (
            f"SubscribedTopicRegex `{pattern}` is not a valid regular expression: "
            "RE2 has no look-around or back-references."
        )
    try:
        re.compile(pattern)
    except re.error as e:
        return f"SubscribedTopicRegex `{pattern}` is not a valid regular expression: {e}."
    return None


def overlaps(a: Assignment, b: Assignment) -> bool:
    return any(a.get(t, frozenset()) & ps for t, ps in b.items())


def _subset(a: Assignment, b: Assignment) -> bool:
    return all(ps <= b.get(t, frozenset()) for t, ps in a.items())


def _intersect(a: Assignment, b: Assignment) -> Assignment:
    return {t: ps & b[t] for t, ps in a.items() if t in b and ps & b[t]}


def _minus(a: Assignment, b: Assignment) -> Assignment:
    return {t: rest for t, ps in a.items() if (rest := ps - b.get(t, frozenset()))}
