"""ListTransactions (key 66), versions 0-1: the transactional ids this broker coordinates.

Filters: states (Kafka's names; unknown ones are echoed back in unknown_state_filters), producer
ids, and v1's minimum running duration (of Ongoing transactions).
With an authorizer, only the transactional ids the principal may DESCRIBE are listed (the rest hidden), as
Kafka.
Leaves out: v2's transactional id pattern.
"""

from __future__ import annotations

import time
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond
from ferrymq.gateway.kafka.txn.state import STATE_LABELS, TxnState


@api(66, 0, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    states = {STATE_LABELS[s] for s in request.state_filters if s in STATE_LABELS}
    unknown = [s for s in request.state_filters if s not in STATE_LABELS]
    pids = set(request.producer_id_filters)
    min_duration = getattr(request, "duration_filter", -1)
    now_ms = int(time.time() * 1000)
    listed = []
    for meta in ctx.frontend.txn_coordinator.states.txns.values():
        if request.state_filters and meta.state not in states:
            continue
        if pids and meta.producer_id not in pids:
            continue
        if not authz.transactional_id(ctx, Operation.DESCRIBE, meta.transactional_id):
            continue
        if min_duration >= 0 and (
            meta.state is not TxnState.ONGOING or now_ms - meta.start_ms < min_duration
        ):
            continue
        listed.append(
            {
                "transactional_id": meta.transactional_id,
                "producer_id": meta.producer_id,
                "transaction_state": meta.state.label,
            }
        )
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": ErrorCode.none,
            "unknown_state_filters": unknown,
            "transaction_states": listed,
        },
    )
