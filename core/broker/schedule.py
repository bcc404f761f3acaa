"""Delayed delivery by level through ``SCHEDULE_TOPIC_XXXX`` (RocketMQ's
``ScheduleMessageService`` and ``HookUtils.handleScheduleMessage``).

A message with the DELAY property (level 1..N of ``messageDelayLevel``, "1s 5s 10s 30s 1m ..."
by default; a higher level is capped to the highest) is stored in ``SCHEDULE_TOPIC_XXXX`` queue
``level - 1`` with its real topic and queue in REAL_TOPIC / REAL_QID. Each level's queue is in
store-time order, so one cursor per level suffices: the message at the cursor is due at its store
timestamp plus the level's delay; when due, it is written to its real topic and queue (DELAY
removed, everything else kept) and the cursor moves on. The cursors are persisted in
``config/delayOffset.json`` (``{"offsetTable": {"1": 5}}``) at most a second after they move and
at shutdown, so a restart neither loses a delayed message nor delivers one early (a crash between
a delivery and the next persist can deliver that message twice: at-least-once).

Timer messages (5.x TIMER_DELIVER_MS / TIMER_DELAY_MS / TIMER_DELAY_SEC) go to
:mod:`ferrymq.core.broker.timer`; :meth:`ScheduleMessageService.transform` is the one entry point
that routes both, as the Java hook does (a DELAY level wins over timer properties). Transaction
half messages are never redirected. Left out: async delivery and the per-level statistics.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING

from ferrymq.core.broker.due_delivery import DueDeliveryLoop
from ferrymq.core.broker.topic_config import SCHEDULE_TOPIC, TIMER_TOPIC
from ferrymq.core.persist import write_json_atomic
from ferrymq.core.remoting.message import (
    PROPERTY_DELAY_TIME_LEVEL,
    PROPERTY_KEYS,
    PROPERTY_REAL_QUEUE_ID,
    PROPERTY_REAL_TOPIC,
    PROPERTY_TAGS,
    PROPERTY_TIMER_DELAY_MS,
    PROPERTY_TIMER_DELAY_SEC,
    PROPERTY_TIMER_DELIVER_MS,
    PROPERTY_TIMER_OUT_MS,
    PROPERTY_UNIQ_KEY,
    SYSFLAG_TRANSACTION_MASK,
    SYSFLAG_TRANSACTION_PREPARED,
    SYSFLAG_TRANSACTION_ROLLBACK,
    MessageExt,
    decode_stored_message,
    properties_to_string,
    tags_code,
)
from ferrymq.core.remoting.route import loads_fastjson
from ferrymq.core.store import MessageStore, PutResult, PutStatus
from ferrymq.core.store.message_store import StoreError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.schedule")

TIMER_PROPERTIES = (PROPERTY_TIMER_DELIVER_MS, PROPERTY_TIMER_DELAY_MS, PROPERTY_TIMER_DELAY_SEC)
#: properties that make a send a delayed one (checked with one set intersection per send)
SCHEDULE_PROPERTIES = frozenset((PROPERTY_DELAY_TIME_LEVEL, *TIMER_PROPERTIES))


def load_message(store: MessageStore, phys: int) -> MessageExt | None:
    """The stored message at commit-log offset ``phys`` (``lookMessageByOffset``), or None."""
    raw = store.look_message(phys)
    if raw is None:
        return None
    try:
        return decode_stored_message(raw)
    except ValueError:  # a batch entry (Kafka) or garbage: not a single RocketMQ message
        return None


def _host_bytes(host: str) -> tuple[bytes, int]:
    ip, _, port = host.rpartition(":")
    try:
        raw = socket.inet_aton(ip)
    except OSError:
        raw = b"\x7f\x00\x00\x01"  # an IPv6 born host is kept as loopback v4 (v4 layout only)
    return raw, int(port) if port.isdigit() else 0


def stored_tags_code(topic: str, props: dict[str, str]) -> int:
    """The consume-queue tags code of a record: a timer-topic record's delivery time (TIMER_OUT_MS,
    as RocketMQ keeps a delayed message's due time there), so the timer service can scan its queue
    without reading the commit log; otherwise the tag's hash."""
    if topic == TIMER_TOPIC:
        due = props.get(PROPERTY_TIMER_OUT_MS, "")
        if due.isdigit():
            return int(due)
    return tags_code(props.get(PROPERTY_TAGS))


def reput(
    store: MessageStore,
    msg: MessageExt,
    topic: str,
    queue_id: int,
    props: dict[str, str],
    reconsume_times: int | None = None,
    prepared_transaction_offset: int = 0,
) -> PutResult:
    """Store ``msg`` again under ``topic``/``queue_id`` with ``props`` (``MessageExtBrokerInner``
    built from a looked-up message): body, flag, sysFlag, born time and host are kept."""
    keys = props.get(PROPERTY_KEYS)
    born_host, born_port = _host_bytes(msg.born_host)
    return store.put_message(
        topic,
        queue_id,
        msg.body,
        properties_to_string(props),
        tags_code=stored_tags_code(topic, props),
        keys=keys.split() if keys else None,
        uniq_key=props.get(PROPERTY_UNIQ_KEY),
        flag=msg.flag,
        sys_flag=msg.sys_flag,
        born_timestamp=msg.born_timestamp,
        born_host=born_host,
        born_port=born_port,
        reconsume_times=msg.reconsume_times if reconsume_times is None else reconsume_times,
        prepared_transaction_offset=prepared_transaction_offset,
    )


