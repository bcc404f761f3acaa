"""Push consumers: :class:`AsyncPushConsumer` (asyncio) and :class:`PushConsumer` (blocking).

Modelled on Java's ``DefaultMQPushConsumer``: you subscribe, register a listener, start; the
consumer pulls with long polling and calls the listener with the messages.

    consumer = PushConsumer("127.0.0.1:9876", group="orders", consume_from="FIRST_OFFSET")
    consumer.subscribe("Orders", "TagA || TagB")
    consumer.register_listener(lambda msgs: ConsumeStatus.CONSUME_SUCCESS)
    consumer.start()
    ...
    consumer.shutdown()          # waits for running listeners, commits offsets, unregisters

**Groups and queues.** In CLUSTERING mode (the default) the members of a group share the queues
of each subscribed topic and of the group's retry topic ``%RETRY%<group>``: every
``rebalance_interval`` seconds, at once when the broker says the group changed
(NOTIFY_CONSUMER_IDS_CHANGED) and when a route changes, each member lists the group
(GET_CONSUMER_LIST_BY_GROUP) and takes its share with ``allocate_strategy``
(:mod:`ferrymq.client.allocate`; averagely by default). In BROADCASTING mode every member takes
every queue and keeps its own offsets in a local file.

**Pulling and flow control.** One task per owned queue long-polls the queue's broker
(PULL_MESSAGE with the subscription, as Java's ``postSubscriptionWhenPull``); the broker filters
tags by hash and the consumer re-checks the exact tag. Pulling pauses while a queue holds more
than ``pull_threshold_for_queue`` messages or ``pull_threshold_size_for_queue`` MiB not yet
consumed.

**Concurrent listeners** (:meth:`register_listener`) get batches of up to
``consume_message_batch_max_size`` messages, at most ``consume_thread_max`` at a time (plain
functions run in a thread pool of that size, ``async def`` ones on the event loop). The listener
returns :attr:`ConsumeStatus.CONSUME_SUCCESS` (or True) or :attr:`ConsumeStatus.RECONSUME_LATER`
(or False); raising, or returning anything else (None included, as in Java), means reconsume
later. A failed message is handed back to the broker (CONSUMER_SEND_MSG_BACK), which re-delivers
it through ``%RETRY%<group>`` after a growing delay (10 s, 30 s, 1 m, ... with the default delay
levels) and moves it to ``%DLQ%<group>`` after ``max_reconsume_times`` (16 by default). If the
broker cannot take it back, the consumer sends it to the retry topic itself, and failing that
retries it locally after ``send_back_retry_delay`` seconds. Broadcast consumers do not retry.
A message from the retry topic is delivered with its original topic (RETRY_TOPIC).

**Orderly listeners** (:meth:`register_orderly_listener`) see each queue's messages one batch at
a time in queue order. In CLUSTERING mode a queue is consumed only while this member holds the
queue's lock on its broker (LOCK_BATCH_MQ when the queue is taken, renewed every
``lock_interval`` seconds, considered lost after ``lock_max_live`` seconds without renewal); a
queue given up in a rebalance is unlocked only after its last consumed offset is committed, so
the next owner continues exactly there and per-queue order holds across rebalances. Returning
:attr:`ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT` retries the same messages after
``suspend_current_queue_time`` seconds (the queue waits); after ``max_reconsume_times`` (no limit
by default) the message goes to the dead-letter topic.

**Offsets.** A queue starts at the group's committed offset, else per ``consume_from``
(LAST_OFFSET, FIRST_OFFSET, TIMESTAMP with ``consume_timestamp`` in epoch ms). The offset of a
queue advances past a message only once it and every earlier one were consumed (or handed back);
offsets are committed every ``persist_consumer_offset_interval`` seconds (UPDATE_CONSUMER_OFFSET),
when a queue is given up and at shutdown. Delivery is at-least-once: a crash re-delivers what was
consumed since the last commit, nothing is lost across a restart or a rebalance.

**Priority** (RocketMQ has none): ``priority=`` takes a ranking of queues (see
:mod:`ferrymq.client.priority`); a concurrent consumer then hands a batch of a lower-ranked queue to
the listener only while none of its higher-ranked queues has messages waiting.

Not here: SQL92 filters, consume timeouts (Java's cleanExpireMsg), message traces, namespaces,
POP consumption.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import inspect
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from ferrymq.client import _api
from ferrymq.client._instance import ClientInstance
from ferrymq.client._loop import BlockingFacade, LoopThread
from ferrymq.client._remote import check_response, request
from ferrymq.client.allocate import AllocateMessageQueueAveragely, AllocateStrategy
from ferrymq.client.consumer import CONSUME_FROM_CHOICES, _consume_from, _inflate
from ferrymq.client.errors import ClientError, MQError, ValidationError
from ferrymq.client.message import MessageQueue
from ferrymq.client.rebalance import (
    BROADCASTING,
    CLUSTERING,
    allocate_topic,
    compute_pull_from_where,
    lock_batch,
    unlock_batch,
)
from ferrymq.client.validators import RETRY_GROUP_TOPIC_PREFIX, check_group, check_topic
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.heartbeat import HeartbeatData
from ferrymq.core.remoting.message import (
    PROPERTY_DELAY_TIME_LEVEL,
    PROPERTY_MAX_OFFSET,
    PROPERTY_MAX_RECONSUME_TIMES,
    PROPERTY_MIN_OFFSET,
    PROPERTY_ORIGIN_MESSAGE_ID,
    PROPERTY_RECONSUME_TIME,
    PROPERTY_RETRY_TOPIC,
    PROPERTY_UNIQ_KEY,
    MessageExt,
    properties_to_string,
)
from ferrymq.core.remoting.subscription import SubscriptionData
from ferrymq.core.remoting.transport import RemotingConnection

log = logging.getLogger("ferrymq.client")

PROPERTY_CONSUME_START_TIME = "CONSUME_START_TIME"
#: the properties the consumer adds on arrival; not sent back with a re-sent message
_LOCAL_PROPERTIES = (PROPERTY_MIN_OFFSET, PROPERTY_MAX_OFFSET, PROPERTY_CONSUME_START_TIME, "TRAN_MSG")
DEFAULT_MAX_RECONSUME_TIMES = 16
SEND_BACK_TIMEOUT = 5.0


class ConsumeStatus(enum.Enum):
    """What a concurrent listener returns (``ConsumeConcurrentlyStatus``)."""

    CONSUME_SUCCESS = "CONSUME_SUCCESS"
    RECONSUME_LATER = "RECONSUME_LATER"


class ConsumeOrderlyStatus(enum.Enum):
    """What an orderly listener returns (``ConsumeOrderlyStatus``)."""

    SUCCESS = "SUCCESS"
    SUSPEND_CURRENT_QUEUE_A_MOMENT = "SUSPEND_CURRENT_QUEUE_A_MOMENT"


Listener = Callable[[list[MessageExt]], Any]


def _succeeded(result: object, orderly: bool) -> bool:
    if result is True:
        return True
    return result is (ConsumeOrderlyStatus.SUCCESS if orderly else ConsumeStatus.CONSUME_SUCCESS)


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


class _OffsetStore:
    """The consumed offset of each queue (in memory) and where it is committed."""

    def __init__(self) -> None:
        self.offsets: dict[MessageQueue, int] = {}

    def update(self, mq: MessageQueue, offset: int, increase_only: bool) -> None:
        cur = self.offsets.get(mq)
        if cur is None or not increase_only or offset > cur:
            self.offsets[mq] = offset

    def remove(self, mq: MessageQueue) -> None:
        """Forget a queue given up (the next owner's commits win from now on)."""
        self.offsets.pop(mq, None)

    async def read(self, mq: MessageQueue) -> int | None:
        raise NotImplementedError

    async def persist(self, mqs: Iterable[MessageQueue], *, oneway: bool) -> None:
        raise NotImplementedError


class _RemoteOffsetStore(_OffsetStore):
    """Clustering: offsets live on the broker of each queue (``RemoteBrokerOffsetStore``)."""

    def __init__(self, consumer: AsyncPushConsumer) -> None:
        super().__init__()
        self.consumer = consumer

    async def read(self, mq: MessageQueue) -> int | None:
        c = self.consumer
        addr = await c._master(mq)
        return await _api.query_consumer_offset(c._instance.remote, addr, c.group, mq, c.request_timeout)

    async def persist(self, mqs: Iterable[MessageQueue], *, oneway: bool) -> None:
        c = self.consumer
        jobs = []
        for mq in mqs:
            offset = self.offsets.get(mq)
            if offset is None or offset < 0:
                continue
            jobs.append(self._commit(mq, offset, oneway))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException) and not isinstance(res, asyncio.CancelledError):
                log.warning("offset commit of group %s failed: %s", c.group, res)

    async def _commit(self, mq: MessageQueue, offset: int, oneway: bool) -> None:
        c = self.consumer
        addr = await c._master(mq)
        await _api.update_consumer_offset(
            c._instance.remote, addr, c.group, mq, offset, c.request_timeout, oneway=oneway
        )


