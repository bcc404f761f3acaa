"""SQL92 subscriptions on pull: which predicate a pull filters by, and the filtered read.

As the Java broker's ``PullMessageProcessor`` and ``ExpressionMessageFilter``: a pull with its own
subscription (sysFlag bit 4) has it compiled (SUBSCRIPTION_PARSE_FAILED if it does not); a pull
by heartbeat uses the group's registered subscription, whose compiled form must exist
(FILTER_DATA_NOT_EXIST when the registered expression does not compile); with
enablePropertyFilter off any SQL92 pull is SYSTEM_ERROR. TAG subscriptions never reach this
module: their pulls keep the store's tag-hash scan and read no property.

The filtered read takes the store's messages (batch entries converted to one stored message
per record, so Kafka records are filtered by their headers), keeps those the predicate
accepts, and still moves the next offset past the rest; it scans at most maxFilterMessageCount
queue units per pull, as the tag scan does. Retry topics are subscribed by TAG ``*``, so
redelivered messages are not filtered again (RocketMQ's filterSupportRetry=false).
Leaves out: the bloom-filter bitmap (enableCalcFilterBitMap) and class filters.
"""

from __future__ import annotations

from ferrymq.core.filter.sql92 import Predicate, SqlSyntaxError, compiled
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.headers import BadRequest
from ferrymq.core.remoting.message import stored_properties
from ferrymq.core.remoting.subscription import SQL92, SubscriptionData
from ferrymq.core.store import GetResult, GetStatus
from ferrymq.core.store.message_store import MessageStore

NOT_SUPPORTED = "The broker does not support consumer to filter message by "
#: queue units read per step of a filtered pull (the scan budget bounds the whole pull)
_STEP = 64


def refusal(expression_type: str, enabled: bool) -> str | None:
    """The SYSTEM_ERROR remark for a non-TAG subscription the broker will not filter by."""
    return None if enabled else NOT_SUPPORTED + expression_type


def check(sub: SubscriptionData) -> str | None:
    """CHECK_CLIENT_CONFIG's verdict on a non-TAG subscription: None, or the parser's message."""
    if sub.expression_type != SQL92:
        return f"unknown filter expression type {sub.expression_type!r}"
    try:
        compiled(sub.sub_string)
    except SqlSyntaxError as exc:
        return str(exc)
    return None


def predicate_for(sub: SubscriptionData, registered: bool, enabled: bool) -> Predicate | None:
    """The predicate a pull filters by (None for TAG); BadRequest with RocketMQ's code if none.

    ``registered``: the subscription came from heartbeats (its compiled form is the "filter
    data"), not with the pull itself.
    """
    if sub.is_tag_type:
        return None
    predicate: Predicate | None = None
    if sub.expression_type == SQL92:
        try:
            predicate = compiled(sub.sub_string)
        except SqlSyntaxError as exc:
            if not registered:
                raise BadRequest(
                    f"parse the consumer's subscription failed: {exc}", ResponseCode.SUBSCRIPTION_PARSE_FAILED
                ) from None
    if predicate is None:
        if registered:
            raise BadRequest(
                "The broker's consumer filter data is not exist!Your expression may be wrong!",
                ResponseCode.FILTER_DATA_NOT_EXIST,
            )
        raise BadRequest("parse the consumer's subscription failed", ResponseCode.SUBSCRIPTION_PARSE_FAILED)
    remark = refusal(sub.expression_type, enabled)
    if remark:
        raise BadRequest(remark, ResponseCode.SYSTEM_ERROR)
    return predicate


def get_matching(
    store: MessageStore,
    topic: str,
    queue_id: int,
    offset: int,
    max_nums: int,
    max_bytes: int,
    predicate: Predicate,
) -> GetResult:
    """Up to ``max_nums`` stored messages from ``offset`` that ``predicate`` accepts, within
    ``max_bytes`` (the first always), as RocketMQ clients read them. The result's buffers are
    stored messages already (no batch entries); ``next_begin_offset`` is past every message
    looked at, taken or not."""
    budget = store.config.max_filter_message_count
    cursor = offset
    out: list[memoryview] = []
    found = total = 0
    first: GetResult | None = None
    while found < max_nums and budget > 0:
        step = store.get_messages(topic, queue_id, cursor, min(budget, max(max_nums, _STEP)), max_bytes)
        if first is None:
            first = step
            if step.status not in (GetStatus.FOUND, GetStatus.NO_MATCHED_MESSAGE):
                return step  # nothing there to filter: the caller maps the status as for tags
        if step.status != GetStatus.FOUND:
            cursor = (
                max(cursor, step.next_begin_offset) if step.status == GetStatus.NO_MATCHED_MESSAGE else cursor
            )
            break
        budget -= step.next_begin_offset - cursor
        stop = None  # queue offset of the first message not taken, when the step is cut short
        for stored in store.as_stored_messages(step.buffers, cursor):
            buf = memoryview(stored)
            pos, n = 0, len(buf)
            while pos < n and stop is None:
                size, queue_offset, props = stored_properties(buf, pos)
                if predicate(props):
                    if found >= max_nums or (found and total + size > max_bytes):
                        stop = queue_offset
                        break
                    out.append(buf[pos : pos + size])
                    found += 1
                    total += size
                pos += size
        cursor = step.next_begin_offset if stop is None else stop
        if stop is not None:
            break
    assert first is not None
    status = GetStatus.FOUND if found else GetStatus.NO_MATCHED_MESSAGE
    return GetResult(status, cursor, first.min_offset, first.max_offset, out, found, total)
