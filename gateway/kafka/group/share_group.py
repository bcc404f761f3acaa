"""Share groups (KIP-932): members, their assignment, share sessions and the records members hold.

Sans-IO: time is passed in; the POP core (core/broker/pop) does the queue work. A share partition
is shared, so every member is assigned every partition of the topics it subscribes to (Kafka's
simple assignor does the same once members outnumber partitions); records are split by acquisition.
A member joins with epoch 0 and its own id (v1), heartbeats with the epoch it was given, and
leaves with -1; its epoch rises when its assignment changes. Members silent for the session
timeout are dropped at the next call. A share session (per group and member, on the broker that
serves the partitions) counts epochs: 0 opens it, -1 closes it, otherwise the next epoch in turn.
``held`` maps each acquired (topic, partition, offset) to the member and the POP receipt, so an
acknowledgement reaches the POP message it names and a leaving member's records are released.
Leaves out: racks, regex subscriptions, group configs (share.* per group), the session cache's
size limit (share.session.cache.size: sessions are per member and dropped with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from ferrymq.core.broker.pop import Receipt
from ferrymq.gateway.kafka.group.consumer_group import HeartbeatResult

Assignment = dict[str, frozenset[int]]
#: (topic, partition, offset)
RecordKey = tuple[str, int, int]


@dataclass(slots=True)
class Held:
    """A record a member acquired: its POP receipt and the deliveries before this one."""

    member_id: str
    topic: str
    receipt: Receipt
    times: int


@dataclass(slots=True)
class ShareMember:
    member_id: str
    epoch: int
    topics: tuple[str, ...]
    client_id: str
    client_host: str
    rack_id: str | None
    last_seen_ms: int
    assignment: Assignment = field(default_factory=dict)


@dataclass(slots=True)
class ShareSession:
    """The partitions a member fetches and the epoch its next request must carry."""

    next_epoch: int
    partitions: set[tuple[str, int]] = field(default_factory=set)


@dataclass(slots=True)
class ShareGroup:
    group_id: str
    epoch: int = 0
    members: dict[str, ShareMember] = field(default_factory=dict)
    sessions: dict[str, ShareSession] = field(default_factory=dict)
    held: dict[RecordKey, Held] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return "Stable" if self.members else "Empty"

    def subscribed_topics(self) -> set[str]:
        return {t for m in self.members.values() for t in m.topics}


class ShareGroups:
    def __init__(self, heartbeat_interval_ms: int, session_timeout_ms: int) -> None:
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.session_timeout_ms = session_timeout_ms
        self.groups: dict[str, ShareGroup] = {}

    def group(self, group_id: str) -> ShareGroup:
        g = self.groups.get(group_id)
        if g is None:
            g = self.groups[group_id] = ShareGroup(group_id)
        return g

    # -- membership
    def heartbeat(
        self,
        group_id: str,
        member_id: str,
        member_epoch: int,
        topics: tuple[str, ...] | None,
        partition_count: dict[str, int],
        now: int,
        client_id: str = "",
        client_host: str = "",
        rack_id: str | None = None,
    ) -> tuple[HeartbeatResult, list[Held]]:
        """One ShareGroupHeartbeat and the records to release (of members that left or went silent);
        ``partition_count`` names the partitions of the subscribed topics (0 or absent: no such topic)."""
        g = self.group(group_id)
        released = self.expire(g, now)
        member = g.members.get(member_id)
        if member_epoch == -1:
            if member is not None:
                released += self._drop(g, member_id)
            return HeartbeatResult(ErrorCode.none, member_id=member_id, member_epoch=-1), released
        if member_epoch == 0:
            if topics is None and member is None:
                error = ErrorCode.invalid_request, "SubscribedTopicNames must be set in first request."
                return HeartbeatResult(*error), released
            if member is None:
                member = g.members[member_id] = ShareMember(
                    member_id, 0, tuple(topics or ()), client_id, client_host, rack_id, now
                )
            elif topics is not None:
                member.topics = tuple(topics)
            member.epoch = 0  # a rejoin is answered its full assignment again
        elif member is None:
            error = ErrorCode.unknown_member_id, f"Member {member_id} is not a member of group {group_id}."
            return HeartbeatResult(*error), released
        elif member_epoch not in (member.epoch, member.epoch - 1):
            return HeartbeatResult(
                ErrorCode.fenced_member_epoch,
                f"The share group member has a smaller member epoch ({member_epoch}) than the one known "
                f"by the group coordinator ({member.epoch}). The member must abandon all its partitions "
                "and rejoin.",
            ), released
        elif topics is not None:
            member.topics = tuple(topics)
        member.last_seen_ms = now
        if rack_id is not None:
            member.rack_id = rack_id
        target = {
            t: frozenset(range(partition_count[t])) for t in member.topics if partition_count.get(t, 0) > 0
        }
        changed = member.epoch == 0 or target != member.assignment
        if changed:
            g.epoch += 1
            member.epoch = g.epoch
            member.assignment = target
        result = HeartbeatResult(
            ErrorCode.none,
            member_id=member_id,
            member_epoch=member.epoch,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            assignment=target if changed else None,
        )
        return result, released

    def expire(self, g: ShareGroup, now: int) -> list[Held]:
        """Drop the members silent for the session timeout; the records they held."""
        late = [m for m, s in g.members.items() if now - s.last_seen_ms > self.session_timeout_ms]
        out: list[Held] = []
        for member_id in late:
            out += self._drop(g, member_id)
        return out

    def _drop(self, g: ShareGroup, member_id: str) -> list[Held]:
        g.members.pop(member_id, None)
        if g.members:
            g.epoch += 1
        return self.close_session(g.group_id, member_id)

    # -- share sessions
    def session(
        self, group_id: str, member_id: str, epoch: int, partitions: list[tuple[str, int]]
    ) -> tuple[ErrorCode, ShareSession | None, list[Held]]:
        """The session a ShareFetch/ShareAcknowledge with ``epoch`` works in, and the records to release:
        epoch 0 opens a new one (the old one's records are released, as Kafka does); -1 answers the
        session (the caller closes it after acknowledging); ``partitions`` join it."""
        g = self.group(group_id)
        if epoch == 0:
            released = self.close_session(group_id, member_id)
            opened = g.sessions[member_id] = ShareSession(1, set(partitions))
            return ErrorCode.none, opened, released
        s = g.sessions.get(member_id)
        if s is None:
            return ErrorCode.share_session_not_found, None, []
        if epoch == -1:
            return ErrorCode.none, s, []
        if epoch != s.next_epoch:
            return ErrorCode.invalid_share_session_epoch, None, []
        s.next_epoch = epoch + 1 if epoch < 0x7FFFFFFF else 1
        s.partitions.update(partitions)
        return ErrorCode.none, s, []

    def close_session(self, group_id: str, member_id: str) -> list[Held]:
        """End the member's session; the records it still holds (to release)."""
        g = self.groups.get(group_id)
        if g is None:
            return []
        g.sessions.pop(member_id, None)
        keys = [k for k, h in g.held.items() if h.member_id == member_id]
        return [g.held.pop(k) for k in keys]

    # -- acquired records
    def acquire(self, group_id: str, key: RecordKey, held: Held) -> None:
        self.group(group_id).held[key] = held

    def take(self, group_id: str, key: RecordKey, member_id: str) -> Held | None:
        """The record ``member_id`` holds at ``key``, no longer held; None if it holds none there."""
        g = self.groups.get(group_id)
        if g is None:
            return None
        h = g.held.get(key)
        if h is None or h.member_id != member_id:
            return None
        del g.held[key]
        return h
