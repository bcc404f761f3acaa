"""InitProducerId (key 22), versions 0-5: producer ids for idempotent producers.

A new producer gets a fresh id (allocated in persisted blocks, never reused across restarts)
and epoch 0; a producer re-initialising with its id and epoch (KIP-360, v3+) gets the epoch
bumped, or a fresh id once the epoch is exhausted.
Leaves out: transactions (a transactional id is TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.producer_state import MAX_EPOCH
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(22, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    producers = ctx.frontend.producers
    if request.transactional_id is not None:
        return respond(
            request,
            {
                "throttle_time": NO_THROTTLE,
                "error_code": ErrorCode.transactional_id_authorization_failed,
                "producer_id": -1,
                "producer_epoch": -1,
            },
        )
    pid = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)
    if pid >= 0 and producers.known_producer_id(pid) and 0 <= epoch < MAX_EPOCH:
        epoch += 1
    else:
        pid, epoch = producers.new_producer_id(), 0
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": ErrorCode.none,
            "producer_id": pid,
            "producer_epoch": epoch,
        },
    )
