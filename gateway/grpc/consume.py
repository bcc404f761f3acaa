"""ReceiveMessage, AckMessage, ChangeInvisibleDuration, ForwardMessageToDeadLetterQueue: the
SimpleConsumer/PushConsumer side of ``apache.rocketmq.v2.MessagingService``, on core/broker/pop,
so a group's in-flight messages are the same whether popped over remoting or gRPC.

What the proxy's activities do, read for facts:

- ReceiveMessage streams one status (OK, or MESSAGE_NOT_FOUND "no new message"), then each message,
  then the delivery timestamp. It pops every queue of the topic (the proxy's broker-acting queue
  -1), FIFO (one message group per queue at a time) when the group consumes orderly, new groups
  from ConsumeInitMode.MAX. Long polling is the request's ``long_polling_timeout`` (else what the
  deadline leaves), clamped to grpcClientConsumer{Min,Max}LongPollingTimeoutMillis and the
  deadline: too little time left is ILLEGAL_POLLING_TIME. A receive that finds nothing parks only
  if its connection has fewer than grpcMaxParkedReceivesPerConnection parked (and the listener
  fewer than ``MAX_PARKED_RECEIVES``); else it is TOO_MANY_REQUESTS, logged with the peer. The
  invisible duration must be within minInvisibleTimeMillsForRecv..12 h (ILLEGAL_INVISIBLE_TIME);
  ``auto_renew`` without one takes the proxy's 60 s default (ferrymq does not renew: the client
  acks or changes in time).
  Filters: TAG (the pop filters by tag hash, exact tags re-checked) and SQL92 (evaluated on the
  popped messages when enablePropertyFilter is on); messages that do not match are acked, as the
  proxy's PopMessageResultFilter does. A bad expression is ILLEGAL_FILTER_EXPRESSION.
- A message carries ``receipt_handle`` (the POP extraInfo plus its commit-log offset, as the
  proxy's ``createHandle``), ``invisible_duration`` and ``delivery_attempt`` (reconsume times +
  1); the rest is mapping.py's ``to_proto``. A message a client fails to take is made visible
  again after 1 s (the proxy's NACK_INVISIBLE_TIME).
- AckMessage answers per entry (OK, or INVALID_RECEIPT_HANDLE for a handle that does not parse
  or has expired) and overall the one code, or MULTIPLE_RESULTS. Acking a spent but unexpired
  handle is OK, as the broker's ack is.
- ChangeInvisibleDuration answers the new receipt handle; ForwardMessageToDeadLetterQueue acks
  and puts a copy in %DLQ%group. A spent handle is INVALID_RECEIPT_HANDLE for both.

Unknown topics are TOPIC_NOT_FOUND, unknown groups (autoCreateSubscriptionGroup off)
CONSUMER_GROUP_NOT_FOUND, illegal names ILLEGAL_TOPIC / ILLEGAL_CONSUMER_GROUP; every refusal is
logged with the peer. Left out: attempt ids (a retried receive pops afresh), the proxy's
receipt-handle renewal, lite topics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ferrymq.core.broker.pop import INIT_MAX, PoppedMessage, PopRequest, Receipt
from ferrymq.core.broker.subscription_group import validate_group
from ferrymq.core.broker.topic_config import validate_topic
from ferrymq.core.filter.sql92 import Predicate, SqlSyntaxError, compiled
from ferrymq.core.remoting.message import MessageExt, decode_stored_message
from ferrymq.core.remoting.route import PERM_READ
from ferrymq.core.remoting.subscription import SubscriptionData
from ferrymq.gateway.grpc.mapping import MessageRefused as Refused
from ferrymq.gateway.grpc.mapping import to_proto
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.route import status

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.core.broker.topic_config import TopicConfig
    from ferrymq.core.config import BrokerConfig

log = logging.getLogger("ferrymq.grpc")

#: the proxy's MAX_MSG_NUMS_FOR_POP_REQUEST, maxInvisibleTimeMills, defaultInvisibleTimeMills
MAX_BATCH = 32
MAX_INVISIBLE_MS = 12 * 3600 * 1000
DEFAULT_INVISIBLE_MS = 60_000
NACK_INVISIBLE_MS = 1_000
SPENT = "the receipt handle is spent: acked, revived or changed"
#: answered this long before the call's deadline, so the answer is not lost to it
DEADLINE_MARGIN_MS = 200
#: parked receives of the whole listener: half of frontend.MAX_CONCURRENT_RPCS, so other calls
#: always find room
MAX_PARKED_RECEIVES = 2048


@dataclass(slots=True)
class Filter:
    """A receive's filter expression: tag hashes for the pop, and the exact check of what it got."""

    tag_codes: frozenset[int] | None
    tags: frozenset[str] | None = None
    predicate: Predicate | None = None

    def matches(self, msg: MessageExt) -> bool:
        if self.tags is not None and msg.tags not in self.tags:
            return False
        return self.predicate is None or self.predicate(msg.properties)


