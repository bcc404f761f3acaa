"""What mqadmin's read-only group and topic commands ask: GET_TOPIC_STATS_INFO (202, topicStatus),
GET_CONSUME_STATS (208, consumerProgress), GET_BROKER_CONSUME_STATS (317, brokerConsumeStats),
QUERY_TOPIC_CONSUME_BY_WHO (300, the message tracks of queryMsgBy*) and
GET_CONSUMER_CONNECTION_LIST (203, consumerConnection / consumerStatus) and
VIEW_BROKER_STATS_DATA (315, statsAll: TOPIC_PUT_NUMS/SIZE by topic, GROUP_GET_NUMS/SIZE by
topic@group).

Rates are RocketMQ's minute figures (``core/broker/stats_rates.py``): topicPutTps from
TOPIC_PUT_NUMS, consumeTps from GROUP_GET_NUMS (native pulls; Kafka fetches carry no group).
Pull offsets equal the committed offsets; static (logical-queue) topics and the BROKER_* and
per-queue stats names are left out.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ferrymq.core.broker.consume_stats import (
    QueueOffsets,
    all_groups,
    consume_stats,
    group_topics,
    groups_of_topic,
    topic_stats,
)
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, req_str
from ferrymq.core.remoting.mq_json import QueueKey, dumps_mq_map, with_mq_map
from ferrymq.core.remoting.route import dumps_json
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


def _offset_wrappers(table: dict[QueueKey, QueueOffsets]) -> dict[QueueKey, dict[str, int]]:
    return {
        k: {
            "brokerOffset": v.broker_offset,
            "consumerOffset": v.consumer_offset,
            "pullOffset": v.consumer_offset,
            "lastTimestamp": v.last_timestamp,
        }
        for k, v in table.items()
    }


def _consume_stats_json(table: dict[QueueKey, QueueOffsets], tps: float) -> str:
    """One ConsumeStats object as JSON text."""
    return '{"consumeTps":' + repr(tps) + ',"offsetTable":' + dumps_mq_map(_offset_wrappers(table)) + "}"


def _consume_tps(broker: Broker, group: str, topics: set[str]) -> float:
    return sum(broker.stats.minute_tps("GROUP_GET_NUMS", f"{t}@{group}") for t in topics)


class AdminStatsProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def topic_stats(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            topic = req_str(cmd.ext_fields, "topic")
        except BadRequest as exc:
            return exc.response(cmd)
        if self.broker.topics.get(topic) is None:
            return cmd.response(ResponseCode.TOPIC_NOT_EXIST, f"topic[{topic}] not exist")
        tps = self.broker.stats.minute_tps("TOPIC_PUT_NUMS", topic)
        body = with_mq_map({"topicPutTps": tps}, "offsetTable", topic_stats(self.broker, topic))
        return cmd.response(body=body)

    def consume_stats(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            group = req_str(cmd.ext_fields, "consumerGroup")
        except BadRequest as exc:
            return exc.response(cmd)
        topic = cmd.ext_fields.get("topic") or None
        table = consume_stats(self.broker, group, topic)
        tps = _consume_tps(self.broker, group, {k[0] for k in table})
        return cmd.response(body=_consume_stats_json(table, tps).encode("ascii"))

    def broker_consume_stats(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        entries: list[str] = []
        total = 0
        for group in all_groups(self.broker):
            stats: list[str] = []
            for topic in group_topics(self.broker, group):
                table = consume_stats(self.broker, group, topic)
                if table:
                    stats.append(_consume_stats_json(table, _consume_tps(self.broker, group, {topic})))
                    total += sum(max(0, v.broker_offset - v.consumer_offset) for v in table.values())
            if stats:
                entries.append("{" + json.dumps(group) + ":[" + ",".join(stats) + "]}")
        head: dict[str, Any] = {
            "brokerAddr": self.broker.config.broker_addr,
            "totalDiff": total,
            "totalInflightDiff": 0,
        }
        rest = json.dumps(head, separators=(",", ":"), sort_keys=True)
        body = '{"consumeStatsList":[' + ",".join(entries) + "]," + rest[1:]
        return cmd.response(body=body.encode("ascii"))

    def broker_stats_data(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            name = req_str(cmd.ext_fields, "statsName")
            key = req_str(cmd.ext_fields, "statsKey")
        except BadRequest as exc:
            return exc.response(cmd)
        data = self.broker.stats.stats_data(name, key)
        if data is None:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"The stats <{name}> <{key}> not exist")
        return cmd.response(body=dumps_json(data))

    def consume_by_who(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            topic = req_str(cmd.ext_fields, "topic")
        except BadRequest as exc:
            return exc.response(cmd)
        return cmd.response(body=dumps_json({"groupList": groups_of_topic(self.broker, topic)}))

    def consumer_connections(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            group = req_str(cmd.ext_fields, "consumerGroup")
        except BadRequest as exc:
            return exc.response(cmd)
        info = self.broker.clients.consumer_group(group)
        if info is None or not info.channels:
            return cmd.response(ResponseCode.CONSUMER_NOT_ONLINE, "the consumer group not online")
        body = {
            "connectionSet": [
                {
                    "clientAddr": ch.conn.peer,
                    "clientId": ch.client_id,
                    "language": ch.language,
                    "version": ch.version,
                }
                for ch in sorted(info.channels.values(), key=lambda c: c.client_id)
            ],
            "subscriptionTable": {t: s.to_json() for t, s in info.subscriptions.items()},
            "consumeType": info.consume_type,
            "messageModel": info.message_model,
            "consumeFromWhere": info.consume_from_where,
        }
        return cmd.response(body=dumps_json(body))
