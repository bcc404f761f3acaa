"""DescribeTransactions (key 65), version 0: the state of transactional ids (kafka-transactions.sh).

Each id this broker coordinates is described (state, timeout, start time, producer id and
epoch, the partitions in the open transaction); an id another broker coordinates is
NOT_COORDINATOR, an unknown one TRANSACTIONAL_ID_NOT_FOUND.
Leaves out: authorization (none is served).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


def _at(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(max(ms, 0) / 1000, tz=datetime.UTC)


@api(65, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    txn = ctx.frontend.txn_coordinator
    states = []
    for tid in request.transactional_ids:
        meta = txn.producer_of(tid) if await txn.serves(tid) else None
        error = ErrorCode.none
        if meta is None:
            error = (
                ErrorCode.transactional_id_not_found
                if txn.cluster.coordinates(tid)
                else ErrorCode.not_coordinator
            )
        topics: dict[str, list[int]] = {}
        for t, p in sorted(meta.partitions if meta else ()):
            topics.setdefault(t, []).append(p)
        states.append(
            {
                "error_code": error,
                "transactional_id": tid,
                "transaction_state": meta.state.label if meta else "",
                "transaction_timeout": datetime.timedelta(milliseconds=meta.timeout_ms if meta else 0),
                "transaction_start_time": _at(meta.start_ms if meta else -1),
                "producer_id": meta.producer_id if meta else -1,
                "producer_epoch": meta.producer_epoch if meta else -1,
                "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
            }
        )
    return respond(request, {"throttle_time": NO_THROTTLE, "transaction_states": states})