class ScheduleMessageService(DueDeliveryLoop):
    task_name = "schedule-delivery"

    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker
        self.store = broker.store
        self.delays = broker.config.delay_level_millis  # index level - 1
        self.max_level = len(self.delays)
        self.path = broker.config.store_path_root_dir / "config" / "delayOffset.json"
        self.offsets: dict[int, int] = {}
        try:  # RocketMQ's own file has fastjson's bare integer keys ({1:5}): read those too
            data = loads_fastjson(self.path.read_text())
        except FileNotFoundError:
            data = None
        if isinstance(data, dict):
            for level, offset in (data.get("offsetTable") or {}).items():
                self.offsets[int(level)] = int(offset)
        self.delivered = 0

    # ---- the send-side hook ------------------------------------------------------------------

    def transform(self, topic: str, queue_id: int, props: dict[str, str], sys_flag: int) -> tuple[str, int]:
        """Where a message with DELAY or timer properties is stored; ``props`` is updated.

        Raises BadRequest (MESSAGE_ILLEGAL) for an unusable timer property.
        """
        tran = sys_flag & SYSFLAG_TRANSACTION_MASK
        if tran in (SYSFLAG_TRANSACTION_PREPARED, SYSFLAG_TRANSACTION_ROLLBACK):
            return topic, queue_id
        level = _int_or_zero(props.get(PROPERTY_DELAY_TIME_LEVEL))
        if level > 0:
            for key in TIMER_PROPERTIES:
                props.pop(key, None)
            level = min(level, self.max_level)
            props[PROPERTY_DELAY_TIME_LEVEL] = str(level)
            props[PROPERTY_REAL_TOPIC] = topic
            props[PROPERTY_REAL_QUEUE_ID] = str(queue_id)
            self.wake()  # runs after the caller's (synchronous) put: the message is there by then
            return SCHEDULE_TOPIC, level - 1
        if any(key in props for key in TIMER_PROPERTIES):
            return self.broker.timer.transform(topic, queue_id, props)
        return topic, queue_id

    # ---- delivery ----------------------------------------------------------------------------

    def idle_interval(self) -> float:
        return self.broker.config.flush_delay_offset_interval / 1000

    def tick(self, now: int) -> int | None:
        return self.deliver_due(now)

    def deliver_due(self, now: int) -> int | None:
        """Deliver every message due by ``now``; returns when the next one is due (ms), if any."""
        next_due: int | None = None
        for level in range(1, self.max_level + 1):
            due = self._deliver_level(level, now)
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        return next_due

    def _deliver_level(self, level: int, now: int) -> int | None:
        cq = self.store.consume_queues.get((SCHEDULE_TOPIC, level - 1))
        if cq is None:
            return None
        delay = self.delays[level - 1]
        start = offset = min(max(self.offsets.get(level, 0), cq.min_offset), cq.max_offset)
        due: int | None = None
        min_phys = self.store.commit_log.min_offset
        while offset < cq.max_offset:
            unit = cq.unit(offset)
            if unit is None:
                break
            phys = unit[0]
            if phys >= min_phys:
                deliver_at = self.store.entry_store_timestamp(phys) + delay
                if deliver_at > now + delay:  # the clock went back: RocketMQ delivers now
                    deliver_at = now
                if deliver_at > now:
                    due = deliver_at
                    break
                if not self._deliver(phys, level):
                    due = now + 1000  # the store refused: try again in a second
                    break
            offset += 1
        if offset != start or level not in self.offsets:
            self.offsets[level] = offset
            self._dirty = True
        return due

    def _deliver(self, phys: int, level: int) -> bool:
        """Write the scheduled message at ``phys`` to its real topic; False to retry later."""
        msg = load_message(self.store, phys)
        if msg is None:
            log.error("delayed message at commit-log offset %d (level %d) unreadable; skipped", phys, level)
            return True
        props = dict(msg.properties)
        real_topic = props.get(PROPERTY_REAL_TOPIC)
        real_qid = _int_or_zero(props.get(PROPERTY_REAL_QUEUE_ID), -1)
        if not real_topic or real_qid < 0:
            log.error("delayed message %s has no real topic/queue; skipped", msg.offset_msg_id)
            return True
        for key in (PROPERTY_DELAY_TIME_LEVEL, PROPERTY_TIMER_DELIVER_MS, PROPERTY_TIMER_DELAY_SEC):
            props.pop(key, None)
        try:
            result = reput(self.store, msg, real_topic, real_qid, props)
        except StoreError as exc:
            log.error("delayed message %s cannot be stored (%s); skipped", msg.offset_msg_id, exc)
            return True
        if result.status != PutStatus.OK:
            return False
        self.delivered += 1
        return True

    def persist(self) -> None:
        self._dirty = False
        self._last_persist = time.monotonic()
        write_json_atomic(self.path, {"offsetTable": {str(k): v for k, v in sorted(self.offsets.items())}})


def _int_or_zero(value: str | None, default: int = 0) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return default
