"""SendMessage and EndTransaction: gRPC requests carried onto the broker's own request handlers.

As the proxy in local mode does, each message becomes the remoting request the broker already
serves (SEND_MESSAGE, END_TRANSACTION) and goes through ``Broker.dispatcher``, so topic checks,
the size limit, delay and timer, half messages (``core/broker/transaction.py``), SYNC_FLUSH and
SYNC_MASTER waits are the remoting path's, not a copy. The reply's code maps as the proxy's
``ResponseBuilder`` and ``SendMessageActivity`` map it.

Queue choice: a single message with a message group goes to write queue
``hash(group) mod writeQueueNums`` (Java's String.hashCode), so a group keeps its order; others to
any queue. A body over maxMessageSize is MESSAGE_BODY_TOO_LARGE, an empty one MESSAGE_BODY_EMPTY.

Transactions: the send result's ``transaction_id`` is the half message's offset message id (store
address and commit-log offset), and EndTransaction finds the half by it; a transaction check
(``telemetry.py``) names the checked copy's offset id, so a check's answer (SOURCE_SERVER_CHECK)
ends the copy with fromTransactionCheck, as END_TRANSACTION does. No table to lose in a restart.
Left out: RecallMessage (NOT_IMPLEMENTED), batches sent as one entry (each message is one send).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, cast

from ferrymq.core.broker.schedule import load_message
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import (
    SYSFLAG_TRANSACTION_COMMIT,
    SYSFLAG_TRANSACTION_ROLLBACK,
    decode_offset_msg_id,
    java_string_hash,
    properties_to_string,
)
from ferrymq.core.remoting.transport import RemotingConnection
from ferrymq.gateway.grpc.mapping import MessageRefused, from_proto
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.route import status

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.grpc")

#: remoting response code -> gRPC code (ResponseBuilder's table, and SendMessageActivity's statuses)
CODE_MAP: dict[int, int] = {
    ResponseCode.SUCCESS: pb.OK,
    ResponseCode.SYSTEM_BUSY: pb.TOO_MANY_REQUESTS,
    ResponseCode.REQUEST_CODE_NOT_SUPPORTED: pb.NOT_IMPLEMENTED,
    ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST: pb.CONSUMER_GROUP_NOT_FOUND,
    ResponseCode.FLUSH_DISK_TIMEOUT: pb.MASTER_PERSISTENCE_TIMEOUT,
    ResponseCode.FLUSH_SLAVE_TIMEOUT: pb.SLAVE_PERSISTENCE_TIMEOUT,
    ResponseCode.SLAVE_NOT_AVAILABLE: pb.HA_NOT_AVAILABLE,
    ResponseCode.TOPIC_NOT_EXIST: pb.TOPIC_NOT_FOUND,
    ResponseCode.NO_PERMISSION: pb.FORBIDDEN,
    ResponseCode.MESSAGE_ILLEGAL: pb.BAD_REQUEST,
    ResponseCode.ILLEGAL_OPERATION: pb.BAD_REQUEST,
    ResponseCode.SYSTEM_ERROR: pb.INTERNAL_SERVER_ERROR,
}


class LocalConnection(RemotingConnection):
    """A gRPC caller as the broker's handlers see a remoting peer (its address; no socket)."""

    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer


