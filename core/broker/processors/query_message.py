"""VIEW_MESSAGE_BY_ID (33) and QUERY_MESSAGE (12): a message by commit-log offset (the offset
message id), and messages by key or by unique key (``_UNIQUE_KEY_QUERY=true``) in a time range.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, opt_int, req_int, req_str
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


class QueryMessageProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def view_by_id(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            offset = req_int(cmd.ext_fields, "offset")
        except BadRequest as exc:
            return exc.response(cmd)
        data = self.broker.store.look_message(offset)
        if data is None:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"can not find message by the offset, {offset}")
        return cmd.response(body=data)

    def query(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields
        try:
            topic = req_str(ext, "topic")
            key = req_str(ext, "key")
            max_num = max(1, min(req_int(ext, "maxNum"), 64))
            begin = opt_int(ext, "beginTimestamp", 0)
            end = opt_int(ext, "endTimestamp", int(time.time() * 1000))
        except BadRequest as exc:
            return exc.response(cmd)
        unique = ext.get("_UNIQUE_KEY_QUERY") == "true"
        found = self.broker.store.query_by_key(topic, key, max_num, begin, end, unique)
        index = self.broker.store.index
        last = index.files[-1] if index.files else None
        header = {
            "indexLastUpdateTimestamp": str(last.end_timestamp if last else 0),
            "indexLastUpdatePhyoffset": str(max(last.end_phy_offset, 0) if last else 0),
        }
        if not found:
            return cmd.response(
                ResponseCode.QUERY_NOT_FOUND, "can not find message, maybe time range not correct", header
            )
        return cmd.response(ext_fields=header, body=b"".join(found))
