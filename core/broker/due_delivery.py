"""The loop shared by delayed (schedule.py) and timer (timer.py) delivery.

A task delivers whatever is due, then sleeps until the next due time, a wake-up (a delayed
message was stored) or its idle interval; progress is persisted at most once a second while it
changes, and at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

log = logging.getLogger("ferrymq.delivery")


def now_ms() -> int:
    return int(time.time() * 1000)


class DueDeliveryLoop:
    """Subclasses implement :meth:`tick` and :meth:`persist` (which clears ``_dirty``)."""

    task_name = "due-delivery"

    def __init__(self) -> None:
        self._dirty = False
        self._last_persist = 0.0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def tick(self, now: int) -> int | None:
        """Deliver what is due by ``now``; return when the next message is due (ms), if known."""
        raise NotImplementedError

    def persist(self) -> None:
        raise NotImplementedError

    def idle_interval(self) -> float:
        """Seconds to sleep when nothing is known to be due."""
        return 10.0

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.persist()

    def wake(self) -> None:
        """Look again soon (a message for this service is being stored)."""
        if self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            try:
                next_due = self.tick(now_ms())
            except Exception:
                log.exception("%s failed", self.task_name)
                next_due = now_ms() + 1000
            if self._dirty and time.monotonic() - self._last_persist >= 1.0:
                self.persist()
            timeout = self.idle_interval()
            if next_due is not None:
                timeout = min(timeout, max(0.001, (next_due - now_ms()) / 1000))
            if self._dirty:
                timeout = min(timeout, 1.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            self._wakeup.clear()