def check_readable(broker: Broker, topic: str) -> TopicConfig:
    """The topic's config, or Refused: ILLEGAL_TOPIC, TOPIC_NOT_FOUND, FORBIDDEN (not readable)."""
    reason = validate_topic(topic)
    if reason:
        raise Refused(pb.ILLEGAL_TOPIC, reason)
    tc = broker.topics.get(topic)
    if tc is None:
        raise Refused(pb.TOPIC_NOT_FOUND, f"topic {topic} not found")
    if not tc.perm & PERM_READ:
        raise Refused(pb.FORBIDDEN, f"topic {topic} is not readable")
    return tc


def check_group(broker: Broker, group: str) -> None:
    """Refused: ILLEGAL_CONSUMER_GROUP, CONSUMER_GROUP_NOT_FOUND, FORBIDDEN (consumeEnable off)."""
    reason = validate_group(group)
    if reason:
        raise Refused(pb.ILLEGAL_CONSUMER_GROUP, reason)
    cfg = broker.subscription_groups.find(group)
    if cfg is None:
        raise Refused(pb.CONSUMER_GROUP_NOT_FOUND, f"consumer group {group} not found")
    if not cfg.consume_enable:
        raise Refused(pb.FORBIDDEN, f"consumer group {group} may not consume")


def millis(duration: Any) -> int:
    return int(duration.seconds) * 1000 + int(duration.nanos) // 1_000_000


def polling_ms(cfg: BrokerConfig, request: Any, remaining_ms: int | None) -> int:
    """How long a receive or pull may wait: the request's long polling timeout (else half what the
    deadline leaves), clamped to the configured bounds and to the deadline; ILLEGAL_POLLING_TIME
    when too little of the deadline is left."""
    lo = cfg.grpc_client_consumer_min_long_polling_timeout_millis
    hi = cfg.grpc_client_consumer_max_long_polling_timeout_millis
    if request.HasField("long_polling_timeout"):
        polling = millis(request.long_polling_timeout)
    else:
        polling = hi if remaining_ms is None else remaining_ms // 2
    polling = min(max(polling, lo), hi)
    if remaining_ms is not None and polling > remaining_ms - DEADLINE_MARGIN_MS:
        if remaining_ms - DEADLINE_MARGIN_MS < lo:
            raise Refused(
                pb.ILLEGAL_POLLING_TIME,
                "The deadline time remaining is not enough for polling, please check network condition",
            )
        polling = remaining_ms - DEADLINE_MARGIN_MS
    return polling


def read_filter(cfg: BrokerConfig, topic: str, expression: Any) -> Filter:
    """A request's ``FilterExpression``; ILLEGAL_FILTER_EXPRESSION if it cannot be evaluated."""
    text = expression.expression
    if expression.type == pb.SQL:
        if not cfg.enable_property_filter:
            raise Refused(pb.ILLEGAL_FILTER_EXPRESSION, "SQL92 filtering is off (enablePropertyFilter)")
        try:
            return Filter(None, predicate=compiled(text))
        except SqlSyntaxError as exc:
            raise Refused(pb.ILLEGAL_FILTER_EXPRESSION, str(exc)) from None
    if expression.type not in (pb.FILTER_TYPE_UNSPECIFIED, pb.TAG):
        raise Refused(pb.ILLEGAL_FILTER_EXPRESSION, f"filter type {expression.type} is not supported")
    sub = SubscriptionData.build(topic, text)
    return Filter(sub.tag_codes(), frozenset(sub.tags_set) if sub.tags_set else None)


def refusal(method: str, peer: str, exc: Refused, group: str, topic: str) -> Any:
    log.info(
        "gRPC %s from %s refused: %s",
        method,
        peer,
        exc.reason,
        extra={"peer": peer, "code": method, "group": group, "topic": topic},
    )
    return status(exc.code, exc.reason)


def _handle(text: str) -> tuple[Receipt, str]:
    """The POP receipt in a receipt handle and the handle's tail (the commit-log offset)."""
    try:
        receipt = Receipt.parse(text)
    except ValueError as exc:
        raise Refused(pb.INVALID_RECEIPT_HANDLE, f"receipt handle parse failed: {exc}") from None
    return receipt, " ".join(text.split(" ")[8:])


