"""POP_MESSAGE (200050), ACK_MESSAGE (200051), BATCH_ACK_MESSAGE (200151) and
CHANGE_MESSAGE_INVISIBLETIME (200053): POP consumption over remoting, on core/broker/pop.

Headers as the Java 5.x client sends them (``PopMessageRequestHeader``: consumerGroup, topic,
queueId (-1: every queue), maxMsgNums, invisibleTime, pollTime, bornTime, initMode, expType, exp,
order; ``AckMessageRequestHeader`` / ``ChangeInvisibleTimeRequestHeader``: consumerGroup, topic,
queueId, extraInfo, offset[, invisibleTime]); a BATCH_ACK body is ``BatchAckMessageRequestBody``
(``{"acks": [{"c","t","r","so","q","rq","pt","it","b"}]}``, ``b`` the base64 of Java's
``BitSet.toByteArray``). A pop answers SUCCESS with the stored records as the body and popTime,
invisibleTime, reviveQid, restNum, startOffsetInfo, msgOffsetInfo (and orderCountInfo for an order
pop); nothing found is POLLING_TIMEOUT after a long poll, PULL_NOT_FOUND without one. An ack of a
spent receipt is SUCCESS (as Java's, which writes the ack record regardless); a change of one is
NO_MESSAGE. Left out: SQL92 pops (tag filters only), the pop retry topics (redelivery is from the
original queue), NOTIFICATION/POLLING_INFO (the proxy's, not the remoting client's).
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from ferrymq.core.broker.pop import INIT_MIN, PopBatch, PopRequest, Receipt
from ferrymq.core.broker.pop.receipt import (
    NORMAL,
    msg_offset_info,
    order_count_info,
    start_offset_info,
)
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, opt_bool, opt_int, req_int, req_str
from ferrymq.core.remoting.route import PERM_READ, loads_fastjson
from ferrymq.core.remoting.subscription import SubscriptionData, SubscriptionError
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.pop")

MAX_POP_NUMS = 32
#: pops parked per connection before POLLING_FULL (Java's maxPopPollingSize is broker-wide)
MAX_PARKED_POPS = 1024
PARKED_POPS = "parkedPops"


class PopMessageProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def _refused(self, cmd: RemotingCommand, conn: RemotingConnection, exc: BadRequest) -> RemotingCommand:
        ext = cmd.ext_fields
        log.info(
            "%d from %s refused: %s",
            cmd.code,
            conn.peer,
            exc.remark,
            extra={
                "peer": conn.peer,
                "code": cmd.code,
                "group": ext.get("consumerGroup"),
                "topic": ext.get("topic"),
            },
        )
        return exc.response(cmd)

    def _check_topic(self, topic: str, queue_id: int) -> None:
        tc = self.broker.topics.get(topic)
        if tc is None:
            raise BadRequest(f"topic[{topic}] not exist, apply first please!", ResponseCode.TOPIC_NOT_EXIST)
        if not tc.perm & PERM_READ:
            raise BadRequest(f"the topic[{topic}] peeking message is forbidden", ResponseCode.NO_PERMISSION)
        if queue_id >= tc.read_queue_nums:
            raise BadRequest(
                f"queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:"
                f"[{tc.read_queue_nums}] consumer:[]"
            )

    def _check_group(self, group: str) -> None:
        if self.broker.subscription_groups.find(group) is None:
            raise BadRequest(
                f"subscription group [{group}] does not exist", ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
            )

    # -- POP_MESSAGE
    def pop(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields
        try:
            group = req_str(ext, "consumerGroup")
            topic = req_str(ext, "topic")
            queue_id = req_int(ext, "queueId")
            max_nums = req_int(ext, "maxMsgNums")
            invisible = req_int(ext, "invisibleTime")
            poll = opt_int(ext, "pollTime", 0)
            init_mode = opt_int(ext, "initMode", INIT_MIN)
            fifo = opt_bool(ext, "order", False) is True
            if max_nums > MAX_POP_NUMS or max_nums <= 0:
                raise BadRequest(f"the broker msg nums {max_nums} is out of range 1..{MAX_POP_NUMS}")
            if invisible <= 0:
                raise BadRequest(
                    f"invisibleTime {invisible} must be positive", ResponseCode.INVALID_PARAMETER
                )
            self._check_topic(topic, queue_id)
            self._check_group(group)
            codes = self._tag_codes(topic, ext.get("expType"), ext.get("exp"))
        except BadRequest as exc:
            return self._refused(cmd, conn, exc)
        req = PopRequest(group, topic, queue_id, max_nums, invisible, fifo, codes, init_mode)
        if poll <= 0:
            return self._response(cmd, self.broker.pop.pop(req), fifo, ResponseCode.PULL_NOT_FOUND)
        if conn.attrs.get(PARKED_POPS, 0) >= MAX_PARKED_POPS:
            return cmd.response(ResponseCode.POLLING_FULL, "the pop polling queue is full")
        return self._pop_wait(cmd, conn, req, poll)

    async def _pop_wait(
        self, cmd: RemotingCommand, conn: RemotingConnection, req: PopRequest, poll: int
    ) -> RemotingCommand:
        conn.attrs[PARKED_POPS] = conn.attrs.get(PARKED_POPS, 0) + 1
        try:
            batch = await self.broker.pop.pop_wait(req, poll)
        finally:
            conn.attrs[PARKED_POPS] -= 1
        return self._response(cmd, batch, req.fifo, ResponseCode.POLLING_TIMEOUT)

    @staticmethod
    def _tag_codes(topic: str, exp_type: str | None, exp: str | None) -> frozenset[int] | None:
        if exp_type and exp_type.upper() != "TAG":
            raise BadRequest(
                f"expression type {exp_type} is not supported by POP here", ResponseCode.INVALID_PARAMETER
            )
        try:
            return SubscriptionData.build(topic, exp).tag_codes()
        except SubscriptionError as exc:
            raise BadRequest(str(exc), ResponseCode.INVALID_PARAMETER) from None

    def _response(self, cmd: RemotingCommand, batch: PopBatch, fifo: bool, empty: int) -> RemotingCommand:
        ext = {
            "popTime": str(batch.pop_time),
            "invisibleTime": str(batch.invisible_ms),
            "reviveQid": str(batch.revive_qid),
            "restNum": str(batch.rest),
        }
        if not batch.messages:
            return cmd.response(empty, "no new message", ext)
        ext["startOffsetInfo"] = start_offset_info(batch.starts())
        ext["msgOffsetInfo"] = msg_offset_info(batch.offsets())
        if fifo:
            ext["orderCountInfo"] = order_count_info(
                [(m.queue_id, m.offset, m.reconsume_times) for m in batch.messages]
            )
        body = b"".join(m.data for m in batch.messages)
        self.broker.stats.on_get(
            cmd.ext_fields["topic"], len(batch.messages), len(body), cmd.ext_fields["consumerGroup"]
        )
        return cmd.response(ResponseCode.SUCCESS, None, ext, body)

    # -- ACK_MESSAGE, BATCH_ACK_MESSAGE
    def _receipt(self, ext: dict[str, str]) -> Receipt:
        text = req_str(ext, "extraInfo")
        try:
            receipt = Receipt.parse(text)
        except ValueError as exc:
            raise BadRequest(f"parse extraInfo error: {exc}", ResponseCode.INVALID_PARAMETER) from None
        offset = req_int(ext, "offset")
        queue_id = req_int(ext, "queueId")
        if receipt.queue_id != queue_id or receipt.offset != offset:
            raise BadRequest("queueId or offset differ from the extraInfo", ResponseCode.INVALID_PARAMETER)
        return receipt

    def ack(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields
        try:
            group = req_str(ext, "consumerGroup")
            topic = req_str(ext, "topic")
            receipt = self._receipt(ext)
            self._check_topic(topic, receipt.queue_id)
        except BadRequest as exc:
            return self._refused(cmd, conn, exc)
        if not self.broker.pop.ack(group, topic, receipt):
            log.debug("ack of a spent receipt from %s: %s", conn.peer, receipt.encode())
        return cmd.response(ResponseCode.SUCCESS)

    def batch_ack(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            acks = _batch_acks(cmd.body)
            for a in acks:
                self._check_topic(a["topic"], a["queue_id"])
        except BadRequest as exc:
            return self._refused(cmd, conn, exc)
        broker_name = self.broker.config.broker_name
        for a in acks:
            for offset in a["offsets"]:
                receipt = Receipt(
                    a["start"],
                    a["pop_time"],
                    a["invisible"],
                    a["rq"],
                    NORMAL,
                    broker_name,
                    a["queue_id"],
                    offset,
                )
                self.broker.pop.ack(a["group"], a["topic"], receipt)
        return cmd.response(ResponseCode.SUCCESS)

    # -- CHANGE_MESSAGE_INVISIBLETIME
    def change_invisible(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields
        try:
            group = req_str(ext, "consumerGroup")
            topic = req_str(ext, "topic")
            invisible = req_int(ext, "invisibleTime")
            receipt = self._receipt(ext)
            self._check_topic(topic, receipt.queue_id)
            if invisible < 0:
                raise BadRequest(f"invisibleTime {invisible} is negative", ResponseCode.INVALID_PARAMETER)
        except BadRequest as exc:
            return self._refused(cmd, conn, exc)
        new = self.broker.pop.change_invisible(group, topic, receipt, invisible)
        if new is None:
            return cmd.response(ResponseCode.NO_MESSAGE, "the receipt is spent: acked, revived or changed")
        return cmd.response(
            ResponseCode.SUCCESS,
            None,
            {
                "popTime": str(new.pop_time),
                "invisibleTime": str(new.invisible_ms),
                "reviveQid": str(new.revive_qid),
            },
        )


def _batch_acks(body: bytes | bytearray | memoryview | None) -> list[dict[str, Any]]:
    """``BatchAckMessageRequestBody`` as plain dicts; BadRequest if it is not one."""
    try:
        obj = loads_fastjson(bytes(body or b""))
        out = []
        for a in obj["acks"]:
            bits = int.from_bytes(base64.b64decode(a.get("b") or a.get("bitSet") or ""), "little")
            start = int(a.get("so", a.get("startOffset")))
            out.append(
                {
                    "group": str(a.get("c") or a["consumerGroup"]),
                    "topic": str(a.get("t") or a["topic"]),
                    "queue_id": int(a.get("q", a.get("queueId"))),
                    "start": start,
                    "rq": int(a.get("rq", a.get("reviveQueueId", 0))),
                    "pop_time": int(a.get("pt", a.get("popTime"))),
                    "invisible": int(a.get("it", a.get("invisibleTime"))),
                    "offsets": [start + i for i in range(bits.bit_length()) if bits >> i & 1],
                }
            )
        return out
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(f"bad BATCH_ACK_MESSAGE body: {exc}", ResponseCode.INVALID_PARAMETER) from None
