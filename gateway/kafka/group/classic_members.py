"""Classic-protocol members inside a KIP-848 consumer group (Kafka 4's mixed groups), sans-IO.

During an online upgrade a group holds members of both protocols. The classic ones keep sending
JoinGroup, SyncGroup, Heartbeat and LeaveGroup; the coordinator answers them from the consumer
group (Kafka's ``classicGroupJoinToConsumerGroup`` and friends):

- JoinGroup updates the member's subscription from its "consumer" protocol metadata and takes
  the partitions it says it owns (subscription v1+; eager clients own none when they rejoin) as
  its acknowledgement of revocations; it is answered at once, the member a follower (no member
  list), the generation its member epoch;
- SyncGroup hands out the member's current assignment, encoded as a "consumer" assignment;
- Heartbeat answers REBALANCE_IN_PROGRESS while the member is not at the group's assignment
  epoch with everything it should hold, so it rejoins (and thereby revokes) until it is;
- LeaveGroup removes it. Its session is the one it joined with.

``convert`` turns a classic group whose members all speak the "consumer" protocol type into a
consumer group keeping every member's generation and assignment (the upgrade half of
``group.consumer.migration.policy``); ``downgrade`` turns a consumer group whose last
consumer-protocol member left (left, or was fenced by its session or rebalance timeout) while
classic members remain back into a classic group (the downgrade half, Kafka's
``convertToClassicGroup``): its members keep their target assignment at the group's generation,
and a rebalance makes them rejoin, the classic leader assigning client-side from then on.
Left out: static classic members' replacement (and with it Kafka's downgrade when a classic
static member replaces the last consumer-protocol one).
"""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.group.consumer_group import (
    ClassicMeta,
    ConsumerGroup,
    ConsumerGroupConfig,
    ConsumerMember,
    HeartbeatRequest,
    MemberState,
    TopicCatalog,
    overlaps,
    update_member,
)
from ferrymq.gateway.kafka.group.consumer_protocol import (
    assigned_partitions,
    encode_assignment,
    owned_partitions,
    subscribed_topics,
    subscription_rack,
)
from ferrymq.gateway.kafka.group.state import (
    CONSUMER_PROTOCOL_TYPE,
    Group,
    JoinRequest,
    JoinResult,
    Member,
    SyncRequest,
    SyncResult,
)


def join(group: ConsumerGroup, req: JoinRequest, catalog: TopicCatalog, now: int) -> JoinResult:
    if req.protocol_type != CONSUMER_PROTOCOL_TYPE or not req.protocols:
        return JoinResult(ErrorCode.inconsistent_group_protocol, req.member_id)
    member_id = req.member_id
    if not member_id:
        new_id = f"{req.client_id}-{uuid.uuid4()}"
        if req.require_known_member_id:
            return JoinResult(ErrorCode.member_id_required, new_id)
        member_id = new_id
    member = group.members.get(member_id)
    if member is None:
        member = group.members[member_id] = ConsumerMember(member_id, req.group_instance_id)
        group.epoch += 1
    elif member.classic is None:
        return JoinResult(ErrorCode.inconsistent_group_protocol, member_id)
    name, metadata = req.protocols[0]
    topics = tuple(subscribed_topics(metadata) or ())
    member.classic = ClassicMeta(req.session_timeout_ms, req.protocol_type, req.protocols)
    update_member(
        group,
        member,
        HeartbeatRequest(
            group.group_id,
            member_id,
            member.epoch,
            rack_id=subscription_rack(metadata),
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            subscribed_topic_names=topics,
            client_id=req.client_id,
            client_host=req.client_host,
        ),
    )
    member.session_deadline = now + req.session_timeout_ms
    group.empty_since = None
    group.refresh_target(catalog)
    owned = owned_partitions(metadata)
    group.reconcile(member, owned, now)
    if member.state == MemberState.UNREVOKED_PARTITIONS and not overlaps(owned, member.pending_revocation):
        group.reconcile(member, owned, now)  # its rejoin already gave those partitions up
    if member.state != MemberState.UNREVOKED_PARTITIONS:
        member.rebalance_deadline = None  # it rejoined as asked (a revocation keeps its own deadline)
    return JoinResult(
        ErrorCode.none,
        member_id,
        generation_id=member.epoch,
        protocol_type=CONSUMER_PROTOCOL_TYPE,
        protocol_name=name,
        leader="",
    )


