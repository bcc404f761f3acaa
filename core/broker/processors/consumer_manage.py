"""QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15), GET_CONSUMER_LIST_BY_GROUP (38),
QUERY_TOPICS_BY_CONSUMER (343: the topics a group has offsets of here, a TopicList body),
GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), SEARCH_OFFSET_BY_TIMESTAMP (29),
GET_EARLIEST_MSG_STORETIME (32).

QUERY_CONSUMER_OFFSET without a stored offset answers as the Java broker does: 0 while the
queue still starts at 0 and its first message is recent enough to be "in memory" (within
accessMessageInMemoryMaxRatio, 40% of RAM, of the commit-log end), else QUERY_NOT_FOUND (the
client then starts per consumeFromWhere);
``setZeroIfNotFound=false`` always gets QUERY_NOT_FOUND.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ferrymq.core.broker.slave_reads import in_memory_bytes
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, guarded, opt_bool, req_int, req_str
from ferrymq.core.remoting.route import TopicList
from ferrymq.core.remoting.transport import RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


class ConsumerManageProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.store = broker.store

    def _queue(self, ext: dict[str, str]) -> tuple[str, int]:
        topic = req_str(ext, "topic")
        queue_id = req_int(ext, "queueId")
        if queue_id < 0:
            raise BadRequest(f"queueId[{queue_id}] is illegal, topic:[{topic}]")
        return topic, queue_id

    @guarded
    def query_offset(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        ext = cmd.ext_fields
        group = req_str(ext, "consumerGroup")
        topic, queue_id = self._queue(ext)
        offset = self.broker.offsets.query(group, topic, queue_id)
        if offset is not None and offset >= 0:
            return cmd.response(ResponseCode.SUCCESS, ext_fields={"offset": str(offset)})
        if opt_bool(ext, "setZeroIfNotFound", True) and self.store.min_offset(topic, queue_id) <= 0:
            cq = self.store.consume_queues.get((topic, queue_id))
            first = cq.unit(0) if cq else None
            limit = in_memory_bytes(self.broker.config)
            if first is None or self.store.commit_log.write_offset - first[0] < limit:
                return cmd.response(ResponseCode.SUCCESS, ext_fields={"offset": "0"})
        return cmd.response(
            ResponseCode.QUERY_NOT_FOUND, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first"
        )

    @guarded
    def update_offset(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        ext = cmd.ext_fields
        group = req_str(ext, "consumerGroup")
        topic, queue_id = self._queue(ext)
        offset = req_int(ext, "commitOffset")
        if self.broker.topics.get(topic) is None:
            raise BadRequest(f"Topic {topic} not exist!", ResponseCode.TOPIC_NOT_EXIST)
        if offset < 0:  # no offset (QUERY_CONSUMER_OFFSET answers a negative one as none): forget it
            self.broker.offsets.delete(group, topic, queue_id)
        else:
            self.broker.offsets.commit(group, topic, queue_id, offset)
        return cmd.response(ResponseCode.SUCCESS)

    @guarded
    def consumer_list(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        group = req_str(cmd.ext_fields, "consumerGroup")
        info = self.broker.clients.consumer_group(group)
        if info is None or not info.channels:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"no consumer for this group, {group}")
        body = json.dumps({"consumerIdList": info.client_ids()}).encode()
        return cmd.response(ResponseCode.SUCCESS, body=body)

    @guarded
    def topics_of_group(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        group = req_str(cmd.ext_fields, "consumerGroup")
        topics = TopicList(self.broker.offsets.topics_of_group(group), self.broker.config.broker_addr)
        return cmd.response(ResponseCode.SUCCESS, body=topics.to_json_bytes())

    @guarded
    def max_offset(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        topic, queue_id = self._queue(cmd.ext_fields)
        return cmd.response(ext_fields={"offset": str(self.store.readable_bounds(topic, queue_id)[1])})

    @guarded
    def min_offset(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        topic, queue_id = self._queue(cmd.ext_fields)
        return cmd.response(ext_fields={"offset": str(self.store.min_offset(topic, queue_id))})

    @guarded
    def search_offset(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        topic, queue_id = self._queue(cmd.ext_fields)
        ts = req_int(cmd.ext_fields, "timestamp")
        return cmd.response(ext_fields={"offset": str(self.store.offset_by_time(topic, queue_id, ts))})

    @guarded
    def earliest_time(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        topic, queue_id = self._queue(cmd.ext_fields)
        ts = self.store.queue_store_timestamp(topic, queue_id, self.store.min_offset(topic, queue_id))
        return cmd.response(ext_fields={"timestamp": str(ts if ts is not None else -1)})
