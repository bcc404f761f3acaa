"""OffsetFetch (key 9), versions 1-9: committed offsets of a group (v8+: of several groups).

Offsets come from the offset store of each partition's owner (group/owner_offsets.py), the same
one native RocketMQ groups use, so a Kafka client also sees a native group's progress. Only the
group's coordinator answers (NOT_COORDINATOR from the others); when an owner cannot be reached the
group gets COORDINATOR_NOT_AVAILABLE (v1: its partitions), which clients retry. Null topics (v2+)
mean every partition the group has an offset for, on any broker group. A partition without an
offset answers -1. With require_stable (v7+), a partition with a pending transactional offset
(TxnOffsetCommit of a transaction not yet ended) answers UNSTABLE_OFFSET_COMMIT, which clients retry.
With an authorizer, DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED).
v9 (KIP-848): a member of a consumer-protocol group names itself and its epoch: an unknown member
is UNKNOWN_MEMBER_ID, another epoch STALE_MEMBER_EPOCH (no member id and epoch -1: not checked).
Leaves out: v0 (gone from Kafka 4 and from kio), committed leader epochs (always -1).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.group.coordinator import PartitionOffset
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

UNREACHABLE = ErrorCode.coordinator_not_available


async def _group(
    ctx: RequestContext,
    group_id: str,
    topics: Any,
    has_group_error: bool,
    require_stable: bool,
    member: tuple[str | None, int] = (None, -1),
) -> dict[str, Any]:
    wanted = None if topics is None else [(t.name, list(t.partition_indexes)) for t in topics]
    coordinator = ctx.frontend.coordinator
    results: list[tuple[str, list[PartitionOffset]]] = []
    if not authz.group(ctx, Operation.DESCRIBE, group_id):
        error = ErrorCode.group_authorization_failed
    elif not await coordinator.serves(group_id):
        error = ErrorCode.not_coordinator
    elif (member_error := coordinator.check_fetcher(group_id, *member)) is not None:
        error = member_error
    else:
        error, results = await coordinator.fetch_offsets(group_id, wanted)
    if has_group_error and any(p.error == UNREACHABLE for _, parts in results for p in parts):
        # an owner out of reach: the whole group is retried (clients fail on unknown partition errors)
        error, results = UNREACHABLE, []
    if require_stable:
        results = [(name, [_stable(ctx, group_id, name, p) for p in parts]) for name, parts in results]
    if error != ErrorCode.none and not has_group_error:  # v1: the error goes on every partition
        results = [(name, [PartitionOffset(p, -1, "", error) for p in parts]) for name, parts in wanted or []]
    return {
        "group_id": group_id,
        "error_code": error,
        "topics": [
            {
                "name": name,
                "partitions": [
                    {
                        "partition_index": p.partition,
                        "committed_offset": p.offset,
                        "committed_leader_epoch": -1,
                        "metadata": p.metadata,
                        "error_code": p.error,
                    }
                    for p in parts
                ],
            }
            for name, parts in results
        ],
    }


def _stable(ctx: RequestContext, group_id: str, topic: str, p: PartitionOffset) -> PartitionOffset:
    if p.error == ErrorCode.none and ctx.frontend.txn_coordinator.has_pending(group_id, topic, p.partition):
        return PartitionOffset(p.partition, -1, "", ErrorCode.unstable_offset_commit)
    return p


@api(9, 1, 9)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if ctx.api_version >= 8:
        stable = request.require_stable
        groups = [
            await _group(
                ctx,
                g.group_id,
                g.topics,
                True,
                stable,
                (getattr(g, "member_id", None), getattr(g, "member_epoch", -1)),
            )
            for g in request.groups
        ]
        return respond(request, {"throttle_time": NO_THROTTLE, "groups": groups})
    stable = getattr(request, "require_stable", False)
    one = await _group(ctx, request.group_id, request.topics, ctx.api_version >= 2, stable)
    return respond(request, {"throttle_time": NO_THROTTLE, **one})
