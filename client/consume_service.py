"""Consume services of a push consumer: how pulled messages reach the listener and how its
verdict moves offsets (Java's ``ConsumeMessageConcurrentlyService`` and
``ConsumeMessageOrderlyService``).

* :class:`ConcurrentConsumeService` -- batches of up to ``batch_size`` messages, any number at a
  time (bounded by the listener threads); a failed batch is handed back to the broker
  (:mod:`ferrymq.client.send_back`) or, failing that, consumed again later; broadcast consumers
  drop it. With a priority ranking, a batch waits while higher-ranked queues have messages.
* :class:`OrderlyConsumeService` -- one batch of a queue at a time, in queue order, only while
  the queue's broker lock is held (clustering); a failed batch suspends the queue and is
  retried, past the reconsume limit it goes to the retry topic (and so the dead-letter topic).

Plain-function listeners run on :class:`ConsumeWorkers` threads, ``async def`` ones on the loop.
:class:`ConsumeRuntime` is the running state the consumer shares with its services.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ferrymq.client.offset_store import OffsetStore
from ferrymq.client.priority import PriorityGate
from ferrymq.client.process_queue import ProcessQueue
from ferrymq.client.queue_lock import QueueLocks
from ferrymq.client.send_back import PROPERTY_CONSUME_START_TIME, SendBack
from ferrymq.client.validators import RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.message import PROPERTY_RETRY_TOPIC, MessageExt

log = logging.getLogger("ferrymq.client")


class ConsumeStatus(enum.Enum):
    """What a concurrent listener returns (``ConsumeConcurrentlyStatus``)."""

    CONSUME_SUCCESS = "CONSUME_SUCCESS"
    RECONSUME_LATER = "RECONSUME_LATER"


class ConsumeOrderlyStatus(enum.Enum):
    """What an orderly listener returns (``ConsumeOrderlyStatus``)."""

    SUCCESS = "SUCCESS"
    SUSPEND_CURRENT_QUEUE_A_MOMENT = "SUSPEND_CURRENT_QUEUE_A_MOMENT"


Listener = Callable[[list[MessageExt]], Any]


#: what call_listener returns when the listener raised
FAILED = object()

_SUCCESS = frozenset({"CONSUME_SUCCESS", "SUCCESS"})
_FAILURE = frozenset({"RECONSUME_LATER", "SUSPEND_CURRENT_QUEUE_A_MOMENT"})


def _verdict_name(result: object) -> str | None:
    if isinstance(result, ConsumeStatus | ConsumeOrderlyStatus):
        return result.value
    return result if isinstance(result, str) else None


class Verdicts:
    """What a listener's return value means, as a Python user expects: returning normally is
    success (None, True, CONSUME_SUCCESS/SUCCESS as enum or string); raising (``FAILED``),
    False, or RECONSUME_LATER/SUSPEND_CURRENT_QUEUE_A_MOMENT (enum or string, of either kind)
    is failure. Any other value is success too, since the listener returned, but it is likely a
    mistake: the first one is logged with the listener's name."""

    def __init__(self, listener: Listener) -> None:
        self.name = getattr(listener, "__qualname__", None) or repr(listener)
        self._warned = False

    def succeeded(self, result: object) -> bool:
        if result is None or result is True:
            return True
        if result is FAILED or result is False:
            return False
        name = _verdict_name(result)
        if name in _FAILURE:
            return False
        if name not in _SUCCESS and not self._warned:
            self._warned = True
            log.warning(
                "listener %s returned %r, neither a ConsumeStatus nor None/True/False: taken as success"
                " (it returned normally); logged once",
                self.name,
                result,
            )
        return True


SKIPPED = object()  # a consume job dropped before its listener ran (queue given up, stopping)


