"""Admin requests that reach a group's live consumers: INVOKE_BROKER_TO_RESET_OFFSET (222,
mqadmin resetOffsetByTime; pushes RESET_CONSUMER_CLIENT_OFFSET to the members, see
``offset_reset``) and GET_CONSUMER_RUNNING_INFO (307, mqadmin consumerStatus; forwarded to the
client named in the header, its answer relayed).

Leaves out the C++ client's ResetOffsetBodyForC and GET_CONSUMER_STATUS_FROM_CLIENT (221).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferrymq.core.broker.offset_reset import apply_reset, offsets_by_time
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, opt_bool, opt_int, req_int, req_str
from ferrymq.core.remoting.mq_json import with_mq_map
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection, RemotingError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.broker")

#: how long a consumer may take to describe itself (Java's admin waits 5 s in all)
RUNNING_INFO_TIMEOUT = 4.0


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
        ask = RemotingCommand(code=RequestCode.GET_CONSUMER_RUNNING_INFO, ext_fields=dict(ext))
        try:
            answer = await channel.conn.invoke(ask, RUNNING_INFO_TIMEOUT)
        except RemotingError as exc:
            log.warning(
                "consumer running info of %s in %s: %s",
                client_id,
                group,
                exc,
                extra={"peer": channel.conn.peer, "group": group, "code": cmd.code},
            )
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"consumer <{client_id}> did not answer: {exc}")
        return cmd.response(answer.code, answer.remark, dict(answer.ext_fields), answer.body)
