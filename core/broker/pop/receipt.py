"""POP receipts: the ``extraInfo`` string a popped message carries (property POP_CK) and that
ACK_MESSAGE, BATCH_ACK_MESSAGE and CHANGE_MESSAGE_INVISIBLETIME hand back.

As Java's ``ExtraInfoUtil``: eight fields separated by spaces, ``ckQueueOffset popTime
invisibleTime reviveQid retry brokerName queueId queueOffset``. ``retry`` is "0" for a normal
topic ("1"/"2" for the pop retry topics, which ferrymq does not use: it redelivers from the
original queue). reviveQid 999 (``KeyBuilder.POP_ORDER_REVIVE_QUEUE``) marks an order (FIFO) pop.
The POP_MESSAGE response header's ``startOffsetInfo`` and ``msgOffsetInfo`` are built here too;
the Java client makes each message's receipt from them.
"""

from __future__ import annotations

from dataclasses import dataclass

SEP = " "
NORMAL = "0"
REVIVE_QID = 0
REVIVE_QID_FIFO = 999


@dataclass(frozen=True, slots=True)
class Receipt:
    ck_offset: int
    pop_time: int
    invisible_ms: int
    revive_qid: int
    retry: str
    broker_name: str
    queue_id: int
    offset: int

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """ValueError unless ``text`` is a full eight-field receipt."""
        parts = text.split(SEP)
        if len(parts) < 8:
            raise ValueError(f"extraInfo has {len(parts)} fields, 8 expected: {text!r}")
        return cls(
            int(parts[0]),
            int(parts[1]),
            int(parts[2]),
            int(parts[3]),
            parts[4],
            parts[5],
            int(parts[6]),
            int(parts[7]),
        )

    def encode(self) -> str:
        return SEP.join(
            str(v)
            for v in (
                self.ck_offset,
                self.pop_time,
                self.invisible_ms,
                self.revive_qid,
                self.retry,
                self.broker_name,
                self.queue_id,
                self.offset,
            )
        )

    @property
    def fifo(self) -> bool:
        return self.revive_qid == REVIVE_QID_FIFO


def start_offset_info(starts: list[tuple[int, int]]) -> str:
    """``buildStartOffsetInfo`` for each (queue id, checkpoint start offset)."""
    return ";".join(f"{NORMAL}{SEP}{q}{SEP}{start}" for q, start in starts)


def msg_offset_info(offsets: list[tuple[int, list[int]]]) -> str:
    """``buildMsgOffsetInfo`` for each (queue id, popped queue offsets in order)."""
    return ";".join(f"{NORMAL}{SEP}{q}{SEP}{','.join(map(str, offs))}" for q, offs in offsets)


def order_count_info(counts: list[tuple[int, int, int]]) -> str:
    """``buildQueueOffsetOrderCountInfo`` for each (queue id, offset, times delivered before)."""
    return ";".join(f"{NORMAL}{SEP}qo{q}%{o}{SEP}{c}" for q, o, c in counts)
