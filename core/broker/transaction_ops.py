"""What the transaction checker knows about the half queue: pure state, no I/O, time passed in.

RocketMQ (``TransactionalMessageServiceImpl``, ``TransactionalOpBatchService``) records each
finished half message as ``"<halfQueueOffset>,"`` in an op message of
``RMQ_SYS_TRANS_OP_HALF_TOPIC`` (tag ``d``), batched: written when the buffer passes
``transactionOpMsgMaxSize`` bytes or ``transactionOpBatchInterval`` ms after its first entry.
The checker walks the half queue from ``cursor`` (every offset before it is handled) and skips
offsets in ``done`` (read back from op messages after a restart). ``op_cursor`` is the first op
message that may still name an offset at or after ``cursor``: a restart reads op messages from
there, never the whole op queue.

``immune``: queue offsets of half messages sent with CHECK_IMMUNITY_TIME_IN_SECONDS that the
checker stored again (a copy naming the original's offset in TRAN_PREPARED_QUEUE_OFFSET) while
their immunity lasts. A decision about such an original stays in ``done`` though the cursor has
passed it, so the copy is dropped when the checker reaches it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

OP_TAG = "d"


def encode_op_body(offsets: list[int]) -> bytes:
    return "".join(f"{o}," for o in offsets).encode()


def decode_op_body(body: bytes) -> list[int]:
    """The half offsets an op message names; junk between commas is ignored (logged by the caller)."""
    out = []
    for part in body.decode(errors="replace").split(","):
        part = part.strip()
        if part.isdigit():
            out.append(int(part))
    return out


@dataclass(slots=True)
class HalfQueueState:
    cursor: int = 0
    op_cursor: int = 0
    done: set[int] = field(default_factory=set)
    #: offsets decided but not yet in an op message, and when the first of them came (ms)
    buffer: list[int] = field(default_factory=list)
    buffer_bytes: int = 0
    buffered_since: int = 0
    #: (op queue offset, the largest half offset it names), for op messages from op_cursor on
    op_refs: deque[tuple[int, int]] = field(default_factory=deque)
    immune: set[int] = field(default_factory=set)

    def finished(self, offset: int) -> bool:
        return offset in self.done

    def finish(self, offset: int, now: int, max_bytes: int) -> bool:
        """Record a decision for ``offset``; True when the op buffer should be written now."""
        if offset in self.done:
            return False
        self.done.add(offset)
        if not self.buffer:
            self.buffered_since = now
        self.buffer.append(offset)
        self.buffer_bytes += len(str(offset)) + 1
        return self.buffer_bytes >= max_bytes

    def op_due(self, interval: int) -> int | None:
        """When the buffered offsets must be written (ms), if any wait."""
        return self.buffered_since + interval if self.buffer else None

    def take_buffer(self) -> list[int]:
        out, self.buffer, self.buffer_bytes = self.buffer, [], 0
        return out

    def restore_buffer(self, offsets: list[int], now: int) -> None:
        """The op message could not be stored: keep the offsets for the next attempt."""
        if not self.buffer:
            self.buffered_since = now
        self.buffer[:0] = offsets
        self.buffer_bytes += sum(len(str(o)) + 1 for o in offsets)

    def load_op(self, op_offset: int, offsets: list[int]) -> None:
        """An op message (read back at start, or just written) naming ``offsets``."""
        for o in offsets:
            if o >= self.cursor or o in self.immune:
                self.done.add(o)
        self.op_refs.append((op_offset, max(offsets, default=-1)))

    def advance(self, cursor: int) -> bool:
        """Move the cursor to ``cursor``; forget what lies before it. True if anything moved."""
        if cursor <= self.cursor:
            return False
        if self.done:
            self.done = {o for o in self.done if o >= cursor or o in self.immune}
        self.cursor = cursor
        while self.op_refs and self.op_refs[0][1] < cursor:
            self.op_cursor = self.op_refs.popleft()[0] + 1
        return True

    def forget_immune(self, original: int) -> None:
        """The immune original's copies are over (decided, or its immunity ended)."""
        self.immune.discard(original)
        if original < self.cursor:
            self.done.discard(original)
