"""EndTxn (key 26), versions 0-5: commit or abort a producer's transaction.

Served by the transactional id's coordinator (NOT_COORDINATOR elsewhere). Answered once
PrepareCommit/PrepareAbort is on disk; the markers are written afterwards, retried until done
(txn/coordinator.py). Errors as the reference table (§2.3): CONCURRENT_TRANSACTIONS while one is
being finished, a repeat of a finished end is NONE, INVALID_TXN_STATE otherwise.
With an authorizer, WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
v5 is served as v4 (producer id and epoch -1): clients send it only to a broker with transaction.version
2 finalized, which this one does not advertise.
Leaves out: transaction version 2 (the epoch bumped at every end).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(26, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    txn = ctx.frontend.txn_coordinator
    if not authz.transactional_id(ctx, Operation.WRITE, request.transactional_id):
        error = ErrorCode.transactional_id_authorization_failed
    elif not await txn.serves(request.transactional_id):
        error = ErrorCode.not_coordinator
    else:
        error = await txn.end(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.committed,
            ctx.api_version,
        )
    return respond(request, {"throttle_time": NO_THROTTLE, "error_code": error})