def _classic_member(
    group: ConsumerGroup, member_id: str, generation_id: int
) -> tuple[ConsumerMember | None, ErrorCode]:
    member = group.members.get(member_id)
    if member is None or member.classic is None:
        return None, ErrorCode.unknown_member_id
    if generation_id != member.epoch:
        return None, ErrorCode.illegal_generation
    return member, ErrorCode.none


def sync(group: ConsumerGroup, req: SyncRequest, now: int) -> SyncResult:
    member, error = _classic_member(group, req.member_id, req.generation_id)
    if member is None or member.classic is None:
        return SyncResult(error)
    member.session_deadline = now + member.classic.session_timeout_ms
    return SyncResult(
        ErrorCode.none,
        CONSUMER_PROTOCOL_TYPE,
        member.classic.protocol_name,
        encode_assignment(member.assigned),
    )


def heartbeat(
    group: ConsumerGroup, member_id: str, generation_id: int, catalog: TopicCatalog, now: int
) -> ErrorCode:
    member, error = _classic_member(group, member_id, generation_id)
    if member is None or member.classic is None:
        return error
    member.session_deadline = now + member.classic.session_timeout_ms
    group.refresh_target(catalog)
    if member.epoch != group.assignment_epoch or member.state != MemberState.STABLE:
        if member.rebalance_deadline is None:  # it must rejoin within its rebalance timeout
            member.rebalance_deadline = now + member.rebalance_timeout_ms
        return ErrorCode.rebalance_in_progress
    return ErrorCode.none


def leave(group: ConsumerGroup, member_id: str, now: int) -> ErrorCode:
    member = group.members.get(member_id)
    if member is None or member.classic is None:
        return ErrorCode.unknown_member_id
    group.remove(member_id, now)
    return ErrorCode.none


def convertible(classic: Group) -> bool:
    """Whether a classic group can become a consumer group with its members (all "consumer")."""
    return classic.protocol_type == CONSUMER_PROTOCOL_TYPE and all(
        m.protocol_type == CONSUMER_PROTOCOL_TYPE for m in classic.members.values()
    )


def convert(classic: Group, config: ConsumerGroupConfig, now: int) -> ConsumerGroup:
    """A consumer group holding the classic group's members at their generation and assignment."""
    group = ConsumerGroup(classic.group_id, config)
    generation = classic.generation_id
    group.epoch = group.assignment_epoch = generation
    for m in classic.members.values():
        metadata = m.metadata(classic.protocol_name)
        assigned = {t: frozenset(ps) for t, ps in (assigned_partitions(m.assignment) or {}).items() if ps}
        member = ConsumerMember(
            m.member_id,
            m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            topic_names=tuple(sorted(subscribed_topics(metadata) or ())),
            epoch=generation,
            assigned=assigned,
            session_deadline=now + m.session_timeout_ms,
            classic=ClassicMeta(m.session_timeout_ms, m.protocol_type, m.protocols),
        )
        group.members[m.member_id] = member
        group.target[m.member_id] = assigned
        for t, ps in assigned.items():
            for p in ps:
                group.owners.setdefault((t, p), m.member_id)
    return group


def downgradable(group: ConsumerGroup) -> bool:
    """Whether the group holds members and they all speak the classic protocol (its last
    consumer-protocol member has gone): Kafka's ``validateOnlineDowngradeWithFencedMember``
    without the policy, which the caller checks."""
    return bool(group.members) and all(m.classic is not None for m in group.members.values())


def downgrade(group: ConsumerGroup, classic: Group, now: int) -> None:
    """Move the consumer group's (classic) members into ``classic``, a new empty classic group,
    at the generation of the group's target assignment, each with its target as its assignment;
    the classic group then rebalances."""
    members = [
        Member(
            m.member_id,
            m.instance_id,
            m.client_id,
            m.client_host,
            m.rebalance_timeout_ms,
            m.classic.session_timeout_ms,
            CONSUMER_PROTOCOL_TYPE,
            m.classic.protocols,
            assignment=encode_assignment(group.target.get(m.member_id, {})),
        )
        for m in group.members.values()
        if m.classic is not None
    ]
    classic.adopt(members, group.assignment_epoch, now)
