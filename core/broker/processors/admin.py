"""UPDATE_AND_CREATE_TOPIC (17), GET_BROKER_RUNTIME_INFO (28), DELETE_TOPIC_IN_BROKER (215),
GET_TOPIC_CONFIG (351, no static-topic mapping detail) and GET_BROKER_HA_STATUS (907): what
mqadmin's topic commands and ``haStatus`` need (GET_ALL_TOPIC_CONFIG is in ``metadata.py``). A
slave refuses topic changes (SYSTEM_ERROR, ``slave_sync.refuse_on_slave``): its master owns its
topics. The replication state is 907's
(RocketMQ's HARuntimeInfo, replication_view.py); runtime info names the role and master only.

Leaves out static topics and topic attributes beyond storing them; the stats codes
(GET_TOPIC_STATS_INFO, GET_CONSUME_STATS, ...) are in ``admin_stats.py``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from ferrymq import __version__
from ferrymq.core.broker.replication_view import ha_runtime_info
from ferrymq.core.broker.slave_sync import refuse_on_slave, replication_runtime_info
from ferrymq.core.broker.topic_config import AUTO_CREATE_TOPIC_KEY, validate_topic
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, opt_bool, opt_int, req_int, req_str
from ferrymq.core.remoting.route import TopicConfig, dumps_json
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


class AdminProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def create_topic(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        refused = refuse_on_slave(self.broker, cmd)
        if refused is not None:
            return refused
        ext = cmd.ext_fields
        try:
            topic = req_str(ext, "topic")
            reason = validate_topic(topic)
            if reason:
                raise BadRequest(reason)
            if topic == AUTO_CREATE_TOPIC_KEY:
                raise BadRequest(f"The topic[{topic}] is conflict with system topic.")
            read = req_int(ext, "readQueueNums")
            write = req_int(ext, "writeQueueNums")
            perm = req_int(ext, "perm")
            if not (0 < read <= 1024 and 0 < write <= 1024):
                raise BadRequest(
                    f"queue numbers must be 1..1024, got read={read} write={write}",
                    ResponseCode.INVALID_PARAMETER,
                )
            tc = TopicConfig(
                topic,
                read,
                write,
                perm,
                topic_filter_type=ext.get("topicFilterType") or "SINGLE_TAG",
                topic_sys_flag=opt_int(ext, "topicSysFlag", 0),
                order=opt_bool(ext, "order", False),
            )
        except BadRequest as exc:
            return exc.response(cmd)
        topics = self.broker.topics
        topics.update(tc)
        self.broker.topic_created(tc)
        return topics.reply_when_persisted(cmd, cmd.response(ResponseCode.SUCCESS))

    def runtime_info(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        b = self.broker
        table = {
            "brokerVersionDesc": f"ferrymq {__version__}",
            "brokerVersion": "479",
            "bootTimestamp": str(b.boot_timestamp),
            "runtime": f"{int(time.time() - b.boot_timestamp / 1000)} seconds",
            "commitLogMinOffset": str(b.store.commit_log.min_offset),
            "commitLogMaxOffset": str(b.store.commit_log.write_offset),
            "putTps": b.stats.put_tps_text(),
            # 5.x mqadmin reads getTransferredTps, 4.x getTransferedTps
            "getTransferredTps": b.stats.get_tps_text(),
            "getTransferedTps": b.stats.get_tps_text(),
            "msgPutTotalTodayNow": str(b.stats.put_messages),
            "msgGetTotalTodayNow": str(b.stats.get_messages),
            **replication_runtime_info(b),
        }
        return cmd.response(body=json.dumps({"table": table}).encode())

    def ha_status(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        return cmd.response(body=json.dumps(ha_runtime_info(self.broker)).encode())

    def topic_config(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            topic = req_str(cmd.ext_fields, "topic")
        except BadRequest as exc:
            return exc.response(cmd)
        tc = self.broker.topics.get(topic)
        if tc is None:
            return cmd.response(ResponseCode.TOPIC_NOT_EXIST, f"No topic in this broker. topic: {topic}")
        return cmd.response(body=dumps_json({**tc.to_json(), "mappingDetail": None}))

    def delete_topic(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        refused = refuse_on_slave(self.broker, cmd)
        if refused is not None:
            return refused
        topic = cmd.ext_fields.get("topic")
        if not topic:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "the custom field <topic> is null")
        topics = self.broker.topics
        topics.delete(topic)
        self.broker.store.delete_topic(topic)
        self.broker.topic_deleted(topic)
        return topics.reply_when_persisted(cmd, cmd.response(ResponseCode.SUCCESS))