class _LocalFileOffsetStore(_OffsetStore):
    """Broadcasting: offsets in ``<dir>/<client id>/<group>/offsets.json`` (``LocalFileOffsetStore``)."""

    def __init__(self, directory: Path, client_id: str, group: str) -> None:
        super().__init__()
        safe = client_id.replace(os.sep, "_")
        self.path = directory / safe / group / "offsets.json"
        try:
            data = json.loads(self.path.read_text())
            for item in data.get("offsetTable", []):
                mq = MessageQueue(str(item["topic"]), str(item["brokerName"]), int(item["queueId"]))
                self.offsets[mq] = int(item["offset"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("offsets file %s unreadable (%s); starting per consume_from", self.path, exc)
        self.persisted = dict(self.offsets)

    def remove(self, mq: MessageQueue) -> None:
        """Kept: this member's own offsets outlive a queue coming and going."""

    async def read(self, mq: MessageQueue) -> int | None:
        return self.offsets.get(mq)

    async def persist(self, mqs: Iterable[MessageQueue], *, oneway: bool) -> None:
        if self.persisted == self.offsets:
            return
        table = [
            {"topic": mq.topic, "brokerName": mq.broker_name, "queueId": mq.queue_id, "offset": off}
            for mq, off in sorted(self.offsets.items())
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"offsetTable": table}, indent=1))
        os.replace(tmp, self.path)
        self.persisted = dict(self.offsets)


