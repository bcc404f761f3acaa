"""Long polling: a pull that finds nothing waits until a matching message arrives or its
suspend timeout passes (RocketMQ's ``PullRequestHoldService``).

Waiters are kept per topic-queue; the store calls :meth:`notify` on every arrival, which is a
dict lookup when nobody waits. A waiter with a tag filter is woken only by a matching tag.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class PullRequestHoldService:
    def __init__(self) -> None:
        self._waiters: defaultdict[
            tuple[str, int], list[tuple[asyncio.Future[None], frozenset[int] | None]]
        ] = defaultdict(list)

    def notify(self, topic: str, queue_id: int, queue_offset: int, tag_code: int) -> None:
        key = (topic, queue_id)
        waiters = self._waiters.get(key)
        if not waiters:
            return
        keep: list[tuple[asyncio.Future[None], frozenset[int] | None]] = []
        for fut, codes in waiters:
            if fut.done():
                continue
            if codes is None or tag_code in codes:
                fut.set_result(None)
            else:
                keep.append((fut, codes))
        if keep:
            self._waiters[key] = keep
        else:
            del self._waiters[key]

    async def hold(self, topic: str, queue_id: int, tag_codes: frozenset[int] | None, timeout: float) -> bool:
        """Wait for an arrival on the queue; True if one came before ``timeout`` seconds."""
        key = (topic, queue_id)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (fut, tag_codes)
        self._waiters[key].append(entry)
        try:
            async with asyncio.timeout(timeout):
                await fut
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                try:
                    waiters.remove(entry)
                except ValueError:
                    pass
                if not waiters:
                    del self._waiters[key]

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())
