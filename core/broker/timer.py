"""Arbitrary delivery times (RocketMQ 5.x timer messages: TIMER_DELIVER_MS, TIMER_DELAY_MS,
TIMER_DELAY_SEC).

A timer message is stored in ``rmq_sys_wheel_timer`` queue 0 with its delivery time in
TIMER_OUT_MS and its real topic and queue in REAL_TOPIC / REAL_QID (as 5.x's
``HookUtils.transformTimerMessage``). Unlike 5.x's time wheel, which rounds delivery down to
``timerPrecisionMs`` (so a message may come up to a second early), ferrymq delivers no earlier
than the exact time asked for. A delivery time more than ``timerMaxDelaySec`` ahead (3 days) is
refused with MESSAGE_ILLEGAL; one already past is stored directly.

Delivery times are arbitrary, so the timer queue is not in due order: pending messages sit in a
heap (due time, queue offset). Restart safety comes from ``config/timerCheckpoint.json``: a
watermark (every queue offset below it is delivered) plus the delivered offsets above it. At start
the queue is read again from the watermark, skipping delivered offsets. When the delivered set
grows past :data:`MAX_DONE` because an early, long timer holds the watermark back, that message is
*rolled*: written again at the queue's end and its old offset marked done (as 5.x rolls long
timers), so the file stays small. A crash between a delivery and the next checkpoint (at most a
second later) can deliver that message twice: at-least-once, never lost, never early.
"""

from __future__ import annotations

import heapq
import logging
import time
from typing import TYPE_CHECKING

from ferrymq.core.broker.due_delivery import DueDeliveryLoop, now_ms
from ferrymq.core.broker.schedule import load_message, reput
from ferrymq.core.persist import read_json, write_json_atomic
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.headers import BadRequest
from ferrymq.core.remoting.message import (
    PROPERTY_REAL_QUEUE_ID,
    PROPERTY_REAL_TOPIC,
    PROPERTY_TIMER_DELAY_MS,
    PROPERTY_TIMER_DELAY_SEC,
    PROPERTY_TIMER_DELIVER_MS,
)
from ferrymq.core.remoting.route import PERM_READ
from ferrymq.core.store import PutStatus
from ferrymq.core.store.message_store import StoreError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.timer")

TIMER_TOPIC = "rmq_sys_wheel_timer"
PROPERTY_TIMER_OUT_MS = "TIMER_OUT_MS"
#: delivered offsets kept above the watermark before long timers are rolled forward
MAX_DONE = 4096


