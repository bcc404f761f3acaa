"""RocketMQ transactional messages on one broker: half messages, decisions, the check service.

Sources (read for facts): ``SendMessageProcessor``, ``TransactionalMessageBridge``,
``EndTransactionProcessor``, ``TransactionalMessageServiceImpl``, ``TransactionalOpBatchService``,
``TransactionalMessageCheckService`` and ``Broker2Client.checkProducerTransactionState``.

- A send with TRAN_MSG=true is stored in ``RMQ_SYS_TRANS_HALF_TOPIC`` queue 0 (REAL_TOPIC,
  REAL_QID, __transactionId__ added; sysFlag transaction bits cleared), so no consumer of the real
  topic sees it; its DELAY or timer properties act only once committed.
- A commit stores a copy in the real queue (sysFlag COMMIT, preparedTransactionOffset = the half's
  commit-log offset, then through the delay/timer hook); a rollback stores nothing. Both record
  the half's queue offset in an op message (``transaction_ops``).
- Every ``transactionCheckInterval`` the checker walks the half queue (at most ``CHECK_BATCH``
  offsets per turn of the event loop): a half older than ``transactionTimeOut`` without a decision
  is stored again (TRANSACTION_CHECK_TIMES + 1) and CHECK_TRANSACTION_STATE (39, oneway) about
  that copy goes to a live producer of its group; past ``transactionCheckMax`` checks it goes to
  ``TRANS_CHECK_MAX_TIME_TOPIC`` instead.
- A half born more than ``fileReservedTime`` hours ago is moved to ``TRANS_CHECK_MAX_TIME_TOPIC``
  unchecked, as one checked too often (``needSkip``: its producer's records are long gone).
- CHECK_IMMUNITY_TIME_IN_SECONDS (a message property, seconds) replaces transactionTimeOut as the
  age of the first check for that half. While it lasts the checker stores a copy naming the
  original's queue offset (TRAN_PREPARED_QUEUE_OFFSET) and goes on, so the halves behind it are
  not held up; a copy whose original was decided meanwhile is dropped. An END not answering a
  check that comes after max(immunity, transactionTimeOut) is ILLEGAL_OPERATION (604): the
  decision then belongs to the check (``EndTransactionProcessor.rejectCommitOrRollback``).
- Exactly one commit: op messages are batched, so a kill -9 can lose the last few; before a
  commit or a check the real topic's key index is asked whether a COMMIT copy with the same
  UNIQ_KEY exists (also in the delay and timer topics, where a delayed commit waits). A rollback
  of an immune half whose op message was lost to a crash is checked again once immune no more.

Left out: the legacy pre-4.6.1 reconsume exception, several half/op queues (one of each, as
RocketMQ uses).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ferrymq.core.broker.due_delivery import DueDeliveryLoop
from ferrymq.core.broker.schedule import load_message, reput
from ferrymq.core.broker.topic_config import SCHEDULE_TOPIC, TIMER_TOPIC
from ferrymq.core.broker.transaction_ops import OP_TAG, HalfQueueState, decode_op_body, encode_op_body
from ferrymq.core.persist import write_json_atomic
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import (
    PROPERTY_PRODUCER_GROUP,
    PROPERTY_REAL_QUEUE_ID,
    PROPERTY_REAL_TOPIC,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    SYSFLAG_TRANSACTION_COMMIT,
    SYSFLAG_TRANSACTION_MASK,
    MessageExt,
    encode_stored_message,
    ip_bytes,
    read_stored_fields,
    tags_code,
)
from ferrymq.core.remoting.route import loads_fastjson
from ferrymq.core.store import PutResult, PutStatus
from ferrymq.core.store.message_store import StoreError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.transaction")

HALF_TOPIC = "RMQ_SYS_TRANS_HALF_TOPIC"
OP_TOPIC = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
CHECK_MAX_TOPIC = "TRANS_CHECK_MAX_TIME_TOPIC"
PROPERTY_TRANSACTION_PREPARED = "TRAN_MSG"
PROPERTY_TRANSACTION_ID = "__transactionId__"
PROPERTY_CHECK_TIMES = "TRANSACTION_CHECK_TIMES"
PROPERTY_CHECK_IMMUNITY = "CHECK_IMMUNITY_TIME_IN_SECONDS"
PROPERTY_PREPARED_QUEUE_OFFSET = "TRAN_PREPARED_QUEUE_OFFSET"
#: half-queue offsets the checker looks at per turn of the event loop
CHECK_BATCH = 256


def is_transactional(props: dict[str, str]) -> bool:
    """``Boolean.parseBoolean(TRAN_MSG)``: what makes a send a half message."""
    value = props.get(PROPERTY_TRANSACTION_PREPARED)
    return value is not None and value.lower() == "true"


def to_half(topic: str, queue_id: int, props: dict[str, str], sys_flag: int) -> tuple[str, int, int]:
    """Where a half message is stored and its stored sysFlag (``parseHalfMessageInner``);
    ``props`` gains the real topic and queue and the transaction id."""
    uniq = props.get(PROPERTY_UNIQ_KEY)
    if uniq is not None:
        props[PROPERTY_TRANSACTION_ID] = uniq
    props[PROPERTY_REAL_TOPIC] = topic
    props[PROPERTY_REAL_QUEUE_ID] = str(queue_id)
    return HALF_TOPIC, 0, sys_flag & ~SYSFLAG_TRANSACTION_MASK


class EndRefused(Exception):
    """An END_TRANSACTION that does not match its half message (SYSTEM_ERROR)."""


def end_too_late(half: MessageExt, now: int, transaction_timeout: int) -> bool:
    """Whether a producer's own END (not a check's answer) comes after the half's immunity time:
    at least transactionTimeOut, the property's seconds when larger (unreadable counts as 0)."""
    value = half.properties.get(PROPERTY_CHECK_IMMUNITY)
    if not value:
        return False
    try:
        immunity = int(value) * 1000
    except ValueError:
        immunity = 0
    return now - half.born_timestamp > max(immunity, transaction_timeout)


