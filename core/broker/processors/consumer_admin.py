"""Admin requests that reach a group's live consumers: INVOKE_BROKER_TO_RESET_OFFSET (222,
mqadmin resetOffsetByTime; pushes RESET_CONSUMER_CLIENT_OFFSET to the members, see
``offset_reset``), GET_CONSUMER_RUNNING_INFO (307, mqadmin consumerStatus) and
CONSUME_MESSAGE_DIRECTLY (309, mqadmin queryMsgById -g -d: the message of an offset id, in the
request's body, consumed by the client's listener): forwarded to the client named in the header, its
answer relayed (a client that does not answer in time gives SYSTEM_ERROR).

Leaves out the C++ client's ResetOffsetBodyForC and GET_CONSUMER_STATUS_FROM_CLIENT (221).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferrymq.core.broker.offset_reset import apply_reset, offsets_by_time
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, opt_bool, opt_int, req_int, req_str
from ferrymq.core.remoting.message import decode_offset_msg_id
from ferrymq.core.remoting.mq_json import with_mq_map
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection, RemotingError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.broker")

#: how long a consumer may take to answer (Java's admin waits 5 s in all: it gets our error, not its timeout)
CLIENT_TIMEOUT = 4.0


class ConsumerAdminProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def reset_offset(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields
        try:
            topic = req_str(ext, "topic")
            group = req_str(ext, "group")
            timestamp = req_int(ext, "timestamp")
            force = bool(opt_bool(ext, "isForce", False))
            queue_id = opt_int(ext, "queueId", -1)
            offset = opt_int(ext, "offset", -1)
        except BadRequest as exc:
            return exc.response(cmd)
        b = self.broker
        tc = b.topics.get(topic)
        if tc is None:
            return cmd.response(
                ResponseCode.TOPIC_NOT_EXIST,
                f"[reset-offset] reset offset failed, no topic in this broker. topic={topic}",
            )
        info = b.clients.consumer_group(group)
        if info is None or not info.channels:
            return cmd.response(
                ResponseCode.CONSUMER_NOT_ONLINE,
                f"Consumer not online, so can not reset offset, Group: {group} Topic: {topic} "
                f"Timestamp: {timestamp}",
            )
        if 0 <= queue_id < tc.write_queue_nums and offset >= 0:
            offsets = {queue_id: offset}
        else:
            offsets = offsets_by_time(b, group, topic, timestamp, force)
        apply_reset(b, group, topic, offsets, timestamp)
        log.info(
            "%s reset offsets of group %s on %s to %s",
            conn.peer,
            group,
            topic,
            offsets,
            extra={"peer": conn.peer, "group": group, "topic": topic, "code": cmd.code},
        )
        name = b.config.broker_name
        body = with_mq_map({}, "offsetTable", {(topic, name, q): o for q, o in offsets.items()})
        return cmd.response(body=body)

    async def running_info(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        return await self._forward(cmd, RemotingCommand(code=cmd.code, ext_fields=dict(cmd.ext_fields)))

    async def consume_directly(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        """As the broker's consumeMessageDirectly: the stored message of ``msgId`` goes to the client."""
        try:
            msg_id = req_str(cmd.ext_fields, "msgId")
            offset = decode_offset_msg_id(msg_id)[2]
        except BadRequest as exc:
            return exc.response(cmd)
        except ValueError:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"not an offset message id: {msg_id}")
        data = self.broker.store.look_message(offset)
        if data is None:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"can not find message by the offset, {offset}")
        ext = {**cmd.ext_fields, "brokerName": self.broker.config.broker_name}
        return await self._forward(cmd, RemotingCommand(code=cmd.code, ext_fields=ext, body=data))

    async def _forward(self, cmd: RemotingCommand, ask: RemotingCommand) -> RemotingCommand:
        """``ask`` to the member of ``consumerGroup`` named ``clientId``; its answer as ``cmd``'s response."""
        ext = cmd.ext_fields
        try:
            group = req_str(ext, "consumerGroup")
            client_id = req_str(ext, "clientId")
        except BadRequest as exc:
            return exc.response(cmd)
        info = self.broker.clients.consumer_group(group)
        channel = None
        if info is not None:
            channel = next((c for c in info.channels.values() if c.client_id == client_id), None)
        if channel is None:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"The Consumer <{group}> <{client_id}> not online")
        try:
            answer = await channel.conn.invoke(ask, CLIENT_TIMEOUT)
        except RemotingError as exc:
            log.warning(
                "request %d to consumer %s in %s: %s",
                cmd.code,
                client_id,
                group,
                exc,
                extra={"peer": channel.conn.peer, "group": group, "code": cmd.code},
            )
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"consumer <{client_id}> did not answer: {exc}")
        return cmd.response(answer.code, answer.remark, dict(answer.ext_fields), answer.body)
