"""AddPartitionsToTxn (key 24), versions 0-3: partitions into a producer's transaction.

Served by the transactional id's coordinator (NOT_COORDINATOR elsewhere). Partitions of topics
that do not exist are UNKNOWN_TOPIC_OR_PARTITION and then every other partition is
OPERATION_NOT_ATTEMPTED (nothing is added); otherwise every partition carries the coordinator's
answer (reference §2.3). Answered once the new state is on disk.
Leaves out: v4-v5 (broker-to-broker batched verification; clients never send them).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(24, 0, 3)
async def handle(ctx: RequestContext, request: Any) -> Any:
    tid = request.v3_and_below_transactional_id
    wanted = [(t.name, list(t.partitions)) for t in request.v3_and_below_topics]
    txn = ctx.frontend.txn_coordinator
    cluster = ctx.frontend.cluster
    await cluster.placements({name: max(parts, default=-1) for name, parts in wanted})
    unknown = {
        (name, p) for name, parts in wanted for p in parts if not 0 <= p < cluster.partition_count(name)
    }
    errors: dict[tuple[str, int], ErrorCode]
    if not await txn.serves(tid):
        errors = {}
        error = ErrorCode.not_coordinator
    elif unknown:
        errors = dict.fromkeys(unknown, ErrorCode.unknown_topic_or_partition)
        error = ErrorCode.operation_not_attempted
    else:
        errors = {}
        partitions = [(name, p) for name, parts in wanted for p in parts]
        error = await txn.add(
            tid,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            ctx.api_version,
            partitions=partitions,
        )
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "results_by_topic_v3_and_below": [
                {
                    "name": name,
                    "results_by_partition": [
                        {"partition_index": p, "partition_error_code": errors.get((name, p), error)}
                        for p in parts
                    ],
                }
                for name, parts in wanted
            ],
        },
    )
