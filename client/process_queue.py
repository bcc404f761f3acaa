"""The messages of one owned queue between pull and commit (Java's ``ProcessQueue``).

The push consumer's pull task puts what it pulls here; the consume services take from it and
learn which offset may be committed. Its counters bound the pulling (flow control), and in
orderly mode it carries the queue's broker lock state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from ferrymq.client.message import MessageQueue
from ferrymq.core.remoting.message import MessageExt


class ProcessQueue:
    """Messages of one owned queue between pull and commit (Java's ``ProcessQueue``).

    ``msgs`` holds pulled messages not yet consumed, by queue offset, in offset order (pulls
    arrive in order); an orderly consumer moves the batch it hands to the listener to
    ``consuming`` until it commits.
    """

    __slots__ = (
        "backlog",
        "broker_id",
        "consume_active",
        "consume_lock",
        "consuming",
        "count",
        "dropped",
        "last_lock",
        "locked",
        "max_offset",
        "mq",
        "msgs",
        "next_offset",
        "pull_task",
        "rank",
        "size",
        "space",
    )

    def __init__(self, mq: MessageQueue, rank: int = 0) -> None:
        self.mq = mq
        self.rank = rank
        self.msgs: dict[int, MessageExt] = {}
        self.consuming: dict[int, MessageExt] = {}
        self.count = 0
        self.size = 0
        self.max_offset = -1  # highest queue offset ever put
        self.next_offset: int | None = None  # next offset to pull
        #: messages on the broker beyond what was pulled, as of the last pull; -1 before the first
        self.backlog = -1
        self.broker_id = 0
        self.dropped = False
        self.locked = False
        self.last_lock = 0.0
        self.consume_active = False
        self.consume_lock = asyncio.Lock()
        self.space = asyncio.Event()
        self.pull_task: asyncio.Task[None] | None = None

    def put(self, msgs: list[MessageExt]) -> None:
        for m in msgs:
            if m.queue_offset not in self.msgs:
                self.msgs[m.queue_offset] = m
                self.count += 1
                self.size += len(m.body)
        self.max_offset = max(self.max_offset, msgs[-1].queue_offset)

    def remove(self, msgs: Iterable[MessageExt]) -> int:
        """Forget consumed ``msgs``; the offset to commit (first unconsumed), -1 if none known."""
        if not self.msgs:
            return -1
        for m in msgs:
            if self.msgs.pop(m.queue_offset, None) is not None:
                self.count -= 1
                self.size -= len(m.body)
        self.space.set()
        return next(iter(self.msgs)) if self.msgs else self.max_offset + 1

    def take(self, n: int) -> list[MessageExt]:
        """Orderly: the next ``n`` messages, moved to ``consuming``."""
        out = []
        for offset in list(self.msgs)[:n]:
            m = self.msgs.pop(offset)
            self.consuming[offset] = m
            out.append(m)
        return out

    def commit(self) -> int:
        """Orderly: the taken messages are done; the offset after them (-1 if none)."""
        if not self.consuming:
            return -1
        offset = max(self.consuming) + 1
        for m in self.consuming.values():
            self.count -= 1
            self.size -= len(m.body)
        self.consuming.clear()
        self.space.set()
        return offset

    def consume_again(self) -> None:
        """Orderly: put the taken messages back in front, to be consumed again."""
        self.msgs = {**self.consuming, **self.msgs}
        self.consuming.clear()

    def lock_expired(self, max_live: float) -> bool:
        return time.monotonic() - self.last_lock > max_live