def _unexpired(text: str, now: int) -> Receipt:
    receipt, _ = _handle(text)
    if receipt.pop_time + receipt.invisible_ms <= now:
        raise Refused(pb.INVALID_RECEIPT_HANDLE, "receipt handle is expired")
    return receipt


@dataclass(slots=True)
class Parking:
    """The ReceiveMessage calls parked (long polling) per connection: a connection may park at most
    ``per_connection``, the listener ``total``; a receive past either is TOO_MANY_REQUESTS."""

    per_connection: int
    total: int = MAX_PARKED_RECEIVES
    counts: dict[str, int] = field(default_factory=dict)
    parked: int = 0

    def enter(self, peer: str) -> str | None:
        """None if ``peer`` may park one more receive (counted), else why not."""
        n = self.counts.get(peer, 0)
        if n >= self.per_connection:
            return f"{n} parked receives on this connection (grpcMaxParkedReceivesPerConnection)"
        if self.parked >= self.total:
            return f"{self.parked} parked receives on this listener"
        self.counts[peer] = n + 1
        self.parked += 1
        return None

    def leave(self, peer: str) -> None:
        self.parked -= 1
        n = self.counts.pop(peer) - 1
        if n:
            self.counts[peer] = n


class Consume:
    """The four consumer RPCs of one listener."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.parking = Parking(broker.config.grpc_max_parked_receives_per_connection)

    def _check(self, topic: str, group: str) -> None:
        check_readable(self.broker, topic)
        check_group(self.broker, group)

    # -- ReceiveMessage
    def _invisible_ms(self, request: Any) -> int:
        invisible = millis(request.invisible_duration)
        if request.auto_renew and not request.HasField("invisible_duration"):
            return DEFAULT_INVISIBLE_MS
        low = self.broker.config.min_invisible_time_mills_for_recv
        if invisible < low:
            raise Refused(pb.ILLEGAL_INVISIBLE_TIME, f"the invisibleTime is too small. min is {low}")
        if invisible > MAX_INVISIBLE_MS:
            raise Refused(
                pb.ILLEGAL_INVISIBLE_TIME, f"the invisibleTime is too large. max is {MAX_INVISIBLE_MS}"
            )
        return invisible

    def _request(self, request: Any, remaining_ms: int | None) -> tuple[PopRequest, int, Filter]:
        topic = request.message_queue.topic.name
        group = request.group.name
        self._check(topic, group)
        polling = polling_ms(self.broker.config, request, remaining_ms)
        invisible = self._invisible_ms(request)
        flt = read_filter(self.broker.config, topic, request.filter_expression)
        if request.batch_size <= 0:
            raise Refused(pb.BAD_REQUEST, f"batch size {request.batch_size} must be positive")
        cfg = self.broker.subscription_groups.find(group)
        fifo = bool(cfg and cfg.consume_message_orderly)
        req = PopRequest(
            group, topic, -1, min(request.batch_size, MAX_BATCH), invisible, fifo, flt.tag_codes, INIT_MAX
        )
        return req, polling, flt

    async def receive(self, request: Any, remaining_s: float | None, peer: str) -> AsyncIterator[Any]:
        topic = request.message_queue.topic.name
        group = request.group.name
        try:
            req, polling, flt = self._request(
                request, None if remaining_s is None else int(remaining_s * 1000)
            )
        except Refused as exc:
            yield spb.ReceiveMessageResponse(status=refusal("ReceiveMessage", peer, exc, group, topic))
            yield _delivered_at()
            return
        batch = self.broker.pop.pop(req)
        if not batch.messages and polling > 0:  # nothing yet: park, if the connection may
            if (full := self.parking.enter(peer)) is not None:
                busy = Refused(pb.TOO_MANY_REQUESTS, full)
                yield spb.ReceiveMessageResponse(status=refusal("ReceiveMessage", peer, busy, group, topic))
                yield _delivered_at()
                return
            try:
                batch = await self.broker.pop.pop_wait(req, polling)
            finally:
                self.parking.leave(peer)
        out = self._kept(req, batch.messages, flt)
        if not out:
            yield spb.ReceiveMessageResponse(status=status(pb.MESSAGE_NOT_FOUND, "no new message"))
            yield _delivered_at()
            return
        sent = 0
        try:
            yield spb.ReceiveMessageResponse(status=status(pb.OK, "OK"))
            for popped, msg in out:
                yield spb.ReceiveMessageResponse(message=self._message(popped, msg, req.invisible_ms))
                sent += 1
            yield _delivered_at()
        finally:
            if sent < len(out):  # the stream broke: what the client did not get is visible again soon
                for popped, _ in out[sent:]:
                    self.broker.pop.change_invisible(group, topic, popped.receipt, NACK_INVISIBLE_MS)
        self.broker.stats.on_get(topic, sent, sum(len(p.data) for p, _ in out), group)

    def _kept(
        self, req: PopRequest, popped: list[PoppedMessage], flt: Filter
    ) -> list[tuple[PoppedMessage, MessageExt]]:
        """The popped messages the filter keeps; those it does not are acked (never delivered)."""
        out = []
        for p in popped:
            msg = decode_stored_message(p.data)
            if flt.matches(msg):
                out.append((p, msg))
            else:
                self.broker.pop.ack(req.group, req.topic, p.receipt)
        return out

    def _message(self, popped: PoppedMessage, msg: MessageExt, invisible_ms: int) -> Any:
        out = to_proto(msg, msg.topic)
        sp = out.system_properties
        sp.receipt_handle = f"{popped.receipt.encode()} {msg.commit_log_offset}"
        sp.invisible_duration.FromMilliseconds(invisible_ms)
        return out

    # -- AckMessage
    def ack(self, request: Any, peer: str) -> Any:
        topic, group = request.topic.name, request.group.name
        try:
            self._check(topic, group)
            if not request.entries:
                raise Refused(pb.BAD_REQUEST, "no entry to ack")
        except Refused as exc:
            return spb.AckMessageResponse(status=refusal("AckMessage", peer, exc, group, topic))
        response = spb.AckMessageResponse()
        codes = set()
        now = _now_ms()
        for entry in request.entries:
            try:
                receipt = _unexpired(entry.receipt_handle, now)
                self.broker.pop.ack(group, topic, receipt)  # a spent one is OK, as the broker's ack
                entry_status = status(pb.OK, "OK")
            except Refused as exc:
                entry_status = refusal("AckMessage", peer, exc, group, topic)
            response.entries.add(
                message_id=entry.message_id, receipt_handle=entry.receipt_handle, status=entry_status
            )
            codes.add(entry_status.code)
        if len(codes) == 1:
            code = codes.pop()
            response.status.CopyFrom(status(code, pb.Code.Name(code)))
        else:
            response.status.CopyFrom(status(pb.MULTIPLE_RESULTS, "MULTIPLE_RESULTS"))
        return response

    # -- ChangeInvisibleDuration
    def change_invisible(self, request: Any, peer: str) -> Any:
        topic, group = request.topic.name, request.group.name
        try:
            self._check(topic, group)
            invisible = millis(request.invisible_duration)
            if invisible < 0 or invisible > MAX_INVISIBLE_MS:
                raise Refused(
                    pb.ILLEGAL_INVISIBLE_TIME, f"the invisibleTime must be within 0..{MAX_INVISIBLE_MS}"
                )
            receipt = _unexpired(request.receipt_handle, _now_ms())
            _, tail = _handle(request.receipt_handle)
            new = self.broker.pop.change_invisible(group, topic, receipt, invisible)
            if new is None:
                raise Refused(pb.INVALID_RECEIPT_HANDLE, SPENT)
        except Refused as exc:
            return spb.ChangeInvisibleDurationResponse(
                status=refusal("ChangeInvisibleDuration", peer, exc, group, topic)
            )
        handle = f"{new.encode()} {tail}" if tail else new.encode()
        return spb.ChangeInvisibleDurationResponse(status=status(pb.OK, "OK"), receipt_handle=handle)

    # -- ForwardMessageToDeadLetterQueue
    def forward_to_dlq(self, request: Any, peer: str) -> Any:
        topic, group = request.topic.name, request.group.name
        try:
            self._check(topic, group)
            receipt, _ = _handle(request.receipt_handle)
            if not self.broker.pop.forward_to_dlq(group, topic, receipt):
                raise Refused(pb.INVALID_RECEIPT_HANDLE, SPENT)
        except Refused as exc:
            return spb.ForwardMessageToDeadLetterQueueResponse(
                status=refusal("ForwardMessageToDeadLetterQueue", peer, exc, group, topic)
            )
        return spb.ForwardMessageToDeadLetterQueueResponse(status=status(pb.OK, "OK"))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _delivered_at() -> Any:
    response = spb.ReceiveMessageResponse()
    response.delivery_timestamp.FromMilliseconds(_now_ms())
    return response