def _check_immunity(value: str, transaction_timeout: int) -> int:
    """The checker's immunity (ms): the property's seconds, transactionTimeOut if unreadable."""
    try:
        return int(value) * 1000
    except ValueError:
        return transaction_timeout


class TransactionService(DueDeliveryLoop):
    task_name = "transaction-check"

    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker
        self.store = broker.store
        self.config = broker.config
        self.path = broker.config.store_path_root_dir / "config" / "transactionCheckpoint.json"
        self.state = HalfQueueState()
        self._next_pass = 0
        self._pass_end: int | None = None  # the half queue's end when the running pass began
        self._running = False
        self.checks_sent = 0
        self.passes = 0  # check passes finished (tests wait on it)
        self.committed = 0
        self.rolled_back = 0

    # ---- start: the checkpoint and the op messages after it --------------------------------------

    def start(self) -> None:
        self._load()
        self._running = True
        super().start()

    def _load(self) -> None:
        self.state = HalfQueueState()
        try:
            data = loads_fastjson(self.path.read_text())
        except FileNotFoundError:
            data = None
        if isinstance(data, dict):
            self.state.cursor = int(data.get("halfOffset", 0))
            self.state.op_cursor = int(data.get("opOffset", 0))
            self.state.immune = {int(o) for o in data.get("immune", [])}
        cq = self.store.consume_queues.get((OP_TOPIC, 0))
        if cq is None:
            return
        offset = max(self.state.op_cursor, cq.min_offset)
        while offset < cq.max_offset:
            unit = cq.unit(offset)
            if unit is None:
                break
            msg = load_message(self.store, unit[0])
            if msg is not None:
                self.state.load_op(offset, decode_op_body(msg.body))
            offset += 1
        log.info(
            "transactions: half queue checked up to %d, %d decisions read back from op messages",
            self.state.cursor,
            len(self.state.done),
        )

    def persist(self) -> None:
        self._dirty = False
        self._last_persist = time.monotonic()
        data: dict[str, object] = {"halfOffset": self.state.cursor, "opOffset": self.state.op_cursor}
        if self.state.immune:
            data["immune"] = sorted(self.state.immune)
        write_json_atomic(self.path, data)

    async def stop(self) -> None:
        if not self._running:  # never started (a slave): nothing loaded, nothing to write
            return
        self._running = False
        self.flush_ops(_now())
        await super().stop()

    # ---- END_TRANSACTION ------------------------------------------------------------------------

    def half_for_end(self, phys: int, queue_offset: int, group: str) -> MessageExt:
        """The half message an END names, checked as ``EndTransactionProcessor`` checks it."""
        msg = load_message(self.store, phys)
        if msg is None or msg.topic != HALF_TOPIC:
            raise EndRefused("Find prepared transaction message failed")
        if msg.properties.get(PROPERTY_PRODUCER_GROUP) != group:
            raise EndRefused("The producer group wrong")
        if msg.queue_offset != queue_offset:
            raise EndRefused("The transaction state table offset wrong")
        if msg.commit_log_offset != phys:
            raise EndRefused("The commit log offset wrong")
        return msg

    def commit(self, half: MessageExt, now: int) -> PutResult | None:
        """Store the half's message in its real queue (once), then record the decision."""
        if self.state.finished(half.queue_offset):
            return None
        if not self.already_committed(half):
            result = self._store_final(half)
            if result.status != PutStatus.OK:
                return result
            self.committed += 1
        self._finish(half.queue_offset, now)
        return None

    def rollback(self, half: MessageExt, now: int) -> None:
        if not self.state.finished(half.queue_offset):
            self.rolled_back += 1
            self._finish(half.queue_offset, now)

    def _store_final(self, half: MessageExt) -> PutResult:
        props = dict(half.properties)
        topic = props.pop(PROPERTY_REAL_TOPIC, "")
        queue_id = int(props.pop(PROPERTY_REAL_QUEUE_ID, "0") or 0)
        props.pop(PROPERTY_TRANSACTION_PREPARED, None)
        sys_flag = (half.sys_flag & ~SYSFLAG_TRANSACTION_MASK) | SYSFLAG_TRANSACTION_COMMIT
        # a DELAY level or timer property takes effect now (HookUtils.handleScheduleMessage)
        topic, queue_id = self.broker.schedule.transform(topic, queue_id, props, sys_flag)
        half.sys_flag = sys_flag
        return reput(
            self.store, half, topic, queue_id, props, prepared_transaction_offset=half.commit_log_offset
        )

    def already_committed(self, half: MessageExt) -> bool:
        """Whether a COMMIT copy of this transaction is stored (its op message may have been lost
        to a crash): the key index of the real, delay and timer topics by UNIQ_KEY."""
        uniq = half.properties.get(PROPERTY_UNIQ_KEY)
        real = half.properties.get(PROPERTY_REAL_TOPIC)
        if not uniq or not real:
            return False
        for topic in (real, SCHEDULE_TOPIC, TIMER_TOPIC):
            for raw in self.store.query_by_key(topic, uniq, 8, 0, 1 << 62, unique=True):
                try:
                    f = read_stored_fields(raw)
                except ValueError:
                    continue
                if f.sys_flag & SYSFLAG_TRANSACTION_MASK == SYSFLAG_TRANSACTION_COMMIT:
                    return True
        return False

    def _finish(self, offset: int, now: int) -> None:
        if self.state.finish(offset, now, self.config.transaction_op_msg_max_size):
            self.flush_ops(now)
        else:
            self.wake()  # the loop learns when the op buffer is due

    def flush_ops(self, now: int) -> None:
        """Write the buffered decisions as one op message (tag d, queue 0)."""
        offsets = self.state.take_buffer()
        if not offsets:
            return
        try:
            result = self.store.put_message(
                OP_TOPIC,
                0,
                encode_op_body(offsets),
                f"{PROPERTY_TAGS}\x01{OP_TAG}\x02",
                tags_code=tags_code(OP_TAG),
            )
        except StoreError as exc:
            log.error("op message not stored (%s); kept for the next attempt", exc)
            result = PutResult(PutStatus.SERVICE_NOT_AVAILABLE)
        if result.status != PutStatus.OK:
            self.state.restore_buffer(offsets, now)
            return
        self.state.op_refs.append((result.queue_offset, max(offsets)))

    # ---- the check service ---------------------------------------------------------------------

    def idle_interval(self) -> float:
        return self.config.transaction_check_interval / 1000

    def tick(self, now: int) -> int | None:
        op_due = self.state.op_due(self.config.transaction_op_batch_interval)
        if op_due is not None and op_due <= now:
            self.flush_ops(now)
            op_due = None
        if now >= self._next_pass:
            if self._check_some(now):
                self._pass_end = None
                self.passes += 1
                self._next_pass = now + self.config.transaction_check_interval
            else:
                return now  # more to look at: go on after the event loop's other work
        return self._next_pass if op_due is None else min(op_due, self._next_pass)

    def _check_some(self, now: int) -> bool:
        """Look at up to CHECK_BATCH half offsets; True when this pass is over."""
        cq = self.store.consume_queues.get((HALF_TOPIC, 0))
        if cq is None:
            return True
        if self._pass_end is None:
            self._pass_end = cq.max_offset  # copies made during the pass wait for the next one
        state = self.state
        offset = max(state.cursor, cq.min_offset)
        over = False
        for _ in range(CHECK_BATCH):
            if offset >= self._pass_end:
                over = True
                break
            if state.finished(offset):
                offset += 1
                continue
            unit = cq.unit(offset)
            if unit is None:
                over = True
                break
            msg = load_message(self.store, unit[0])
            if msg is None:
                log.error("half message at queue offset %d unreadable; skipped", offset)
            elif not self._visit(msg, now):
                over = True  # too young (and those after it), or the store refused a write
                break
            offset += 1
        if state.advance(offset):
            self._dirty = True
        return over

    def _visit(self, msg: MessageExt, now: int) -> bool:
        """One undecided half message in a pass; False to stop the pass here (too young, or the
        store refused a write), True to go on past it."""
        cfg = self.config
        props = msg.properties
        prepared = props.get(PROPERTY_PREPARED_QUEUE_OFFSET)
        original = _int(prepared) if prepared is not None else None
        if original is not None and self.state.finished(original):
            self.state.forget_immune(original)  # an immune copy whose original was decided
            self._dirty = True
            return True
        age = now - msg.born_timestamp
        times = _int(props.get(PROPERTY_CHECK_TIMES))
        too_old = age > cfg.file_reserved_time * 3_600_000
        if times >= cfg.transaction_check_max or too_old:
            return self._discard(msg, times, too_old)
        immunity = props.get(PROPERTY_CHECK_IMMUNITY)
        if immunity is None:
            if age <= cfg.transaction_time_out:
                return False  # this one and those after it are too young
        elif age <= _check_immunity(immunity, cfg.transaction_time_out):
            return self._keep_immune(msg, original)
        if original is not None:
            self.state.forget_immune(original)  # immune no more: checked as any other
        return self._check_one(msg, now)

    def _discard(self, msg: MessageExt, times: int, too_old: bool) -> bool:
        """Move a half checked transactionCheckMax times, or born before fileReservedTime, to
        TRANS_CHECK_MAX_TIME_TOPIC (``resolveDiscardMsg``)."""
        log.warning(
            "half message %s of group %s %s: moved to %s",
            msg.properties.get(PROPERTY_UNIQ_KEY),
            msg.properties.get(PROPERTY_PRODUCER_GROUP),
            "older than fileReservedTime" if too_old else f"checked {times} times without a decision",
            CHECK_MAX_TOPIC,
        )
        self.broker.topics.create_if_absent(CHECK_MAX_TOPIC, 1)
        return reput(self.store, msg, CHECK_MAX_TOPIC, 0, dict(msg.properties)).status == PutStatus.OK

    def _keep_immune(self, msg: MessageExt, original: int | None) -> bool:
        """Inside its immunity time: store a copy naming the original's offset and go on."""
        props = dict(msg.properties)
        first = msg.queue_offset if original is None else original
        props[PROPERTY_PREPARED_QUEUE_OFFSET] = str(first)
        if reput(self.store, msg, HALF_TOPIC, 0, props).status != PutStatus.OK:
            return False
        if first not in self.state.immune:
            self.state.immune.add(first)
            self._dirty = True
        return True

    def _check_one(self, msg: MessageExt, now: int) -> bool:
        """Resolve or check one undecided half message; False if the store refused a write."""
        if self.already_committed(msg):
            self._finish(msg.queue_offset, now)
            return True
        props = dict(msg.properties)
        props[PROPERTY_CHECK_TIMES] = str(_int(props.get(PROPERTY_CHECK_TIMES)) + 1)
        result = reput(self.store, msg, HALF_TOPIC, 0, props)
        if result.status != PutStatus.OK:
            return False
        copy = load_message(self.store, result.phys_offset)
        group = props.get(PROPERTY_PRODUCER_GROUP, "")
        channel = self.broker.clients.producer_channel(group)
        if copy is None or channel is None:
            log.info("no live producer of group %s to check half message %s", group, copy and copy.msg_id)
            return True
        channel.conn.invoke_oneway(self.check_request(copy))
        self.checks_sent += 1
        return True

    def check_request(self, copy: MessageExt) -> RemotingCommand:
        """CHECK_TRANSACTION_STATE about the stored ``copy``; the body is the message as
        ``MessageDecoder.encode(msgExt, false)`` writes it, with its real topic and queue."""
        props = copy.properties
        real_topic = props.get(PROPERTY_REAL_TOPIC, copy.topic)
        prop_bytes = "".join(f"{k}\x01{v}\x02" for k, v in props.items()).encode()
        born_ip, _, born_port = copy.born_host.rpartition(":")
        store_ip, _, store_port = copy.store_host.rpartition(":")
        body = encode_stored_message(
            topic=real_topic.encode(),
            body=copy.body,
            properties=prop_bytes,
            queue_id=_int(props.get(PROPERTY_REAL_QUEUE_ID)),
            queue_offset=copy.queue_offset,
            physical_offset=copy.commit_log_offset,
            flag=copy.flag,
            sys_flag=copy.sys_flag,
            born_timestamp=copy.born_timestamp,
            born_host=ip_bytes(born_ip),
            born_port=_int(born_port),
            store_timestamp=copy.store_timestamp,
            store_host=ip_bytes(store_ip),
            store_port=_int(store_port),
            reconsume_times=copy.reconsume_times,
            crc=copy.body_crc,
        )
        uniq = props.get(PROPERTY_UNIQ_KEY, copy.offset_msg_id)
        return RemotingCommand(
            code=RequestCode.CHECK_TRANSACTION_STATE,
            ext_fields={
                "topic": copy.topic,
                "tranStateTableOffset": str(copy.queue_offset),
                "commitLogOffset": str(copy.commit_log_offset),
                "msgId": uniq,
                "transactionId": props.get(PROPERTY_TRANSACTION_ID, uniq),
                "offsetMsgId": copy.offset_msg_id,
                "bname": self.config.broker_name,
            },
            body=body,
        )


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _now() -> int:
    return int(time.time() * 1000)
