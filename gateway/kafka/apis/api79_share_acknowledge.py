"""ShareAcknowledge (key 79), versions 1-2 (Kafka 4.2's): a share group member acknowledges records.

ACCEPT, RELEASE, REJECT, RENEW (v2) and GAP per offset or per range, mapped to POP by
share_delivery.py. The share session's epoch is checked as ShareFetch checks it, except that 0 is
INVALID_SHARE_SESSION_EPOCH (a session is opened by a fetch only); -1 acknowledges and then closes
the session, releasing the records the member still holds. Per partition: INVALID_RECORD_STATE for
an offset the member does not hold (or whose lock ended), INVALID_REQUEST for a malformed batch,
UNKNOWN_TOPIC_ID. READ on the group (else GROUP_AUTHORIZATION_FAILED for the whole request).
Leaves out: node endpoints (one leader per partition here).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka import share_delivery
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api78_share_fetch import (
    acknowledge_request,
    answer,
    by_topic,
    failed,
    named,
    preflight,
)
from ferrymq.gateway.kafka.context import RequestContext


@api(79, 1, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    frontend = ctx.frontend
    broker = frontend.broker
    lock_ms = broker.config.kafka_share_record_lock_duration_ms
    error, message = preflight(ctx, request)
    if error != ErrorCode.none:
        return failed(request, error, message, lock_ms)
    group_id, member_id, epoch = request.group_id, request.member_id, request.share_session_epoch
    if epoch == 0:
        return failed(request, ErrorCode.invalid_share_session_epoch, None, lock_ms)
    shares = frontend.share_groups
    error, session, _ = shares.session(group_id, member_id, epoch, [])
    if session is None:
        return failed(request, error, None, lock_ms)
    names = named(ctx, [t.topic_id for t in request.topics])
    entries, unknown = acknowledge_request(ctx, request, names, _entry)
    if epoch == -1:
        share_delivery.release(broker, group_id, shares.close_session(group_id, member_id))
    return answer(request, lock_ms, by_topic(frontend.cluster.cluster_id, entries, unknown))


def _entry(partition: int, error: ErrorCode, ack_error: ErrorCode, message: str | None) -> dict[str, Any]:
    return {
        "partition_index": partition,
        "error_code": error if error != ErrorCode.none else ack_error,
        "error_message": message,
        "current_leader": {"leader_id": -1, "leader_epoch": -1},
    }
