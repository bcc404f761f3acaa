"""InitProducerId (key 22), versions 0-5: producer ids for idempotent and transactional producers.

Without a transactional id: a fresh id (allocated in persisted blocks, never reused across
restarts) and epoch 0; a producer re-initialising with its id and epoch (KIP-360, v3+) gets the
epoch bumped, or a fresh id once the epoch is exhausted.
With one: served by its transaction coordinator (NOT_COORDINATOR elsewhere; txn/state.py): the
epoch bumped (a new id once exhausted), an Ongoing transaction of the old producer aborted with
the epoch fence (CONCURRENT_TRANSACTIONS, the client retries), a stale v3+ id/epoch fenced
(PRODUCER_FENCED, INVALID_PRODUCER_EPOCH before v4), a timeout above 900 000 ms
INVALID_TRANSACTION_TIMEOUT, an empty id INVALID_REQUEST.
With kafkaTransactionsEnable off, a transactional id is UNSUPPORTED_VERSION before any permission check,
as Kafka's transactional APIs answer a broker that cannot serve them (ensureInterBrokerVersion's
UnsupportedVersionException), never an authorization failure.
With an authorizer, WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); without one,
IDEMPOTENT_WRITE on the cluster or WRITE on some topic (CLUSTER_AUTHORIZATION_FAILED).
Leaves out: v6 (KIP-939 two-phase commit).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.producer_state import MAX_EPOCH
from ferrymq.gateway.kafka.responses import NO_THROTTLE, millis, respond


@api(22, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    producers = ctx.frontend.producers
    pid = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)
    error = ErrorCode.none
    if request.transactional_id is not None:
        txn = ctx.frontend.txn_coordinator
        if not ctx.frontend.broker.config.kafka_transactions_enable:
            error, pid, epoch = ErrorCode.unsupported_version, -1, -1
        elif not authz.transactional_id(ctx, Operation.WRITE, request.transactional_id):
            error, pid, epoch = ErrorCode.transactional_id_authorization_failed, -1, -1
        elif request.transactional_id and not await txn.serves(request.transactional_id):
            error, pid, epoch = ErrorCode.not_coordinator, -1, -1
        else:
            timeout = millis(request.transaction_timeout)
            result = await txn.init_producer(request.transactional_id, timeout, pid, epoch, ctx.api_version)
            error, pid, epoch = result.error, result.producer_id, result.producer_epoch
    elif not authz.idempotent_write(ctx):
        error, pid, epoch = ErrorCode.cluster_authorization_failed, -1, -1
    elif pid >= 0 and producers.known_producer_id(pid) and 0 <= epoch < MAX_EPOCH:
        epoch += 1
    else:
        pid, epoch = producers.new_producer_id(), 0
    return respond(
        request,
        {"throttle_time": NO_THROTTLE, "error_code": error, "producer_id": pid, "producer_epoch": epoch},
    )
