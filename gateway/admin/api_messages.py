"""Messages: by id (offset message id or unique key), by key or time range, by queue and
offset; and sending one. A send runs through the broker's SEND_MESSAGE_V2 processor, so it gets
the same checks, stats and durability (SYNC_FLUSH waits for the disk) as a producer's send.
"""

from __future__ import annotations

import base64
import binascii
import string
import time
import uuid

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import (
    KEY_SEPARATOR,
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    PROPERTY_WAIT_STORE_MSG_OK,
    SYSTEM_PROPERTIES,
    decode_offset_msg_id,
    properties_to_string,
)
from ferrymq.core.store.message_store import MessageStore
from ferrymq.gateway.admin.api_topics import queue_ids
from ferrymq.gateway.admin.broker_calls import call_broker
from ferrymq.gateway.admin.context import (
    ERRORS,
    AdminContext,
    get_ctx,
    not_found,
    peer_of,
    unprocessable,
)
from ferrymq.gateway.admin.message_view import decode_entries
from ferrymq.gateway.admin.models import (
    MAX_OFFSET,
    MessageOut,
    QueueMessagesOut,
    SendMessage,
    SendResultOut,
)

router = APIRouter(tags=["messages"])

ADMIN_PRODUCER_GROUP = "FERRYMQ_ADMIN_PRODUCER"
_HEX = frozenset(string.hexdigits)


def _decode(ctx: AdminContext, buf: bytes | memoryview) -> list[MessageOut]:
    store = ctx.broker.store
    return decode_entries(buf, store.store_host, store.store_port, ctx.batch_decoders)


def _by_offset_id(ctx: AdminContext, msg_id: str) -> MessageOut | None:
    if len(msg_id) not in (32, 56) or not set(msg_id) <= _HEX:
        return None
    try:
        _ip, port, offset = decode_offset_msg_id(msg_id)
    except ValueError:
        return None
    store = ctx.broker.store
    if port != store.store_port:
        return None
    data = store.look_message(offset)
    views = _decode(ctx, data) if data is not None else []
    return views[0] if views else None


def _by_unique_key(ctx: AdminContext, key: str, topics: list[str]) -> MessageOut | None:
    now = int(time.time() * 1000) + 60_000
    for topic in topics:
        for data in ctx.broker.store.query_by_key(topic, key, 1, 0, now, unique=True):
            views = _decode(ctx, data)
            if views:
                return views[0]
    return None


@router.get(
    "/messages/{msg_id}",
    response_model=MessageOut,
    responses=ERRORS,
    summary="A message by offset message id or by unique key (UNIQ_KEY)",
)
async def get_message(
    msg_id: str = Path(min_length=1, max_length=128),
    topic: str | None = Query(None, description="where to look up a unique key (default: every topic)"),
    ctx: AdminContext = Depends(get_ctx),
) -> MessageOut:
    found = find_message(ctx, msg_id, topic)
    if found is None or (topic is not None and found.topic != topic):
        raise not_found(f"message {msg_id!r} not found")
    return found


def find_message(ctx: AdminContext, msg_id: str, topic: str | None) -> MessageOut | None:
    """A message by offset message id, else by unique key (in ``topic``, or every topic)."""
    found = _by_offset_id(ctx, msg_id)
    if found is None:
        topics = [topic] if topic is not None else sorted(ctx.broker.topics.topics)
        found = _by_unique_key(ctx, msg_id, topics)
    return found


def _scan_time(
    store: MessageStore, topic: str, queues: range, begin: int | None, end: int | None, limit: int
) -> list[bytes]:
    """The newest ``limit`` entries per queue inside [begin, end] (begin: from there on)."""
    out: list[bytes] = []
    for qid in queues:
        lo, hi = store.min_offset(topic, qid), store.max_offset(topic, qid)
        if begin is not None:
            start = store.offset_by_time(topic, qid, begin)
        elif end is not None:
            start = store.offset_by_time(topic, qid, end + 1) - limit
        else:
            start = hi - limit
        result = store.get_messages(topic, qid, max(start, lo), limit)
        out.extend(bytes(b) for b in result.buffers)
    return out


@router.get(
    "/messages",
    response_model=list[MessageOut],
    responses=ERRORS,
    summary="Messages of a topic by key (KEYS or unique key), or the newest in a time range",
)
async def search_messages(
    topic: str = Query(min_length=1, max_length=255),
    key: str | None = Query(None, min_length=1, max_length=255),
    begin: int | None = Query(None, ge=0, le=MAX_OFFSET, description="store time from (ms)"),
    end: int | None = Query(None, ge=0, le=MAX_OFFSET, description="store time to (ms)"),
    max: int = Query(32, ge=1, le=256, description="at most this many"),
    ctx: AdminContext = Depends(get_ctx),
) -> list[MessageOut]:
    tc = ctx.topic(topic)
    store = ctx.broker.store
    lo_t = begin if begin is not None else 0
    hi_t = end if end is not None else int(time.time() * 1000) + 60_000
    if key is not None:
        found = store.query_by_key(topic, key, max, lo_t, hi_t)
        found += store.query_by_key(topic, key, max, lo_t, hi_t, unique=True)
    else:
        found = _scan_time(store, topic, queue_ids(tc), begin, end, max)
    seen: set[int] = set()
    views: list[MessageOut] = []
    for data in found:
        for v in _decode(ctx, data):
            if v.commit_log_offset in seen and v.format == "rocketmq":
                continue
            seen.add(v.commit_log_offset)
            if lo_t <= v.store_timestamp <= hi_t:
                views.append(v)
    views.sort(key=lambda v: (v.store_timestamp, v.commit_log_offset), reverse=True)
    return views[:max]


