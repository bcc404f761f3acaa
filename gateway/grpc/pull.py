"""PullMessage, UpdateOffset, GetOffset, QueryOffset: the 5.x PullConsumer's by-offset consumption of
``apache.rocketmq.v2.MessagingService`` on the store and the group's committed offsets (the same
ones remoting pull consumers and POP commit).

Apache's proxy does not serve these yet; the semantics are the protocol definition's:

- PullMessage reads one queue from ``offset`` (at most 32 messages, TAG or SQL92 filter as
  ReceiveMessage's) and streams a status (OK, or MESSAGE_NOT_FOUND), the messages, then
  ``next_offset``. With nothing to read it waits for an arrival, bounded as a receive's long
  poll. An offset before the queue's oldest or past its end is ILLEGAL_OFFSET, with the offset to
  go on from as ``next_offset``. Nothing is committed: the client calls UpdateOffset.
- UpdateOffset commits the group's offset of a queue (negative: ILLEGAL_OFFSET); GetOffset answers
  it (OFFSET_NOT_FOUND if the group never committed one); QueryOffset answers the queue's first
  (BEGINNING) or next (END) offset, or the first stored at or after ``timestamp`` (TIMESTAMP).

A queue id outside the topic's read queues is BAD_REQUEST; topic and group are checked as
ReceiveMessage checks them, each refusal logged with the peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ferrymq.core.remoting.message import MessageExt, decode_stored_messages
from ferrymq.core.store import GetStatus
from ferrymq.gateway.grpc.consume import (
    MAX_BATCH,
    Filter,
    Refused,
    check_group,
    check_readable,
    polling_ms,
    read_filter,
    refusal,
)
from ferrymq.gateway.grpc.mapping import to_proto
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.route import status

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

#: statuses after which the queue has nothing more to read now (a pull waits for an arrival)
_WAIT = (GetStatus.NO_MESSAGE_IN_QUEUE, GetStatus.NO_MATCHED_MESSAGE, GetStatus.OFFSET_OVERFLOW_ONE)


def _queue(broker: Broker, mq: Any) -> tuple[str, int]:
    topic = mq.topic.name
    tc = check_readable(broker, topic)
    if not 0 <= mq.id < tc.read_queue_nums:
        raise Refused(pb.BAD_REQUEST, f"queue id {mq.id} of {topic} is not in 0..{tc.read_queue_nums - 1}")
    return topic, int(mq.id)


class Pull:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def pull(self, request: Any, remaining_s: float | None, peer: str) -> AsyncIterator[Any]:
        group = request.group.name
        topic = request.message_queue.topic.name
        try:
            check_group(self.broker, group)
            topic, queue_id = _queue(self.broker, request.message_queue)
            if request.offset < 0:
                raise Refused(pb.ILLEGAL_OFFSET, f"offset {request.offset} is negative")
            if request.batch_size <= 0:
                raise Refused(pb.BAD_REQUEST, f"batch size {request.batch_size} must be positive")
            flt = read_filter(self.broker.config, topic, request.filter_expression)
            remaining = None if remaining_s is None else int(remaining_s * 1000)
            polling = polling_ms(self.broker.config, request, remaining)
        except Refused as exc:
            yield spb.PullMessageResponse(status=refusal("PullMessage", peer, exc, group, topic))
            return
        code, messages, next_offset = await self._read(
            topic, queue_id, request.offset, min(request.batch_size, MAX_BATCH), flt, polling
        )
        if code == pb.ILLEGAL_OFFSET:
            reason = f"offset {request.offset} is outside the queue, go on from {next_offset}"
            yield spb.PullMessageResponse(status=status(code, reason))
        elif messages:
            yield spb.PullMessageResponse(status=status(pb.OK, "OK"))
            for msg in messages:
                yield spb.PullMessageResponse(message=to_proto(msg, topic))
            self.broker.stats.on_get(topic, len(messages), sum(len(m.body) for m in messages), group)
        else:
            yield spb.PullMessageResponse(status=status(pb.MESSAGE_NOT_FOUND, "no new message"))
        yield spb.PullMessageResponse(next_offset=next_offset)

    async def _read(
        self, topic: str, queue_id: int, offset: int, max_nums: int, flt: Filter, polling: int
    ) -> tuple[int, list[MessageExt], int]:
        """(code, messages, next offset), waiting up to ``polling`` ms for something to read."""
        store = self.broker.store
        loop = asyncio.get_running_loop()
        deadline = loop.time() + polling / 1000
        while True:
            got = store.get_messages(topic, queue_id, offset, max_nums, tag_codes=flt.tag_codes)
            if got.status == GetStatus.OFFSET_TOO_SMALL:
                return pb.ILLEGAL_OFFSET, [], got.min_offset
            if got.status == GetStatus.OFFSET_OVERFLOW_BADLY:
                return pb.ILLEGAL_OFFSET, [], got.max_offset
            if got.status == GetStatus.FOUND:
                found = [
                    m
                    for buf in store.as_stored_messages(got.buffers, offset, flt.tag_codes)
                    for m in decode_stored_messages(buf)
                    if m.queue_offset >= offset and flt.matches(m)
                ]
                # all filtered out: the client goes on from past them
                return (pb.OK if found else pb.MESSAGE_NOT_FOUND), found[:max_nums], got.next_begin_offset
            if got.status == GetStatus.NO_MATCHED_MESSAGE:
                offset = max(offset, got.next_begin_offset)
            remaining = deadline - loop.time()
            if remaining <= 0 or got.status not in _WAIT or store.max_offset(topic, queue_id) > offset:
                return pb.MESSAGE_NOT_FOUND, [], offset
            await self.broker.hold.hold(topic, queue_id, flt.tag_codes, remaining)

    def update_offset(self, request: Any, peer: str) -> Any:
        group = request.group.name
        try:
            check_group(self.broker, group)
            topic, queue_id = _queue(self.broker, request.message_queue)
            if request.offset < 0:
                raise Refused(pb.ILLEGAL_OFFSET, f"offset {request.offset} is negative")
        except Refused as exc:
            topic = request.message_queue.topic.name
            return spb.UpdateOffsetResponse(status=refusal("UpdateOffset", peer, exc, group, topic))
        self.broker.offsets.commit(group, topic, queue_id, int(request.offset))
        return spb.UpdateOffsetResponse(status=status(pb.OK, "OK"))

    def get_offset(self, request: Any, peer: str) -> Any:
        group = request.group.name
        try:
            check_group(self.broker, group)
            topic, queue_id = _queue(self.broker, request.message_queue)
            offset = self.broker.offsets.query(group, topic, queue_id)
            if offset is None or offset < 0:
                raise Refused(pb.OFFSET_NOT_FOUND, f"group {group} has no offset for {topic}@{queue_id}")
        except Refused as exc:
            topic = request.message_queue.topic.name
            return spb.GetOffsetResponse(status=refusal("GetOffset", peer, exc, group, topic))
        return spb.GetOffsetResponse(status=status(pb.OK, "OK"), offset=offset)

    def query_offset(self, request: Any, peer: str) -> Any:
        store = self.broker.store
        try:
            topic, queue_id = _queue(self.broker, request.message_queue)
            policy = request.query_offset_policy
            if policy == pb.BEGINNING:
                offset = store.min_offset(topic, queue_id)
            elif policy == pb.END:
                offset = store.max_offset(topic, queue_id)
            elif request.HasField("timestamp"):
                offset = store.offset_by_time(topic, queue_id, request.timestamp.ToMilliseconds())
            else:
                raise Refused(pb.BAD_REQUEST, "query offset by TIMESTAMP needs a timestamp")
        except Refused as exc:
            topic = request.message_queue.topic.name
            return spb.QueryOffsetResponse(status=refusal("QueryOffset", peer, exc, "", topic))
        return spb.QueryOffsetResponse(status=status(pb.OK, "OK"), offset=offset)
