"""SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320).

Serves the 4.x and 5.x header forms (V2's one-letter names are mapped back). Checks as the Java
broker's ``AbstractSendMessageProcessor.msgCheck``: legal topic name, topic allowed for sends,
auto-creation from the default topic (TBW102), queue id in range (negative = any), writable
permission, body size against maxMessageSize. Under SYNC_FLUSH the reply waits for the commit
log to be on disk (FLUSH_DISK_TIMEOUT after syncFlushTimeout). Delayed and timer messages (DELAY,
TIMER_DELIVER_MS / TIMER_DELAY_MS / TIMER_DELAY_SEC) are redirected by ``core/broker/schedule.py``;
sends to %RETRY%<group> past the group's maximum go to %DLQ%<group>
(``processors/consumer_send_back.py``). A half message (TRAN_MSG=true) goes to the hidden half queue
(``core/broker/transaction.py``); its reply carries ``transactionId``. Sends to system topics are
refused (NO_PERMISSION).
"""

from __future__ import annotations

import random
import socket
from typing import TYPE_CHECKING

from ferrymq.core.broker.processors.consumer_send_back import retry_or_dlq
from ferrymq.core.broker.schedule import SCHEDULE_PROPERTIES, stored_tags_code
from ferrymq.core.broker.topic_config import (
    NOT_ALLOWED_SEND,
    RETRY_GROUP_TOPIC_PREFIX,
    validate_topic,
)
from ferrymq.core.broker.transaction import PROPERTY_TRANSACTION_PREPARED, is_transactional, to_half
from ferrymq.core.ha import SlaveWait
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, opt_int, req_int, req_str
from ferrymq.core.remoting.message import (
    DEFAULT_REGION,
    PROPERTY_CLUSTER,
    PROPERTY_KEYS,
    PROPERTY_MSG_REGION,
    PROPERTY_TAGS,
    PROPERTY_TRACE_SWITCH,
    PROPERTY_UNIQ_KEY,
    PROPERTY_WAIT_STORE_MSG_OK,
    SYSFLAG_TRANSACTION_MASK,
    BatchItem,
    create_offset_msg_id,
    decode_batch_body,
    properties_to_string,
    string_to_properties,
    tags_code,
)
from ferrymq.core.remoting.route import PERM_WRITE, TopicConfig
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection
from ferrymq.core.store import PutResult, PutStatus
from ferrymq.core.store.message_store import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

V2_NAMES = {
    "a": "producerGroup",
    "b": "topic",
    "c": "defaultTopic",
    "d": "defaultTopicQueueNums",
    "e": "queueId",
    "f": "sysFlag",
    "g": "bornTimestamp",
    "h": "flag",
    "i": "properties",
    "j": "reconsumeTimes",
    "k": "unitMode",
    "l": "maxReconsumeTimes",
    "m": "batch",
    "n": "brokerName",
}
#: properties that send a message somewhere else than its topic (one set intersection per send)
REDIRECT_PROPERTIES = SCHEDULE_PROPERTIES | {PROPERTY_TRANSACTION_PREPARED}
FAQ = "\nSee http://rocketmq.apache.org/docs/faq/ for further details."


def _born_host(conn: RemotingConnection) -> tuple[bytes, int]:
    cached: tuple[bytes, int] | None = conn.attrs.get("born")
    if cached is None:
        host, _, port = conn.peer.rpartition(":")
        try:
            raw = socket.inet_aton(host)
        except OSError:
            raw = b"\x7f\x00\x00\x01"  # IPv6 peers are recorded as loopback v4 (v4 layout only)
        cached = conn.attrs["born"] = (raw, int(port) if port.isdigit() else 0)
    return cached


class SendMessageProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.config = broker.config
        self.store = broker.store
        self.topics = broker.topics
        #: what Apache RocketMQ's broker adds to every message it stores: its cluster, region and trace
        #: switch (a Java consumer with trace on records nothing for a message without a region)
        self.cluster_prop = (
            f"{PROPERTY_CLUSTER}\x01{broker.config.broker_cluster_name}\x02"
            f"{PROPERTY_MSG_REGION}\x01{DEFAULT_REGION}\x02{PROPERTY_TRACE_SWITCH}\x01true\x02"
        )
        self._sync_master = self.config.broker_role == "SYNC_MASTER"
        #: a send waits after its put for the flush (SYNC_FLUSH) and for a slave (SYNC_MASTER)
        self._wait_after_put = self.config.sync_flush or self._sync_master
        #: controller mode: the least in-sync set (master included) a waiting send needs
        self._min_isr = (
            self.config.min_in_sync_replicas
            if self._sync_master and self.config.enable_controller_mode
            else 1
        )

    def send(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields
        if cmd.code != RequestCode.SEND_MESSAGE:
            ext = {V2_NAMES.get(k, k): v for k, v in ext.items()}
        try:
            req_str(ext, "producerGroup")
            topic = req_str(ext, "topic")
            queue_id = req_int(ext, "queueId")
            sys_flag = req_int(ext, "sysFlag")
            born_ts = req_int(ext, "bornTimestamp")
            flag = req_int(ext, "flag")
            tc, created = self._check_topic(topic, ext, sys_flag, conn)
            queue_id = self._check_queue(tc, queue_id, ext)
            batch = cmd.code == RequestCode.SEND_BATCH_MESSAGE or ext.get("batch") == "true"
            if len(cmd.body) > self.config.max_message_size:
                raise BadRequest(
                    f"the message body size over max value, MAX: {self.config.max_message_size}",
                    ResponseCode.MESSAGE_ILLEGAL,
                )
            born = _born_host(conn)
            reconsume = opt_int(ext, "reconsumeTimes", 0)
            if batch:
                result, wait = self._put_batch(cmd, topic, queue_id, sys_flag, born_ts, born, reconsume)
            else:
                result, wait = self._put_one(
                    cmd, ext, topic, queue_id, flag, sys_flag, born_ts, born, reconsume
                )
        except BadRequest as exc:
            return exc.response(cmd)
        except StoreError as exc:
            return cmd.response(ResponseCode.MESSAGE_ILLEGAL, str(exc))
        if result.status != PutStatus.OK:
            reason = f"the store is not writable now: {self.store.unwritable_reason or 'unknown'}"
            return cmd.response(ResponseCode.SERVICE_NOT_AVAILABLE, reason)
        ip, port = self.store.store_host, self.store.store_port
        msg_ids = ",".join(create_offset_msg_id(ip, port, off) for off in result.offsets)
        fields = {
            "msgId": msg_ids,
            "queueId": str(queue_id),
            "queueOffset": str(result.queue_offset),
            PROPERTY_MSG_REGION: DEFAULT_REGION,
            PROPERTY_TRACE_SWITCH: "true",
        }
        if result.transaction_id is not None:  # what END_TRANSACTION echoes (SendMessageProcessor)
            fields["transactionId"] = result.transaction_id
        response = cmd.response(ResponseCode.SUCCESS, ext_fields=fields)
        self.broker.stats.on_put(topic, result.count, result.size)
        # the first send to a new topic (or a retry that made a DLQ): as in RocketMQ, the reply
        # follows the topic's write
        if created or (topic.startswith(RETRY_GROUP_TOPIC_PREFIX) and self.topics.unwritten):
            return self._after_topic_write(cmd, response, result, wait)
        if wait and self._wait_after_put:
            return self._after_put(response, result)
        return response

    async def _after_topic_write(
        self, cmd: RemotingCommand, response: RemotingCommand, result: PutResult, wait: bool
    ) -> RemotingCommand:
        response = await self.topics.reply_when_persisted(cmd, response)
        if wait and self._wait_after_put and response.code == ResponseCode.SUCCESS:
            return await self._after_put(response, result)
        return response

    async def _after_put(self, response: RemotingCommand, result: PutResult) -> RemotingCommand:
        """SYNC_FLUSH: wait for the flush; SYNC_MASTER: then for a slave's ack. A timeout (or no
        slave) changes the code only: the message is stored and the send-result header stays,
        as in RocketMQ's handlePutMessageResult."""
        if self.config.sync_flush:
            try:
                if not await self.store.wait_durable(result.end_offset):
                    response.code = ResponseCode.FLUSH_DISK_TIMEOUT
            except StoreUnavailable as exc:  # stored but never made durable: not a success
                response.code = ResponseCode.SERVICE_NOT_AVAILABLE
                response.remark = f"the store is not writable now: {exc}"
                response.ext_fields = {}
                return response
        if self._sync_master:
            outcome = await self.broker.ha.wait_for_slaves(result.end_offset)
            if outcome is SlaveWait.SLAVE_NOT_AVAILABLE:
                response.code = ResponseCode.SLAVE_NOT_AVAILABLE
            elif outcome is SlaveWait.FLUSH_SLAVE_TIMEOUT:
                response.code = ResponseCode.FLUSH_SLAVE_TIMEOUT
        return response

    @staticmethod
    def refuse_on_slave(cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        """A slave takes no sends (its store is written by replication only). SERVICE_NOT_AVAILABLE
        is what RocketMQ's store answers a put on a slave, and every Java producer version
        retries it on another broker (SYSTEM_BUSY only since 5.1)."""
        return cmd.response(
            ResponseCode.SERVICE_NOT_AVAILABLE,
            "service not available now: this broker is a SLAVE; messages are sent to its master",
        )

    @staticmethod
    def refuse_fenced(cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        """Controller mode, before the controller gave this broker a role: no writes yet."""
        return cmd.response(
            ResponseCode.SERVICE_NOT_AVAILABLE,
            "service not available now: this broker is FENCED until the controller elects a master",
        )

    def _check_topic(
        self, topic: str, ext: dict[str, str], sys_flag: int, conn: RemotingConnection
    ) -> tuple[TopicConfig, bool]:
        """The topic's config, auto-created if allowed, and whether this request created it."""
        reason = validate_topic(topic)
        if reason:
            raise BadRequest(reason)
        if topic in NOT_ALLOWED_SEND:
            raise BadRequest(f"Sending message to topic[{topic}] is forbidden.", ResponseCode.NO_PERMISSION)
        tc = self.topics.get(topic)
        created = tc is None
        if tc is None:
            if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                tc = self.topics.create_if_absent(topic, 1)
            else:
                default_topic = ext.get("defaultTopic", "")
                queue_nums = opt_int(ext, "defaultTopicQueueNums", self.config.default_topic_queue_nums)
                tc = self.topics.create_in_send(topic, default_topic, queue_nums, 0)
            if tc is None:
                raise BadRequest(
                    f"topic[{topic}] not exist, apply first please!{FAQ}", ResponseCode.TOPIC_NOT_EXIST
                )
            self.broker.topic_created(tc)
        if not tc.perm & PERM_WRITE:
            raise BadRequest(f"the topic[{topic}] sending message is forbidden", ResponseCode.NO_PERMISSION)
        return tc, created

    @staticmethod
    def _check_queue(tc: TopicConfig, queue_id: int, ext: dict[str, str]) -> int:
        if queue_id < 0:
            return random.randrange(max(1, tc.write_queue_nums))
        valid = max(tc.write_queue_nums, tc.read_queue_nums)
        if queue_id >= valid:
            raise BadRequest(
                f"request queueId[{queue_id}] is illegal, TopicConfig [topicName={tc.topic_name}, "
                f"readQueueNums={tc.read_queue_nums}, writeQueueNums={tc.write_queue_nums}] "
                f"Producer: {ext.get('producerGroup')}"
            )
        return queue_id

    def _check_in_sync(self, props: dict[str, str]) -> None:
        """RocketMQ 5 refuses a send that would wait for its replicas (WAIT not "false") before
        the append while the in-sync set is below minInSyncReplicas (IN_SYNC_REPLICAS_NOT_ENOUGH,
        answered as SYSTEM_ERROR by its SendMessageProcessor)."""
        if (
            props.get(PROPERTY_WAIT_STORE_MSG_OK) != "false"
            and 1 + self.broker.ha.in_sync_count() < self._min_isr
        ):
            raise BadRequest("in-sync replicas not enough", ResponseCode.SYSTEM_ERROR)

    def _put_one(
        self,
        cmd: RemotingCommand,
        ext: dict[str, str],
        topic: str,
        queue_id: int,
        flag: int,
        sys_flag: int,
        born_ts: int,
        born: tuple[bytes, int],
        reconsume: int,
    ) -> tuple[PutResult, bool]:
        props_str = ext.get("properties", "")
        props = string_to_properties(props_str)
        code = tags_code(props.get(PROPERTY_TAGS))
        txn_id = None
        if topic.startswith(RETRY_GROUP_TOPIC_PREFIX) or not REDIRECT_PROPERTIES.isdisjoint(props):
            if is_transactional(props):
                if self.config.reject_transaction_message:
                    raise BadRequest(
                        f"the broker[{self.config.broker_name}] sending transaction message is forbidden",
                        ResponseCode.NO_PERMISSION,
                    )
                txn_id = props.get(PROPERTY_UNIQ_KEY)
                topic, queue_id, sys_flag = to_half(topic, queue_id, props, sys_flag)
            else:
                if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                    topic, queue_id = retry_or_dlq(self.broker, topic, queue_id, ext, props, cmd.version)
                topic, queue_id = self.broker.schedule.transform(topic, queue_id, props, sys_flag)
            props_str = properties_to_string(props)
            code = stored_tags_code(topic, props)
        if props_str and not props_str.endswith("\x02"):
            props_str += "\x02"
        if self._min_isr > 1:
            self._check_in_sync(props)
        keys = props.get(PROPERTY_KEYS)
        result = self.store.put_message(
            topic,
            queue_id,
            bytes(cmd.body),
            props_str + self.cluster_prop,
            tags_code=code,
            keys=keys.split() if keys else None,
            uniq_key=props.get(PROPERTY_UNIQ_KEY),
            flag=flag,
            sys_flag=sys_flag,
            born_timestamp=born_ts,
            born_host=born[0],
            born_port=born[1],
            reconsume_times=reconsume,
        )
        result.transaction_id = txn_id
        return result, props.get(PROPERTY_WAIT_STORE_MSG_OK, "true") != "false"

    def _put_batch(
        self,
        cmd: RemotingCommand,
        topic: str,
        queue_id: int,
        sys_flag: int,
        born_ts: int,
        born: tuple[bytes, int],
        reconsume: int,
    ) -> tuple[PutResult, bool]:
        if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            raise BadRequest(
                "batch request does not support retry group " + topic, ResponseCode.MESSAGE_ILLEGAL
            )
        try:
            items = decode_batch_body(cmd.body)
        except ValueError as exc:
            raise BadRequest(f"the batch body is malformed: {exc}", ResponseCode.MESSAGE_ILLEGAL) from None
        if not items:
            raise BadRequest("the batch is empty", ResponseCode.MESSAGE_ILLEGAL)
        if sys_flag & SYSFLAG_TRANSACTION_MASK:
            raise BadRequest("batch message does not support transaction", ResponseCode.MESSAGE_ILLEGAL)
        # all or nothing: check every message before storing any (StoreError refuses the batch)
        prepared: list[tuple[BatchItem, dict[str, str], str]] = []
        for item in items:
            props = string_to_properties(item.properties)
            if not SCHEDULE_PROPERTIES.isdisjoint(props):
                raise BadRequest("not support delay message in batch", ResponseCode.MESSAGE_ILLEGAL)
            props_str = item.properties
            if props_str and not props_str.endswith("\x02"):
                props_str += "\x02"
            props_str += self.cluster_prop
            self.store.check_message(topic.encode(), len(item.body), props_str.encode())
            prepared.append((item, props, props_str))
            if self._min_isr > 1:
                self._check_in_sync(props)
        first: PutResult | None = None
        offsets: list[int] = []
        total = 0
        last: PutResult | None = None
        wait = True
        for item, props, props_str in prepared:
            keys = props.get(PROPERTY_KEYS)
            last = self.store.put_message(
                topic,
                queue_id,
                item.body,
                props_str,
                tags_code=tags_code(props.get(PROPERTY_TAGS)),
                keys=keys.split() if keys else None,
                uniq_key=props.get(PROPERTY_UNIQ_KEY),
                flag=item.flag,
                sys_flag=sys_flag,
                born_timestamp=born_ts,
                born_host=born[0],
                born_port=born[1],
                reconsume_times=reconsume,
            )
            if last.status != PutStatus.OK:
                return last, False
            if first is None:
                first = last
            offsets.append(last.phys_offset)
            total += last.size
            wait = wait and props.get(PROPERTY_WAIT_STORE_MSG_OK, "true") != "false"
        assert first is not None and last is not None
        return (
            PutResult(
                PutStatus.OK,
                first.phys_offset,
                first.queue_offset,
                first.store_timestamp,
                total,
                len(items),
                offsets,
                last.end_offset,
            ),
            wait,
        )