@router.get(
    "/topics/{topic}/queues/{queue_id}/messages",
    response_model=QueueMessagesOut,
    responses=ERRORS,
    summary="Messages of one queue from an offset",
)
async def queue_messages(
    topic: str,
    queue_id: int = Path(ge=0, le=65535),
    offset: int | None = Query(None, ge=0, le=MAX_OFFSET, description="default: the last `count`"),
    count: int = Query(32, ge=1, le=256),
    ctx: AdminContext = Depends(get_ctx),
) -> QueueMessagesOut:
    tc = ctx.topic(topic)
    if queue_id not in queue_ids(tc):
        raise not_found(f"topic {topic!r} has no queue {queue_id}")
    store = ctx.broker.store
    lo, hi = store.min_offset(topic, queue_id), store.max_offset(topic, queue_id)
    start = max(lo, hi - count) if offset is None else max(lo, offset)
    messages: list[MessageOut] = []
    next_offset = start
    if start < hi:
        result = store.get_messages(topic, queue_id, start, count)
        for buf in result.buffers:
            messages.extend(_decode(ctx, buf))
        next_offset = result.next_begin_offset
    return QueueMessagesOut(
        topic=topic,
        queue_id=queue_id,
        min_offset=lo,
        max_offset=hi,
        next_offset=next_offset,
        messages=messages,
    )


_SEND_ERRORS: dict[int, int] = {
    ResponseCode.TOPIC_NOT_EXIST: 404,
    ResponseCode.NO_PERMISSION: 409,
    ResponseCode.SERVICE_NOT_AVAILABLE: 503,
    ResponseCode.FLUSH_DISK_TIMEOUT: 503,
    # SYNC_MASTER without a slave's ack: stored on the master, not confirmed (as a flush timeout)
    ResponseCode.SLAVE_NOT_AVAILABLE: 503,
    ResponseCode.FLUSH_SLAVE_TIMEOUT: 503,
    ResponseCode.SYSTEM_BUSY: 503,
}


@router.post(
    "/topics/{topic}/messages",
    response_model=SendResultOut,
    status_code=201,
    responses={**ERRORS, 503: {"description": "the store cannot take writes now"}},
    summary="Send a message",
)
async def send_message(
    topic: str, body: SendMessage, request: Request, ctx: AdminContext = Depends(get_ctx)
) -> SendResultOut:
    ctx.topic(topic)
    reserved = sorted(set(body.properties) & SYSTEM_PROPERTIES)
    if reserved:
        raise unprocessable(f"reserved property names: {', '.join(reserved)}")
    if body.body_encoding == "base64":
        try:
            payload = base64.b64decode(body.body, validate=True)
        except (binascii.Error, ValueError):
            raise unprocessable("body is not valid base64") from None
    else:
        payload = body.body.encode()
    unique_key = uuid.uuid4().hex.upper()
    props = dict(body.properties)
    if body.tags:
        props[PROPERTY_TAGS] = body.tags
    if body.keys:
        props[PROPERTY_KEYS] = KEY_SEPARATOR.join(body.keys)
    props[PROPERTY_UNIQ_KEY] = unique_key
    props[PROPERTY_WAIT_STORE_MSG_OK] = "true"
    cmd = RemotingCommand(
        code=RequestCode.SEND_MESSAGE_V2,
        ext_fields={
            "a": ADMIN_PRODUCER_GROUP,
            "b": topic,
            "c": "",
            "d": "0",
            "e": str(body.queue_id if body.queue_id is not None else -1),
            "f": "0",
            "g": str(int(time.time() * 1000)),
            "h": "0",
            "i": properties_to_string(props),
            "j": "0",
            "k": "false",
        },
        body=payload,
    )
    resp = await call_broker(ctx.broker, cmd, peer_of(request))
    if resp.code != ResponseCode.SUCCESS:
        status = _SEND_ERRORS.get(resp.code, 422)
        raise HTTPException(status, resp.remark or f"refused with code {resp.code}")
    ext = resp.ext_fields
    return SendResultOut(
        msg_id=ext["msgId"],
        unique_key=unique_key,
        topic=topic,
        queue_id=int(ext["queueId"]),
        queue_offset=int(ext["queueOffset"]),
    )
