"""DescribeTransactions (key 65), version 0: the state of transactional ids (kafka-transactions.sh).

Each id this broker coordinates is described (state, timeout, start time, producer id and
epoch, the partitions in the open transaction); an id another broker coordinates is
NOT_COORDINATOR, an unknown one TRANSACTIONAL_ID_NOT_FOUND.
With an authorizer, DESCRIBE on the transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and
partitions of topics the principal may not DESCRIBE are left out of the answer, as Kafka.
Leaves out: nothing.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
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
        denied = not authz.transactional_id(ctx, Operation.DESCRIBE, tid)
        meta = txn.producer_of(tid) if not denied and await txn.serves(tid) else None
        error = ErrorCode.none
        if denied:
            error = ErrorCode.transactional_id_authorization_failed
        elif meta is None:
            error = (
                ErrorCode.transactional_id_not_found
                if txn.cluster.coordinates(tid)
                else ErrorCode.not_coordinator
            )
        topics: dict[str, list[int]] = {}
        for t, p in sorted(meta.partitions if meta else ()):
            if authz.topic(ctx, Operation.DESCRIBE, t):
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
