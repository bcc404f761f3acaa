"""AddOffsetsToTxn (key 25), versions 0-4: a consumer group's offsets into a transaction.

Served by the transactional id's coordinator (NOT_COORDINATOR elsewhere); the group is recorded
with the transaction, so its pending TxnOffsetCommit offsets are applied on commit and dropped on
abort. Answered once the new state is on disk.
With an authorizer, WRITE on the transactional id and READ on the group (TRANSACTIONAL_ID_ or
GROUP_AUTHORIZATION_FAILED).
Leaves out: nothing of these versions (v4 only adds TRANSACTION_ABORTABLE, never answered here).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(25, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    txn = ctx.frontend.txn_coordinator
    if not authz.transactional_id(ctx, Operation.WRITE, request.transactional_id):
        error = ErrorCode.transactional_id_authorization_failed
    elif not authz.group(ctx, Operation.READ, request.group_id):
        error = ErrorCode.group_authorization_failed
    elif not request.group_id:
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