class TimerMessageService(DueDeliveryLoop):
    task_name = "timer-delivery"

    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker
        self.store = broker.store
        self.config = broker.config
        self.path = broker.config.store_path_root_dir / "config" / "timerCheckpoint.json"
        self.watermark = 0
        self.done: set[int] = set()
        data = read_json(self.path)
        if isinstance(data, dict):
            self.watermark = int(data.get("watermark") or 0)
            self.done = {int(o) for o in data.get("done") or [] if int(o) >= self.watermark}
        self.cursor = self.watermark  # next queue offset to read into the heap
        self.pending: dict[int, int] = {}  # queue offset -> due ms
        self.heap: list[tuple[int, int, int]] = []  # (due ms, queue offset, commit-log offset)
        self.delivered = 0
        if broker.topics.get(TIMER_TOPIC) is None:
            broker.topics.create_if_absent(TIMER_TOPIC, 1, PERM_READ)  # producers may not send to it

    # ---- the send-side hook ------------------------------------------------------------------

    def transform(self, topic: str, queue_id: int, props: dict[str, str]) -> tuple[str, int]:
        """Where a timer message is stored; ``props`` gets TIMER_OUT_MS, REAL_TOPIC, REAL_QID."""
        if not self.config.timer_wheel_enable:
            raise BadRequest(
                "accurate timer message is not enabled, timerWheelEnable is false",
                ResponseCode.MESSAGE_ILLEGAL,
            )
        if topic == TIMER_TOPIC or PROPERTY_TIMER_OUT_MS in props:
            return topic, queue_id  # already a timer-topic record (rolled): keep as is
        now = now_ms()
        try:
            if PROPERTY_TIMER_DELAY_SEC in props:
                deliver = now + int(props[PROPERTY_TIMER_DELAY_SEC]) * 1000
            elif PROPERTY_TIMER_DELAY_MS in props:
                deliver = now + int(props[PROPERTY_TIMER_DELAY_MS])
            else:
                deliver = int(props[PROPERTY_TIMER_DELIVER_MS])
        except ValueError:
            raise BadRequest(
                "timer message illegal: the delivery time is not a number", ResponseCode.MESSAGE_ILLEGAL
            ) from None
        if deliver <= now:
            return topic, queue_id
        max_ms = self.config.timer_max_delay_sec * 1000
        if deliver - now > max_ms:
            raise BadRequest(
                f"timer message illegal, the delay time should not be bigger than the max delay {max_ms}ms",
                ResponseCode.MESSAGE_ILLEGAL,
            )
        props[PROPERTY_TIMER_OUT_MS] = str(deliver)
        props[PROPERTY_REAL_TOPIC] = topic
        props[PROPERTY_REAL_QUEUE_ID] = str(queue_id)
        self.wake()  # runs after the caller's (synchronous) put: the message is there by then
        return TIMER_TOPIC, 0

    # ---- delivery ----------------------------------------------------------------------------

    def tick(self, now: int) -> int | None:
        self.ingest()
        return self.deliver_due(now)

    def ingest(self) -> None:
        """Read newly stored timer messages into the heap."""
        cq = self.store.consume_queues.get((TIMER_TOPIC, 0))
        if cq is None:
            return
        if self.watermark < cq.min_offset:  # retention removed what was left there
            self.done = {o for o in self.done if o >= cq.min_offset}
            self.watermark = self.cursor = max(self.cursor, cq.min_offset)
        while self.cursor < cq.max_offset:
            offset = self.cursor
            self.cursor += 1
            if offset in self.done:
                continue
            unit = cq.unit(offset)
            msg = load_message(self.store, unit[0]) if unit is not None else None
            if unit is None or msg is None:
                log.error("timer message at queue offset %d is unreadable; skipped", offset)
                self._mark_done(offset)
                continue
            try:
                due = int(msg.properties.get(PROPERTY_TIMER_OUT_MS) or 0)
            except ValueError:
                due = 0
            self.pending[offset] = due
            heapq.heappush(self.heap, (due, offset, unit[0]))

    def deliver_due(self, now: int) -> int | None:
        """Deliver what is due by ``now``; returns the next due time (ms), if any."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, offset, phys = heap[0]
            if offset not in self.pending:  # rolled forward: a stale entry
                heapq.heappop(heap)
                continue
            if not self._deliver(phys):
                return now + 1000
            heapq.heappop(heap)
            del self.pending[offset]
            self._mark_done(offset)
        if len(self.done) > MAX_DONE:
            self._roll()
        while heap and heap[0][1] not in self.pending:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _mark_done(self, offset: int) -> None:
        self.done.add(offset)
        while self.watermark in self.done:
            self.done.discard(self.watermark)
            self.watermark += 1
        self._dirty = True

    def _roll(self) -> None:
        """Move the pending messages holding the watermark back to the end of the queue."""
        cq = self.store.consume_queues.get((TIMER_TOPIC, 0))
        while len(self.done) > MAX_DONE // 2 and self.watermark in self.pending and cq is not None:
            offset = self.watermark
            unit = cq.unit(offset)
            msg = load_message(self.store, unit[0]) if unit is not None else None
            if msg is not None:
                result = reput(self.store, msg, TIMER_TOPIC, 0, dict(msg.properties))
                if result.status != PutStatus.OK:
                    return
            del self.pending[offset]
            self._mark_done(offset)
        self.wake()  # the rolled copies are read on the next round

    def _deliver(self, phys: int) -> bool:
        msg = load_message(self.store, phys)
        if msg is None:
            log.error("timer message at commit-log offset %d is unreadable; skipped", phys)
            return True
        props = dict(msg.properties)
        topic = props.pop(PROPERTY_REAL_TOPIC, None)
        qid = props.pop(PROPERTY_REAL_QUEUE_ID, None)
        if not topic or qid is None or not qid.isdigit():
            log.error("timer message %s has no real topic/queue; skipped", msg.offset_msg_id)
            return True
        try:
            result = reput(self.store, msg, topic, int(qid), props)
        except StoreError as exc:
            log.error("timer message %s cannot be stored (%s); skipped", msg.offset_msg_id, exc)
            return True
        if result.status != PutStatus.OK:
            return False
        self.delivered += 1
        return True

    def persist(self) -> None:
        self._dirty = False
        self._last_persist = time.monotonic()
        write_json_atomic(self.path, {"watermark": self.watermark, "done": sorted(self.done)})