class ConsumeRuntime:
    """The running state a push consumer shares with its services: CREATED, RUNNING, STOPPING or
    SHUTDOWN; the stop signal that ends every wait; the consume tasks in flight."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.state = "CREATED"
        self.stop: asyncio.Event | None = None
        self.inflight: set[asyncio.Task[Any]] = set()

    def running(self) -> bool:
        return self.state == "RUNNING"

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a consume job as a task that shutdown waits for."""
        task = asyncio.ensure_future(coro)
        self.inflight.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("consume task of group %s failed", self.group, exc_info=task.exception())

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; False if the consumer stops meanwhile."""
        assert self.stop is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stop.wait()
        return self.state == "RUNNING"


class ConsumeWorkers:
    """``consume_thread_max`` threads that run plain-function listeners.

    Jobs go through a queue the threads take from, and results come back to the event loop in
    batches: a thread wakes the loop only when no wake-up is pending, so a busy consumer pays one
    loop wake-up per burst of results rather than one per message (a thread pool future per
    message cost three quarters of the drain rate).
    """

    def __init__(self, threads: int, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.jobs: queue.SimpleQueue[
            tuple[Callable[[], bool], Listener, list[MessageExt], asyncio.Future[Any]] | None
        ]
        self.jobs = queue.SimpleQueue()
        self.results: collections.deque[tuple[asyncio.Future[Any], object, BaseException | None]]
        self.results = collections.deque()
        self.lock = threading.Lock()
        self.wake_pending = False
        self.threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(threads)
        ]
        for t in self.threads:
            t.start()

    def call(
        self, should_run: Callable[[], bool], listener: Listener, msgs: list[MessageExt]
    ) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = self.loop.create_future()
        self.jobs.put((should_run, listener, msgs, fut))
        return fut

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            should_run, listener, msgs, fut = job
            result: object = SKIPPED
            error: BaseException | None = None
            try:
                if should_run():
                    result = listener(msgs)
            except BaseException as exc:  # handed to the loop, which logs it
                error = exc
            with self.lock:
                self.results.append((fut, result, error))
                if self.wake_pending:
                    continue
                self.wake_pending = True
            try:
                self.loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return

    def _deliver(self) -> None:
        with self.lock:
            batch = list(self.results)
            self.results.clear()
            self.wake_pending = False
        for fut, result, error in batch:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)

    def shutdown(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)


class ConsumeService:
    """What both services share: calling the listener and committing progress."""

    def __init__(
        self,
        runtime: ConsumeRuntime,
        listener: Listener,
        workers: ConsumeWorkers,
        threads: int,
        offsets: OffsetStore,
        returner: SendBack,
        batch_size: int,
    ) -> None:
        self.runtime = runtime
        self.listener = listener
        self.workers = workers
        self.sem = asyncio.Semaphore(threads)
        self.offsets = offsets
        self.returner = returner
        self.batch_size = batch_size
        self.verdicts = Verdicts(listener)

    def dispatch(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        """Schedule consumption of ``msgs`` just put into ``pq``."""
        raise NotImplementedError

    async def call_listener(self, msgs: list[MessageExt], should_run: Callable[[], bool]) -> object:
        """The listener's verdict on ``msgs``; SKIPPED if ``should_run()`` says no at its turn."""
        listener = self.listener
        group = self.runtime.group
        now = str(int(time.time() * 1000))
        retry_topic = RETRY_GROUP_TOPIC_PREFIX + group
        for m in msgs:
            if m.topic == retry_topic:
                original = m.properties.get(PROPERTY_RETRY_TOPIC)
                if original:
                    m.topic = original
            m.properties[PROPERTY_CONSUME_START_TIME] = now
        try:
            if inspect.iscoroutinefunction(listener):
                async with self.sem:
                    if not should_run():
                        return SKIPPED
                    return await listener(msgs)
            return await self.workers.call(should_run, listener, msgs)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("listener of group %s failed; the messages will be consumed again", group)
            return FAILED