_SKIPPED = object()  # a consume job dropped before its listener ran (queue given up, stopping)


class _ConsumeWorkers:
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
            result: object = _SKIPPED
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


class AsyncPushConsumer:
    """A push consumer for asyncio code; see the module docstring for the behaviour.

    ``subscribe`` and ``register_*`` are plain methods; ``start`` and ``shutdown`` are coroutines.
    """

    def __init__(
        self,
        namesrv_addr: str | Iterable[str] = "127.0.0.1:9876",
        group: str = "DEFAULT_CONSUMER",
        *,
        message_model: str = CLUSTERING,
        allocate_strategy: AllocateStrategy | None = None,
        consume_from: str = "LAST_OFFSET",
        consume_timestamp: int | None = None,
        consume_thread_max: int = 20,
        consume_message_batch_max_size: int = 1,
        pull_batch_size: int = 32,
        pull_threshold_for_queue: int = 1000,
        pull_threshold_size_for_queue: int = 100,
        max_reconsume_times: int = -1,
        suspend_current_queue_time: float = 1.0,
        persist_consumer_offset_interval: float = 5.0,
        rebalance_interval: float = 20.0,
        lock_interval: float = 20.0,
        lock_max_live: float = 30.0,
        heartbeat_interval: float = 30.0,
        poll_namesrv_interval: float = 30.0,
        broker_suspend_max: float = 15.0,
        pull_timeout: float = 30.0,
        request_timeout: float = 3.0,
        pull_delay_on_error: float = 1.0,
        send_back_retry_delay: float = 5.0,
        await_termination: float = 5.0,
        offset_store_dir: str | Path | None = None,
        priority: Callable[[MessageQueue], int] | None = None,
        instance_name: str | None = None,
    ) -> None:
        self.group = check_group(group)
        model = message_model.upper()
        if model not in (CLUSTERING, BROADCASTING):
            raise ValidationError(f"message_model must be CLUSTERING or BROADCASTING, not {message_model!r}")
        self.message_model = model
        self.allocate_strategy: AllocateStrategy = allocate_strategy or AllocateMessageQueueAveragely()
        self.consume_from = _consume_from(consume_from)
        self.consume_timestamp = consume_timestamp
        if not 1 <= consume_thread_max <= 1000:
            raise ValidationError("consume_thread_max must be in 1..1000")
        if not 1 <= consume_message_batch_max_size <= 1024:
            raise ValidationError("consume_message_batch_max_size must be in 1..1024")
        if not 1 <= pull_batch_size <= 1024:
            raise ValidationError("pull_batch_size must be in 1..1024")
        if pull_timeout <= broker_suspend_max:
            raise ValidationError("pull_timeout must be greater than broker_suspend_max")
        self.consume_thread_max = consume_thread_max
        self.consume_message_batch_max_size = consume_message_batch_max_size
        self.pull_batch_size = pull_batch_size
        self.pull_threshold_for_queue = pull_threshold_for_queue
        self.pull_threshold_size_for_queue = pull_threshold_size_for_queue * 1024 * 1024
        self.max_reconsume_times = max_reconsume_times
        self.suspend_current_queue_time = suspend_current_queue_time
        self.persist_consumer_offset_interval = persist_consumer_offset_interval
        self.rebalance_interval = rebalance_interval
        self.lock_interval = lock_interval
        self.lock_max_live = lock_max_live
        self.broker_suspend_max = broker_suspend_max
        self.pull_timeout = pull_timeout
        self.request_timeout = request_timeout
        self.pull_delay_on_error = pull_delay_on_error
        self.send_back_retry_delay = send_back_retry_delay
        self.await_termination = await_termination
        self.priority = priority
        self._instance = ClientInstance(
            namesrv_addr,
            instance_name=instance_name,
            request_timeout=request_timeout,
            poll_namesrv_interval=poll_namesrv_interval,
            heartbeat_interval=heartbeat_interval,
        )
        self._instance.heartbeat_data = self._heartbeat_data
        self._instance.topics_in_use = self._topics_in_use
        self._instance.heartbeat_masters_only = False
        self._instance.routes.listeners.append(self._on_route_change)
        self._instance.remote.register_handler(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._on_notify)
        self._offsets: _OffsetStore
        if model == CLUSTERING:
            self._offsets = _RemoteOffsetStore(self)
        else:
            directory = Path(offset_store_dir or Path.home() / ".rocketmq_offsets")
            self._offsets = _LocalFileOffsetStore(directory, self.client_id, self.group)
        self._subs: dict[str, SubscriptionData] = {}
        self._listener: Listener | None = None
        self._orderly = False
        self._pqs: dict[MessageQueue, ProcessQueue] = {}
        self._releasing: dict[MessageQueue, asyncio.Task[None]] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: _ConsumeWorkers | None = None
        self._sem: asyncio.Semaphore | None = None
        self._stop: asyncio.Event | None = None
        self._rebalance_wakeup: asyncio.Event | None = None
        self._rebalance_lock: asyncio.Lock | None = None
        self._priority_changed: asyncio.Future[None] | None = None
        self._state = "CREATED"

    # ---- configuration -------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        return self._instance.client_id

    @property
    def running(self) -> bool:
        return self._state == "RUNNING"

    def subscribe(self, topic: str, expression: str = "*") -> None:
        """Consume ``topic``'s messages whose tag matches ``expression`` (``"*"`` or ``"A || B"``)."""
        check_topic(topic)
        if not isinstance(expression, str):
            raise ValidationError("the subscription expression must be a str (TAG expressions only)")
        self._subs[topic] = SubscriptionData.build(topic, expression)
        if self.message_model == CLUSTERING:
            retry = RETRY_GROUP_TOPIC_PREFIX + self.group
            self._subs.setdefault(retry, SubscriptionData.build(retry, "*"))
        if self.running:
            self._after_subscription_change()

    def unsubscribe(self, topic: str) -> None:
        self._subs.pop(topic, None)
        if self.running:
            self._after_subscription_change()

    def _after_subscription_change(self) -> None:
        task = asyncio.ensure_future(self._instance.send_heartbeat_to_all())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._wake_rebalance()

    def register_listener(self, listener: Listener) -> None:
        """Consume concurrently: ``listener(msgs)`` returns a :class:`ConsumeStatus` (or a bool)."""
        self._set_listener(listener, orderly=False)

    def register_orderly_listener(self, listener: Listener) -> None:
        """Consume each queue in order: ``listener(msgs)`` returns a :class:`ConsumeOrderlyStatus`."""
        self._set_listener(listener, orderly=True)

    def _set_listener(self, listener: Listener, orderly: bool) -> None:
        if not callable(listener):
            raise ValidationError("the listener must be callable")
        if self._state != "CREATED":
            raise ClientError("register the listener before start()")
        self._listener = listener
        self._orderly = orderly

    def assignment(self) -> set[MessageQueue]:
        """The queues this consumer owns now."""
        return {mq for mq, pq in self._pqs.items() if not pq.dropped}

    def cached(self) -> dict[MessageQueue, int]:
        """Messages pulled and not yet consumed, per owned queue (what flow control bounds)."""
        return {mq: pq.count for mq, pq in self._pqs.items() if not pq.dropped}

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state == "RUNNING":
            return
        if self._state != "CREATED":
            raise ClientError(f"the consumer cannot be started in state {self._state}")
        if self._listener is None:
            raise ClientError("register a listener before start()")
        if not any(not t.startswith(RETRY_GROUP_TOPIC_PREFIX) for t in self._subs):
            raise ClientError("subscribe to a topic before start()")
        self._workers = _ConsumeWorkers(
            self.consume_thread_max, f"ferrymq-consume-{self.group}", asyncio.get_running_loop()
        )
        self._sem = asyncio.Semaphore(self.consume_thread_max)
        self._stop = asyncio.Event()
        self._rebalance_wakeup = asyncio.Event()
        self._rebalance_lock = asyncio.Lock()
        self._priority_changed = asyncio.get_running_loop().create_future()
        await self._instance.start()
        self._state = "RUNNING"
        try:
            await self._instance.routes.refresh(self._topics_in_use())
            await self._instance.send_heartbeat_to_all()
            await self._rebalance()
        except BaseException:
            await self.shutdown()
            raise
        self._tasks = [
            asyncio.ensure_future(self._rebalance_loop()),
            asyncio.ensure_future(self._persist_loop()),
        ]
        if self._orderly and self.message_model == CLUSTERING:
            self._tasks.append(asyncio.ensure_future(self._lock_loop()))

    async def shutdown(self) -> None:
        """Stop pulling, let running listeners finish (up to ``await_termination`` s), commit
        offsets, release orderly locks, unregister, close."""
        if self._state != "RUNNING":
            self._state = "SHUTDOWN"
            return
        self._state = "STOPPING"
        assert self._stop is not None
        self._stop.set()
        tasks = list(self._tasks) + [pq.pull_task for pq in self._pqs.values() if pq.pull_task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=self.await_termination)
        if self._releasing:
            await asyncio.wait(list(self._releasing.values()), timeout=self.await_termination)
        try:
            await self._offsets.persist(list(self._pqs), oneway=False)
        except MQError as exc:
            log.warning("final offset commit of group %s failed: %s", self.group, exc)
        if self._orderly and self.message_model == CLUSTERING:
            await self._unlock(list(self._pqs))
        for pq in self._pqs.values():
            pq.dropped = True
        self._pqs.clear()
        self._state = "SHUTDOWN"
        for task in list(self._inflight):
            task.cancel()
        await self._instance.unregister(consumer_group=self.group)
        await self._instance.shutdown()
        if self._workers is not None:
            self._workers.shutdown()

    async def __aenter__(self) -> AsyncPushConsumer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("consume task of group %s failed", self.group, exc_info=task.exception())

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; False if the consumer stops meanwhile."""
        assert self._stop is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._state == "RUNNING"

    # ---- heartbeats and rebalancing ------------------------------------------------------------

    def _topics_in_use(self) -> list[str]:
        return list(self._subs)

    def _heartbeat_data(self) -> HeartbeatData:
        return _api.heartbeat_data(
            self.client_id,
            consumer_group=self.group,
            message_model=self.message_model,
            consume_from_where=CONSUME_FROM_CHOICES[self.consume_from],
            subscriptions=list(self._subs.values()),
        )

    def _on_notify(self, cmd: RemotingCommand, conn: RemotingConnection) -> None:
        if cmd.ext_fields.get("consumerGroup") in (None, self.group):
            self._wake_rebalance()

    def _on_route_change(self, topic: str, route: object) -> None:
        if self.running and topic in self._subs:
            self._wake_rebalance()

    def _wake_rebalance(self) -> None:
        if self._rebalance_wakeup is not None:
            self._rebalance_wakeup.set()

    async def _rebalance_loop(self) -> None:
        assert self._rebalance_wakeup is not None
        wakeup = self._rebalance_wakeup
        while self._state == "RUNNING":
            woken = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), self.rebalance_interval)
                woken = True
            wakeup.clear()
            try:
                if not woken:
                    await self._instance.send_heartbeat_to_all()
                await self._rebalance()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rebalance of group %s failed", self.group)

    async def _rebalance(self) -> None:
        """``RebalanceImpl.doRebalance``: work out the owned queues and apply the difference."""
        assert self._rebalance_lock is not None
        async with self._rebalance_lock:
            if self._state != "RUNNING":
                return
            wanted: set[MessageQueue] = set()
            for topic in list(self._subs):
                mine = await allocate_topic(
                    self._instance,
                    self.group,
                    topic,
                    self.message_model,
                    self.allocate_strategy,
                    self.request_timeout,
                )
                if mine is None:  # unknown now: keep what we have
                    mine = {mq for mq in self._pqs if mq.topic == topic}
                wanted |= mine
            if self._state == "RUNNING":
                await self._apply(wanted)

    async def _apply(self, wanted: set[MessageQueue]) -> None:
        removed = [pq for mq, pq in self._pqs.items() if mq not in wanted]
        for pq in removed:
            del self._pqs[pq.mq]
            self._drop(pq)
        if removed and not (self._orderly and self.message_model == CLUSTERING):
            gone = [pq.mq for pq in removed]
            await self._offsets.persist(gone, oneway=True)
            for mq in gone:
                self._offsets.remove(mq)
        added = 0
        retry_soon = False
        orderly_locks = self._orderly and self.message_model == CLUSTERING
        for mq in sorted(wanted):
            if mq in self._pqs:
                continue
            pq = ProcessQueue(mq, self.priority(mq) if self.priority else 0)
            if orderly_locks:
                if mq in self._releasing or not await self._lock_new(pq):
                    retry_soon = True  # the previous owner still holds it: try again shortly
                    continue
                if self._state != "RUNNING" or mq in self._pqs:
                    continue
            self._offsets.remove(mq)
            self._pqs[mq] = pq
            pq.pull_task = asyncio.ensure_future(self._pull_loop(pq))
            added += 1
        if removed or added:
            log.info(
                "group %s client %s owns %d queue(s) (+%d -%d)",
                self.group,
                self.client_id,
                len(self._pqs),
                added,
                len(removed),
            )
            self._notify_priority()
        if retry_soon:
            asyncio.get_running_loop().call_later(0.5, self._wake_rebalance)

    def _drop(self, pq: ProcessQueue) -> None:
        pq.dropped = True
        pq.space.set()
        if pq.pull_task is not None:
            pq.pull_task.cancel()
        if self._orderly and self.message_model == CLUSTERING:
            task = asyncio.ensure_future(self._release(pq))
            self._releasing[pq.mq] = task
            task.add_done_callback(lambda t: self._releasing.pop(pq.mq, None))

    async def _release(self, pq: ProcessQueue) -> None:
        """Orderly: give a queue up only after its listener is done and its offset committed."""
        async with pq.consume_lock:
            try:
                await self._offsets.persist([pq.mq], oneway=False)
            except MQError as exc:
                log.warning("offset commit of %s before unlocking failed: %s", pq.mq, exc)
            self._offsets.remove(pq.mq)
            await self._unlock([pq.mq])

    # ---- orderly locks -------------------------------------------------------------------------

    async def _lock_new(self, pq: ProcessQueue) -> bool:
        try:
            addr = await self._master(pq.mq)
            held = await lock_batch(
                self._instance.remote, addr, self.group, self.client_id, [pq.mq], self.request_timeout
            )
        except MQError as exc:
            log.warning("locking %s failed: %s", pq.mq, exc)
            return False
        if pq.mq in held:
            pq.locked = True
            pq.last_lock = time.monotonic()
            pq.space.set()
            return True
        log.info("%s is still locked by another member of group %s", pq.mq, self.group)
        return False

    async def _lock_loop(self) -> None:
        while await self._sleep(self.lock_interval):
            await self._lock_all()

    async def _lock_all(self) -> None:
        """Renew the locks of every owned queue, broker by broker (``RebalanceImpl.lockAll``)."""
        by_broker: dict[str, list[ProcessQueue]] = {}
        for pq in self._pqs.values():
            by_broker.setdefault(pq.mq.broker_name, []).append(pq)
        for broker, pqs in by_broker.items():
            try:
                addr = await self._master(pqs[0].mq)
                held = await lock_batch(
                    self._instance.remote,
                    addr,
                    self.group,
                    self.client_id,
                    [pq.mq for pq in pqs],
                    self.request_timeout,
                )
            except MQError as exc:
                log.warning("renewing the locks of group %s on %s failed: %s", self.group, broker, exc)
                continue
            now = time.monotonic()
            for pq in pqs:
                if pq.mq in held:
                    pq.locked = True
                    pq.last_lock = now
                    pq.space.set()
                else:
                    if pq.locked:
                        log.warning("lost the lock of %s (group %s)", pq.mq, self.group)
                    pq.locked = False

    async def _unlock(self, mqs: list[MessageQueue]) -> None:
        by_broker: dict[str, list[MessageQueue]] = {}
        for mq in mqs:
            by_broker.setdefault(mq.broker_name, []).append(mq)
        for batch in by_broker.values():
            try:
                addr = await self._master(batch[0])
                await unlock_batch(
                    self._instance.remote, addr, self.group, self.client_id, batch, self.request_timeout
                )
            except MQError as exc:
                log.warning("unlocking %s failed (the locks expire): %s", batch, exc)

    # ---- pulling -------------------------------------------------------------------------------

    async def _master(self, mq: MessageQueue) -> str:
        addr = await self._instance.routes.master_addr_or_refresh(mq.broker_name, mq.topic)
        if addr is None:
            raise ClientError(f"The broker[{mq.broker_name}] not exist")
        return addr

    def _flow_blocked(self, pq: ProcessQueue) -> bool:
        if pq.count > self.pull_threshold_for_queue or pq.size > self.pull_threshold_size_for_queue:
            return True
        return self._orderly and self.message_model == CLUSTERING and not pq.locked

    async def _pull_loop(self, pq: ProcessQueue) -> None:
        while self._state == "RUNNING" and not pq.dropped:
            if self._flow_blocked(pq):
                pq.space.clear()
                if self._flow_blocked(pq):
                    await pq.space.wait()
                continue
            try:
                if pq.next_offset is None:
                    pq.next_offset = await compute_pull_from_where(
                        self._offsets.read,
                        self._instance.remote,
                        await self._master(pq.mq),
                        pq.mq,
                        self.consume_from,
                        self.consume_timestamp,
                        self.request_timeout,
                    )
                result = await self._pull_once(pq, pq.next_offset)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, MQError):
                    log.warning("pulling %s failed: %s", pq.mq, exc)
                else:
                    log.exception("pulling %s failed", pq.mq)
                if not await self._sleep(self.pull_delay_on_error):
                    return
                continue
            if pq.dropped:
                return
            self._on_pulled(pq, result)

    async def _pull_once(self, pq: ProcessQueue, offset: int) -> _api.PullResult:
        routes = self._instance.routes
        mq = pq.mq
        addr = routes.find_broker_addr(mq.broker_name, pq.broker_id)
        if addr is None:
            await routes.refresh([mq.topic])
            addr = routes.find_broker_addr(mq.broker_name, pq.broker_id)
            if addr is None:
                raise ClientError(f"The broker[{mq.broker_name}] not exist")
        sub = self._subs.get(mq.topic) or SubscriptionData(mq.topic)
        flags = _api.PULL_FLAG_SUSPEND | _api.PULL_FLAG_SUBSCRIPTION
        commit = 0
        if self.message_model == CLUSTERING:
            commit = self._offsets.offsets.get(mq, 0)
            if commit > 0:
                flags |= _api.PULL_FLAG_COMMIT_OFFSET
        return await _api.pull_message(
            self._instance.remote,
            addr,
            group=self.group,
            mq=mq,
            offset=offset,
            max_nums=self.pull_batch_size,
            sys_flag=flags,
            subscription=sub.sub_string,
            sub_version=sub.sub_version,
            suspend_timeout_ms=int(self.broker_suspend_max * 1000),
            timeout=self.pull_timeout,
            commit_offset=commit,
            lite_code=False,
        )

    def _on_pulled(self, pq: ProcessQueue, result: _api.PullResult) -> None:
        """``PullCallback.onSuccess``: cache, dispatch, move on."""
        pq.broker_id = result.suggest_which_broker_id
        nxt = result.next_begin_offset
        status = result.status
        pq.backlog = max(0, result.max_offset - nxt)
        if status is _api.PullStatus.FOUND:
            sub = self._subs.get(pq.mq.topic)
            msgs = []
            min_s, max_s = str(result.min_offset), str(result.max_offset)
            for m in result.messages:
                if sub is not None and not sub.matches(m.tags):
                    continue
                m.broker_name = pq.mq.broker_name
                m.properties[PROPERTY_MIN_OFFSET] = min_s
                m.properties[PROPERTY_MAX_OFFSET] = max_s
                _inflate(m)
                msgs.append(m)
            pq.next_offset = nxt
            if msgs:
                pq.put(msgs)
                self._dispatch(pq, msgs)
            return
        if status is _api.PullStatus.OFFSET_ILLEGAL:
            log.warning("offset %s of %s is illegal; moving to %d", pq.next_offset, pq.mq, nxt)
            self._offsets.update(pq.mq, nxt, increase_only=False)
        elif pq.count == 0:  # nothing cached: the committed offset may move up (correctTagsOffset)
            self._offsets.update(pq.mq, nxt, increase_only=True)
        pq.next_offset = nxt
        self._notify_priority()

    def _dispatch(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        if self._orderly:
            if not pq.consume_active:
                pq.consume_active = True
                self._spawn(self._consume_orderly(pq))
            return
        n = self.consume_message_batch_max_size
        for i in range(0, len(msgs), n):
            self._spawn(self._consume_concurrently(pq, msgs[i : i + n]))

    # ---- consuming -----------------------------------------------------------------------------

    async def _call_listener(self, msgs: list[MessageExt], should_run: Callable[[], bool]) -> object:
        """The listener's verdict on ``msgs``; _SKIPPED if ``should_run()`` says no at its turn."""
        listener = self._listener
        assert listener is not None and self._workers is not None and self._sem is not None
        now = str(int(time.time() * 1000))
        retry_topic = RETRY_GROUP_TOPIC_PREFIX + self.group
        for m in msgs:
            if m.topic == retry_topic:
                original = m.properties.get(PROPERTY_RETRY_TOPIC)
                if original:
                    m.topic = original
            m.properties[PROPERTY_CONSUME_START_TIME] = now
        try:
            if inspect.iscoroutinefunction(listener):
                async with self._sem:
                    if not should_run():
                        return _SKIPPED
                    return await listener(msgs)
            return await self._workers.call(should_run, listener, msgs)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("listener of group %s failed; the messages will be consumed again", self.group)
            return None

    def _higher_ranked_pending(self, rank: int) -> bool:
        return any(
            pq.rank < rank and not pq.dropped and (pq.count or pq.backlog) for pq in self._pqs.values()
        )

    def _notify_priority(self) -> None:
        fut = self._priority_changed
        if self.priority is None or fut is None:
            return
        if not fut.done():
            fut.set_result(None)
        self._priority_changed = asyncio.get_running_loop().create_future()

    async def _await_turn(self, pq: ProcessQueue) -> None:
        while self._state == "RUNNING" and not pq.dropped and self._higher_ranked_pending(pq.rank):
            assert self._priority_changed is not None
            await self._priority_changed

    async def _consume_concurrently(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        """``ConsumeMessageConcurrentlyService.ConsumeRequest``."""
        if self.priority is not None:
            await self._await_turn(pq)
        if pq.dropped or self._state != "RUNNING":
            return
        result = await self._call_listener(msgs, lambda: not pq.dropped and self._state == "RUNNING")
        if result is _SKIPPED:
            return
        done = msgs
        if not _succeeded(result, orderly=False):
            if self.message_model == BROADCASTING:
                log.warning("broadcast consumer dropped %d failed message(s) (no retries)", len(msgs))
            else:
                failed = [m for m in msgs if not await self._send_back(m)]
                if failed:
                    ids = {id(m) for m in failed}
                    done = [m for m in msgs if id(m) not in ids]
                    for m in failed:
                        m.reconsume_times += 1
                    self._spawn(self._consume_later(pq, failed))
        offset = pq.remove(done)
        if offset >= 0 and not pq.dropped:
            self._offsets.update(pq.mq, offset, increase_only=True)
        self._notify_priority()

    async def _consume_later(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        if await self._sleep(self.send_back_retry_delay):
            await self._consume_concurrently(pq, msgs)

    async def _consume_orderly(self, pq: ProcessQueue) -> None:
        """``ConsumeMessageOrderlyService.ConsumeRequest``: one batch at a time, in queue order."""
        locks = self.message_model == CLUSTERING
        try:
            while self._state == "RUNNING" and not pq.dropped:
                if locks and (not pq.locked or pq.lock_expired(self.lock_max_live)):
                    if not await self._lock_new(pq) and not await self._sleep(self.pull_delay_on_error):
                        return
                    continue
                suspend = False
                async with pq.consume_lock:
                    if pq.dropped:
                        return
                    msgs = pq.take(self.consume_message_batch_max_size)
                    if not msgs:
                        pq.consume_active = False  # no await since take(): a new put restarts us
                        return
                    result = await self._call_listener(msgs, lambda: True)
                    if _succeeded(result, orderly=True) or not await self._reconsume_check(msgs):
                        offset = pq.commit()
                    else:
                        pq.consume_again()
                        offset = -1
                        suspend = True
                    if offset >= 0:  # even if dropped meanwhile: the release commits after us
                        self._offsets.update(pq.mq, offset, increase_only=False)
                if suspend and not await self._sleep(self.suspend_current_queue_time):
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
                if not await self._send_to_retry_topic(m, m.reconsume_times, limit):
                    suspend = True
                    m.reconsume_times += 1
            else:
                suspend = True
                m.reconsume_times += 1
        return suspend

    # ---- handing messages back -----------------------------------------------------------------

    def _max_reconsume(self) -> int:
        return self.max_reconsume_times if self.max_reconsume_times >= 0 else DEFAULT_MAX_RECONSUME_TIMES

    async def _send_back(self, msg: MessageExt) -> bool:
        """CONSUMER_SEND_MSG_BACK; on failure send to the retry topic ourselves. True if handed back."""
        header = {
            "offset": str(msg.commit_log_offset),
            "group": self.group,
            "delayLevel": "0",
            "originMsgId": msg.msg_id,
            "originTopic": msg.topic,
            "unitMode": "false",
            "maxReconsumeTimes": str(self._max_reconsume()),
        }
        try:
            addr = await self._master(MessageQueue(msg.topic, msg.broker_name or "", msg.queue_id))
            resp = await self._instance.remote.invoke(
                addr, request(RequestCode.CONSUMER_SEND_MSG_BACK, header), SEND_BACK_TIMEOUT
            )
            check_response(resp, addr=addr)
            return True
        except MQError as exc:
            log.warning("send-back of %s failed (%s); sending it to the retry topic", msg.msg_id, exc)
        return await self._send_to_retry_topic(msg, msg.reconsume_times + 1, self._max_reconsume())

    async def _send_to_retry_topic(self, msg: MessageExt, reconsume_times: int, max_times: int) -> bool:
        """Send a copy to ``%RETRY%<group>`` (the Java consumer's fallback and orderly give-up)."""
        props = {k: v for k, v in msg.properties.items() if k not in _LOCAL_PROPERTIES}
        props[PROPERTY_RETRY_TOPIC] = msg.topic
        props.setdefault(PROPERTY_ORIGIN_MESSAGE_ID, msg.msg_id)
        props[PROPERTY_DELAY_TIME_LEVEL] = str(3 + msg.reconsume_times)
        props.pop(PROPERTY_RECONSUME_TIME, None)
        props.pop(PROPERTY_MAX_RECONSUME_TIMES, None)
        topic = RETRY_GROUP_TOPIC_PREFIX + self.group
        routes = self._instance.routes
        try:
            info = await routes.publish_info(topic)
            mq = info.select()
            addr = routes.master_addr(mq.broker_name)
            if addr is None:
                raise ClientError(f"The broker[{mq.broker_name}] not exist")
            header = _api.send_header_v2(
                group=self.group,
                topic=topic,
                default_topic="TBW102",
                default_topic_queue_nums=1,
                queue_id=mq.queue_id,
                sys_flag=0,
                born_timestamp=int(time.time() * 1000),
                flag=msg.flag,
                properties=properties_to_string(props),
                broker_name=mq.broker_name,
                reconsume_times=reconsume_times,
                max_reconsume_times=max_times,
            )
            await _api.send_message(
                self._instance.remote,
                addr,
                mq,
                header,
                msg.body,
                props.get(PROPERTY_UNIQ_KEY, ""),
                SEND_BACK_TIMEOUT,
            )
            return True
        except MQError as exc:
            log.warning("sending %s to %s failed: %s", msg.msg_id, topic, exc)
            return False

    # ---- offsets -------------------------------------------------------------------------------

    async def _persist_loop(self) -> None:
        while await self._sleep(self.persist_consumer_offset_interval):
            try:
                await self._offsets.persist(list(self._pqs), oneway=True)
            except Exception:
                log.exception("offset commit of group %s failed", self.group)


class PushConsumer(BlockingFacade):
    """Blocking push consumer: :class:`AsyncPushConsumer` on its own event-loop thread.

    Plain listener functions run in the consumer's thread pool; ``async def`` listeners run on
    the consumer's loop. Same arguments as :class:`AsyncPushConsumer`.
    """

    def __init__(
        self, namesrv_addr: str | Iterable[str] = "127.0.0.1:9876", group: str = "DEFAULT_CONSUMER", **kw: Any
    ) -> None:
        self._async = AsyncPushConsumer(namesrv_addr, group, **kw)
        self._loop = LoopThread(f"ferrymq-push-{group}")

    @property
    def group(self) -> str:
        return self._async.group

    @property
    def client_id(self) -> str:
        return self._async.client_id

    @property
    def async_consumer(self) -> AsyncPushConsumer:
        return self._async

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if not self._loop.running:
            return fn(*args)

        async def call() -> Any:
            return fn(*args)

        return self._loop.run(call())

    def subscribe(self, topic: str, expression: str = "*") -> None:
        self._call(self._async.subscribe, topic, expression)

    def unsubscribe(self, topic: str) -> None:
        self._call(self._async.unsubscribe, topic)

    def register_listener(self, listener: Listener) -> None:
        self._async.register_listener(listener)

    def register_orderly_listener(self, listener: Listener) -> None:
        self._async.register_orderly_listener(listener)

    def assignment(self) -> set[MessageQueue]:
        result: set[MessageQueue] = self._call(self._async.assignment)
        return result

    def cached(self) -> dict[MessageQueue, int]:
        result: dict[MessageQueue, int] = self._call(self._async.cached)
        return result
