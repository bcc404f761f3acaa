"""GET /api/messages/{msg_id}/trace: where a message was stored and who consumed it when, from
this broker's store and the trace records RocketMQ clients with trace on wrote to
RMQ_SYS_TRACE_TOPIC (decoded in core/broker/message_trace.py). Traces written to a custom trace
topic are not looked at."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from ferrymq.core.broker.message_trace import PubRecord, SubAfterRecord, SubBeforeRecord, find_trace
from ferrymq.gateway.admin.api_messages import find_message
from ferrymq.gateway.admin.context import ERRORS, AdminContext, get_ctx, not_found
from ferrymq.gateway.admin.models import (
    MessageTraceOut,
    TraceConsumeOut,
    TracePublishOut,
    TraceStoreOut,
)

router = APIRouter(tags=["messages"])


@router.get(
    "/messages/{msg_id}/trace",
    response_model=MessageTraceOut,
    responses=ERRORS,
    summary="A message's trace: where it was stored, which groups consumed it and when",
)
async def message_trace(
    msg_id: str = Path(min_length=1, max_length=128),
    ctx: AdminContext = Depends(get_ctx),
) -> MessageTraceOut:
    found = find_message(ctx, msg_id, None)
    ids = {msg_id}
    if found is not None and found.unique_key:
        ids.add(found.unique_key)
    records = [r for i in sorted(ids) for r in find_trace(ctx.broker.store, i)]
    if found is None and not records:
        raise not_found(f"message {msg_id!r} not found, and no trace of it")
    stored = None
    if found is not None:
        stored = TraceStoreOut(
            broker=ctx.broker.config.broker_name,
            store_host=found.store_host,
            topic=found.topic,
            queue_id=found.queue_id,
            queue_offset=found.queue_offset,
            commit_log_offset=found.commit_log_offset,
            store_timestamp=found.store_timestamp,
        )
    after = {(r.request_id, r.msg_id): r for r in records if isinstance(r, SubAfterRecord)}
    consumed = []
    for r in records:
        if not isinstance(r, SubBeforeRecord):
            continue
        a = after.get((r.request_id, r.msg_id))
        consumed.append(
            TraceConsumeOut(
                group=r.group,
                request_id=r.request_id,
                begin_timestamp=r.timestamp,
                end_timestamp=None if a is None else (a.timestamp or r.timestamp + a.cost_ms),
                cost_ms=None if a is None else a.cost_ms,
                success=None if a is None else a.success,
                retry_times=r.retry_times,
            )
        )
    published = [
        TracePublishOut(
            producer_group=r.group,
            topic=r.topic,
            timestamp=r.timestamp,
            cost_ms=r.cost_ms,
            success=r.success,
            store_host=r.store_host,
            offset_msg_id=r.offset_msg_id,
            client_host=r.client_host,
        )
        for r in records
        if isinstance(r, PubRecord)
    ]
    return MessageTraceOut(
        msg_id=msg_id,
        stored=stored,
        published=published,
        consumed=sorted(consumed, key=lambda c: c.begin_timestamp),
        trace_records=len(records),
    )
