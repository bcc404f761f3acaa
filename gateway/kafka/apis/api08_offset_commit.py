"""OffsetCommit (key 8), versions 2-9: a group's committed offsets, into the owners' offset stores.

The offset of partition p of topic t is stored as the group's offset of p's queue, in the offset
store of the broker group that owns that queue, where native RocketMQ groups keep theirs (see
group/owner_offsets.py): the coordinator writes its own queues' offsets and sends the others to
their owners, so they stay put when the coordinator moves. Only the group's coordinator accepts
commits (NOT_COORDINATOR from the others); an owner out of reach gives its partitions
COORDINATOR_NOT_AVAILABLE, which clients retry. Kafka acknowledges a commit once durable: this
broker's offset table is written before the reply; owners keep theirs as for native commits.
Members are checked against the group (generation, member id, static instance id) as Kafka
does; generation -1 commits are accepted for groups without members (admin clients, consumers
that assign partitions themselves).
With an authorizer, READ on the group (else GROUP_AUTHORIZATION_FAILED for every partition) and on each
topic (TOPIC_AUTHORIZATION_FAILED for its partitions).
Leaves out: v0-v1 (gone from Kafka 4 and from kio), retention_time (offsets do not expire),
the committed leader epoch (not stored; OffsetFetch answers -1), transactional commits.
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import partition_errors

log = logging.getLogger("ferrymq.kafka")


@api(8, 2, 9)
async def handle(ctx: RequestContext, request: Any) -> Any:
    topics = [
        (t.name, [(p.partition_index, p.committed_offset, p.committed_metadata) for p in t.partitions])
        for t in request.topics
    ]
    coordinator = ctx.frontend.coordinator
    if not authz.group(ctx, Operation.READ, request.group_id):
        return partition_errors(
            request,
            [
                (name, [(p, ErrorCode.group_authorization_failed) for p, _, _ in parts])
                for name, parts in topics
            ],
        )
    denied = [(name, parts) for name, parts in topics if not authz.topic(ctx, Operation.READ, name)]
    if denied:  # those topics fail, the others are committed
        topics = [t for t in topics if t not in denied]
    if not await coordinator.serves(request.group_id):
        return partition_errors(
            request, [(name, [(p, ErrorCode.not_coordinator) for p, _, _ in parts]) for name, parts in topics]
        )
    # partitions of other broker groups are checked against the topic's route
    await ctx.frontend.cluster.placements(
        {t.name: max((p.partition_index for p in t.partitions), default=-1) for t in request.topics}
    )
    results = [
        (name, [(p, ErrorCode.topic_authorization_failed) for p, _, _ in parts]) for name, parts in denied
    ] + await coordinator.commit_offsets(
        request.group_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
        request.generation_id_or_member_epoch,
        topics,
        ctx.api_version,
        ctx.conn.peer,
    )
    # Kafka acknowledges a commit once it is durable: write the offset table before replying
    try:
        await ctx.frontend.broker.offsets.persist_durable()
    except OSError as exc:  # not durable: Kafka answers a failed offsets append this way (retriable)
        log.error("offset commit of group %s from %s not written: %s", request.group_id, ctx.conn.peer, exc)
        results = [
            (name, [(p, ErrorCode.coordinator_not_available if e == ErrorCode.none else e) for p, e in parts])
            for name, parts in results
        ]
    return partition_errors(request, results)
