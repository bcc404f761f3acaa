"""POP consumption's state, sans-IO (time passed in as epoch milliseconds).

Per (group, topic, queue): a cursor (the next offset never popped), the checkpoints in flight
(one per pop: pop time, invisible time, the popped offsets with the reconsume times each was
delivered with, and a bitmap of acks), and the offsets waiting for redelivery. As RocketMQ's
PopCheckPoint/AckMsg and PopReviveService, with one difference: a revived message is redelivered
from its original queue (its reconsume times raised), not rewritten to a pop retry topic.

- ``revive(now)``: every checkpoint whose invisible time has passed gives its unacked offsets
  back with reconsume times + 1, or, at the group's maximum, to the dead-letter list the caller
  writes to ``%DLQ%<group>``.
- ``commit_offset``: the lowest offset still in flight or waiting, else the cursor: the group's
  consume offset never passes a message that is not acked.
- FIFO: ``fifo_blocked`` while any checkpoint of the queue is unfinished
  (``ConsumerOrderInfoManager``): one popper at a time, in order.

Every change is also an op (a short JSON-able list) given to ``sink``; ``apply`` replays one, so
a snapshot plus the ops since rebuild the state exactly (core/broker/pop/journal.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class QueueKey(NamedTuple):
    group: str
    topic: str
    queue_id: int


@dataclass(slots=True)
class Checkpoint:
    start: int
    pop_time: int
    invisible_ms: int
    offsets: list[int]
    reconsume: list[int]
    acked: int = 0
    fifo: bool = False

    @property
    def deadline(self) -> int:
        return self.pop_time + self.invisible_ms

    @property
    def done(self) -> bool:
        return self.acked == (1 << len(self.offsets)) - 1

    def unacked(self) -> Iterator[tuple[int, int]]:
        for i, off in enumerate(self.offsets):
            if not self.acked >> i & 1:
                yield off, self.reconsume[i]

    def to_json(self) -> list[Any]:
        return [
            self.start,
            self.pop_time,
            self.invisible_ms,
            self.offsets,
            self.reconsume,
            self.acked,
            self.fifo,
        ]


@dataclass(slots=True)
class QueueState:
    cursor: int
    cks: dict[tuple[int, int], Checkpoint] = field(default_factory=dict)
    ready: dict[int, int] = field(default_factory=dict)


Op = list[Any]
MaxReconsume = Callable[[str], int]


class PopState:
    def __init__(self, sink: Callable[[Op], None] | None = None) -> None:
        self.queues: dict[QueueKey, QueueState] = {}
        self.sink = sink

    def _emit(self, op: Op) -> None:
        if self.sink is not None:
            self.sink(op)

    # -- reads
    def has(self, key: QueueKey) -> bool:
        return key in self.queues

    def cursor(self, key: QueueKey) -> int:
        return self.queues[key].cursor

    def ready(self, key: QueueKey, limit: int) -> list[tuple[int, int]]:
        """Offsets waiting for redelivery, lowest first, with the reconsume times they get."""
        q = self.queues.get(key)
        if q is None or not q.ready:
            return []
        return [(o, q.ready[o]) for o in sorted(q.ready)[:limit]]

    def fifo_blocked(self, key: QueueKey) -> bool:
        q = self.queues.get(key)
        return q is not None and any(not ck.done for ck in q.cks.values())

    def commit_offset(self, key: QueueKey) -> int:
        q = self.queues[key]
        low = min(q.ready, default=q.cursor)
        for ck in q.cks.values():
            for off, _ in ck.unacked():
                low = min(low, off)
        return min(low, q.cursor)

    def checkpoint(self, key: QueueKey, ck_offset: int, pop_time: int) -> Checkpoint | None:
        q = self.queues.get(key)
        return None if q is None else q.cks.get((ck_offset, pop_time))

    def next_deadline(self) -> int | None:
        return min((ck.deadline for q in self.queues.values() for ck in q.cks.values()), default=None)

    def in_flight(self) -> int:
        return sum(len(q.cks) for q in self.queues.values())

    # -- changes
    def open(self, key: QueueKey, offset: int) -> bool:
        """Start tracking a queue at ``offset`` (the group's committed offset); False if known."""
        if key in self.queues:
            return False
        self.queues[key] = QueueState(offset)
        self._emit(["open", *key, offset])
        return True

    def add_checkpoint(
        self,
        key: QueueKey,
        pop_time: int,
        invisible_ms: int,
        entries: list[tuple[int, int]],
        cursor: int,
        fifo: bool = False,
    ) -> Checkpoint | None:
        """Record a pop of ``entries`` (offset, reconsume times), offsets ascending; the cursor
        moves to ``cursor`` (past any offsets the pop filtered out). None if nothing popped."""
        q = self.queues[key]
        q.cursor = max(q.cursor, cursor)
        for off, _ in entries:
            q.ready.pop(off, None)
        self._emit(["ck", *key, pop_time, invisible_ms, [list(e) for e in entries], cursor, fifo])
        if not entries:
            return None
        ck = Checkpoint(
            entries[0][0], pop_time, invisible_ms, [o for o, _ in entries], [r for _, r in entries], 0, fifo
        )
        q.cks[(ck.start, pop_time)] = ck
        return ck

    def _take(
        self, key: QueueKey, ck_offset: int, pop_time: int, offset: int
    ) -> tuple[Checkpoint, int] | None:
        """Mark ``offset`` of a checkpoint acked; the checkpoint and the offset's reconsume times."""
        q = self.queues.get(key)
        ck = None if q is None else q.cks.get((ck_offset, pop_time))
        if q is None or ck is None:
            return None
        try:
            i = ck.offsets.index(offset)
        except ValueError:
            return None
        if ck.acked >> i & 1:
            return None
        ck.acked |= 1 << i
        if ck.done:
            del q.cks[(ck_offset, pop_time)]
        return ck, ck.reconsume[i]

    def ack(self, key: QueueKey, ck_offset: int, pop_time: int, offset: int) -> bool:
        """True if the receipt named a message in flight (now done); False if unknown or spent."""
        if self._take(key, ck_offset, pop_time, offset) is None:
            return False
        self._emit(["ack", *key, ck_offset, pop_time, offset])
        return True

    def change_invisible(
        self, key: QueueKey, ck_offset: int, pop_time: int, offset: int, now: int, invisible_ms: int
    ) -> Checkpoint | None:
        """The message leaves its checkpoint for one of its own, invisible ``invisible_ms`` from
        ``now`` (as Java acks the old and writes a new checkpoint). None if the receipt is spent."""
        taken = self._take(key, ck_offset, pop_time, offset)
        if taken is None:
            return None
        old, reconsume = taken
        q = self.queues[key]
        pt = now
        # receipts stay unique within the queue, and the spent one must not come back: a change in the
        # millisecond of its pop would otherwise hand out the old receipt's (offset, pop time) again
        while (offset, pt) in q.cks or (offset, pt) == (ck_offset, pop_time):
            pt += 1
        ck = Checkpoint(offset, pt, invisible_ms, [offset], [reconsume], 0, old.fifo)
        q.cks[(offset, pt)] = ck
        self._emit(["chg", *key, ck_offset, pop_time, offset, now, invisible_ms])
        return ck

    def revive(self, now: int, max_reconsume: MaxReconsume) -> list[tuple[QueueKey, int, int]]:
        """Give back what is due by ``now``; returns (queue, offset, reconsume times) to dead-letter."""
        due = [(key, k) for key, q in self.queues.items() for k, ck in q.cks.items() if ck.deadline <= now]
        if not due:
            return []
        maxes = {key.group: max_reconsume(key.group) for key, _ in due}
        self._emit(["rv", now, maxes])
        return self._revive(due, maxes)

    def _revive(
        self, due: list[tuple[QueueKey, tuple[int, int]]], maxes: dict[str, int]
    ) -> list[tuple[QueueKey, int, int]]:
        dead: list[tuple[QueueKey, int, int]] = []
        for key, k in due:
            q = self.queues[key]
            ck = q.cks.pop(k)
            limit = maxes.get(key.group, 16)
            for off, times in ck.unacked():
                if 0 <= limit <= times:
                    dead.append((key, off, times))
                else:
                    q.ready[off] = times + 1
        return dead

    def discard(self, key: QueueKey, offsets: list[int]) -> None:
        """Drop offsets waiting for redelivery whose messages are gone (retention)."""
        q = self.queues[key]
        for off in offsets:
            q.ready.pop(off, None)
        self._emit(["discard", *key, offsets])

    def forget(self, key: QueueKey) -> None:
        """Stop tracking a queue (its offsets were reset): what was in flight is dropped."""
        if self.queues.pop(key, None) is not None:
            self._emit(["forget", *key])

    # -- persistence
    def apply(self, op: Op) -> None:
        """Replay one op a sink was given (no op is emitted while replaying)."""
        sink, self.sink = self.sink, None
        try:
            kind = op[0]
            if kind == "rv":
                now, maxes = op[1], op[2]
                due = [
                    (key, k)
                    for key, q in self.queues.items()
                    for k, ck in q.cks.items()
                    if ck.deadline <= now
                ]
                self._revive(due, maxes)
                return
            key = QueueKey(op[1], op[2], op[3])
            if kind == "open":
                self.open(key, op[4])
            elif kind == "ck":
                self.add_checkpoint(key, op[4], op[5], [(o, r) for o, r in op[6]], op[7], op[8])
            elif kind == "ack":
                self._take(key, op[4], op[5], op[6])
            elif kind == "chg":
                self.change_invisible(key, op[4], op[5], op[6], op[7], op[8])
            elif kind == "discard":
                self.discard(key, op[4])
            elif kind == "forget":
                self.forget(key)
            else:
                raise ValueError(f"unknown pop op {kind!r}")
        finally:
            self.sink = sink

    def snapshot(self) -> dict[str, Any]:
        return {
            "queues": [
                {
                    "key": list(key),
                    "cursor": q.cursor,
                    "ready": sorted([o, r] for o, r in q.ready.items()),
                    "cks": [ck.to_json() for ck in q.cks.values()],
                }
                for key, q in self.queues.items()
            ]
        }

    @classmethod
    def restore(cls, data: dict[str, Any], sink: Callable[[Op], None] | None = None) -> PopState:
        state = cls(sink)
        for item in data.get("queues", []):
            q = QueueState(int(item["cursor"]), ready={int(o): int(r) for o, r in item["ready"]})
            for start, pt, inv, offs, recon, acked, fifo in item["cks"]:
                q.cks[(start, pt)] = Checkpoint(start, pt, inv, list(offs), list(recon), acked, fifo)
            state.queues[QueueKey(*item["key"])] = q
        return state
