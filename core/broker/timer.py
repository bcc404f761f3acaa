"""Arbitrary delivery times (RocketMQ 5.x timer messages: TIMER_DELIVER_MS, TIMER_DELAY_MS,
TIMER_DELAY_SEC).

A timer message is stored in ``rmq_sys_wheel_timer`` queue 0 with its delivery time in
TIMER_OUT_MS and its real topic and queue in REAL_TOPIC / REAL_QID (as 5.x's
``HookUtils.transformTimerMessage``). Unlike 5.x's time wheel, which rounds delivery down to
``timerPrecisionMs`` (so a message may come up to a second early), ferrymq delivers no earlier
than the exact time asked for. A delivery time more than ``timerMaxDelaySec`` ahead (3 days) is
refused with MESSAGE_ILLEGAL; one already past is stored directly.

Delivery times are arbitrary, so the timer queue is not in due order. Only the messages due
within ``timerMemoryWindowMs``, at most ``timerMaxInMemory`` of them, sit in a heap (due time,
queue offset); the rest stay on disk. A timer record's consume-queue tags code is its delivery
time, so a *sweep* rescans the queue from the watermark without reading the commit log, when
the earliest message left on disk comes within half a window (or is due while memory is full of
later ones), and brings the next window in. Restart safety comes from ``config/timerCheckpoint.json``: a
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
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ferrymq.core.broker.due_delivery import DueDeliveryLoop, now_ms
from ferrymq.core.broker.schedule import load_message, reput
from ferrymq.core.broker.topic_config import TIMER_TOPIC
from ferrymq.core.persist import read_json, write_json_atomic
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.headers import BadRequest
from ferrymq.core.remoting.message import (
    PROPERTY_REAL_QUEUE_ID,
    PROPERTY_REAL_TOPIC,
    PROPERTY_TIMER_DELAY_MS,
    PROPERTY_TIMER_DELAY_SEC,
    PROPERTY_TIMER_DELIVER_MS,
    PROPERTY_TIMER_OUT_MS,
)
from ferrymq.core.remoting.route import PERM_READ
from ferrymq.core.store import PutStatus
from ferrymq.core.store.consume_queue import UNIT
from ferrymq.core.store.message_store import StoreError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.timer")

#: a tags code at or above this is a delivery time (tag hashes are 32-bit)
_MIN_DUE_CODE = 1 << 32
_NO_OFFSET = 1 << 62
#: consume-queue units read per step of a scan
_SCAN_CHUNK = 4096
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
        self.cursor = self.watermark  # next queue offset never looked at
        self.window = broker.config.timer_memory_window_ms
        self.max_in_memory = broker.config.timer_max_in_memory
        #: every undelivered message below the cursor with (due, offset) up to this is in memory
        self.horizon = (now_ms() + self.window, _NO_OFFSET)
        #: the earliest due time among those left on disk (None: none are)
        self.deferred_min: int | None = None
        self.pending: dict[int, int] = {}  # queue offset -> due ms, at most max_in_memory
        self.heap: list[tuple[int, int, int]] = []  # (due ms, queue offset, commit-log offset)
        self.delivered = 0
        self.sweeps = 0
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

    # ---- what is held in memory --------------------------------------------------------------

    def tick(self, now: int) -> int | None:
        self.ingest()
        if self._needs_sweep(now):
            self.sweep(now)
        next_due = self.deliver_due(now)
        if self.deferred_min is not None:  # wake in time to sweep the deferred ones in
            sweep_at = self.deferred_min - self.window // 2
            if sweep_at <= now:  # too early for want of room: then when the first is due
                sweep_at = self.deferred_min
            next_due = sweep_at if next_due is None else min(next_due, sweep_at)
        return next_due

    def _due_of(self, offset: int, phys: int, code: int) -> int | None:
        """Delivery time of the record at ``offset``: its tags code (written as TIMER_OUT_MS), or
        read from the commit log when the code is a tag hash (a consume queue rebuilt after a
        crash); None if unreadable (then it is marked done and skipped)."""
        if code >= _MIN_DUE_CODE:
            return code
        msg = load_message(self.store, phys)
        if msg is None:
            log.error("timer message at queue offset %d is unreadable; skipped", offset)
            self._mark_done(offset)
            return None
        try:
            return int(msg.properties.get(PROPERTY_TIMER_OUT_MS) or 0)
        except ValueError:
            return 0

    def _units(self, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        """(queue offset, commit-log offset, tags code) of the timer queue from ``start`` to ``end``."""
        cq = self.store.consume_queues.get((TIMER_TOPIC, 0))
        offset = start
        while cq is not None and offset < end:
            view = cq.read_units(offset, min(end - offset, _SCAN_CHUNK))
            if not view:
                return
            for phys, _size, code in UNIT.iter_unpack(view):
                yield offset, phys, code
                offset += 1

    def _hold(self, due: int, offset: int, phys: int) -> None:
        """Keep the record in memory if it is within the horizon and there is room, else defer it."""
        key = (due, offset)
        if key > self.horizon:
            self._defer(due)
            return
        if len(self.pending) >= self.max_in_memory:
            self.horizon = (due, offset - 1)  # everything before it is held; it and later wait
            self._defer(due)
            return
        self.pending[offset] = due
        heapq.heappush(self.heap, (due, offset, phys))

    def _defer(self, due: int) -> None:
        if self.deferred_min is None or due < self.deferred_min:
            self.deferred_min = due

    def ingest(self) -> None:
        """Read newly stored timer messages: the ones within the horizon into memory."""
        cq = self.store.consume_queues.get((TIMER_TOPIC, 0))
        if cq is None:
            return
        if self.watermark < cq.min_offset:  # retention removed what was left there
            self.done = {o for o in self.done if o >= cq.min_offset}
            self.watermark = self.cursor = max(self.cursor, cq.min_offset)
        for offset, phys, code in self._units(self.cursor, cq.max_offset):
            self.cursor = offset + 1
            if offset in self.done:
                continue
            due = self._due_of(offset, phys, code)
            if due is not None:
                self._hold(due, offset, phys)

    def _needs_sweep(self, now: int) -> bool:
        """Messages left on disk come due within half a window and memory has room for them, or
        one is already due (memory is full of later ones: the sweep makes room)."""
        if self.deferred_min is None:
            return False
        if self.deferred_min <= now:
            return True
        return self.deferred_min - self.window // 2 <= now and len(self.pending) <= self.max_in_memory // 2

    def sweep(self, now: int) -> None:
        """Choose again from the whole queue (from the watermark): memory holds the messages due
        within the window, the earliest timerMaxInMemory of them; the others stay on disk only."""
        limit = (now + self.window, _NO_OFFSET)
        room = self.max_in_memory
        chosen: list[tuple[int, int, int]] = []  # a max-heap of the earliest: (-due, -offset, phys)
        self.deferred_min = None
        for offset, phys, code in self._units(self.watermark, self.cursor):
            if offset in self.done:
                continue
            due = self._due_of(offset, phys, code)
            if due is None:
                continue
            if (due, offset) > limit:
                self._defer(due)
                continue
            heapq.heappush(chosen, (-due, -offset, phys))
            if len(chosen) > room:
                self._defer(-heapq.heappop(chosen)[0])
        self.horizon = limit
        if len(chosen) == room:  # memory is full: the latest one held bounds what is held
            self.horizon = min(limit, (-chosen[0][0], -chosen[0][1]))
        self.pending = {-neg_offset: -neg_due for neg_due, neg_offset, _ in chosen}
        self.heap = [(-neg_due, -neg_offset, phys) for neg_due, neg_offset, phys in chosen]
        heapq.heapify(self.heap)
        self.sweeps += 1

    # ---- delivery ----------------------------------------------------------------------------

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
        """Move the messages holding the watermark back (in memory or deferred) to the queue's end."""
        cq = self.store.consume_queues.get((TIMER_TOPIC, 0))
        while len(self.done) > MAX_DONE // 2 and self.watermark < self.cursor and cq is not None:
            offset = self.watermark
            unit = cq.unit(offset)
            msg = load_message(self.store, unit[0]) if unit is not None else None
            if msg is not None:
                result = reput(self.store, msg, TIMER_TOPIC, 0, dict(msg.properties))
                if result.status != PutStatus.OK:
                    return
            self.pending.pop(offset, None)
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
