"""Rebalancing of a push consumer (Java's ``RebalanceImpl`` / ``RebalancePushImpl``) and where a
newly owned queue starts (shared with the lite-pull consumer).

* :func:`allocate_topic` -- the queues of one topic this member should own: in CLUSTERING mode the
  strategy's share of the topic's queues (sorted) among the group's members (sorted, from
  GET_CONSUMER_LIST_BY_GROUP on a broker of the topic); in BROADCASTING mode all of them. None
  means "cannot tell now" (no route yet, broker unreachable): the caller keeps what it has.
* :func:`compute_pull_from_where` -- the first offset of a queue taken over: the group's stored
  offset, else per consume-from (``computePullFromWhereWithException``): LAST_OFFSET = the queue's
  end (retry topics from 0), FIRST_OFFSET = 0, TIMESTAMP = the first message stored at or after the
  timestamp (retry topics from the end).
* :func:`consume_from_key` -- checks a ``consume_from`` setting (``CONSUME_FROM_CHOICES``).
* :class:`PushRebalance` -- the push consumer's rebalance loop: works out the owned queues and
  applies the difference (a ProcessQueue and a pull task per queue taken; offsets committed and,
  for orderly consumers, the broker lock released for a queue given up).

Queue locks for orderly consumption are in :mod:`ferrymq.client.queue_lock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from ferrymq.client import _api
from ferrymq.client._instance import ClientInstance
from ferrymq.client._remote import RemotingClient
from ferrymq.client.allocate import AllocateStrategy
from ferrymq.client.consume_service import ConsumeRuntime
from ferrymq.client.errors import MQError, ValidationError
from ferrymq.client.message import MessageQueue
from ferrymq.client.offset_store import OffsetStore
from ferrymq.client.priority import PriorityGate
from ferrymq.client.process_queue import ProcessQueue
from ferrymq.client.queue_lock import QueueLocks
from ferrymq.client.validators import RETRY_GROUP_TOPIC_PREFIX

log = logging.getLogger("ferrymq.client")

CLUSTERING = "CLUSTERING"
BROADCASTING = "BROADCASTING"
#: ``consume_from`` settings and the ConsumeFromWhere names heartbeats carry
CONSUME_FROM_CHOICES = {
    "LAST_OFFSET": "CONSUME_FROM_LAST_OFFSET",
    "FIRST_OFFSET": "CONSUME_FROM_FIRST_OFFSET",
    "TIMESTAMP": "CONSUME_FROM_TIMESTAMP",
}


def consume_from_key(value: str) -> str:
    """``"last_offset"`` or ``"CONSUME_FROM_LAST_OFFSET"`` to ``"LAST_OFFSET"``; raises ValidationError."""
    key = value.upper().removeprefix("CONSUME_FROM_")
    if key not in CONSUME_FROM_CHOICES:
        raise ValidationError(f"consume_from must be one of {', '.join(CONSUME_FROM_CHOICES)}, not {value!r}")
    return key


async def allocate_topic(
    instance: ClientInstance,
    group: str,
    topic: str,
    message_model: str,
    strategy: AllocateStrategy,
    timeout: float,
) -> set[MessageQueue] | None:
    """The queues of ``topic`` this member should own now; None when that cannot be known."""
    routes = instance.routes
    mq_all = routes.cached_subscribe_queues(topic)
    if not mq_all:
        try:
            mq_all = await routes.subscribe_queues(topic, refresh=True)
        except MQError as exc:
            log.warning("no route for topic %s of group %s: %s", topic, group, exc)
            return None
    if not mq_all:
        log.info("topic %s of group %s has no route (yet)", topic, group)
        return None
    if message_model == BROADCASTING:
        return set(mq_all)
    addr = routes.any_broker_addr_of(topic)
    if addr is None:
        return None
    try:
        cids = await _api.get_consumer_list(instance.remote, addr, group, timeout)
    except MQError as exc:
        log.warning("cannot list the members of group %s at %s: %s", group, addr, exc)
        return None
    if instance.client_id not in cids:  # Java's strategies then allocate nothing: let go
        log.info("client %s is not (yet) a member of group %s at %s", instance.client_id, group, addr)
        return set()
    try:
        return set(strategy.allocate(group, instance.client_id, sorted(mq_all), sorted(cids)))
    except Exception:
        log.exception("allocation strategy %s failed for group %s", strategy.name, group)
        return None


async def compute_pull_from_where(
    read_offset: Callable[[MessageQueue], Awaitable[int | None]],
    remote: RemotingClient,
    addr: str,
    mq: MessageQueue,
    consume_from: str,
    consume_timestamp: int | None,
    timeout: float,
) -> int:
    """Where a newly owned queue starts (see the module docstring)."""
    stored = await read_offset(mq)
    if stored is not None and stored >= 0:
        return stored
    retry = mq.topic.startswith(RETRY_GROUP_TOPIC_PREFIX)
    if consume_from == "FIRST_OFFSET" or (consume_from == "LAST_OFFSET" and retry):
        return 0
    if consume_from == "TIMESTAMP" and not retry:
        ts = consume_timestamp if consume_timestamp is not None else int(time.time() * 1000) - 30 * 60_000
        return await _api.search_offset(remote, addr, mq, ts, timeout)
    return await _api.get_max_offset(remote, addr, mq, timeout)


class PushRebalance:
    """``RebalancePushImpl`` for one push consumer; built at start, on the consumer's loop.

    ``subs`` and ``pqs`` are the consumer's live tables (subscribed topics, owned queues);
    ``start_pull`` starts the pull task of a queue just taken; ``locks`` is set for orderly
    consumers in clustering mode, whose queues are taken only once locked and released only
    after their last consumed offset is committed.
    """

    def __init__(
        self,
        instance: ClientInstance,
        runtime: ConsumeRuntime,
        *,
        message_model: str,
        strategy: AllocateStrategy,
        timeout: float,
        interval: float,
        subs: Mapping[str, object],
        pqs: dict[MessageQueue, ProcessQueue],
        offsets: OffsetStore,
        locks: QueueLocks | None,
        gate: PriorityGate,
        ranking: Callable[[MessageQueue], int] | None,
        start_pull: Callable[[ProcessQueue], None],
    ) -> None:
        self.instance = instance
        self.runtime = runtime
        self.group = runtime.group
        self.message_model = message_model
        self.strategy = strategy
        self.timeout = timeout
        self.interval = interval
        self.subs = subs
        self.pqs = pqs
        self.offsets = offsets
        self.locks = locks
        self.gate = gate
        self.ranking = ranking
        self.start_pull = start_pull
        #: orderly queues given up whose offset commit and unlock are under way
        self.releasing: dict[MessageQueue, asyncio.Task[None]] = {}
        self.wakeup = asyncio.Event()
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        """Rebalance now (group or route changed)."""
        self.wakeup.set()

    async def loop(self) -> None:
        """Every ``interval`` seconds (a heartbeat first), and whenever woken."""
        wakeup = self.wakeup
        while self.runtime.running():
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await wakeup.wait()
                woken = True
            wakeup.clear()
            try:
                if not woken:
                    await self.instance.send_heartbeat_to_all()
                await self.rebalance()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rebalance of group %s failed", self.group)

    async def rebalance(self) -> None:
        """``RebalanceImpl.doRebalance``: work out the owned queues and apply the difference."""
        async with self._lock:
            if not self.runtime.running():
                return
            wanted: set[MessageQueue] = set()
            for topic in list(self.subs):
                mine = await allocate_topic(
                    self.instance, self.group, topic, self.message_model, self.strategy, self.timeout
                )
                if mine is None:  # unknown now: keep what we have
                    mine = {mq for mq in self.pqs if mq.topic == topic}
                wanted |= mine
            if self.runtime.running():
                await self._apply(wanted)

    async def _apply(self, wanted: set[MessageQueue]) -> None:
        removed = [pq for mq, pq in self.pqs.items() if mq not in wanted]
        for pq in removed:
            del self.pqs[pq.mq]
            self._drop(pq)
        locks = self.locks
        if removed and locks is None:
            gone = [pq.mq for pq in removed]
            await self.offsets.persist(gone, oneway=True)
            for mq in gone:
                self.offsets.remove(mq)
        added = 0
        retry_soon = False
        for mq in sorted(wanted):
            if mq in self.pqs:
                continue
            pq = ProcessQueue(mq, self.ranking(mq) if self.ranking else 0)
            if locks is not None:
                if mq in self.releasing or not await locks.lock(pq):
                    retry_soon = True  # the previous owner still holds it: try again shortly
                    continue
                if not self.runtime.running() or mq in self.pqs:
                    continue
            self.offsets.remove(mq)
            self.pqs[mq] = pq
            self.start_pull(pq)
            added += 1
        if removed or added:
            log.info(
                "group %s client %s owns %d queue(s) (+%d -%d)",
                self.group,
                self.instance.client_id,
                len(self.pqs),
                added,
                len(removed),
            )
            self.gate.notify()
        if retry_soon:
            asyncio.get_running_loop().call_later(0.5, self.wake)

    async def reset(self, offsets: dict[MessageQueue, int]) -> None:
        """RESET_CONSUMER_CLIENT_OFFSET (``resetOffset``): each owned queue of ``offsets`` is dropped
        with what it cached and pulled again from its new offset, which is committed first so no
        later commit of the old position overwrites it."""
        async with self._lock:
            for mq, offset in offsets.items():
                old = self.pqs.pop(mq, None)
                self.offsets.update(mq, offset, increase_only=False)
                if old is None:
                    continue
                self._drop(old)
                pq = ProcessQueue(mq, old.rank)
                pq.locked, pq.last_lock = old.locked, old.last_lock
                pq.next_offset = offset
                self.pqs[mq] = pq
                self.start_pull(pq)
            await self.offsets.persist([mq for mq in offsets if mq in self.pqs], oneway=False)
            log.info("group %s: %d queue(s) reset", self.group, len(offsets))
            self.gate.notify()

    def _drop(self, pq: ProcessQueue) -> None:
        pq.dropped = True
        pq.space.set()
        if pq.pull_task is not None:
            pq.pull_task.cancel()
        if self.locks is not None:
            task = asyncio.ensure_future(self._release(pq, self.locks))
            self.releasing[pq.mq] = task
            task.add_done_callback(lambda t: self.releasing.pop(pq.mq, None))

    async def _release(self, pq: ProcessQueue, locks: QueueLocks) -> None:
        """Orderly: give a queue up only after its listener is done and its offset committed."""
        async with pq.consume_lock:
            try:
                await self.offsets.persist([pq.mq], oneway=False)
            except MQError as exc:
                log.warning("offset commit of %s before unlocking failed: %s", pq.mq, exc)
            self.offsets.remove(pq.mq)
            await locks.unlock([pq.mq])
