"""POP consumption, the broker's side: reads the store for ``PopState`` (state.py), journals it
(journal.py), commits the group's consume offsets, revives on a timer, dead-letters, and parks
pops that found nothing (long polling).

The typed API both frontends use (remoting here, gRPC next) is in ``ferrymq.core.broker.pop``'s
docstring. Everything but :meth:`PopService.pop_wait` is synchronous and returns at once.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ferrymq.core.broker.due_delivery import DueDeliveryLoop, now_ms
from ferrymq.core.broker.pop.journal import PopJournal
from ferrymq.core.broker.pop.receipt import NORMAL, REVIVE_QID, REVIVE_QID_FIFO, Receipt
from ferrymq.core.broker.pop.state import QueueKey
from ferrymq.core.broker.schedule import load_message, reput
from ferrymq.core.broker.topic_config import DLQ_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.message import PROPERTY_RETRY_TOPIC, decode_stored_message, read_stored_fields
from ferrymq.core.remoting.route import PERM_READ, PERM_WRITE
from ferrymq.core.store import GetStatus

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.pop")

#: ``ConsumeInitMode``: where a group without a committed offset starts
INIT_MIN = 0
INIT_MAX = 1
_I32 = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class PopRequest:
    """What a pop asks for; ``queue_id`` -1 pops every queue of the topic."""

    group: str
    topic: str
    queue_id: int
    max_nums: int
    invisible_ms: int
    fifo: bool = False
    #: tag hash codes to match (None: every message)
    tag_codes: frozenset[int] | None = None
    #: where a group without a committed offset starts: INIT_MIN (oldest) or INIT_MAX (newest)
    init_mode: int = INIT_MIN


@dataclass(slots=True)
class PoppedMessage:
    queue_id: int
    offset: int
    reconsume_times: int
    #: the stored record (commit-log layout), reconsume times patched for a redelivery
    data: bytes | memoryview
    receipt: Receipt


@dataclass(slots=True)
class PopBatch:
    pop_time: int
    invisible_ms: int
    revive_qid: int
    messages: list[PoppedMessage] = field(default_factory=list)
    #: messages left in the popped queues (approximate, as RocketMQ's restNum)
    rest: int = 0

    def starts(self) -> list[tuple[int, int]]:
        """(queue id, checkpoint start) per queue, for startOffsetInfo."""
        seen: dict[int, int] = {}
        for m in self.messages:
            seen.setdefault(m.queue_id, m.receipt.ck_offset)
        return list(seen.items())

    def offsets(self) -> list[tuple[int, list[int]]]:
        out: dict[int, list[int]] = {}
        for m in self.messages:
            out.setdefault(m.queue_id, []).append(m.offset)
        return list(out.items())


def _with_reconsume(record: bytes | memoryview, times: int) -> bytes | memoryview:
    f = read_stored_fields(record)
    if f.reconsume_times == times:
        return record
    patched = bytearray(record)
    _I32.pack_into(patched, f.body_at - 16, times)  # RECONSUMETIMES precedes PREPARED (8) and BODYLEN (4)
    return bytes(patched)


def _init_max(lo: int, hi: int) -> int:
    """Java's ``getInitOffset`` for ConsumeInitMode.MAX: a queue still holding its first message
    starts there (initPopOffsetByCheckMsgInMem, on by default: ferrymq counts a queue whose oldest
    offset is 0 as "in memory"); any other starts at its last message (max - 1)."""
    if lo <= 0 < hi:
        return 0
    return max(hi - 1, 0)


class PopService(DueDeliveryLoop):
    """The revive timer is this loop's tick; ``persist`` compacts the journal."""

    task_name = "pop-revive"

    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker
        cfg = broker.config
        self.journal = PopJournal(cfg.store_path_root_dir / "config" / "pop", sync=cfg.pop_journal_sync)
        self.state = self.journal.load()
        self._revived: set[asyncio.Future[None]] = set()
        self._rotor = 0

    # -- pop
    def pop(self, req: PopRequest, now: int | None = None) -> PopBatch:
        """Pop up to ``max_nums`` messages of one queue, or of every queue when ``queue_id`` < 0."""
        now = now_ms() if now is None else now
        batch = PopBatch(now, req.invisible_ms, REVIVE_QID_FIFO if req.fifo else REVIVE_QID)
        seq = self.journal.seq
        for qid in self._queues(req.topic, req.queue_id):
            if len(batch.messages) >= req.max_nums:
                break
            self._pop_queue(batch, QueueKey(req.group, req.topic, qid), req)
        if self.journal.seq != seq:
            self._dirty = True
            self.wake()  # the revive timer learns the new deadline
        return batch

    def _queues(self, topic: str, queue_id: int) -> list[int]:
        if queue_id >= 0:
            return [queue_id]
        tc = self.broker.topics.get(topic)
        n = tc.read_queue_nums if tc is not None else 0
        self._rotor += 1
        return [(self._rotor + i) % n for i in range(n)]

    def _open(self, key: QueueKey, init_mode: int) -> None:
        if self.state.has(key):
            return
        committed = self.broker.offsets.query(key.group, key.topic, key.queue_id)
        if committed is None or committed < 0:
            lo, hi = self.broker.store.queue_bounds(key.topic, key.queue_id)
            committed = lo if init_mode == INIT_MIN else _init_max(lo, hi)
        self.state.open(key, committed)

    def _pop_queue(self, batch: PopBatch, key: QueueKey, req: PopRequest) -> None:
        self._open(key, req.init_mode)
        state = self.state
        fifo = req.fifo
        if fifo and state.fifo_blocked(key):
            return
        want = req.max_nums - len(batch.messages)
        entries: list[tuple[int, int]] = []
        records: list[bytes | memoryview] = []
        gone: list[int] = []
        for off, times in state.ready(key, want):
            got = self._read(key, off, 1, None)
            if not got[0] or got[0][0][0] != off:
                gone.append(off)
                continue
            record = got[0][0][1]
            base = read_stored_fields(record).reconsume_times if times else 0
            entries.append((off, times))
            records.append(_with_reconsume(record, base + times) if times else record)
        if gone:
            state.discard(key, gone)
        cursor = state.cursor(key)
        next_cursor = cursor
        if len(entries) < want:  # every redelivery is taken (they are the lowest offsets)
            found, next_cursor = self._read(key, cursor, want - len(entries), req.tag_codes)
            for off, record in found:
                entries.append((off, 0))
                records.append(record)
        if not entries and next_cursor == cursor:
            return
        ck = state.add_checkpoint(key, batch.pop_time, batch.invisible_ms, entries, next_cursor, fifo)
        self._commit(key)
        if ck is None:
            return
        for (off, times), record in zip(entries, records, strict=True):
            receipt = Receipt(
                ck.start,
                batch.pop_time,
                batch.invisible_ms,
                batch.revive_qid,
                NORMAL,
                self.broker.config.broker_name,
                key.queue_id,
                off,
            )
            batch.messages.append(PoppedMessage(key.queue_id, off, times, record, receipt))
        batch.rest += max(0, self.broker.store.max_offset(key.topic, key.queue_id) - next_cursor)

    def _read(
        self, key: QueueKey, offset: int, max_nums: int, tag_codes: frozenset[int] | None
    ) -> tuple[list[tuple[int, bytes | memoryview]], int]:
        """Stored records from ``offset`` (queue offset, record) and the offset to go on from."""
        store = self.broker.store
        got = store.get_messages(key.topic, key.queue_id, offset, max_nums, tag_codes=tag_codes)
        if got.status == GetStatus.OFFSET_TOO_SMALL:  # retention took them: start at the oldest
            got = store.get_messages(
                key.topic, key.queue_id, got.next_begin_offset, max_nums, tag_codes=tag_codes
            )
        if got.status != GetStatus.FOUND:
            return [], max(
                offset, got.next_begin_offset
            ) if got.status == GetStatus.NO_MATCHED_MESSAGE else offset
        out: list[tuple[int, bytes | memoryview]] = []
        for buf in store.as_stored_messages(got.buffers, offset, tag_codes):
            pos = 0
            while pos < len(buf):
                f = read_stored_fields(buf, pos)
                if f.queue_offset >= offset:
                    out.append((f.queue_offset, buf[pos : pos + f.total]))
                pos += f.total
        if len(out) > max_nums:  # a Kafka batch holds more than asked for: go on after the last one taken
            return out[:max_nums], out[max_nums - 1][0] + 1
        return out, got.next_begin_offset

    async def pop_wait(self, req: PopRequest, poll_ms: int) -> PopBatch:
        """:meth:`pop`, parked up to ``poll_ms`` until a message arrives or one is revived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + poll_ms / 1000
        while True:
            batch = self.pop(req)
            remaining = deadline - loop.time()
            if batch.messages or remaining <= 0:
                return batch
            await self._park(req.topic, self._queues(req.topic, req.queue_id), req.tag_codes, remaining)

    async def _park(
        self, topic: str, queues: list[int], tag_codes: frozenset[int] | None, timeout: float
    ) -> None:
        revived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._revived.add(revived)
        waits = [asyncio.ensure_future(self.broker.hold.hold(topic, q, tag_codes, timeout)) for q in queues]
        try:
            await asyncio.wait([revived, *waits], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._revived.discard(revived)
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    def on_revive(self) -> asyncio.Future[None]:
        """A future done when the revive timer next gives messages back (any queue), registered at once
        so nothing revived after this call is missed; cancel it when done waiting. For frontends that
        park on arrivals themselves (Kafka's ShareFetch)."""
        revived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._revived.add(revived)
        revived.add_done_callback(self._revived.discard)
        return revived

    def _wake_parked(self) -> None:
        for fut in self._revived:
            if not fut.done():
                fut.set_result(None)

    # -- ack and change invisible time
    def ack(self, group: str, topic: str, receipt: Receipt) -> bool:
        """True if the receipt named a message in flight; False if unknown or already spent."""
        key = QueueKey(group, topic, receipt.queue_id)
        if not self.state.ack(key, receipt.ck_offset, receipt.pop_time, receipt.offset):
            return False
        self._commit(key)
        self._dirty = True
        if receipt.fifo:
            self._wake_parked()  # the queue may be free for the next FIFO pop
        return True

    def forward_to_dlq(self, group: str, topic: str, receipt: Receipt) -> bool:
        """The consumer gives up on a message in flight: acked, and a copy put in the group's DLQ
        (``%DLQ%group``, as a revive past maxReconsumeTimes would). False if the receipt is spent."""
        key = QueueKey(group, topic, receipt.queue_id)
        ck = self.state.checkpoint(key, receipt.ck_offset, receipt.pop_time)
        if ck is None or receipt.offset not in ck.offsets:
            return False
        return self.dead_letter(group, topic, receipt, ck.reconsume[ck.offsets.index(receipt.offset)])

    def dead_letter(self, group: str, topic: str, receipt: Receipt, times: int) -> bool:
        """Dead-letter a message in flight now (a Kafka share group's REJECT), as the revive timer does
        at the group's retry maximum; False (nothing sent) if the receipt is unknown or spent."""
        if not self.ack(group, topic, receipt):
            return False
        self._dead_letter(QueueKey(group, topic, receipt.queue_id), receipt.offset, times)
        return True

    def change_invisible(
        self, group: str, topic: str, receipt: Receipt, invisible_ms: int, now: int | None = None
    ) -> Receipt | None:
        """The message stays invisible ``invisible_ms`` from now; its new receipt, or None if the
        receipt is spent (acked, revived or changed already)."""
        now = now_ms() if now is None else now
        key = QueueKey(group, topic, receipt.queue_id)
        ck = self.state.change_invisible(
            key, receipt.ck_offset, receipt.pop_time, receipt.offset, now, invisible_ms
        )
        if ck is None:
            return None
        self._dirty = True
        self.wake()
        return Receipt(
            ck.start,
            ck.pop_time,
            invisible_ms,
            receipt.revive_qid,
            receipt.retry,
            receipt.broker_name,
            receipt.queue_id,
            receipt.offset,
        )

    def _commit(self, key: QueueKey) -> None:
        offset = self.state.commit_offset(key)
        offsets = self.broker.offsets
        if offsets.query(key.group, key.topic, key.queue_id) != offset:
            offsets.commit(key.group, key.topic, key.queue_id, offset)

    # -- revive
    def _max_reconsume(self, group: str) -> int:
        cfg = self.broker.subscription_groups.find(group)
        return 16 if cfg is None else cfg.retry_max_times

    def tick(self, now: int) -> int | None:
        seq = self.journal.seq
        dead = self.state.revive(now, self._max_reconsume)
        touched = {key for key, _, _ in dead}
        for key, offset, times in dead:
            self._dead_letter(key, offset, times)
        for key in touched:
            self._commit(key)
        if self.journal.seq != seq:
            self._dirty = True
            self._wake_parked()
        return self.state.next_deadline()

    def _dead_letter(self, key: QueueKey, offset: int, times: int) -> None:
        found, _ = self._read(key, offset, 1, None)
        if not found or found[0][0] != offset:
            return
        broker = self.broker
        dlq = DLQ_GROUP_TOPIC_PREFIX + key.group
        if broker.topics.get(dlq) is None:
            broker.topic_created(broker.topics.create_if_absent(dlq, 1, PERM_READ | PERM_WRITE))
        record = found[0][1]
        msg = load_message(broker.store, read_stored_fields(record).phys)
        if msg is None:  # one record of a batch entry (Kafka): the stored form the pop read
            msg = decode_stored_message(record)
        props = dict(msg.properties)
        props.setdefault(PROPERTY_RETRY_TOPIC, key.topic)
        result = reput(broker.store, msg, dlq, 0, props, msg.reconsume_times + times + 1)  # as a send-back
        log.info(
            "pop: %s@%d offset %d to %s after %d redeliveries: %s",
            key.topic,
            key.queue_id,
            offset,
            dlq,
            times,
            result.status.value,
            extra={"group": key.group, "topic": key.topic},
        )

    def idle_interval(self) -> float:
        return 1.0

    def persist(self) -> None:
        self.journal.maybe_compact()
        self._dirty = False

    def close(self) -> None:
        """At broker stop, after the loop: the snapshot is written and the journal closed."""
        self.journal.close()