async def _call(broker: Broker, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
    result = broker.dispatcher(cmd, conn)
    if inspect.isawaitable(result):
        result = await cast(Awaitable[RemotingCommand | None], result)
    if result is None:
        return cmd.response(ResponseCode.SYSTEM_ERROR, "no response")
    return cast(RemotingCommand, result)


def _status_of(reply: RemotingCommand) -> Any:
    return status(CODE_MAP.get(reply.code, pb.INTERNAL_SERVER_ERROR), reply.remark or "")


def _queue_for(broker: Broker, topic: str, group: str) -> int:
    tc = broker.topics.get(topic)
    if not group or tc is None or tc.write_queue_nums <= 0:
        return -1
    return abs(java_string_hash(group)) % tc.write_queue_nums


async def send_message(broker: Broker, request: Any, peer: str) -> Any:
    if not request.messages:
        return spb.SendMessageResponse(status=status(pb.MESSAGE_CORRUPTED, "no message to send"))
    topic = request.messages[0].topic.name
    if any(m.topic.name != topic for m in request.messages):
        return spb.SendMessageResponse(status=status(pb.MESSAGE_CORRUPTED, "topic in message is not same"))
    conn = LocalConnection(peer)
    now = int(time.time() * 1000)
    group = request.messages[0].system_properties.message_group if len(request.messages) == 1 else ""
    queue_id = _queue_for(broker, topic, group)
    response = spb.SendMessageResponse()
    codes = set()
    for msg in request.messages:
        entry = await _send_one(broker, msg, conn, peer, now, queue_id)
        response.entries.append(entry)
        codes.add(entry.status.code)
    if len(codes) > 1:
        response.status.CopyFrom(status(pb.MULTIPLE_RESULTS))
    else:
        response.status.CopyFrom(response.entries[0].status)
    return response


async def _send_one(
    broker: Broker, msg: Any, conn: RemotingConnection, peer: str, now: int, queue_id: int
) -> Any:
    max_size = broker.config.max_message_size
    if len(msg.body) > max_size:
        log.warning(
            "gRPC SendMessage from %s refused: body of %d bytes over maxMessageSize %d",
            peer,
            len(msg.body),
            max_size,
            extra={"peer": peer, "topic": msg.topic.name},
        )
        return spb.SendResultEntry(
            status=status(pb.MESSAGE_BODY_TOO_LARGE, f"message body cannot exceed the max {max_size}")
        )
    if not msg.body:
        return spb.SendResultEntry(status=status(pb.MESSAGE_BODY_EMPTY, "message body cannot be empty"))
    try:
        out = from_proto(msg, peer.rpartition(":")[0], now)
    except MessageRefused as exc:
        log.info("gRPC SendMessage from %s refused: %s", peer, exc.reason, extra={"peer": peer})
        return spb.SendResultEntry(status=status(exc.code, exc.reason))
    cmd = RemotingCommand(
        code=RequestCode.SEND_MESSAGE,
        ext_fields={
            "producerGroup": out.topic,
            "topic": out.topic,
            "defaultTopic": "TBW102",
            "defaultTopicQueueNums": str(broker.config.default_topic_queue_nums),
            "queueId": str(queue_id),
            "sysFlag": str(out.sys_flag),
            "bornTimestamp": str(out.born_timestamp),
            "flag": "0",
            "properties": properties_to_string(out.properties),
            "reconsumeTimes": out.properties.get("RECONSUME_TIME", "0"),
        },
        body=out.body,
    )
    reply = await _call(broker, cmd, conn)
    if reply.code != ResponseCode.SUCCESS:
        return spb.SendResultEntry(status=_status_of(reply))
    ext = reply.ext_fields
    entry = spb.SendResultEntry(
        status=status(pb.OK),
        message_id=msg.system_properties.message_id,
        offset=int(ext.get("queueOffset", "0")),
    )
    if out.message_type == pb.TRANSACTION:
        entry.transaction_id = ext.get("msgId", "")
    return entry


async def end_transaction(broker: Broker, request: Any, peer: str) -> Any:
    """Commit or roll back the half message the transaction id names (its offset message id)."""
    try:
        phys = decode_offset_msg_id(request.transaction_id)[2]
    except (ValueError, IndexError):
        return _end_refused(
            peer, pb.INVALID_TRANSACTION_ID, f"transaction id {request.transaction_id!r} is not valid"
        )
    half = load_message(broker.store, phys)
    if half is None:
        return _end_refused(peer, pb.INVALID_TRANSACTION_ID, "no half message with this transaction id")
    if request.resolution == pb.COMMIT:
        decision = SYSFLAG_TRANSACTION_COMMIT
    elif request.resolution == pb.ROLLBACK:
        decision = SYSFLAG_TRANSACTION_ROLLBACK
    else:
        return _end_refused(peer, pb.BAD_REQUEST, "the resolution must be COMMIT or ROLLBACK")
    cmd = RemotingCommand(
        code=RequestCode.END_TRANSACTION,
        ext_fields={
            "producerGroup": request.topic.name,
            "tranStateTableOffset": str(half.queue_offset),
            "commitLogOffset": str(phys),
            "commitOrRollback": str(decision),
            "fromTransactionCheck": "true" if request.source == pb.SOURCE_SERVER_CHECK else "false",
            "msgId": request.message_id,
            "transactionId": request.transaction_id,
        },
    )
    reply = await _call(broker, cmd, LocalConnection(peer))
    return spb.EndTransactionResponse(status=_status_of(reply))


def _end_refused(peer: str, code: int, reason: str) -> Any:
    log.info("gRPC EndTransaction from %s refused: %s", peer, reason, extra={"peer": peer})
    return spb.EndTransactionResponse(status=status(code, reason))
