"""Handing a failed message back to the broker (Java's ``DefaultMQPushConsumerImpl.sendMessageBack``).

:meth:`SendBack.send_back` asks the message's broker to re-deliver it later through
``%RETRY%<group>`` (CONSUMER_SEND_MSG_BACK; the broker moves it to ``%DLQ%<group>`` past the
reconsume limit). If the broker cannot take it, :meth:`SendBack.to_retry_topic` sends a copy to the
retry topic as a producer would -- also how an orderly consumer gives up on a message.
"""

from __future__ import annotations

import logging
import time

from ferrymq.client import _api
from ferrymq.client._instance import ClientInstance
from ferrymq.client._remote import check_response, request
from ferrymq.client.errors import ClientError, MQError
from ferrymq.client.message import MessageQueue
from ferrymq.client.validators import RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.message import (
    PROPERTY_DELAY_TIME_LEVEL,
    PROPERTY_MAX_OFFSET,
    PROPERTY_MAX_RECONSUME_TIMES,
    PROPERTY_MIN_OFFSET,
    PROPERTY_ORIGIN_MESSAGE_ID,
    PROPERTY_RECONSUME_TIME,
    PROPERTY_RETRY_TOPIC,
    PROPERTY_UNIQ_KEY,
    MessageExt,
    properties_to_string,
)

log = logging.getLogger("ferrymq.client")

PROPERTY_CONSUME_START_TIME = "CONSUME_START_TIME"
#: the properties the consumer adds on arrival; not sent back with a re-sent message
LOCAL_PROPERTIES = (PROPERTY_MIN_OFFSET, PROPERTY_MAX_OFFSET, PROPERTY_CONSUME_START_TIME, "TRAN_MSG")
DEFAULT_MAX_RECONSUME_TIMES = 16
SEND_BACK_TIMEOUT = 5.0


class SendBack:
    """Hands failed messages of ``group`` back; ``max_reconsume_times`` -1 means the default."""

    def __init__(self, instance: ClientInstance, group: str, max_reconsume_times: int) -> None:
        self.instance = instance
        self.group = group
        self.max_reconsume_times = max_reconsume_times

    def max_reconsume(self) -> int:
        """The limit the broker applies (``getMaxReconsumeTimes``): 16 unless set."""
        return self.max_reconsume_times if self.max_reconsume_times >= 0 else DEFAULT_MAX_RECONSUME_TIMES

    async def send_back(self, msg: MessageExt) -> bool:
        """CONSUMER_SEND_MSG_BACK; on failure send to the retry topic ourselves. True if handed back."""
        header = {
            "offset": str(msg.commit_log_offset),
            "group": self.group,
            "delayLevel": "0",
            "originMsgId": msg.msg_id,
            "originTopic": msg.topic,
            "unitMode": "false",
            "maxReconsumeTimes": str(self.max_reconsume()),
        }
        try:
            addr = await self.instance.master_addr(
                MessageQueue(msg.topic, msg.broker_name or "", msg.queue_id)
            )
            resp = await self.instance.remote.invoke(
                addr, request(RequestCode.CONSUMER_SEND_MSG_BACK, header), SEND_BACK_TIMEOUT
            )
            check_response(resp, addr=addr)
            return True
        except MQError as exc:
            log.warning("send-back of %s failed (%s); sending it to the retry topic", msg.msg_id, exc)
        return await self.to_retry_topic(msg, msg.reconsume_times + 1, self.max_reconsume())

    async def to_retry_topic(self, msg: MessageExt, reconsume_times: int, max_times: int) -> bool:
        """Send a copy to ``%RETRY%<group>`` (the Java consumer's fallback and orderly give-up)."""
        props = {k: v for k, v in msg.properties.items() if k not in LOCAL_PROPERTIES}
        props[PROPERTY_RETRY_TOPIC] = msg.topic
        props.setdefault(PROPERTY_ORIGIN_MESSAGE_ID, msg.msg_id)
        props[PROPERTY_DELAY_TIME_LEVEL] = str(3 + msg.reconsume_times)
        props.pop(PROPERTY_RECONSUME_TIME, None)
        props.pop(PROPERTY_MAX_RECONSUME_TIMES, None)
        topic = RETRY_GROUP_TOPIC_PREFIX + self.group
        routes = self.instance.routes
        try:
            info = await routes.publish_info(topic)
            mq = info.select()
            addr = routes.master_addr(mq.broker_name)
            if addr is None:
                raise ClientError(f"The broker[{mq.broker_name}] not exist")
            header = _api.send_header_v2(
                group=self.group,
                topic=topic,
                default_topic="TBW102",
                default_topic_queue_nums=1,
                queue_id=mq.queue_id,
                sys_flag=0,
                born_timestamp=int(time.time() * 1000),
                flag=msg.flag,
                properties=properties_to_string(props),
                broker_name=mq.broker_name,
                reconsume_times=reconsume_times,
                max_reconsume_times=max_times,
            )
            await _api.send_message(
                self.instance.remote,
                addr,
                mq,
                header,
                msg.body,
                props.get(PROPERTY_UNIQ_KEY, ""),
                SEND_BACK_TIMEOUT,
            )
            return True
        except MQError as exc:
            log.warning("sending %s to %s failed: %s", msg.msg_id, topic, exc)
            return False
