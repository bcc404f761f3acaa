"""AddOffsetsToTxn (key 25), versions 0-4: a consumer group's offsets into a transaction.

Served by the transactional id's coordinator (NOT_COORDINATOR elsewhere); the group is recorded
with the transaction, so its pending TxnOffsetCommit offsets are applied on commit and dropped on
abort. Answered once the new state is on disk.
Leaves out: nothing of these versions (v4 only adds TRANSACTION_ABORTABLE, never answered here).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(25, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    txn = ctx.frontend.txn_coordinator
    if not request.group_id:
        error = ErrorCode.invalid_group_id
    elif not await txn.serves(request.transactional_id):
        error = ErrorCode.not_coordinator
    else:
        error = await txn.add(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            ctx.api_version,
            groups=[request.group_id],
        )
    return respond(request, {"throttle_time": NO_THROTTLE, "error_code": error})
