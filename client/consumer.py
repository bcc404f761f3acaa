"""Lite-pull consumers: :class:`AsyncLitePullConsumer` (asyncio) and :class:`LitePullConsumer`.

Modelled on Java's ``DefaultLitePullConsumer`` (clustering mode):

* **Queues.** ``subscribe(topic, "TagA || TagB")`` joins the group's rebalancing: every
  ``rebalance_interval`` seconds, when the broker says the group changed
  (NOTIFY_CONSUMER_IDS_CHANGED) and when a route changes, the consumer lists the group's members
  (GET_CONSUMER_LIST_BY_GROUP) and takes its share of the topic's queues (``allocate``; Java's
  default, averagely). ``assign([...])`` instead pins the queues and does no rebalancing.
* **Pulling.** One background task per owned queue long-polls the broker (LITE_PULL_MESSAGE with
  the suspend, subscription and lite flags; PULL_MESSAGE for brokers that do not know 361) and
  buffers what arrives; ``poll`` hands out buffered messages. Buffering stops at
  ``pull_threshold_for_queue`` messages per queue or ``pull_threshold_for_all`` in total. The
  broker filters tags by hash; the consumer re-checks the exact tag. zlib-compressed bodies are
  inflated.
* **Offsets.** A queue starts at the group's committed offset (QUERY_CONSUMER_OFFSET); without one
  it starts per ``consume_from``: ``LAST_OFFSET`` (GET_MAX_OFFSET), ``FIRST_OFFSET`` (0) or
  ``TIMESTAMP`` (SEARCH_OFFSET_BY_TIMESTAMP at ``consume_timestamp``). ``poll`` advances the
  *consumed* offset of each queue past what it returned; ``commit()`` writes the consumed offsets
  to the brokers (UPDATE_CONSUMER_OFFSET, acknowledged). With ``auto_commit`` they are also
  written oneway every ``auto_commit_interval`` seconds from ``poll``, when a queue is taken away
  by a rebalance, and at ``shutdown``; without it only ``commit()`` writes them.
  ``seek(queue, offset)`` moves a queue (dropping what is buffered for it).

Delivery is at-least-once: after a crash or a rebalance, messages polled but not committed come
again. Not here: broadcasting mode, class filters, allocation strategies other than
averagely (pluggable), retry / dead-letter topics (lite pull has none), namespaces.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ferrymq.client import _api, admin_requests
from ferrymq.client._instance import ConsumerClient
from ferrymq.client._loop import BlockingFacade
from ferrymq.client._pull import pull_addr, pulled_messages
from ferrymq.client.allocate import AllocateMessageQueueAveragely, AllocateStrategy
from ferrymq.client.errors import BrokerError, ClientError, MQError, ValidationError
from ferrymq.client.message import MessageQueue
from ferrymq.client.offset_store import RemoteBrokerOffsetStore
from ferrymq.client.rebalance import CONSUME_FROM_CHOICES, compute_pull_from_where, consume_from_key
from ferrymq.client.validators import check_group, check_topic, subscription_of
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.heartbeat import HeartbeatData
from ferrymq.core.remoting.message import MessageExt
from ferrymq.core.remoting.subscription import SUB_ALL, SubscriptionData

log = logging.getLogger("ferrymq.client")


def queue_of(msg: MessageExt) -> MessageQueue:
    """The queue a consumed message came from (for ``seek`` and ``commit``)."""
    if msg.broker_name is None:
        raise ClientError("the message does not say which broker it came from")
    return MessageQueue(msg.topic, msg.broker_name, msg.queue_id)


class _QueueState:
    __slots__ = (
        "broker_id",
        "buffered",
        "committed",
        "consumed",
        "dropped",
        "enqueued",
        "generation",
        "mq",
        "paused",
        "pull_offset",
        "task",
    )

    def __init__(self, mq: MessageQueue) -> None:
        self.mq = mq
        self.generation = 0
        self.pull_offset: int | None = None  # next offset to pull
        self.consumed: int | None = None  # next offset poll() will hand out: what commit writes
        self.enqueued: int | None = None  # next offset of the last buffered batch
        self.committed: int | None = None  # last offset written to the broker
        self.buffered = 0
        self.paused = False
        self.dropped = False
        self.broker_id = 0
        self.task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class _Batch:
    state: _QueueState
    generation: int
    messages: list[MessageExt]
    next_offset: int


class AsyncLitePullConsumer(ConsumerClient):
    """A lite-pull consumer for asyncio code; see the module docstring.

    ``subscribe``/``assign``/``unsubscribe``/``pause``/``resume`` only record (and, when running,
    schedule) and are plain methods; everything that talks to a broker is a coroutine.

    Arguments (Java's ``DefaultLitePullConsumer`` name in brackets):

    * ``namesrv_addr`` -- ``"host:port"``, several separated by ``;``, or a list [namesrvAddr]
    * ``group`` -- consumer group [consumerGroup]
    * ``consume_from`` -- where a queue without a committed offset starts: ``"LAST_OFFSET"``,
      ``"FIRST_OFFSET"`` or ``"TIMESTAMP"`` [consumeFromWhere]; ``consume_timestamp`` -- epoch
      ms for TIMESTAMP, default half an hour ago [consumeTimestamp]
    * ``pull_batch_size`` -- messages per pull and at most per ``poll`` [pullBatchSize]
    * ``auto_commit`` / ``auto_commit_interval`` -- [autoCommit, autoCommitIntervalMillis]
    * ``pull_threshold_for_queue`` / ``pull_threshold_for_all`` -- buffered messages at which
      pulling pauses [pullThresholdForQueue, pullThresholdForAll]
    * ``broker_suspend_max`` -- seconds a broker may hold a pull [brokerSuspendMaxTimeMillis];
      ``pull_timeout`` -- seconds to wait for a held pull [consumerTimeoutMillisWhenSuspend]
    * ``request_timeout`` -- seconds for other requests; ``pull_delay_on_error`` -- seconds before
      retrying a failed pull [pullTimeDelayMillsWhenException]
    * ``rebalance_interval`` / ``poll_namesrv_interval`` / ``heartbeat_interval`` -- seconds
    * ``allocate_strategy`` -- queue allocation in the group, default averagely
      [allocateMessageQueueStrategy]
    * ``instance_name`` -- the part after ``@`` of the client id [instanceName]
    * ``access_key``, ``secret_key`` -- a RocketMQ ACL account: every request is signed, as
      Java's ``AclClientRPCHook`` signs it
    * ``ssl_context`` -- talk TLS to name servers and brokers (ferrymq.core.remoting.tls.client_context)
      [useTLS]
    """

    def __init__(
        self,
        namesrv_addr: str | Iterable[str] = "127.0.0.1:9876",
        group: str = "DEFAULT_CONSUMER",
        *,
        consume_from: str = "LAST_OFFSET",
        consume_timestamp: int | None = None,
        pull_batch_size: int = 32,
        auto_commit: bool = True,
        auto_commit_interval: float = 5.0,
        pull_threshold_for_queue: int = 1000,
        pull_threshold_for_all: int = 10000,
        broker_suspend_max: float = 20.0,
        pull_timeout: float = 30.0,
        request_timeout: float = 3.0,
        pull_delay_on_error: float = 1.0,
        rebalance_interval: float = 20.0,
        poll_namesrv_interval: float = 30.0,
        heartbeat_interval: float = 30.0,
        allocate_strategy: AllocateStrategy | None = None,
        instance_name: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.group = check_group(group)
        self.consume_from = consume_from_key(consume_from)
        #: epoch ms for consume_from=TIMESTAMP; Java's default is half an hour ago
        self.consume_timestamp = consume_timestamp
        if not 1 <= pull_batch_size <= 1024:
            raise ValidationError("pull_batch_size must be in 1..1024")
        if pull_timeout <= broker_suspend_max:
            raise ValidationError("pull_timeout must be greater than broker_suspend_max")
        self.pull_batch_size = pull_batch_size
        self.auto_commit = auto_commit
        self.auto_commit_interval = auto_commit_interval
        self.pull_threshold_for_queue = pull_threshold_for_queue
        self.pull_threshold_for_all = pull_threshold_for_all
        self.broker_suspend_max = broker_suspend_max
        self.pull_timeout = pull_timeout
        self.request_timeout = request_timeout
        self.pull_delay_on_error = pull_delay_on_error
        self.rebalance_interval = rebalance_interval
        self.allocate_strategy: AllocateStrategy = allocate_strategy or AllocateMessageQueueAveragely()
        self.ssl_context = ssl_context
        self._instance = self._connect(
            namesrv_addr, instance_name, request_timeout, poll_namesrv_interval, heartbeat_interval
        )
        self._instance.remote.set_credentials(access_key, secret_key)
        self._offsets = RemoteBrokerOffsetStore(self._instance, self.group, request_timeout)
        self._mode: str | None = None  # "SUBSCRIBE" | "ASSIGN"
        self._subs: dict[str, SubscriptionData] = {}
        self._assigned: list[MessageQueue] = []
        self._states: dict[MessageQueue, _QueueState] = {}
        self._ready: collections.deque[_Batch] = collections.deque()
        self._arrived: asyncio.Event | None = None
        self._space: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._rebalance_wakeup: asyncio.Event | None = None
        self._rebalance_lock: asyncio.Lock | None = None
        self._rebalance_task: asyncio.Task[None] | None = None
        self._next_auto_commit = 0.0
        self._legacy_pull: set[str] = set()
        self._state = "CREATED"
        self._namesrv_addr = namesrv_addr if isinstance(namesrv_addr, str) else ";".join(namesrv_addr)
        self._start_ms = int(time.time() * 1000)
        # mqadmin consumerStatus; a pushed offset reset is ignored, as Java's lite pull ignores it
        admin_requests.register(self._instance.remote, self.group, self._snapshot, None)

    # ---- configuration -------------------------------------------------------------------------

    def subscribe(self, topic: str, expression: str = SUB_ALL, *, sql: str | None = None) -> None:
        """Consume ``topic``'s messages whose tag matches ``expression`` (``"*"`` or ``"A || B"``),
        or, with ``sql``, those whose properties satisfy that SQL92 expression (``"a > 2 AND
        b IS NULL"``; Java's ``MessageSelector.bySql``), which the broker evaluates."""
        check_topic(topic)
        sub = subscription_of(topic, expression, sql)
        if self._mode == "ASSIGN":
            raise ClientError("Subscribe and assign are mutually exclusive.")
        self._mode = "SUBSCRIBE"
        self._subs[topic] = sub
        if self.running:
            self._wake_rebalance()

    def unsubscribe(self, topic: str) -> None:
        """Stop consuming ``topic`` (its queues are given up at once)."""
        self._subs.pop(topic, None)
        if self.running:
            self._apply_assignment({mq for mq in self._states if mq.topic != topic})
            self._wake_rebalance()

    def assign(self, queues: Iterable[MessageQueue]) -> None:
        """Consume exactly these queues (all tags); no rebalancing."""
        queues = list(dict.fromkeys(queues))
        if not queues:
            raise ValidationError("Message queues can not be null or empty.")
        for mq in queues:
            if not isinstance(mq, MessageQueue):
                raise ValidationError(f"expected MessageQueue, got {type(mq).__name__}")
            check_topic(mq.topic)
        if self._mode == "SUBSCRIBE":
            raise ClientError("Subscribe and assign are mutually exclusive.")
        self._mode = "ASSIGN"
        self._assigned = queues
        if self.running:
            self._apply_assignment(set(queues))

    def assignment(self) -> set[MessageQueue]:
        """The queues this consumer currently pulls."""
        return set(self._states)

    def pause(self, queues: Iterable[MessageQueue]) -> None:
        """Stop pulling these queues (already buffered messages are still polled)."""
        for mq in queues:
            st = self._states.get(mq)
            if st is not None:
                st.paused = True

    def resume(self, queues: Iterable[MessageQueue]) -> None:
        for mq in queues:
            st = self._states.get(mq)
            if st is not None:
                st.paused = False
        if self._space is not None:
            self._space.set()

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if not self._must_start():
            return
        if self._mode is None:
            raise ClientError("call subscribe() or assign() before start()")
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._stop = asyncio.Event()
        self._rebalance_wakeup = asyncio.Event()
        self._rebalance_lock = asyncio.Lock()
        await self._instance.start()
        self._state = "RUNNING"
        self._next_auto_commit = time.monotonic() + self.auto_commit_interval
        try:
            await self._instance.routes.refresh(self._topics_in_use())
            await self._instance.send_heartbeat_to_all()
            if self._mode == "ASSIGN":
                self._apply_assignment(set(self._assigned))
            else:
                await self._rebalance()
        except BaseException:
            await self.shutdown()
            raise
        self._rebalance_task = asyncio.ensure_future(self._rebalance_loop())

    async def shutdown(self) -> None:
        """Stop pulling; with auto_commit, commit what was polled; unregister; close."""
        if self._state != "RUNNING":
            self._state = "SHUTDOWN"
            return
        self._state = "STOPPING"
        assert self._stop is not None and self._arrived is not None
        self._stop.set()
        self._arrived.set()  # a poll() waiting right now returns []
        tasks = [st.task for st in self._states.values() if st.task is not None]
        if self._rebalance_task is not None:
            tasks.append(self._rebalance_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.auto_commit:
            try:
                await self._commit_states(list(self._states.values()), oneway=False, only_changed=True)
            except MQError as exc:
                log.warning("final offset commit of group %s failed: %s", self.group, exc)
        self._states.clear()
        self._ready.clear()
        self._state = "SHUTDOWN"
        await self._instance.unregister(consumer_group=self.group)
        await self._instance.shutdown()

    # ---- polling -------------------------------------------------------------------------------

    async def poll(self, timeout: float = 1.0) -> list[MessageExt]:
        """Up to ``pull_batch_size`` messages, waiting up to ``timeout`` s for the first; [] if none."""
        self._check_running()
        if timeout < 0:
            raise ValidationError("Timeout must not be negative")
        if self.auto_commit and time.monotonic() >= self._next_auto_commit:
            self._next_auto_commit = time.monotonic() + self.auto_commit_interval
            await self._commit_states(list(self._states.values()), oneway=True, only_changed=True)
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msgs = self._take()
            if msgs:
                return msgs
            remaining = deadline - loop.time()
            if remaining <= 0 or self._state != "RUNNING":
                return []
            self._arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                return self._take()

    def _take(self) -> list[MessageExt]:
        out: list[MessageExt] = []
        freed = False
        while self._ready:
            batch = self._ready[0]
            st = batch.state
            if st.dropped or batch.generation != st.generation:
                self._ready.popleft()
                continue
            if out and len(out) + len(batch.messages) > self.pull_batch_size:
                break
            self._ready.popleft()
            st.consumed = batch.next_offset
            if batch.messages:
                st.buffered -= len(batch.messages)
                out.extend(batch.messages)
                freed = True
            if len(out) >= self.pull_batch_size:
                break
        if freed and self._space is not None:
            self._space.set()
        return out

    # ---- offsets -------------------------------------------------------------------------------

    async def commit(self, offsets: dict[MessageQueue, int] | None = None) -> None:
        """Write offsets to the brokers and wait for their acknowledgement.

        Without ``offsets``: the consumed offset of every owned queue (the offset after the last
        message ``poll`` returned). With ``offsets``: exactly those (next offset to consume).
        """
        self._check_running()
        if offsets is None:
            await self._commit_states(list(self._states.values()), oneway=False, only_changed=False)
            return
        await asyncio.gather(
            *(self._offsets.commit(mq, int(off), oneway=False) for mq, off in offsets.items())
        )
        for mq, off in offsets.items():
            st = self._states.get(mq)
            if st is not None:
                st.committed = int(off)

    async def _commit_states(
        self, states: Sequence[_QueueState], *, oneway: bool, only_changed: bool
    ) -> None:
        jobs = []
        todo = []
        for st in states:
            off = st.consumed
            if off is None or off < 0:
                continue
            if only_changed and off == st.committed and not self._offsets.moved(st.mq):
                continue
            todo.append((st, off))
            jobs.append(self._offsets.commit(st.mq, off, oneway=oneway))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        errors = []
        for (st, off), res in zip(todo, results, strict=True):
            if isinstance(res, BaseException):
                errors.append(res)
                log.warning("commit of %s at %d failed: %s", st.mq, off, res)
            else:
                st.committed = off
        if errors and not oneway:
            raise errors[0]

    async def committed(self, mq: MessageQueue) -> int | None:
        """The group's committed offset of ``mq`` (this consumer's last commit, else the broker's);
        None when the group has never committed one."""
        self._check_running()
        st = self._states.get(mq)
        if st is not None and st.committed is not None:
            return st.committed
        return await self._offsets.query(mq, set_zero_if_not_found=False)

    async def seek(self, mq: MessageQueue, offset: int) -> None:
        """Continue ``mq`` at ``offset`` (between its min and max offset); drops what is buffered."""
        self._check_running()
        st = self._states.get(mq)
        if st is None:
            hint = ", may be rebalancing" if self._mode == "SUBSCRIBE" else ""
            raise ClientError(f"The message queue is not in assigned list{hint}, message queue: {mq}")
        low, high = await self.min_offset(mq), await self.max_offset(mq)
        if not low <= offset <= high:
            raise ValidationError(
                f"Seek offset illegal, seek offset = {offset}, min offset = {low}, max offset = {high}"
            )
        st = self._states.get(mq)
        if st is None or st.dropped:
            raise ClientError(f"The message queue was taken away while seeking: {mq}")
        st.generation += 1
        st.pull_offset = st.consumed = st.enqueued = offset
        st.buffered = 0
        self._restart_pull(st)
        if self._space is not None:
            self._space.set()

    async def seek_to_begin(self, mq: MessageQueue) -> None:
        await self.seek(mq, await self.min_offset(mq))

    async def seek_to_end(self, mq: MessageQueue) -> None:
        await self.seek(mq, await self.max_offset(mq))

    async def min_offset(self, mq: MessageQueue) -> int:
        self._check_running()
        return await _api.get_min_offset(
            self._instance.remote, await self._instance.master_addr(mq), mq, self.request_timeout
        )

    async def max_offset(self, mq: MessageQueue) -> int:
        self._check_running()
        return await _api.get_max_offset(
            self._instance.remote, await self._instance.master_addr(mq), mq, self.request_timeout
        )

    async def offset_for_timestamp(self, mq: MessageQueue, timestamp_ms: int) -> int:
        """The first offset stored at or after ``timestamp_ms`` (SEARCH_OFFSET_BY_TIMESTAMP)."""
        self._check_running()
        return await _api.search_offset(
            self._instance.remote,
            await self._instance.master_addr(mq),
            mq,
            int(timestamp_ms),
            self.request_timeout,
        )

    async def fetch_message_queues(self, topic: str) -> list[MessageQueue]:
        """All readable queues of ``topic``, e.g. to ``assign`` them."""
        self._check_running()
        check_topic(topic)
        queues = await self._instance.routes.subscribe_queues(topic, refresh=True)
        if not queues:
            raise ClientError(f"Can not find Message Queue for this topic, {topic}")
        return queues

    async def _initial_offset(self, mq: MessageQueue) -> int:
        """``RebalanceLitePullImpl.computePullFromWhere``."""
        addr = await self._instance.member_addr(mq)
        return await compute_pull_from_where(
            self._offsets.read,
            self._instance.remote,
            addr,
            mq,
            self.consume_from,
            self.consume_timestamp,
            self.request_timeout,
        )

    # ---- assignment and rebalancing ----------------------------------------------------------------

    def _topics_in_use(self) -> list[str]:
        topics = list(self._subs) if self._mode == "SUBSCRIBE" else [mq.topic for mq in self._assigned]
        return list(dict.fromkeys(topics))

    def _heartbeat_data(self) -> HeartbeatData:
        subs = list(self._subs.values()) if self._mode == "SUBSCRIBE" else []
        return _api.heartbeat_data(
            self.client_id,
            consumer_group=self.group,
            consume_type="CONSUME_ACTIVELY",
            consume_from_where=CONSUME_FROM_CHOICES[self.consume_from],
            subscriptions=subs,
        )

    def _snapshot(self) -> admin_requests.ConsumerSnapshot:
        """GET_CONSUMER_RUNNING_INFO: as DefaultLitePullConsumerImpl.consumerRunningInfo, a row per
        owned queue (what is buffered, from the consumed offset on) and the committed offsets."""
        queues = {}
        committed = {}
        for mq, st in self._states.items():
            first = st.consumed or 0
            last = (st.enqueued - 1) if st.enqueued is not None and st.buffered else first
            queues[mq] = admin_requests.QueueInfo(first, last, st.buffered, dropped=st.dropped)
            if st.committed is not None:
                committed[mq] = st.committed
        subs = list(self._subs.values()) if self._mode == "SUBSCRIBE" else []
        return admin_requests.ConsumerSnapshot(
            self.group,
            self._namesrv_addr,
            False,
            "CONSUME_ACTIVELY",
            None,
            self._start_ms,
            subs,
            queues,
            committed,
        )

    def _on_route_change(self, topic: str, route: object) -> None:
        if self.running and self._mode == "SUBSCRIBE" and topic in self._subs:
            self._wake_rebalance()

    def _wake_rebalance(self) -> None:
        if self._rebalance_wakeup is not None:
            self._rebalance_wakeup.set()

    async def _rebalance_loop(self) -> None:
        assert self._rebalance_wakeup is not None
        wakeup = self._rebalance_wakeup
        while self._state == "RUNNING":
            try:
                async with asyncio.timeout(self.rebalance_interval):
                    await wakeup.wait()
            except TimeoutError:
                pass
            wakeup.clear()
            try:
                if self._mode == "SUBSCRIBE":
                    await self._instance.send_heartbeat_to_all()
                    await self._rebalance()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rebalance of group %s failed", self.group)

    async def _rebalance(self) -> None:
        """``RebalanceImpl.rebalanceByTopic`` (clustering) for every subscribed topic."""
        assert self._rebalance_lock is not None
        async with self._rebalance_lock:
            if self._mode != "SUBSCRIBE" or self._state != "RUNNING":
                return
            routes = self._instance.routes
            wanted: set[MessageQueue] = set()
            for topic in list(self._subs):
                keep = {mq for mq in self._states if mq.topic == topic}
                mq_all = routes.cached_subscribe_queues(topic)
                if not mq_all:
                    try:
                        mq_all = await routes.subscribe_queues(topic, refresh=True)
                    except MQError as exc:  # name server unreachable: keep what we have, retry later
                        log.warning("no route for topic %s of group %s: %s", topic, self.group, exc)
                        wanted |= keep
                        continue
                if not mq_all:
                    log.info("no route for topic %s of group %s yet", topic, self.group)
                    wanted |= keep
                    continue
                cids = await self._consumer_ids(topic)
                if not cids:  # unknown now (or the broker has not seen our heartbeat yet)
                    wanted |= keep
                    continue
                if self.client_id not in cids:
                    log.warning("client %s is not (yet) a member of group %s", self.client_id, self.group)
                mine = self.allocate_strategy.allocate(
                    self.group, self.client_id, sorted(mq_all), sorted(cids)
                )
                wanted.update(mine)
            if self._state == "RUNNING":
                self._apply_assignment(wanted)

    async def _consumer_ids(self, topic: str) -> list[str] | None:
        """The group's members, from the first broker of ``topic`` that answers; None if none."""
        for addr in self._instance.routes.broker_addrs_of(topic):
            try:
                return await _api.get_consumer_list(
                    self._instance.remote, addr, self.group, self.request_timeout
                )
            except MQError as exc:
                log.warning("cannot list consumers of group %s at %s: %s", self.group, addr, exc)
        return None

    def _apply_assignment(self, wanted: set[MessageQueue]) -> None:
        removed = [st for mq, st in self._states.items() if mq not in wanted]
        for st in removed:
            del self._states[st.mq]
            st.dropped = True
            if st.task is not None:
                st.task.cancel()
        if removed and self.auto_commit:
            task = asyncio.ensure_future(self._commit_states(removed, oneway=True, only_changed=True))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        added = [mq for mq in sorted(wanted) if mq not in self._states]
        for mq in added:
            st = _QueueState(mq)
            self._states[mq] = st
            self._restart_pull(st)
        if removed or added:
            log.info("group %s client %s now owns %d queue(s)", self.group, self.client_id, len(self._states))

    # ---- pull tasks ------------------------------------------------------------------------------

    def _restart_pull(self, st: _QueueState) -> None:
        if st.task is not None:
            st.task.cancel()
        st.task = asyncio.ensure_future(self._pull_loop(st))

    def _blocked(self, st: _QueueState) -> bool:
        if st.paused or st.buffered >= self.pull_threshold_for_queue:
            return True
        return sum(s.buffered for s in self._states.values()) >= self.pull_threshold_for_all

    async def _pull_loop(self, st: _QueueState) -> None:
        assert self._space is not None and self._stop is not None
        me = asyncio.current_task()

        def current() -> bool:
            # A cancellation can be lost (asyncio.wait_for on 3.11 returns a result that arrived
            # together with the cancel), so a replaced or stopped puller also checks who it is.
            return st.task is me and not st.dropped and self._state == "RUNNING"

        while current():
            while self._blocked(st):
                self._space.clear()
                await self._space.wait()
                if not current():
                    return
            generation = st.generation
            try:
                if st.pull_offset is None:
                    offset = await self._initial_offset(st.mq)
                    if generation != st.generation or not current():
                        continue
                    st.pull_offset = offset
                    if st.consumed is None:
                        st.consumed = st.enqueued = offset
                result = await self._pull_once(st, st.pull_offset)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, MQError):
                    log.exception("pulling %s failed", st.mq)
                else:
                    log.warning("pulling %s failed: %s", st.mq, exc)
                try:  # back off; wakes early only for shutdown
                    async with asyncio.timeout(self.pull_delay_on_error):
                        await self._stop.wait()
                except TimeoutError:
                    pass
                continue
            if generation != st.generation or not current():
                continue
            self._accept(st, result)

    async def _pull_once(self, st: _QueueState, offset: int) -> _api.PullResult:
        addr, _ = await pull_addr(self._instance.routes, st.mq, st.broker_id)
        sub = self._subs.get(st.mq.topic) if self._mode == "SUBSCRIBE" else None
        if sub is None:
            sub = SubscriptionData(st.mq.topic, SUB_ALL, sub_version=0)
        flags = _api.PULL_FLAG_SUSPEND | _api.PULL_FLAG_SUBSCRIPTION | _api.PULL_FLAG_LITE
        kwargs: dict[str, Any] = dict(
            group=self.group,
            mq=st.mq,
            offset=offset,
            max_nums=self.pull_batch_size,
            sys_flag=flags,
            subscription=sub.sub_string,
            expression_type=sub.expression_type,
            sub_version=0 if sub.is_tag_type else sub.sub_version,  # Java's lite consumer: 0 for TAG
            suspend_timeout_ms=int(self.broker_suspend_max * 1000),
            timeout=self.pull_timeout,
        )
        remote = self._instance.remote
        if addr not in self._legacy_pull:
            try:
                return await _api.pull_message(remote, addr, lite_code=True, **kwargs)
            except BrokerError as exc:
                if exc.code != ResponseCode.REQUEST_CODE_NOT_SUPPORTED:
                    raise
                self._legacy_pull.add(addr)  # a 4.x broker: PULL_MESSAGE with the lite flag
        return await _api.pull_message(remote, addr, lite_code=False, **kwargs)

    def _accept(self, st: _QueueState, result: _api.PullResult) -> None:
        """``PullAPIWrapper.processPullResult`` plus the lite consumer's bookkeeping."""
        st.broker_id = result.suggest_which_broker_id
        status = result.status
        nxt = result.next_begin_offset
        msgs: list[MessageExt] = []
        if status is _api.PullStatus.FOUND:
            sub = self._subs.get(st.mq.topic) if self._mode == "SUBSCRIBE" else None
            msgs = pulled_messages(result, st.mq, sub)
        elif status is _api.PullStatus.OFFSET_ILLEGAL:
            log.warning("offset %s of %s is illegal; moving to %d", st.pull_offset, st.mq, nxt)
        st.pull_offset = nxt
        if msgs or nxt != st.enqueued:
            self._ready.append(_Batch(st, st.generation, msgs, nxt))
            st.enqueued = nxt
            st.buffered += len(msgs)
            if msgs and self._arrived is not None:
                self._arrived.set()


class LitePullConsumer(BlockingFacade[AsyncLitePullConsumer]):
    """Blocking lite-pull consumer: the API of :class:`AsyncLitePullConsumer` without ``await``.

    It runs an :class:`AsyncLitePullConsumer` on its own background event-loop thread.

        with LitePullConsumer("127.0.0.1:9876", group="g") as consumer:   # after subscribe()
            ...
        consumer = LitePullConsumer("127.0.0.1:9876", group="g")
        consumer.subscribe("TopicA", "TagA || TagB")
        consumer.start()
        for msg in consumer.poll(timeout=1.0): ...
        consumer.shutdown()
    """

    def __init__(
        self, namesrv_addr: str | Iterable[str] = "127.0.0.1:9876", group: str = "DEFAULT_CONSUMER", **kw: Any
    ) -> None:
        """Same arguments as :class:`AsyncLitePullConsumer`."""
        super().__init__(AsyncLitePullConsumer(namesrv_addr, group, **kw), f"ferrymq-consumer-{group}")

    @property
    def async_consumer(self) -> AsyncLitePullConsumer:
        return self._async

    def subscribe(self, topic: str, expression: str = SUB_ALL, *, sql: str | None = None) -> None:
        self._call(lambda: self._async.subscribe(topic, expression, sql=sql))

    def unsubscribe(self, topic: str) -> None:
        self._call(self._async.unsubscribe, topic)

    def assign(self, queues: Iterable[MessageQueue]) -> None:
        self._call(self._async.assign, list(queues))

    def assignment(self) -> set[MessageQueue]:
        return self._call(self._async.assignment)

    def pause(self, queues: Iterable[MessageQueue]) -> None:
        self._call(self._async.pause, list(queues))

    def resume(self, queues: Iterable[MessageQueue]) -> None:
        self._call(self._async.resume, list(queues))

    def poll(self, timeout: float = 1.0) -> list[MessageExt]:
        return self._loop.run(self._async.poll(timeout))

    def commit(self, offsets: dict[MessageQueue, int] | None = None) -> None:
        self._loop.run(self._async.commit(offsets))

    def committed(self, mq: MessageQueue) -> int | None:
        return self._loop.run(self._async.committed(mq))

    def seek(self, mq: MessageQueue, offset: int) -> None:
        self._loop.run(self._async.seek(mq, offset))

    def seek_to_begin(self, mq: MessageQueue) -> None:
        self._loop.run(self._async.seek_to_begin(mq))

    def seek_to_end(self, mq: MessageQueue) -> None:
        self._loop.run(self._async.seek_to_end(mq))

    def min_offset(self, mq: MessageQueue) -> int:
        return self._loop.run(self._async.min_offset(mq))

    def max_offset(self, mq: MessageQueue) -> int:
        return self._loop.run(self._async.max_offset(mq))

    def offset_for_timestamp(self, mq: MessageQueue, timestamp_ms: int) -> int:
        return self._loop.run(self._async.offset_for_timestamp(mq, timestamp_ms))

    def fetch_message_queues(self, topic: str) -> list[MessageQueue]:
        return self._loop.run(self._async.fetch_message_queues(topic))
