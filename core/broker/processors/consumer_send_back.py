"""CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed to consume; plus the
%RETRY% / %DLQ% rules for messages a client sends straight to a retry topic.

As the Java broker's ``AbstractSendMessageProcessor.consumerSendMsgBack`` (4.x and 5.x header:
offset = the message's commit-log offset, group, delayLevel, originMsgId, originTopic, unitMode,
maxReconsumeTimes): the message is looked up by offset and written to ``%RETRY%<group>`` (a random
one of the group's ``retryQueueNums`` queues) with reconsumeTimes + 1, RETRY_TOPIC = the topic it
was first consumed from and ORIGIN_MESSAGE_ID = its first id, delayed by level
``3 + reconsumeTimes`` when the client passes 0 (so retries back off 10 s, 30 s, 1 m, ... under
the default levels). When reconsumeTimes has reached the group's ``retryMaxTimes`` (16; the
header's maxReconsumeTimes wins for clients from V3_4_9 on) or delayLevel is negative, it goes to
``%DLQ%<group>`` (one queue, read-write) instead, undelayed.

A send to ``%RETRY%<group>`` (the Java client's fallback when this request fails, and its orderly
consumer's give-up path) follows ``SendMessageProcessor.handleRetryAndDLQ``: past the maximum, or
while the group holds live orderly locks, the message goes to the DLQ. Left out: unit mode topic
flags, consume-message hooks, the 5.x POP retry topics.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from ferrymq.core.broker.schedule import load_message, reput
from ferrymq.core.broker.topic_config import DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, opt_int, req_int, req_str
from ferrymq.core.remoting.message import (
    PROPERTY_DELAY_TIME_LEVEL,
    PROPERTY_ORIGIN_MESSAGE_ID,
    PROPERTY_RETRY_TOPIC,
    PROPERTY_UNIQ_KEY,
    PROPERTY_WAIT_STORE_MSG_OK,
)
from ferrymq.core.remoting.route import PERM_READ, PERM_WRITE, TopicConfig
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection
from ferrymq.core.store import PutStatus
from ferrymq.core.store.message_store import StoreError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.core.broker.subscription_group import SubscriptionGroupConfig

log = logging.getLogger("ferrymq.sendback")
dlq_log = logging.getLogger("ferrymq.dlq")

#: ``MQVersion.Version.V3_4_9.ordinal()``: from this client version on, maxReconsumeTimes is honoured
V3_4_9 = 121
DLQ_NUMS_PER_GROUP = 1
FAQ_GROUP = "\nSee http://rocketmq.apache.org/docs/faq/ for further details."


def _group_config(broker: Broker, group: str) -> SubscriptionGroupConfig:
    cfg = broker.subscription_groups.find(group)
    if cfg is None:
        raise BadRequest(
            f"subscription group not exist, {group} {FAQ_GROUP}", ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
        )
    return cfg


def _topic(broker: Broker, topic: str, queues: int) -> TopicConfig:
    """``createTopicInSendMessageBackMethod``: the retry or dead-letter topic, made if missing."""
    tc = broker.topics.get(topic)
    if tc is None:
        tc = broker.topics.create_if_absent(topic, queues, PERM_READ | PERM_WRITE)
        broker.topic_created(tc)
    if not tc.perm & PERM_WRITE:
        raise BadRequest(f"the topic[{topic}] sending message is forbidden", ResponseCode.NO_PERMISSION)
    return tc


def retry_or_dlq(
    broker: Broker, topic: str, queue_id: int, ext: dict[str, str], props: dict[str, str], version: int
) -> tuple[str, int]:
    """Where a message sent to ``%RETRY%<group>`` goes: the retry topic, or the group's DLQ."""
    group = topic[len(RETRY_GROUP_TOPIC_PREFIX) :]
    cfg = _group_config(broker, group)
    max_times = cfg.retry_max_times
    if version >= V3_4_9 and ext.get("maxReconsumeTimes"):
        max_times = opt_int(ext, "maxReconsumeTimes", max_times)
    reconsume = opt_int(ext, "reconsumeTimes", 0)
    orderly = not broker.locks.is_lock_all_expired(group)
    if reconsume <= max_times and not orderly:
        return topic, queue_id
    dlq = DLQ_GROUP_TOPIC_PREFIX + group
    _topic(broker, dlq, DLQ_NUMS_PER_GROUP)
    props.pop(PROPERTY_DELAY_TIME_LEVEL, None)
    dlq_log.info(
        "send to DLQ %s: reconsumeTimes %d, max %d, orderly %s, msgUniqKey %s",
        dlq,
        reconsume,
        max_times,
        orderly,
        props.get(PROPERTY_UNIQ_KEY),
    )
    return dlq, random.randrange(DLQ_NUMS_PER_GROUP)


class ConsumerSendBackProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def send_back(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            response = self._send_back(cmd)
            if self.broker.topics.unwritten:  # a retry or DLQ topic was made: its reply follows the write
                return self.broker.topics.reply_when_persisted(cmd, response)
            return response
        except BadRequest as exc:
            log.info(
                "send-back from %s refused: %s",
                conn.peer,
                exc.remark,
                extra={"peer": conn.peer, "code": cmd.code, "group": cmd.ext_fields.get("group")},
            )
            return exc.response(cmd)

    def _send_back(self, cmd: RemotingCommand) -> RemotingCommand:
        ext = cmd.ext_fields
        broker = self.broker
        offset = req_int(ext, "offset")
        group = req_str(ext, "group")
        delay_level = req_int(ext, "delayLevel")
        cfg = _group_config(broker, group)
        if cfg.retry_queue_nums <= 0:
            return cmd.response(ResponseCode.SUCCESS)  # the group wants no retries: drop
        topic = RETRY_GROUP_TOPIC_PREFIX + group
        queue_id = random.randrange(cfg.retry_queue_nums)
        _topic(broker, topic, cfg.retry_queue_nums)
        msg = load_message(broker.store, offset)
        if msg is None:
            raise BadRequest(f"look message by offset failed, {offset}")
        props = dict(msg.properties)
        props.setdefault(PROPERTY_RETRY_TOPIC, msg.topic)
        props[PROPERTY_WAIT_STORE_MSG_OK] = "false"
        max_times = cfg.retry_max_times
        if cmd.version >= V3_4_9 and ext.get("maxReconsumeTimes"):
            max_times = opt_int(ext, "maxReconsumeTimes", max_times)
        if msg.reconsume_times >= max_times or delay_level < 0:
            topic = DLQ_GROUP_TOPIC_PREFIX + group
            queue_id = random.randrange(DLQ_NUMS_PER_GROUP)
            _topic(broker, topic, DLQ_NUMS_PER_GROUP)
            props.pop(PROPERTY_DELAY_TIME_LEVEL, None)
            dlq_log.info(
                "send msg to DLQ %s, originalTopic=%s, consumerGroup=%s, msgUniqKey=%s, reconsumeTimes=%d",
                topic,
                ext.get("originTopic"),
                group,
                props.get(PROPERTY_UNIQ_KEY),
                msg.reconsume_times,
            )
        else:
            props[PROPERTY_DELAY_TIME_LEVEL] = str(delay_level or 3 + msg.reconsume_times)
        if not props.get(PROPERTY_ORIGIN_MESSAGE_ID):
            props[PROPERTY_ORIGIN_MESSAGE_ID] = msg.offset_msg_id
        topic, queue_id = broker.schedule.transform(topic, queue_id, props, msg.sys_flag)
        try:
            result = reput(broker.store, msg, topic, queue_id, props, msg.reconsume_times + 1)
        except StoreError as exc:
            raise BadRequest(str(exc)) from None
        if result.status != PutStatus.OK:
            return cmd.response(ResponseCode.SYSTEM_ERROR, result.status.value)
        return cmd.response(ResponseCode.SUCCESS)