class ConcurrentConsumeService(ConsumeService):
    """``ConsumeMessageConcurrentlyService``; ``broadcasting`` consumers do not retry."""

    def __init__(
        self,
        *args: Any,
        gate: PriorityGate,
        broadcasting: bool,
        send_back_retry_delay: float,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.gate = gate
        self.broadcasting = broadcasting
        self.send_back_retry_delay = send_back_retry_delay

    def dispatch(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        n = self.batch_size
        for i in range(0, len(msgs), n):
            self.runtime.spawn(self.consume(pq, msgs[i : i + n]))

    async def consume(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        """``ConsumeMessageConcurrentlyService.ConsumeRequest``."""
        rt = self.runtime
        if self.gate.enabled:
            await self.gate.wait_turn(pq, rt.running)
        if pq.dropped or not rt.running():
            return
        result = await self.call_listener(msgs, lambda: not pq.dropped and rt.running())
        if result is SKIPPED:
            return
        done = msgs
        if not self.verdicts.succeeded(result):
            if self.broadcasting:
                log.warning("broadcast consumer dropped %d failed message(s) (no retries)", len(msgs))
            else:
                failed = [m for m in msgs if not await self.returner.send_back(m)]
                if failed:
                    ids = {id(m) for m in failed}
                    done = [m for m in msgs if id(m) not in ids]
                    for m in failed:
                        m.reconsume_times += 1
                    rt.spawn(self._consume_later(pq, failed))
        offset = pq.remove(done)
        if offset >= 0 and not pq.dropped:
            self.offsets.update(pq.mq, offset, increase_only=True)
        self.gate.notify()

    async def _consume_later(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        if await self.runtime.sleep(self.send_back_retry_delay):
            await self.consume(pq, msgs)


class OrderlyConsumeService(ConsumeService):
    """``ConsumeMessageOrderlyService``; ``locks`` is None in broadcasting mode (no locking)."""

    def __init__(
        self,
        *args: Any,
        locks: QueueLocks | None,
        max_reconsume_times: int,
        suspend_time: float,
        lock_max_live: float,
        retry_delay: float,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.locks = locks
        self.max_reconsume_times = max_reconsume_times
        self.suspend_time = suspend_time
        self.lock_max_live = lock_max_live
        self.retry_delay = retry_delay

    def dispatch(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        if not pq.consume_active:
            pq.consume_active = True
            self.runtime.spawn(self.consume(pq))

    async def consume(self, pq: ProcessQueue) -> None:
        """``ConsumeMessageOrderlyService.ConsumeRequest``: one batch at a time, in queue order."""
        rt = self.runtime
        locks = self.locks
        try:
            while rt.running() and not pq.dropped:
                if locks is not None and (not pq.locked or pq.lock_expired(self.lock_max_live)):
                    if not await locks.lock(pq) and not await rt.sleep(self.retry_delay):
                        return
                    continue
                suspend = False
                async with pq.consume_lock:
                    if pq.dropped:
                        return
                    msgs = pq.take(self.batch_size)
                    if not msgs:
                        pq.consume_active = False  # no await since take(): a new put restarts us
                        return
                    result = await self.call_listener(msgs, lambda: True)
                    if self.verdicts.succeeded(result) or not await self._reconsume_check(msgs):
                        offset = pq.commit()
                    else:
                        pq.consume_again()
                        offset = -1
                        suspend = True
                    if offset >= 0:  # even if dropped meanwhile: the release commits after us
                        self.offsets.update(pq.mq, offset, increase_only=False)
                if suspend and not await rt.sleep(self.suspend_time):
                    return
        finally:
            pq.consume_active = False

    async def _reconsume_check(self, msgs: list[MessageExt]) -> bool:
        """Orderly failure (``checkReconsumeTimes``): True to suspend and retry the batch; False
        when every message went to the dead-letter topic instead."""
        limit = self.max_reconsume_times if self.max_reconsume_times >= 0 else 2**31 - 1
        suspend = False
        for m in msgs:
            if m.reconsume_times >= limit:
                if not await self.returner.to_retry_topic(m, m.reconsume_times, limit):
                    suspend = True
                    m.reconsume_times += 1
            else:
                suspend = True
                m.reconsume_times += 1
        return suspend
