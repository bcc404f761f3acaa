"""AddPartitionsToTxn (key 24), versions 0-5: partitions into a producer's transaction.

Served by the transactional id's coordinator (NOT_COORDINATOR elsewhere). Partitions of topics
that do not exist are UNKNOWN_TOPIC_OR_PARTITION and then every other partition is
OPERATION_NOT_ATTEMPTED (nothing is added); otherwise every partition carries the coordinator's
answer (reference §2.3). Answered once the new state is on disk.
v0-3 are the clients' form (one transaction); v4-5 the brokers' batched form (several
transactions, each either added or, with verify_only, checked: NONE for a partition in the
Ongoing transaction, INVALID_TXN_STATE otherwise, KIP-890 part 1).
With an authorizer, WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED everywhere) and on
each topic (TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED).
Leaves out: authorization of v4+ to brokers only (no ACLs are served).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

Wanted = list[tuple[str, list[int]]]


async def _one(
    ctx: RequestContext, tid: str, pid: int, epoch: int, wanted: Wanted, verify_only: bool
) -> list[dict[str, Any]]:
    """One transaction's topic results."""
    txn = ctx.frontend.txn_coordinator
    cluster = ctx.frontend.cluster
    await cluster.placements({name: max(parts, default=-1) for name, parts in wanted})
    partitions = [(name, p) for name, parts in wanted for p in parts]
    unknown = {(name, p) for name, p in partitions if not 0 <= p < cluster.partition_count(name)}
    errors: dict[tuple[str, int], ErrorCode] = {}
    error = ErrorCode.none
    denied = {name for name, _ in wanted if not authz.topic(ctx, Operation.WRITE, name)}
    if not authz.transactional_id(ctx, Operation.WRITE, tid):
        error = ErrorCode.transactional_id_authorization_failed
    elif denied:
        errors = {(name, p): ErrorCode.topic_authorization_failed for name, p in partitions if name in denied}
        error = ErrorCode.operation_not_attempted
    elif not await txn.serves(tid):
        error = ErrorCode.not_coordinator
    elif verify_only:
        errors = txn.states.verify(tid, pid, epoch, partitions)
    elif unknown:
        errors = dict.fromkeys(unknown, ErrorCode.unknown_topic_or_partition)
        error = ErrorCode.operation_not_attempted
    else:
        error = await txn.add(tid, pid, epoch, ctx.api_version, partitions=partitions)
    return [
        {
            "name": name,
            "results_by_partition": [
                {"partition_index": p, "partition_error_code": errors.get((name, p), error)} for p in parts
            ],
        }
        for name, parts in wanted
    ]


@api(24, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if ctx.api_version >= 4:
        results = []
        for t in request.transactions:
            wanted = [(topic.name, list(topic.partitions)) for topic in t.topics]
            topics = await _one(
                ctx, t.transactional_id, t.producer_id, t.producer_epoch, wanted, t.verify_only
            )
            results.append({"transactional_id": t.transactional_id, "topic_results": topics})
        return respond(
            request,
            {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.none, "results_by_transaction": results},
        )
    wanted = [(t.name, list(t.partitions)) for t in request.v3_and_below_topics]
    topics = await _one(
        ctx,
        request.v3_and_below_transactional_id,
        request.v3_and_below_producer_id,
        request.v3_and_below_producer_epoch,
        wanted,
        False,
    )
    return respond(request, {"throttle_time": NO_THROTTLE, "results_by_topic_v3_and_below": topics})
