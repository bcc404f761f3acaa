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

Not here: class filters, consume timeouts (Java's cleanExpireMsg), message traces, namespaces,
POP consumption.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ferrymq.client import _api, admin_requests
from ferrymq.client._instance import ConsumerClient
from ferrymq.client._loop import BlockingFacade
from ferrymq.client._pull import pull_addr, pulled_messages
from ferrymq.client.allocate import AllocateMessageQueueAveragely, AllocateStrategy
from ferrymq.client.consume_service import (
    ConcurrentConsumeService,
    ConsumeOrderlyStatus,
    ConsumeRuntime,
    ConsumeService,
    ConsumeStatus,
    ConsumeWorkers,
    Listener,
    OrderlyConsumeService,
)
from ferrymq.client.errors import ClientError, MQError, ValidationError
from ferrymq.client.message import MessageQueue
from ferrymq.client.offset_store import LocalFileOffsetStore, OffsetStore, RemoteBrokerOffsetStore
from ferrymq.client.priority import PriorityGate
from ferrymq.client.process_queue import ProcessQueue
from ferrymq.client.queue_lock import QueueLocks
from ferrymq.client.rebalance import (
    BROADCASTING,
    CLUSTERING,
    CONSUME_FROM_CHOICES,
    PushRebalance,
    compute_pull_from_where,
    consume_from_key,
)
from ferrymq.client.send_back import SendBack
from ferrymq.client.validators import RETRY_GROUP_TOPIC_PREFIX, check_group, check_topic, subscription_of
from ferrymq.core.remoting.heartbeat import HeartbeatData
from ferrymq.core.remoting.subscription import SubscriptionData

__all__ = ["AsyncPushConsumer", "ConsumeOrderlyStatus", "ConsumeStatus", "Listener", "PushConsumer"]

log = logging.getLogger("ferrymq.client")


class AsyncPushConsumer(ConsumerClient):
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
        access_key: str | None = None,
        secret_key: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.group = check_group(group)
        model = message_model.upper()
        if model not in (CLUSTERING, BROADCASTING):
            raise ValidationError(f"message_model must be CLUSTERING or BROADCASTING, not {message_model!r}")
        self.message_model = model
        self.allocate_strategy: AllocateStrategy = allocate_strategy or AllocateMessageQueueAveragely()
        self.consume_from = consume_from_key(consume_from)
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
        self.ssl_context = ssl_context
        self._instance = self._connect(
            namesrv_addr, instance_name, request_timeout, poll_namesrv_interval, heartbeat_interval
        )
        self._instance.remote.set_credentials(access_key, secret_key)
        self._offsets: OffsetStore
        if model == CLUSTERING:
            self._offsets = RemoteBrokerOffsetStore(self._instance, self.group, request_timeout)
        else:
            directory = Path(offset_store_dir or Path.home() / ".rocketmq_offsets")
            self._offsets = LocalFileOffsetStore(directory, self.client_id, self.group)
        self._subs: dict[str, SubscriptionData] = {}
        self._listener: Listener | None = None
        self._orderly = False
        self._pqs: dict[MessageQueue, ProcessQueue] = {}
        self._runtime = ConsumeRuntime(self.group)
        self._gate = PriorityGate(self._pqs, enabled=priority is not None)
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: ConsumeWorkers | None = None
        self._service: ConsumeService | None = None
        self._namesrv_addr = namesrv_addr
        self._start_ms = int(time.time() * 1000)
        admin_requests.register(self._instance.remote, self.group, self._snapshot, self._reset_offsets)
        self._locks: QueueLocks | None = None
        self._rebalance: PushRebalance | None = None

    @property
    def _state(self) -> str:
        return self._runtime.state

    @_state.setter
    def _state(self, value: str) -> None:
        self._runtime.state = value

    # ---- configuration -------------------------------------------------------------------------

    def subscribe(self, topic: str, expression: str = "*", *, sql: str | None = None) -> None:
        """Consume ``topic``'s messages whose tag matches ``expression`` (``"*"`` or ``"A || B"``),
        or, with ``sql``, those whose properties satisfy that SQL92 expression (Java's
        ``MessageSelector.bySql``); ``start()`` has a broker check it (CHECK_CLIENT_CONFIG)."""
        check_topic(topic)
        self._subs[topic] = subscription_of(topic, expression, sql)
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
        if not self._must_start():
            return
        if self._listener is None:
            raise ClientError("register a listener before start()")
        if not any(not t.startswith(RETRY_GROUP_TOPIC_PREFIX) for t in self._subs):
            raise ClientError("subscribe to a topic before start()")
        loop = asyncio.get_running_loop()
        self._workers = ConsumeWorkers(self.consume_thread_max, f"ferrymq-consume-{self.group}", loop)
        if self._orderly and self.message_model == CLUSTERING:
            self._locks = QueueLocks(self._instance, self.group, self.request_timeout)
        self._service = self._consume_service(self._listener, self._workers)
        self._runtime.stop = asyncio.Event()
        self._rebalance = PushRebalance(
            self._instance,
            self._runtime,
            message_model=self.message_model,
            strategy=self.allocate_strategy,
            timeout=self.request_timeout,
            interval=self.rebalance_interval,
            subs=self._subs,
            pqs=self._pqs,
            offsets=self._offsets,
            locks=self._locks,
            gate=self._gate,
            ranking=self.priority,
            start_pull=self._start_pull,
        )
        self._gate.start()
        await self._instance.start()
        self._state = "RUNNING"
        try:
            await self._instance.routes.refresh(self._topics_in_use())
            await self._check_sql_subscriptions()
            await self._instance.send_heartbeat_to_all()
            await self._rebalance.rebalance()
        except BaseException:
            await self.shutdown()
            raise
        self._tasks = [
            asyncio.ensure_future(self._rebalance.loop()),
            asyncio.ensure_future(self._persist_loop()),
        ]
        if self._locks is not None:
            self._tasks.append(asyncio.ensure_future(self._lock_loop(self._locks)))

    def _consume_service(self, listener: Listener, workers: ConsumeWorkers) -> ConsumeService:
        returner = SendBack(self._instance, self.group, self.max_reconsume_times)
        common = (self._runtime, listener, workers, self.consume_thread_max, self._offsets, returner)
        if not self._orderly:
            return ConcurrentConsumeService(
                *common,
                batch_size=self.consume_message_batch_max_size,
                gate=self._gate,
                broadcasting=self.message_model == BROADCASTING,
                send_back_retry_delay=self.send_back_retry_delay,
            )
        return OrderlyConsumeService(
            *common,
            batch_size=self.consume_message_batch_max_size,
            locks=self._locks,
            max_reconsume_times=self.max_reconsume_times,
            suspend_time=self.suspend_current_queue_time,
            lock_max_live=self.lock_max_live,
            retry_delay=self.pull_delay_on_error,
        )

    async def shutdown(self) -> None:
        """Stop pulling, let running listeners finish (up to ``await_termination`` s), commit
        offsets, release orderly locks, unregister, close."""
        if self._state != "RUNNING":
            self._state = "SHUTDOWN"
            return
        self._state = "STOPPING"
        rt = self._runtime
        assert rt.stop is not None and self._rebalance is not None
        rt.stop.set()
        tasks = list(self._tasks) + [pq.pull_task for pq in self._pqs.values() if pq.pull_task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if rt.inflight:
            await asyncio.wait(list(rt.inflight), timeout=self.await_termination)
        releasing = self._rebalance.releasing
        if releasing:
            await asyncio.wait(list(releasing.values()), timeout=self.await_termination)
        try:
            await self._offsets.persist(list(self._pqs), oneway=False)
        except MQError as exc:
            log.warning("final offset commit of group %s failed: %s", self.group, exc)
        if self._locks is not None:
            await self._locks.unlock(list(self._pqs))
        for pq in self._pqs.values():
            pq.dropped = True
        self._pqs.clear()
        self._state = "SHUTDOWN"
        for task in list(rt.inflight):
            task.cancel()
        await self._instance.unregister(consumer_group=self.group)
        await self._instance.shutdown()
        if self._workers is not None:
            self._workers.shutdown()

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

    def _snapshot(self) -> admin_requests.ConsumerSnapshot:
        return admin_requests.ConsumerSnapshot(
            self.group,
            self._namesrv_addr,
            self._orderly,
            "CONSUME_PASSIVELY",
            self.consume_thread_max,
            self._start_ms,
            list(self._subs.values()),
            {mq: admin_requests.process_queue_info(pq) for mq, pq in self._pqs.items()},
            dict(self._offsets.offsets),
        )

    async def _reset_offsets(self, offsets: dict[MessageQueue, int]) -> None:
        if self._rebalance is not None and self.running:
            await self._rebalance.reset(offsets)

    def _on_route_change(self, topic: str, route: object) -> None:
        if self.running and topic in self._subs:
            self._wake_rebalance()

    def _wake_rebalance(self) -> None:
        if self._rebalance is not None:
            self._rebalance.wake()

    async def _lock_loop(self, locks: QueueLocks) -> None:
        while await self._runtime.sleep(self.lock_interval):
            await locks.lock_all(list(self._pqs.values()))

    # ---- pulling -------------------------------------------------------------------------------

    def _start_pull(self, pq: ProcessQueue) -> None:
        pq.pull_task = asyncio.ensure_future(self._pull_loop(pq))

    def _flow_blocked(self, pq: ProcessQueue) -> bool:
        if pq.count > self.pull_threshold_for_queue or pq.size > self.pull_threshold_size_for_queue:
            return True
        return self._locks is not None and not pq.locked

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
                        await self._instance.member_addr(pq.mq),
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
                if not await self._runtime.sleep(self.pull_delay_on_error):
                    return
                continue
            if pq.dropped:
                return
            self._on_pulled(pq, result)

    async def _check_sql_subscriptions(self) -> None:
        """``checkClientInBroker``: one broker of each SQL92 topic must accept the expression,
        or ``start()`` fails with its answer."""
        for sub in self._subs.values():
            if sub.is_tag_type:
                continue
            addr = self._instance.routes.any_broker_addr_of(sub.topic)
            if addr is None:
                raise ClientError(f"no broker of topic {sub.topic} to check its SQL92 subscription")
            await _api.check_client_config(
                self._instance.remote, addr, self._instance.client_id, self.group, sub, self.request_timeout
            )

    async def _pull_once(self, pq: ProcessQueue, offset: int) -> _api.PullResult:
        mq = pq.mq
        addr, slave = await pull_addr(self._instance.routes, mq, pq.broker_id)
        sub = self._subs.get(mq.topic) or SubscriptionData(mq.topic)
        flags = _api.PULL_FLAG_SUSPEND | _api.PULL_FLAG_SUBSCRIPTION
        commit = 0
        if self.message_model == CLUSTERING and not slave:  # never commit through a slave's pull
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
            expression_type=sub.expression_type,
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
            msgs = pulled_messages(result, pq.mq, self._subs.get(pq.mq.topic))
            pq.next_offset = nxt
            if msgs:
                pq.put(msgs)
                assert self._service is not None
                self._service.dispatch(pq, msgs)
            return
        if status is _api.PullStatus.OFFSET_ILLEGAL:
            log.warning("offset %s of %s is illegal; moving to %d", pq.next_offset, pq.mq, nxt)
            self._offsets.update(pq.mq, nxt, increase_only=False)
        elif pq.count == 0:  # nothing cached: the committed offset may move up (correctTagsOffset)
            self._offsets.update(pq.mq, nxt, increase_only=True)
        pq.next_offset = nxt
        self._gate.notify()

    # ---- offsets -------------------------------------------------------------------------------

    async def _persist_loop(self) -> None:
        while await self._runtime.sleep(self.persist_consumer_offset_interval):
            try:
                await self._offsets.persist(list(self._pqs), oneway=True)
            except Exception:
                log.exception("offset commit of group %s failed", self.group)


class PushConsumer(BlockingFacade[AsyncPushConsumer]):
    """Blocking push consumer: :class:`AsyncPushConsumer` on its own event-loop thread.

    Plain listener functions run in the consumer's thread pool; ``async def`` listeners run on
    the consumer's loop. Same arguments as :class:`AsyncPushConsumer`.
    """

    def __init__(
        self, namesrv_addr: str | Iterable[str] = "127.0.0.1:9876", group: str = "DEFAULT_CONSUMER", **kw: Any
    ) -> None:
        super().__init__(AsyncPushConsumer(namesrv_addr, group, **kw), f"ferrymq-push-{group}")

    @property
    def async_consumer(self) -> AsyncPushConsumer:
        return self._async

    def subscribe(self, topic: str, expression: str = "*", *, sql: str | None = None) -> None:
        self._call(lambda: self._async.subscribe(topic, expression, sql=sql))

    def unsubscribe(self, topic: str) -> None:
        self._call(self._async.unsubscribe, topic)

    def register_listener(self, listener: Listener) -> None:
        self._async.register_listener(listener)

    def register_orderly_listener(self, listener: Listener) -> None:
        self._async.register_orderly_listener(listener)

    def assignment(self) -> set[MessageQueue]:
        return self._call(self._async.assignment)

    def cached(self) -> dict[MessageQueue, int]:
        return self._call(self._async.cached)
