"""PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361), with long polling.

As the Java broker's ``PullMessageProcessor``: the subscription comes with the pull (sysFlag
bit 4, as lite-pull consumers send it) or from the group's heartbeat (push consumers), whose
subVersion must not be older than the pull's (SUBSCRIPTION_NOT_EXIST / SUBSCRIPTION_NOT_LATEST).
A piggy-backed offset commit (bit 1) only moves an offset forward (a stale pull cannot undo a newer
commit; UPDATE_CONSUMER_OFFSET still can), and a slave ignores it (Java clients clear the bit for
slaves). Slaves: see core/broker/slave_reads.py (who serves, suggestWhichBrokerId). A pull that
finds nothing and may suspend (bit 2) waits up to suspendTimeoutMillis for a matching arrival;
so does a filtered pull (tag or SQL92) that matched nothing up to the queue's readable end, from
the offset past what it read (RocketMQ answers that PULL_RETRY_IMMEDIATELY and parks the pull the
client sends next; here the first pull parks), and each arrival that wakes it re-checks the filter;
past maxSuspendedPullsPerConnection parked on one connection, it is answered SYSTEM_BUSY at once
(Java clients retry after a pause).
A pull returns at most maxTransferCountOnMessageInMemory messages and
maxTransferBytesOnMessageInMemory bytes (at least one message), so a response always fits in
the client's 16 MiB frame. The body is the stored records as they are in the commit log.
SQL92 subscriptions are filtered here (core/broker/property_filter.py: codes 23/27 and
SYSTEM_ERROR when enablePropertyFilter is off); TAG pulls keep the tag-hash scan and read no
property. Leaves out: class filters (answered with an error).
Batch entries (Kafka record batches) reach RocketMQ clients as one stored message per record,
through the store's converter for their format, with queue offsets = Kafka offsets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ferrymq.core.broker import property_filter, slave_reads
from ferrymq.core.filter.sql92 import Predicate
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, opt_int, req_int, req_str
from ferrymq.core.remoting.route import PERM_READ
from ferrymq.core.remoting.subscription import SubscriptionData, SubscriptionError
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection
from ferrymq.core.store import GetResult, GetStatus

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

FLAG_COMMIT_OFFSET = 1
FLAG_SUSPEND = 2
FLAG_SUBSCRIPTION = 4
FAQ = "\nSee http://rocketmq.apache.org/docs/faq/ for further details."
#: conn.attrs key: long polls of the connection parked now
PARKED_PULLS = "parkedPulls"
#: the remark of Java's flow control (NettyRemotingAbstract, a processor rejecting a request)
BUSY = "[REJECTREQUEST]system busy, start flow control for a while"


@dataclass(slots=True, frozen=True)
class _Queue:
    """What a pull asks for, carried through a long poll to its response."""

    group: str
    topic: str
    queue_id: int
    offset: int
    codes: frozenset[int] | None
    #: an SQL92 subscription's predicate: the read filters by it and returns stored messages
    predicate: Predicate | None = None


class PullMessageProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.store = broker.store

    def pull(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        cfg = self.broker.config
        if slave_reads.rejects_pulls(cfg, self.broker.ha):
            return cmd.response(ResponseCode.SYSTEM_BUSY, BUSY)
        ext = cmd.ext_fields
        try:
            group = req_str(ext, "consumerGroup")
            topic = req_str(ext, "topic")
            queue_id = req_int(ext, "queueId")
            offset = req_int(ext, "queueOffset")
            max_nums = req_int(ext, "maxMsgNums")
            sys_flag = req_int(ext, "sysFlag")
            commit_offset = req_int(ext, "commitOffset")
            suspend_ms = req_int(ext, "suspendTimeoutMillis")
            sub_version = opt_int(ext, "subVersion", 0)
            max_bytes = opt_int(ext, "maxMsgBytes", 0)
            tc = self.broker.topics.get(topic)
            if tc is None:
                raise BadRequest(
                    f"topic[{topic}] not exist, apply first please!{FAQ}", ResponseCode.TOPIC_NOT_EXIST
                )
            if not tc.perm & PERM_READ:
                raise BadRequest(
                    f"the topic[{topic}] pulling message is forbidden", ResponseCode.NO_PERMISSION
                )
            if queue_id < 0 or queue_id >= tc.read_queue_nums:
                raise BadRequest(
                    f"queueId[{queue_id}] is illegal, topic:[{topic}] "
                    f"topicConfig.readQueueNums:[{tc.read_queue_nums}] consumer:[{conn.peer}]"
                )
            if max_nums <= 0:
                raise BadRequest(f"maxMsgNums[{max_nums}] must be positive", ResponseCode.INVALID_PARAMETER)
            sub = self._subscription(group, topic, sys_flag, ext, sub_version)
            predicate = (
                None
                if sub.is_tag_type
                else property_filter.predicate_for(
                    sub, not sys_flag & FLAG_SUBSCRIPTION, cfg.enable_property_filter
                )
            )
        except BadRequest as exc:
            return exc.response(cmd)
        if sys_flag & FLAG_COMMIT_OFFSET and commit_offset >= 0 and not cfg.is_slave:
            offsets = self.broker.offsets
            current = offsets.query(group, topic, queue_id)
            if current is None or commit_offset > current:
                offsets.commit(group, topic, queue_id, commit_offset)
        # a pull returns what fits in a frame whatever it asks for (Java's maxTransfer*InMemory)
        max_nums = min(max_nums, cfg.max_transfer_count_on_message_in_memory)
        limit = cfg.max_transfer_bytes_on_message_in_memory
        max_bytes = min(max_bytes, limit) if max_bytes > 0 else limit
        codes = sub.tag_codes() if predicate is None else None
        q = _Queue(group, topic, queue_id, offset, codes, predicate)
        result, code, q = self._scan(q, max_nums, max_bytes)
        if code == ResponseCode.PULL_NOT_FOUND and not sys_flag & FLAG_SUSPEND and self._redirects():
            code = ResponseCode.PULL_RETRY_IMMEDIATELY  # a slave sends a caught-up consumer home
        if code == ResponseCode.PULL_NOT_FOUND and sys_flag & FLAG_SUSPEND:
            timeout_ms = suspend_ms if cfg.long_polling_enable else cfg.short_polling_time_mills
            if timeout_ms > 0:
                parked = conn.attrs.get(PARKED_PULLS, 0)
                if parked >= cfg.max_suspended_pulls_per_connection:
                    if conn.gate is not None:
                        conn.gate.rejected["parked_pull_cap"] += 1
                    return cmd.response(ResponseCode.SYSTEM_BUSY, BUSY)
                conn.attrs[PARKED_PULLS] = parked + 1
                return self._long_poll(cmd, conn, q, max_nums, max_bytes, timeout_ms)
        return self._response(cmd, result, code, q)

    async def _long_poll(
        self,
        cmd: RemotingCommand,
        conn: RemotingConnection,
        q: _Queue,
        max_nums: int,
        max_bytes: int,
        timeout_ms: int,
    ) -> RemotingCommand:
        deadline = time.monotonic() + timeout_ms / 1000
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if not await self.broker.hold.hold(q.topic, q.queue_id, q.codes, remaining):
                    break
                result, code, q = self._scan(q, max_nums, max_bytes)  # the filter checked again
                if code != ResponseCode.PULL_NOT_FOUND:
                    return self._response(cmd, result, code, q)
        finally:
            conn.attrs[PARKED_PULLS] -= 1
        result, code, q = self._scan(q, max_nums, max_bytes)
        return self._response(cmd, result, code, q)

    def _scan(self, q: _Queue, max_nums: int, max_bytes: int) -> tuple[GetResult, int, _Queue]:
        """Read and map to a response code. A filter that matched nothing up to the readable end
        is PULL_NOT_FOUND from the offset past what it read (the pull parks there, and its
        answer's nextBeginOffset moves the consumer on); a scan its budget cut short stays
        PULL_RETRY_IMMEDIATELY (the consumer comes back at once for the rest)."""
        result = self._get(q, max_nums, max_bytes)
        code = self._code(result, q.offset)
        if (
            code == ResponseCode.PULL_RETRY_IMMEDIATELY
            and result.status is GetStatus.NO_MATCHED_MESSAGE
            and result.next_begin_offset >= result.max_offset
        ):
            return result, ResponseCode.PULL_NOT_FOUND, replace(q, offset=result.next_begin_offset)
        return result, code, q

    def _get(self, q: _Queue, max_nums: int, max_bytes: int) -> GetResult:
        if q.predicate is None:
            return self.store.get_messages(q.topic, q.queue_id, q.offset, max_nums, max_bytes, q.codes)
        return property_filter.get_matching(
            self.store, q.topic, q.queue_id, q.offset, max_nums, max_bytes, q.predicate
        )

    def _code(self, result: GetResult, offset: int) -> int:
        """The response code; a slave keeps the consumer's offset where a master would move it
        (nextOffsetCorrection without offsetCheckInSlave): nothing there yet, wait for it."""
        code = _response_code(result, offset)
        if code == ResponseCode.PULL_OFFSET_MOVED:
            cfg = self.broker.config
            if cfg.is_slave and not cfg.offset_check_in_slave:
                result.next_begin_offset = offset
                return ResponseCode.PULL_NOT_FOUND
        return code

    def _redirects(self) -> bool:
        """A slave with a live master (it serves only with slaveReadEnable)."""
        return self.broker.config.is_slave and slave_reads.master_alive(self.broker.ha)

    def _suggestion(self, q: _Queue, result: GetResult, code: int) -> int:
        """suggestWhichBrokerId (core/broker/slave_reads.py)."""
        cfg = self.broker.config
        if not cfg.slave_read_enable and not cfg.is_slave:
            return slave_reads.MASTER_ID
        cold = False
        if code == ResponseCode.SUCCESS:  # how far the last pulled message is from the log's end
            cq = self.store.consume_queues.get((q.topic, q.queue_id))
            last = cq.unit(result.next_begin_offset - 1) if cq is not None else None
            if last is not None:
                lag = self.store.commit_log.write_offset - last[0] - last[1]
                cold = lag > slave_reads.in_memory_bytes(cfg)
        group_id, slowly_id = slave_reads.MASTER_ID, 1
        sg = self.broker.subscription_groups.find(q.group) if cfg.slave_read_enable else None
        if sg is not None:
            group_id, slowly_id = sg.broker_id, sg.which_broker_when_consume_slowly
        return slave_reads.suggested_broker(cfg, self.broker.ha, cold, group_id, slowly_id)

    def _subscription(
        self, group: str, topic: str, sys_flag: int, ext: dict[str, str], sub_version: int
    ) -> SubscriptionData:
        if sys_flag & FLAG_SUBSCRIPTION:
            try:
                return SubscriptionData.parse(
                    topic, ext.get("subscription"), ext.get("expressionType"), sub_version
                )
            except SubscriptionError as exc:
                raise BadRequest(str(exc), ResponseCode.SUBSCRIPTION_PARSE_FAILED) from None
        info = self.broker.clients.consumer_group(group)
        if info is None:
            raise BadRequest(f"the consumer's group info not exist{FAQ}", ResponseCode.SUBSCRIPTION_NOT_EXIST)
        sub = info.subscriptions.get(topic)
        if sub is None:
            raise BadRequest(
                f"the consumer's subscription not exist{FAQ}", ResponseCode.SUBSCRIPTION_NOT_EXIST
            )
        if sub.sub_version < sub_version:
            raise BadRequest("the consumer's subscription not latest", ResponseCode.SUBSCRIPTION_NOT_LATEST)
        return sub

    def _response(
        self,
        cmd: RemotingCommand,
        result: GetResult,
        code: int,
        q: _Queue,
    ) -> RemotingCommand:
        ext = {
            "suggestWhichBrokerId": str(self._suggestion(q, result, code)),
            "nextBeginOffset": str(result.next_begin_offset),
            "minOffset": str(result.min_offset),
            "maxOffset": str(result.max_offset),
        }
        body: bytes | memoryview = b""
        if code == ResponseCode.SUCCESS:
            # batch entries (Kafka record batches) become one stored message per record
            bufs: list[memoryview | bytes] = (
                self.store.as_stored_messages(result.buffers, q.offset, q.codes)
                if q.predicate is None
                else list(result.buffers)  # converted and filtered already
            )
            body = bufs[0] if len(bufs) == 1 else b"".join(bufs)
            self.broker.stats.on_get(q.topic, result.message_count, result.byte_count, q.group)
        return cmd.response(code, None if code == ResponseCode.SUCCESS else result.status.value, ext, body)


def _response_code(result: GetResult, offset: int) -> int:
    """GetMessageStatus to response code, as PullMessageProcessor maps them."""
    status = result.status
    if status == GetStatus.FOUND:
        return ResponseCode.SUCCESS
    if status == GetStatus.NO_MATCHED_MESSAGE:
        return ResponseCode.PULL_RETRY_IMMEDIATELY
    if status in (GetStatus.NO_MESSAGE_IN_QUEUE, GetStatus.NO_MATCHED_LOGIC_QUEUE):
        return ResponseCode.PULL_OFFSET_MOVED if offset != 0 else ResponseCode.PULL_NOT_FOUND
    if status == GetStatus.OFFSET_OVERFLOW_ONE:
        return ResponseCode.PULL_NOT_FOUND
    return ResponseCode.PULL_OFFSET_MOVED
